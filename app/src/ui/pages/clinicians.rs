//! Finding a clinician by name, specialty or organisation: the patient's
//! "Clinicians" page and the share form's picker, each badge what the
//! ledger says now.

use leptos::prelude::*;

use crate::api::{self, ClinicianCard, MAX_CREDENTIAL_FIELD_CHARS};
use crate::ui::components::{Busy, CredentialBadge, ErrorMessage, PageHead};

/// Finding a clinician by name, specialty or organisation.
#[component]
pub fn FindClinician() -> impl IntoView {
    view! {
        <PageHead title="Find a clinician"
            lead="Search by name, specialty or organisation. You can only share records with a clinician a \
            credentialing authority has verified; each badge is what the ledger says now." />
        <section class="panel">
            <ClinicianSearch label="Name, specialty or organisation" />
        </section>
    }
}

/// A clinician search (Enter or the button) and its matches; with
/// `choose`, each verified match has a button that picks it. No `<form>`:
/// the share form holds one.
#[component]
pub fn ClinicianSearch(
    label: &'static str,
    #[prop(optional)] choose: Option<RwSignal<Option<ClinicianCard>>>,
) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let found = RwSignal::new(None::<Vec<ClinicianCard>>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<String>);
    let search = move || {
        error.set(None);
        busy.set(Some("Searching…".into()));
        leptos::task::spawn_local(async move {
            match api::clinicians_search(query.get_untracked()).await {
                Ok(list) => found.set(Some(list)),
                Err(e) => error.set(Some(e.to_string())),
            }
            busy.set(None);
        });
    };
    let item = move |card: ClinicianCard| match choose {
        None => view! { <ClinicianItem card=card /> }.into_any(),
        Some(chosen) => {
            let name = format!("Choose {}", card.display_name);
            let pick = card.clone();
            let action = if card.credential.is_verified() {
                let choose = move |_| chosen.set(Some(pick.clone()));
                view! { <button type="button" class="button button-small" on:click=choose>{name}</button> }.into_any()
            } else {
                view! { <small class="muted">"Records can only be shared with a verified clinician."</small> }
                    .into_any()
            };
            view! {
                <li class="clinician-choice">
                    <ul class="list"><ClinicianItem card=card /></ul>
                    {action}
                </li>
            }
            .into_any()
        }
    };
    let primary = if choose.is_some() { "button" } else { "button button-primary" };
    view! {
        <div class="inline-form" role="search">
            <label class="field">
                <span>{label}</span>
                <input type="search" maxlength=MAX_CREDENTIAL_FIELD_CHARS bind:value=query
                    on:keydown=move |ev| if ev.key() == "Enter" { ev.prevent_default(); search(); } />
            </label>
            <button type="button" class=primary on:click=move |_| search()>"Search"</button>
        </div>
        <Busy message=busy />
        <ErrorMessage error=error />
        {move || found.get().map(|list| {
            if list.is_empty() {
                view! { <p class="muted">"No clinician matches."</p> }.into_any()
            } else {
                view! { <ul class="list" aria-label="Clinicians found">{list.into_iter().map(item).collect_view()}</ul> }
                    .into_any()
            }
        })}
    }
}

#[component]
pub fn ClinicianItem(card: ClinicianCard) -> impl IntoView {
    let details = [card.specialty.clone(), card.organisation.clone(), card.jurisdiction.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ");
    view! {
        <li class="clinician" data-testid="clinician">
            <strong>{card.display_name.clone()}</strong>
            {(!details.is_empty()).then(|| view! { <span class="muted">" — " {details}</span> })}
            <br />
            <CredentialBadge status=card.credential.clone() />
        </li>
    }
}
