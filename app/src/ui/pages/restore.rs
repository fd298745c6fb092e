//! Restore access on a new device with the 24-word recovery phrase: the
//! phrase gives back the account secret; the browser proves it to the
//! server by signing a challenge, and seals the secret under a new passkey.

use std::sync::Arc;

use chartkey_core::recovery::secret_from_phrase;
use chartkey_core::{AccountSecret, proof};
use leptos::prelude::*;

use crate::api;
use crate::ui::components::{Busy, ErrorMessage, NewPassphrase};
use crate::ui::nav::{Link, use_location};
use crate::ui::session::{self, PendingPasskey, Protection, use_session};

/// "Passkey on Windows", "Passkey on iPhone"…: a starting name the user can
/// recognise in the passkey list.
pub fn default_passkey_label() -> String {
    let agent = web_sys::window().and_then(|w| w.navigator().user_agent().ok()).unwrap_or_default();
    let platform = [
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("Windows", "Windows"),
        ("Mac OS", "Mac"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(needle, _)| agent.contains(needle))
    .map(|(_, name)| name);
    match platform {
        Some(p) => format!("Passkey on {p}"),
        None => "Passkey".to_owned(),
    }
}

#[component]
pub fn Restore() -> impl IntoView {
    let session = use_session();
    let location = use_location();
    let phrase = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<String>);
    let needs_passphrase = RwSignal::new(false);
    let secret = StoredValue::new_local(None::<Arc<AccountSecret>>);
    let pending = StoredValue::new_local(None::<(PendingPasskey, String)>);

    let finish = move |sealed_keystore: String, uses_passphrase: bool| {
        async move {
            let (Some((pending, challenge)), Some(secret)) = (pending.get_value(), secret.get_value()) else {
                return Err("Start again.".to_string());
            };
            let keys = secret.derive();
            let signature = proof::sign_message(&keys, &proof::restore_message(&keys.address(), &challenge));
            busy.set(Some("Restoring your account…".into()));
            let account = api::restore_finish(api::RestoreFinishBody {
                ceremony_id: pending.ceremony_id,
                credential: pending.credential,
                passkey_label: default_passkey_label(),
                sealed_keystore,
                uses_passphrase,
                signature,
            })
            .await
            .map_err(|e| e.to_string())?;
            // Typing the phrase proves it was written down.
            let account = if account.recovery_confirmed {
                account
            } else {
                api::confirm_recovery().await.map_err(|e| e.to_string())?
            };
            session.unlock(account, AccountSecret::clone(&secret))?;
            location.navigate("/");
            Ok(())
        }
    };

    let submit = {
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            error.set(None);
            let restored = match secret_from_phrase(&phrase.get_untracked()) {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    error.set(Some(e.to_string()));
                    return;
                }
            };
            phrase.set(String::new());
            secret.set_value(Some(restored.clone()));
            let address = ethers_core::utils::to_checksum(&restored.derive().address(), None);
            busy.set(Some("Follow your browser's prompt to create a new passkey…".into()));
            leptos::task::spawn_local(async move {
                let result = async {
                    let start = api::restore_start(address).await.map_err(|e| e.to_string())?;
                    let challenge = start.challenge.clone();
                    let creation = api::CreationStart { ceremony_id: start.ceremony_id, options: start.options };
                    let (new, protection) = session::create_passkey(&restored, creation, busy).await?;
                    pending.set_value(Some((new, challenge)));
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
        let Some(restored) = secret.get_value() else { return };
        error.set(None);
        busy.set(Some("Protecting your keys with your passphrase… this takes a few seconds.".into()));
        leptos::task::spawn_local(async move {
            let result = async {
                let sealed = session::protect_with_passphrase(&restored, &passphrase).await?;
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
            <h1>"Restore with your recovery phrase"</h1>
            <Show
                when=move || needs_passphrase.get()
                fallback=move || {
                    view! {
                        <form class="stack" on:submit=submit>
                            <p>
                                "Enter the 24 words you wrote down when you created your account. "
                                "They stay in this browser: only a proof that you know them is sent."
                            </p>
                            <label class="field">
                                <span>"Recovery phrase"</span>
                                <textarea
                                    rows="4"
                                    autocomplete="off"
                                    autocapitalize="none"
                                    spellcheck="false"
                                    required
                                    bind:value=phrase
                                ></textarea>
                            </label>
                            <button type="submit" class="button button-primary button-wide" disabled=move || is_busy.get()>
                                "Restore and create a new passkey"
                            </button>
                        </form>
                    }
                }
            >
                <NewPassphrase on_done=with_passphrase busy=is_busy />
            </Show>
            <Busy message=busy />
            <ErrorMessage error=error />
            <p class="muted">"Have your passkey? " <Link href="/signin">"Sign in"</Link> "."</p>
        </section>
    }
}
