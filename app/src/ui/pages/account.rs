//! The account page: ledger address, encryption key fingerprint, passkeys,
//! and a check of anyone's public keys.

use crate::api::PasskeyInfo;
use chartkey_core::keys::short_address;
use chartkey_core::proof;
use leptos::prelude::*;

use super::restore::default_passkey_label;
use crate::api::{self, MAX_PASSKEY_LABEL_CHARS};
use crate::ui::components::{CopyButton, ErrorMessage, TableHead, TextField, format_date};
use crate::ui::enroll::{Enrollment, EnrollmentForm};
use crate::ui::session::{self, use_session};

#[component]
pub fn AccountOverview() -> impl IntoView {
    let session = use_session();
    let Some(keyring) = session.keyring.get_untracked() else { return ().into_any() };
    let account = session.account.get_untracked();
    let address = keyring.keys.address();
    let full_address = ethers_core::utils::to_checksum(&address, None);
    let directory_ok = account.as_ref().map(|a| session::check_keys_match(&keyring.keys, &a.directory));
    let idle = account.as_ref().and_then(|a| a.idle_lock_secs);
    view! {
        <h1>"Your account"</h1>
        <section class="panel">
            <h2>"Keys"</h2>
            <dl class="facts">
                <dt>"Ledger address"</dt>
                <dd>
                    <code title=full_address.clone() data-testid="ledger-address">{short_address(&address)}</code>
                    " "
                    <CopyButton text=full_address.clone() label="Copy ledger address" />
                    <details>
                        <summary>"Show full address"</summary>
                        <code class="break">{full_address.clone()}</code>
                    </details>
                </dd>
                <dt>"Encryption key fingerprint"</dt>
                <dd>
                    <code data-testid="key-fingerprint">{keyring.keys.encryption_fingerprint()}</code>
                    <small class="muted">"Compare this with what a clinician sees before you share records."</small>
                </dd>
                <dt>"Public key directory"</dt>
                <dd data-testid="directory-status">
                    {match directory_ok {
                        Some(Ok(())) => view! { <span class="ok">"✓ Signed by your key and verified in this browser"</span> }.into_any(),
                        Some(Err(e)) => view! { <span class="bad">{e}</span> }.into_any(),
                        None => ().into_any(),
                    }}
                </dd>
            </dl>
        </section>
        <Passkeys />
        <section class="panel">
            <h2>"Security"</h2>
            <p>
                "Your keys are only in this tab's memory. Lock them when you step away; a reload locks them too."
            </p>
            {idle
                .map(|secs| {
                    view! {
                        <p>"Because you use shared workstations, your keys lock automatically after " {secs / 60} " minutes without activity."</p>
                    }
                })}
            <button type="button" class="button" on:click=move |_| session.lock()>"Lock now"</button>
        </section>
        <Lookup />
    }
    .into_any()
}

#[component]
fn Passkeys() -> impl IntoView {
    let session = use_session();
    let list = RwSignal::new(Vec::<PasskeyInfo>::new());
    let label = RwSignal::new(default_passkey_label());

    let error = RwSignal::new(None::<String>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            match api::list_passkeys().await {
                Ok(keys) => list.set(keys),
                Err(e) => error.set(Some(e.to_string())),
            }
        })
    };
    reload();

    let challenge = StoredValue::new(String::new());
    let enrollment = Enrollment::new(move |passkey, sealed_keystore, uses_passphrase| async move {
        let keyring = session.keyring.get_untracked().ok_or("Your keys are locked. Unlock and try again.")?;
        let keys = &keyring.keys;
        let message = proof::add_passkey_message(&keys.address(), &challenge.get_value(), &passkey.credential_id);
        api::add_passkey_finish(api::AddPasskeyFinishBody {
            ceremony_id: passkey.ceremony_id,
            credential: passkey.credential,
            passkey_label: label.get_untracked(),
            sealed_keystore,
            uses_passphrase,
            signature: proof::sign_message(keys, &message),
        })
        .await
        .map_err(|e| e.to_string())?;
        label.set(default_passkey_label());
        reload();
        Ok(())
    });

    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(keyring) = session.keyring.get_untracked() else { return };
        enrollment.begin(keyring.secret.clone(), async move {
            let start = api::add_passkey_start().await.map_err(|e| e.to_string())?;
            challenge.set_value(start.challenge);
            Ok(api::CreationStart { ceremony_id: start.ceremony_id, options: start.options })
        });
    };

    let remove = move |credential_id: String, label: String| {
        let confirmed = crate::ui::components::confirm(&format!(
            "Remove the passkey \u{201c}{label}\u{201d}? It will no longer sign in to your account."
        ));
        if !confirmed {
            return;
        }
        let Some(keyring) = session.keyring.get_untracked() else { return };
        error.set(None);
        leptos::task::spawn_local(async move {
            let removed = async {
                let start = api::remove_passkey_start(credential_id.clone()).await?;
                let message = proof::remove_passkey_message(&keyring.keys.address(), &start.challenge, &credential_id);
                let signature = proof::sign_message(&keyring.keys, &message);
                api::remove_passkey(start.ceremony_id, credential_id, signature).await
            };
            match removed.await {
                Ok(()) => reload(),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };

    let only_one = move || list.with(|l| l.len() <= 1);
    view! {
        <section class="panel">
            <h2>"Passkeys"</h2>
            <p>"Each passkey can sign in and unlock your keys. Keep at least two, on different devices, so losing one does not lock you out."</p>
            <table class="table" data-testid="passkeys">
                <TableHead columns=&["Name", "Added", "Last used", "Unlocks with"] actions=true />
                <tbody>
                    <For each=move || list.get() key=|k| k.credential_id.clone() let:key>
                        {
                            let id = key.credential_id.clone();
                            let name = key.label.clone();
                            let in_use = key.in_use;
                            let locked = move || in_use || only_one();
                            view! {
                                <tr>
                                    <td>
                                        {key.label.clone()}
                                        {key.in_use.then(|| view! { <small>"Signed in with this one"</small> })}
                                    </td>
                                    <td>{format_date(key.created_at)}</td>
                                    <td>{key.last_used_at.map(format_date).unwrap_or_else(|| "—".into())}</td>
                                    <td>{if key.uses_passphrase { "Passkey and passphrase" } else { "Passkey" }}</td>
                                    <td>
                                        <button
                                            type="button"
                                            class="button button-small button-danger"
                                            disabled=locked
                                            title=move || {
                                                if in_use {
                                                    "You are signed in with this passkey. Sign in with another one to remove it."
                                                } else if only_one() {
                                                    "Add another passkey before removing this one."
                                                } else {
                                                    ""
                                                }
                                            }
                                            on:click=move |_| remove(id.clone(), name.clone())
                                        >
                                            "Remove"
                                        </button>
                                    </td>
                                </tr>
                            }
                        }
                    </For>
                </tbody>
            </table>
            <EnrollmentForm enrollment=enrollment on_submit=add submit="Add a passkey" inline=true>
                <TextField label="Name for the new passkey" value=label maxlength=MAX_PASSKEY_LABEL_CHARS />
            </EnrollmentForm>
            <ErrorMessage error=error />
        </section>
    }
}

#[derive(Clone)]
struct Found {
    name: String,
    address: String,
    role: &'static str,
    fingerprint: String,
}

/// Fetches someone's public keys from the directory and checks, in this
/// browser, that the key of the address asked about signed them.
#[component]
fn Lookup() -> impl IntoView {
    let address = RwSignal::new(String::new());
    let result = RwSignal::new(None::<Result<Found, String>>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let typed = address.get_untracked();
        leptos::task::spawn_local(async move {
            let outcome = async {
                let wanted: chartkey_core::value::Address =
                    typed.trim().parse().map_err(|e| format!("That is not a ledger address: {e}."))?;
                let found = api::directory_lookup(wanted).await.map_err(|e| e.to_string())?;
                // The entry must be signed by the very address asked about.
                let verified = found.entry.verify_for(&wanted.into()).map_err(|e| e.to_string())?;
                Ok(Found {
                    name: found.display_name,
                    address: ethers_core::utils::to_checksum(&verified.address, None),
                    role: verified.role.label(),
                    fingerprint: verified.fingerprint(),
                })
            }
            .await;
            result.set(Some(outcome));
        });
    };
    view! {
        <section class="panel">
            <h2>"Check someone's keys"</h2>
            <p>"Enter a Chartkey ledger address to see whose it is and the fingerprint of their encryption key."</p>
            <form class="inline-form" on:submit=submit>
                <label class="field">
                    <span>"Ledger address"</span>
                    <input type="text" required placeholder="0x…" spellcheck="false" bind:value=address />
                </label>
                <button type="submit" class="button">"Check"</button>
            </form>
            {move || {
                result
                    .get()
                    .map(|r| match r {
                        Ok(found) => {
                            view! {
                                <div class="alert alert-success" data-testid="lookup-result">
                                    <p>
                                        "Key fingerprint " <code>{found.fingerprint}</code> " for " <code class="break">{found.address}</code>
                                        ": signed by that address's own key, checked in this browser."
                                    </p>
                                    <p>
                                        "The server names it " <strong>{found.name}</strong> ", " {found.role}
                                        " (the name and role are as the account gave them; clinicians' licences are verified separately)."
                                    </p>
                                </div>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <p class="alert alert-error" role="alert">{e}</p> }.into_any(),
                    })
            }}
        </section>
    }
}
