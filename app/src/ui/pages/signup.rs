//! Sign-up: name and role, a new passkey, keys made in this browser and
//! sealed by the passkey (or a passphrase), then the recovery phrase.

use std::sync::Arc;

use chartkey_core::AccountSecret;
use chartkey_core::directory::DirectoryEntry;
use chartkey_core::wire::Role;
use leptos::prelude::*;

use crate::api::{self, MAX_DISPLAY_NAME_CHARS};
use crate::ui::components::{Busy, ErrorMessage, NewPassphrase};
use crate::ui::nav::{Link, use_location};
use crate::ui::pages::restore::default_passkey_label;
use crate::ui::session::{self, PendingPasskey, Protection, use_session};

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
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<String>);
    let needs_passphrase = RwSignal::new(false);
    // Made once per visit to this page; lives only in memory.
    let secret = StoredValue::new_local(Arc::new(AccountSecret::generate(&mut rand_core::OsRng)));
    let pending = StoredValue::new_local(None::<(PendingPasskey, Role)>);

    let finish = move |sealed_keystore: String, uses_passphrase: bool| async move {
        let Some((pending, role)) = pending.get_value() else { return Err("Start again.".to_string()) };
        let secret = secret.get_value();
        let directory = DirectoryEntry::sign(&secret.derive(), role);
        busy.set(Some("Creating your account…".into()));
        let account = api::signup_finish(api::SignupFinishBody {
            ceremony_id: pending.ceremony_id,
            credential: pending.credential,
            passkey_label: default_passkey_label(),
            sealed_keystore,
            uses_passphrase,
            directory,
        })
        .await
        .map_err(|e| e.to_string())?;
        session.unlock(account, AccountSecret::clone(&secret))?;
        location.navigate("/");
        Ok(())
    };

    let submit = {
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            error.set(None);
            let display_name = name.get_untracked().trim().to_owned();
            if display_name.is_empty() {
                error.set(Some("Enter your name.".into()));
                return;
            }
            let chosen = role.get_untracked();
            busy.set(Some("Follow your browser's prompt to create a passkey…".into()));
            leptos::task::spawn_local(async move {
                let result = async {
                    let start = api::signup_start(display_name, chosen).await.map_err(|e| e.to_string())?;
                    let (new, protection) = session::create_passkey(&secret.get_value(), start, busy).await?;
                    pending.set_value(Some((new, chosen)));
                    match protection {
                        Protection::Sealed { sealed_keystore, uses_passphrase } => {
                            finish(sealed_keystore, uses_passphrase).await
                        }
                        Protection::NeedsPassphrase => {
                            needs_passphrase.set(true);
                            Ok(())
                        }
                    }
                }
                .await;
                busy.set(None);
                if let Err(e) = result {
                    error.set(Some(e));
                }
            });
        }
    };

    let with_passphrase = Callback::new(move |passphrase: String| {
        error.set(None);
        busy.set(Some("Protecting your keys with your passphrase… this takes a few seconds.".into()));
        leptos::task::spawn_local(async move {
            let result = async {
                let sealed = session::protect_with_passphrase(&secret.get_value(), &passphrase).await?;
                finish(sealed, true).await
            }
            .await;
            busy.set(None);
            if let Err(e) = result {
                error.set(Some(e));
            }
        });
    });

    let is_busy = Signal::derive(move || busy.get().is_some());
    view! {
        <section class="panel narrow">
            <h1>"Create your account"</h1>
            <Show
                when=move || needs_passphrase.get()
                fallback=move || {
                    view! {
                        <form class="stack" on:submit=submit>
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
                            <button type="submit" class="button button-primary button-wide" disabled=move || is_busy.get()>
                                "Create passkey and account"
                            </button>
                        </form>
                    }
                }
            >
                <NewPassphrase on_done=with_passphrase busy=is_busy />
            </Show>
            <Busy message=busy />
            <ErrorMessage error=error />
            <p class="muted">"Already have an account? " <Link href="/signin">"Sign in"</Link> "."</p>
        </section>
    }
}
