//! Sign in (and unlock after a reload or lock) with a discoverable passkey.

use crate::api::AccountInfo;
use chartkey_core::keystore::SealedKeystore;
use leptos::prelude::*;

use crate::ui::components::{Busy, EnterPassphrase, ErrorMessage};
use crate::ui::nav::{self, Link, use_location};
use crate::ui::session::{self, SignInOutcome, use_session};
use crate::ui::shell::SignInStarted;

#[component]
pub fn SignIn() -> impl IntoView {
    let session = use_session();
    move || {
        if session.is_unlocked() {
            view! {
                <section class="panel narrow">
                    <h1>"You're signed in"</h1>
                    <p><Link href="/">"Continue to your account"</Link></p>
                </section>
            }
            .into_any()
        } else {
            view! { <SignInForm unlock=false /> }.into_any()
        }
    }
}

/// The sign-in form; with `unlock`, worded for a signed-in but locked tab.
#[component]
pub fn SignInForm(unlock: bool) -> impl IntoView {
    let session = use_session();
    let location = use_location();
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<String>);
    let passphrase_for = StoredValue::new_local(None::<(AccountInfo, SealedKeystore)>);
    let asking_passphrase = RwSignal::new(false);

    let started = use_context::<SignInStarted>();
    let start = {
        move |_| {
            if let Some(SignInStarted(started)) = started {
                started.run(());
            }
            error.set(None);
            busy.set(Some("Waiting for your passkey…".into()));
            leptos::task::spawn_local(async move {
                match session::sign_in_with_passkey(session).await {
                    Ok(SignInOutcome::Unlocked) => {
                        busy.set(None);
                        // Unlocking keeps the page the patient was on.
                        if !unlock {
                            location.navigate(&nav::after_sign_in());
                        }
                    }
                    Ok(SignInOutcome::NeedsPassphrase { account, sealed }) => {
                        busy.set(None);
                        passphrase_for.set_value(Some((*account, sealed)));
                        asking_passphrase.set(true);
                    }
                    Err(e) => {
                        busy.set(None);
                        error.set(Some(e));
                    }
                }
            });
        }
    };

    let with_passphrase = Callback::new(move |passphrase: String| {
        let Some((account, sealed)) = passphrase_for.get_value() else { return };
        error.set(None);
        busy.set(Some("Unlocking your keys… this takes a few seconds.".into()));
        leptos::task::spawn_local(async move {
            let result = session::unlock_with_passphrase(session, account, &sealed, &passphrase).await;
            busy.set(None);
            match result {
                Ok(()) if unlock => {}
                Ok(()) => location.navigate(&nav::after_sign_in()),
                Err(e) => error.set(Some(e)),
            }
        });
    });

    let name = move || session.account.get().map(|a| a.display_name).unwrap_or_default();
    let sign_out = move |_| leptos::task::spawn_local(session.sign_out());
    view! {
        <section class="panel narrow">
            {if unlock {
                view! {
                    <h1>"Unlock your keys"</h1>
                    <p>
                        "Signed in as " <strong>{name}</strong> ". Your keys are kept only in this tab's memory, "
                        "so after a reload or a lock you unlock them again with your passkey."
                    </p>
                }
                    .into_any()
            } else {
                view! {
                    <h1>"Sign in"</h1>
                    <p>"Use the passkey you created for Chartkey: your face, fingerprint, device PIN or security key."</p>
                }
                    .into_any()
            }}
            <Show
                when=move || asking_passphrase.get()
                fallback=move || {
                    view! {
                        <button
                            type="button"
                            class="button button-primary button-wide"
                            on:click=start
                            disabled=move || busy.get().is_some()
                        >
                            {if unlock { "Unlock with passkey" } else { "Sign in with a passkey" }}
                        </button>
                    }
                }
            >
                <EnterPassphrase on_done=with_passphrase busy=Signal::derive(move || busy.get().is_some()) />
            </Show>
            <Busy message=busy />
            <ErrorMessage error=error />
            {if unlock {
                view! {
                    <p class="muted">
                        "Not you? "
                        <button type="button" class="link" on:click=sign_out>"Sign out"</button>
                    </p>
                }
                    .into_any()
            } else {
                view! {
                    <p class="muted">
                        "New here? " <Link href="/signup">"Create an account"</Link> ". Lost your passkey? "
                        <Link href="/restore">"Restore with your recovery phrase"</Link> "."
                    </p>
                }
                    .into_any()
            }}
        </section>
    }
}
