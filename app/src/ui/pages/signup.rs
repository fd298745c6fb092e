//! Sign-up: name and role, a new passkey, keys made in this browser and
//! sealed by the passkey (or a passphrase), then the recovery phrase.

use std::sync::Arc;

use chartkey_core::AccountSecret;
use chartkey_core::directory::DirectoryEntry;
use chartkey_core::eip712::first_registration;
use chartkey_core::role::Role;
use leptos::prelude::*;

use crate::api::{self, MAX_DISPLAY_NAME_CHARS};
use crate::ui::enroll::{Enrollment, EnrollmentForm};
use crate::ui::nav::{Link, use_location};
use crate::ui::pages::restore::default_passkey_label;
use crate::ui::session::use_session;

fn role_help(role: Role) -> &'static str {
    match role {
        Role::Patient => "Keep your records and decide who sees them.",
        Role::Clinician => "Open what patients share with you and add notes. Your keys lock after a few idle minutes.",
        Role::Verifier => "Ask patients to prove a single fact, without seeing their records.",
        Role::CredentialingAuthority => "Verify clinicians' licences.",
    }
}

#[component]
pub fn SignUp() -> impl IntoView {
    let session = use_session();
    let location = use_location();
    let name = RwSignal::new(String::new());
    let role = RwSignal::new(Role::Patient);
    // Made once per visit to this page; lives only in memory.
    let secret = StoredValue::new_local(Arc::new(AccountSecret::generate(&mut rand_core::OsRng)));
    let chosen_role = StoredValue::new(Role::Patient);

    let enrollment = Enrollment::new(move |passkey, sealed_keystore, uses_passphrase| async move {
        let secret = secret.get_value();
        let role = chosen_role.get_value();
        let keys = secret.derive();
        let ledger = api::ledger_info().await.map_err(|e| e.to_string())?;
        let (_, ledger_registration) = first_registration(&keys, role.code(), ledger.chain_id, ledger.directory.into());
        let account = api::signup_finish(api::SignupFinishBody {
            ceremony_id: passkey.ceremony_id,
            credential: passkey.credential,
            passkey_label: default_passkey_label(),
            sealed_keystore,
            uses_passphrase,
            directory: DirectoryEntry::sign(&keys, role),
            ledger_registration: Some(ledger_registration),
        })
        .await
        .map_err(|e| e.to_string())?;
        session.unlock(account, AccountSecret::clone(&secret))?;
        location.navigate("/");
        Ok(())
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let display_name = name.get_untracked().trim().to_owned();
        if display_name.is_empty() {
            enrollment.error.set(Some("Enter your name.".into()));
            return;
        }
        let role = role.get_untracked();
        chosen_role.set_value(role);
        enrollment.begin(AccountSecret::clone(&secret.get_value()), async move {
            api::signup_start(display_name, role).await.map_err(|e| e.to_string())
        });
    };

    view! {
        <section class="panel narrow">
            <h1>"Create your account"</h1>
            <EnrollmentForm enrollment=enrollment on_submit=submit submit="Create passkey and account">
                <label class="field">
                    <span>"Your name"</span>
                    <input
                        type="text"
                        autocomplete="name"
                        required
                        maxlength=MAX_DISPLAY_NAME_CHARS
                        bind:value=name
                    />
                    <small>"Shown to people you share records with."</small>
                </label>
                <fieldset class="field roles">
                    <legend>"I am a…"</legend>
                    {Role::ALL
                        .into_iter()
                        .map(|r| {
                            view! {
                                <label class="choice">
                                    <input
                                        type="radio"
                                        name="role"
                                        value=r.as_str()
                                        prop:checked=move || role.get() == r
                                        on:change=move |_| role.set(r)
                                    />
                                    <span>
                                        <strong>{r.label()}</strong>
                                        <small>{role_help(r)}</small>
                                    </span>
                                </label>
                            }
                        })
                        .collect_view()}
                </fieldset>
            </EnrollmentForm>
            <p class="muted">"Already have an account? " <Link href="/signin">"Sign in"</Link> "."</p>
        </section>
    }
}
