//! The emergency card: a printable card (and PDF, through the browser's
//! print) with the patient's name and what else they choose to print
//! (date of birth, blood group, allergies, emergency contacts), and the QR
//! code of a long-term link to their patient summary without a passcode:
//! the IG's emergency use, with plain words about what it costs.

use chartkey_core::card::{self, CardFacts};
use leptos::prelude::*;

use crate::api::{self, EmergencyState};
use crate::ui::components::{Busy, ErrorMessage, PageHead, format_fhir_date};
use crate::ui::links::{self, Made};
use crate::ui::nav::Link;
use crate::ui::records::{self, Loaded};
use crate::ui::session::{Keyring, use_session};

/// What the page has read: the card's facts, the records the summary is
/// made from, the contacts' names and the card's link if there is one.
#[derive(Clone)]
struct Read {
    records: Vec<Loaded>,
    facts: CardFacts,
    contacts: Vec<String>,
    link: Option<Made>,
}

#[component]
pub fn CardOverview() -> impl IntoView {
    let session = use_session();
    let read = RwSignal::new(None::<Read>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(Some("Reading your records…".to_owned()));
    let keyring = session.keyring.get_untracked();
    leptos::task::spawn_local(async move {
        let Some(keyring) = keyring else { return error.set(Some("Unlock your keys to make a card.".into())) };
        let progress = move |done, total| busy.set(Some(format!("Reading your records… {done} of {total}")));
        let result = load(&keyring, progress).await;
        busy.set(None);
        match result {
            Ok(r) => read.set(Some(r)),
            Err(e) => error.set(Some(e)),
        }
    });
    let (birth, blood, allergies, contacts) =
        (RwSignal::new(true), RwSignal::new(true), RwSignal::new(true), RwSignal::new(true));
    let make = move |_| {
        let (Some(keyring), Some(current)) = (session.keyring.get_untracked(), read.get_untracked()) else { return };
        error.set(None);
        busy.set(Some("Making your summary…".into()));
        leptos::task::spawn_local(async move {
            let result =
                links::create(&keyring, &current.records, links::emergency_card(), move |p| busy.set(Some(p))).await;
            busy.set(None);
            match result {
                Ok(made) => read.update(|r| {
                    if let Some(r) = r {
                        r.link = Some(made)
                    }
                }),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let print = move |_| {
        if let Some(w) = web_sys::window() {
            let _ = w.print();
        }
    };
    view! {
        <div class="stack">
        <div class="stack print-hide">
            <PageHead title="Emergency card"
                lead="A card for your wallet: the few facts a first responder needs at a glance, and a QR code that \
                opens your patient summary on any phone, without an account." />
            <div class="alert alert-warning" data-testid="card-tradeoff">
                <p><strong>"Whoever holds this card, or a photo of it, can read your patient summary."</strong></p>
                <p>
                    "Its link has no passcode, so that someone can open it when you cannot speak, and no end date. "
                    "Every opening is recorded on the ledger and you are told of it. If you lose the card, stop its "
                    "link on the "<Link href="/links">"Links"</Link>" page at once, then make a new card."
                </p>
            </div>
            <ErrorMessage error=error />
            <Busy message=busy />
        </div>
        {move || read.get().map(|r| {
            let facts = r.facts.clone();
            view! {
                <section class="panel stack print-hide" aria-labelledby="card-choices">
                    <h2 id="card-choices">"What the card prints"</h2>
                    <p class="muted">"Your name is always on it. The summary behind the QR code holds the rest."</p>
                    <Choice label="Date of birth" on=birth available=facts.birth_date.is_some() />
                    <Choice label="Blood group" on=blood available=facts.blood_group.is_some() />
                    <Choice label="Allergies" on=allergies available=!facts.allergies.is_empty() />
                    <Choice label="Emergency contacts" on=contacts available=!r.contacts.is_empty()
                        absent=" (none named yet)" />
                </section>
                {match r.link.clone() {
                    None => view! {
                        <div class="actions print-hide">
                            <button type="button" class="button button-primary" on:click=make
                                disabled=move || busy.get().is_some() data-testid="card-make">
                                "Make the card (approve with your passkey)"
                            </button>
                        </div>
                    }.into_any(),
                    Some(made) => view! {
                        <Card facts=facts.clone() contacts=r.contacts.clone() made birth blood allergies show_contacts=contacts />
                        <div class="actions print-hide">
                            <button type="button" class="button button-primary" on:click=print>"Print the card"</button>
                        </div>
                    }.into_any(),
                }}
            }
        })}
        </div>
    }
    .into_any()
}

/// A checkbox for one printed fact; disabled, and saying so, when there
/// is none.
#[component]
fn Choice(
    label: &'static str,
    on: RwSignal<bool>,
    available: bool,
    #[prop(default = " (none in your records)")] absent: &'static str,
) -> impl IntoView {
    view! {
        <label class="choice-inline">
            <input type="checkbox" prop:checked=move || on.get() && available disabled=!available
                on:change=move |ev| on.set(event_target_checked(&ev)) />
            " " {label}
            {(!available).then_some(view! { <span class="muted">{absent}</span> })}
        </label>
    }
}

/// The card itself, as printed.
#[component]
fn Card(
    facts: CardFacts,
    contacts: Vec<String>,
    made: Made,
    birth: RwSignal<bool>,
    blood: RwSignal<bool>,
    allergies: RwSignal<bool>,
    show_contacts: RwSignal<bool>,
) -> impl IntoView {
    let name = facts
        .name
        .clone()
        .unwrap_or_else(|| use_session().account.get_untracked().map(|a| a.display_name).unwrap_or_default());
    let born = facts.birth_date.as_deref().map(format_fhir_date);
    let blood_group = facts.blood_group.clone();
    let allergy_list = facts.allergies.join(", ");
    let has_allergies = !facts.allergies.is_empty();
    let contact_list = contacts.join(", ");
    let has_contacts = !contacts.is_empty();
    view! {
        <article class="emergency-card" aria-label="Your emergency card" data-testid="emergency-card">
            <div class="emergency-card-facts">
                <p class="emergency-card-title">"Emergency medical information"</p>
                <p class="emergency-card-name">{name}</p>
                <dl class="facts">
                    {move || (birth.get() && born.is_some()).then(|| view! { <dt>"Born"</dt><dd>{born.clone()}</dd> })}
                    {move || (blood.get() && blood_group.is_some()).then(|| view! { <dt>"Blood group"</dt><dd>{blood_group.clone()}</dd> })}
                    {move || (allergies.get() && has_allergies).then(|| view! { <dt>"Allergies"</dt><dd>{allergy_list.clone()}</dd> })}
                    {move || (show_contacts.get() && has_contacts).then(|| view! { <dt>"Contacts"</dt><dd>{contact_list.clone()}</dd> })}
                </dl>
                <p class="emergency-card-note">"Scan the code for my patient summary. Each opening is recorded and I am told."</p>
            </div>
            {made.qr_svg.map(|svg| view! { <div class="qr" data-testid="link-qr" inner_html=svg></div> })}
            <p class="visually-hidden" data-testid="card-link">{made.link}</p>
        </article>
    }
}

/// Reads the records (for the facts and the summary), the contacts the
/// patient named, and the card's link if one is live.
async fn load(keyring: &Keyring, progress: impl Fn(usize, usize)) -> Result<Read, String> {
    let records = records::load_all(keyring, progress).await?;
    let current: Vec<serde_json::Value> = records
        .iter()
        .filter(|r| r.meta.amended_by.is_empty())
        .filter_map(|r| r.opened().map(|o| o.value.clone()))
        .collect();
    let facts = card::facts(&current);
    let overview = api::emergency_page().await.map_err(|e| e.to_string())?;
    let contacts =
        overview.contacts.into_iter().filter(|c| c.state != EmergencyState::Removed).map(|c| c.contact_name).collect();
    let links = api::links_list().await.map_err(|e| e.to_string())?;
    let link = links::find_card(keyring, &links);
    Ok(Read { records, facts, contacts, link })
}
