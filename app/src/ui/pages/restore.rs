//! Restore access on a new device with the 24-word recovery phrase: the
//! phrase gives back the account secret; the browser proves it to the
//! server by signing a challenge, and seals the secret under a new passkey.

use std::sync::Arc;

use chartkey_core::recovery::secret_from_phrase;
use chartkey_core::{AccountSecret, proof};
use leptos::prelude::*;

use crate::api;
use crate::ui::enroll::{Enrollment, EnrollmentForm};
use crate::ui::nav::{Link, use_location};
use crate::ui::session::use_session;

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
    let secret = StoredValue::new_local(None::<Arc<AccountSecret>>);

    let enrollment = Enrollment::new(move |passkey, sealed_keystore, uses_passphrase| async move {
        let secret = secret.get_value().ok_or("Start again.")?;
        let account = api::restore_finish(api::RestoreFinishBody {
            ceremony_id: passkey.ceremony_id,
            credential: passkey.credential,
            passkey_label: default_passkey_label(),
            sealed_keystore,
            uses_passphrase,
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
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let restored = match secret_from_phrase(&phrase.get_untracked()) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                enrollment.error.set(Some(e.to_string()));
                return;
            }
        };
        phrase.set(String::new());
        secret.set_value(Some(restored.clone()));
        let keys = restored.derive();
        enrollment.begin(AccountSecret::clone(&restored), async move {
            let start = api::restore_start(keys.address().into()).await.map_err(|e| e.to_string())?;
            // Prove the phrase to the server without revealing it.
            let signature = proof::sign_message(&keys, &proof::restore_message(&keys.address(), &start.challenge));
            api::restore_options(api::RestoreProofBody { ceremony_id: start.ceremony_id, signature })
                .await
                .map_err(|e| e.to_string())
        });
    };

    view! {
        <section class="panel narrow">
            <h1>"Restore with your recovery phrase"</h1>
            <EnrollmentForm enrollment=enrollment on_submit=submit submit="Restore and create a new passkey">
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
            </EnrollmentForm>
            <p class="muted">"Have your passkey? " <Link href="/signin">"Sign in"</Link> "."</p>
        </section>
    }
}
