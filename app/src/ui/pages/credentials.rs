//! Credentials: a clinician's verification (ask an authority, see the
//! badge), an authority's desk (issue with an expiry, decline, revoke; the
//! operator's command while it is not yet named); finding a clinician is
//! clinicians.rs.
//!
//! Every badge is what the ledger says now, as the server read it; issuing
//! and revoking are signed in this browser with the authority's key.

use chartkey_core::eip712::{Domain, IssueCredential, RevokeCredential, bytes32_text};
use chartkey_core::role::Role;
use ethers_core::types::{Address, U256};
use leptos::prelude::*;

use super::clinicians::FindClinician;
use crate::api::{
    self, AuthorityDesk, CredentialRequestBody, CredentialRequestView, CredentialStatus, License,
    MAX_CREDENTIAL_FIELD_CHARS, MyVerification, RequestState, license_id_hash,
};
use crate::ui::components::{
    Busy, CopyButton, CredentialBadge, ErrorMessage, ListPanel, PageHead, TableHead, TextField, WhenLoaded,
    format_date, load, reloader,
};
use crate::ui::session::use_session;

#[component]
pub fn CredentialsOverview() -> impl IntoView {
    match use_session().role() {
        Some(Role::Clinician) => view! { <Verification /> }.into_any(),
        Some(Role::CredentialingAuthority) => view! { <Desk /> }.into_any(),
        _ => view! { <FindClinician /> }.into_any(),
    }
}

/// A clinician's verification: the badge, the latest request, the form.
#[component]
fn Verification() -> impl IntoView {
    let state = RwSignal::new(None::<MyVerification>);
    let error = RwSignal::new(None::<String>);
    load(state, error, api::credentials_mine);
    view! {
        <PageHead title="Verification" error=error
            lead="Patients can only share records with a clinician whose licence a credentialing authority has \
            verified on the ledger. Ask one here; your badge shows what the ledger says." />
        <WhenLoaded state=state error=error body=move |mine| view! { <VerificationBody mine=mine state=state /> } />
    }
}

#[component]
fn VerificationBody(mine: MyVerification, state: RwSignal<Option<MyVerification>>) -> impl IntoView {
    let pending = mine.request.as_ref().is_some_and(|r| r.state == RequestState::Pending);
    let can_ask = !pending && !mine.me.credential.is_verified();
    let latest = mine.request.clone().map(|r| {
        let words = match r.state {
            RequestState::Pending => {
                format!("Waiting for {} since {}.", r.authority.display_name, format_date(r.requested_at))
            }
            RequestState::Issued => format!(
                "{} issued your credential on {}.",
                r.authority.display_name,
                format_date(r.decided_at.unwrap_or(r.requested_at))
            ),
            RequestState::Declined => format!(
                "{} declined your request on {}. You can ask again.",
                r.authority.display_name,
                format_date(r.decided_at.unwrap_or(r.requested_at))
            ),
        };
        view! {
            <section class="panel" data-testid="verification-request">
                <h2>"Your request"</h2>
                <p>{words}</p>
                <RequestFacts request=r />
            </section>
        }
    });
    view! {
        <section class="panel">
            <h2>"Your badge"</h2>
            <p data-testid="my-badge"><CredentialBadge status=mine.me.credential.clone() /></p>
        </section>
        {latest}
        {can_ask.then(|| view! { <RequestForm mine=mine state=state /> })}
    }
}

#[component]
fn RequestFacts(request: CredentialRequestView) -> impl IntoView {
    let license = request.license;
    view! {
        <dl class="facts">
            <dt>"Licence number"</dt>
            <dd>{license.license_number}</dd>
            <dt>"Specialty"</dt>
            <dd>{license.specialty}</dd>
            <dt>"Jurisdiction"</dt>
            <dd>{license.jurisdiction}</dd>
            <dt>"Organisation"</dt>
            <dd>{license.organisation}</dd>
        </dl>
    }
}

#[component]
fn RequestForm(mine: MyVerification, state: RwSignal<Option<MyVerification>>) -> impl IntoView {
    // Filled in with the latest request's, if any.
    let previous = mine.request.clone().map(|r| r.license).unwrap_or_default();
    let license = RwSignal::new(previous.license_number);
    let specialty = RwSignal::new(previous.specialty);
    let jurisdiction = RwSignal::new(previous.jurisdiction);
    let organisation = RwSignal::new(previous.organisation);
    let authority = RwSignal::new(mine.authorities.first().map(|a| a.address.to_string()).unwrap_or_default());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if bytes32_text(specialty.get_untracked().trim()).is_none() {
            error.set(Some("The specialty must fit in 32 bytes: use a shorter name.".into()));
            return;
        }
        let Ok(chosen) = authority.get_untracked().parse() else {
            error.set(Some("Choose a credentialing authority.".into()));
            return;
        };
        let license = License {
            license_number: license.get_untracked(),
            specialty: specialty.get_untracked(),
            jurisdiction: jurisdiction.get_untracked(),
            organisation: organisation.get_untracked(),
        };
        let body = CredentialRequestBody { authority: chosen, license };
        error.set(None);
        busy.set(Some("Sending your request…".into()));
        leptos::task::spawn_local(async move {
            match api::credentials_request(body).await {
                Ok(mine) => state.set(Some(mine)),
                Err(e) => error.set(Some(e.to_string())),
            }
            busy.set(None);
        });
    };
    if mine.authorities.is_empty() {
        return view! {
            <p class="alert alert-info">
                "No credentialing authority has been named on this server yet, so no one can verify you. "
                "Ask the server's operator to name one."
            </p>
        }
        .into_any();
    }
    let authorities = mine.authorities.clone();
    view! {
        <section class="panel">
            <h2>"Ask to be verified"</h2>
            <form class="stack" on:submit=submit>
                <label class="field">
                    <span>"Credentialing authority"</span>
                    <select bind:value=authority required>
                        {authorities
                            .into_iter()
                            .map(|a| view! { <option value=a.address.to_string()>{a.display_name}</option> })
                            .collect_view()}
                    </select>
                </label>
                <TextField label="Licence number" value=license maxlength=MAX_CREDENTIAL_FIELD_CHARS autocomplete="off" />
                <TextField label="Specialty" value=specialty maxlength=32 placeholder="Psychiatry" />
                <TextField label="Jurisdiction" value=jurisdiction maxlength=MAX_CREDENTIAL_FIELD_CHARS
                    placeholder="State or country that licensed you" />
                <TextField label="Organisation" value=organisation maxlength=MAX_CREDENTIAL_FIELD_CHARS autocomplete="organization" />
                <p class="muted">
                    "The authority sees these details. The ledger keeps only a fingerprint of your licence number, your specialty and the expiry."
                </p>
                <ErrorMessage error=error />
                <Busy message=busy />
                <button type="submit" class="button button-primary" disabled=move || busy.with(Option::is_some)>
                    "Send request"
                </button>
            </form>
        </section>
    }
    .into_any()
}

/// An authority's desk.
#[component]
fn Desk() -> impl IntoView {
    let desk = RwSignal::new(None::<AuthorityDesk>);
    let error = RwSignal::new(None::<String>);
    let reload = reloader(desk, error, api::credentials_desk);
    view! {
        <PageHead title="Credentials" error=error
            lead="Clinicians ask you to verify their licence. A credential you issue is signed with your key, \
            written on the ledger, and lets patients share records with that clinician until it expires or \
            you revoke it." />
        <WhenLoaded state=desk error=error body=move |d| view! { <DeskBody desk=d reload=Callback::new(move |()| reload()) /> } />
    }
}

#[component]
fn DeskBody(desk: AuthorityDesk, reload: Callback<()>) -> impl IntoView {
    let nonce = desk.next_nonce;
    let not_named = (!desk.named).then(|| {
        let command = desk.operator_command.clone();
        view! {
            <section class="alert alert-warning" data-testid="not-named">
                <p><strong>"The server's operator has not named you a credentialing authority yet."</strong></p>
                <p>"Until then clinicians cannot ask you. Send the operator this command to run on the server:"</p>
                <p><code class="break">{command.clone()}</code> " " <CopyButton text=command label="Copy the command" /></p>
            </section>
        }
    });
    let pending = desk.pending.clone();
    let decided = desk.decided.clone();
    view! {
        {not_named}
        <ListPanel title="Requests waiting" is_empty=pending.is_empty() empty="No requests are waiting.">
            <ul class="list">
                {pending
                    .into_iter()
                    .map(|r| view! { <PendingRequest request=r nonce=nonce reload=reload /> })
                    .collect_view()}
            </ul>
        </ListPanel>
        <ListPanel title="Decided" is_empty=decided.is_empty() empty="Nothing decided yet.">
            <table class="table">
                <TableHead columns=&["Clinician", "Decision", "On the ledger now"] actions=true />
                <tbody>
                    {decided
                        .into_iter()
                        .map(|r| view! { <DecidedRequest request=r nonce=nonce reload=reload /> })
                        .collect_view()}
                </tbody>
            </table>
        </ListPanel>
    }
}

/// Unix seconds of the end (23:59:59 UTC) of an `<input type=date>` value.
pub(super) fn end_of_day(value: &str) -> Option<u64> {
    let days = chartkey_core::summary::days_since_epoch(value)? as i64;
    u64::try_from(days * 86_400 + 86_399).ok()
}

/// `YYYY-MM-DD` of now plus `days`, in UTC.
fn date_in(days: i64) -> String {
    let ms = js_sys::Date::now() + days as f64 * 86_400_000.0;
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    format!("{:04}-{:02}-{:02}", date.get_utc_full_year(), date.get_utc_month() + 1, date.get_utc_date())
}

async fn ledger_domain() -> Result<Domain, String> {
    let info = api::ledger_info().await.map_err(|e| e.to_string())?;
    Ok(Domain::directory(info.chain_id, info.directory.into()))
}

#[component]
fn PendingRequest(request: CredentialRequestView, nonce: u64, reload: Callback<()>) -> impl IntoView {
    let session = use_session();
    let expiry = RwSignal::new(date_in(365));
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<String>);
    let (id, name) = (request.id, request.clinician.display_name.clone());
    let issue_request = request.clone();
    let issue = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(keyring) = session.keyring.get_untracked() else { return };
        let Some(expires_at) = end_of_day(&expiry.get_untracked()) else {
            error.set(Some("Choose an expiry date.".into()));
            return;
        };
        let r = issue_request.clone();
        error.set(None);
        busy.set(Some("Signing and writing the credential on the ledger…".into()));
        leptos::task::spawn_local(async move {
            let result = async {
                let clinician: Address = r.clinician.address.into();
                let specialty = bytes32_text(&r.license.specialty).ok_or("The specialty is too long.")?;
                let message = IssueCredential {
                    authority: keyring.keys.address(),
                    clinician,
                    license_id_hash: license_id_hash(&r.license.license_number),
                    specialty,
                    expires_at,
                    nonce: U256::from(nonce),
                };
                let signature = ledger_domain().await?.sign_typed(&keyring.keys, &message);
                let body = api::IssueCredentialBody { request: r.id, message, signature };
                api::credentials_issue(body).await.map_err(|e| e.to_string())
            }
            .await;
            busy.set(None);
            match result {
                Ok(_) => reload.run(()),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let decline = move |_| {
        let confirmed = crate::ui::components::confirm(&format!("Decline {name}'s request?"));
        if !confirmed {
            return;
        }
        leptos::task::spawn_local(async move {
            match api::credentials_decline(id).await {
                Ok(()) => reload.run(()),
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };
    let (min, max) = (date_in(1), date_in(5 * 365));
    view! {
        <li class="request" data-testid="pending-request">
            <h3>{request.clinician.display_name.clone()}</h3>
            <p class="muted">"Asked on " {format_date(request.requested_at)}</p>
            <RequestFacts request=request.clone() />
            <form class="inline-form" on:submit=issue>
                <label class="field">
                    <span>"Valid until"</span>
                    <input type="date" required min=min max=max bind:value=expiry />
                </label>
                <button type="submit" class="button button-primary" disabled=move || busy.with(Option::is_some)>
                    "Issue credential"
                </button>
                <button type="button" class="button" on:click=decline disabled=move || busy.with(Option::is_some)>
                    "Decline"
                </button>
            </form>
            <Busy message=busy />
            <ErrorMessage error=error />
        </li>
    }
}

#[component]
fn DecidedRequest(request: CredentialRequestView, nonce: u64, reload: Callback<()>) -> impl IntoView {
    let session = use_session();
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let status = request.clinician.credential.clone();
    // Only the credential this desk issued, while it counts, can be revoked here.
    let session_address = session.keyring.get_untracked().map(|k| k.keys.address());
    let revocable = matches!(&status, CredentialStatus::Verified { authority, .. } if session_address.is_some_and(|me| *authority == me))
        && request.state == RequestState::Issued;
    let clinician = request.clinician.clone();
    let revoke = move |_| {
        let Some(keyring) = session.keyring.get_untracked() else { return };
        let confirmed = crate::ui::components::confirm(&format!(
            "Revoke {}'s credential? Patients' shares with them stop working at once.",
            clinician.display_name
        ));
        if !confirmed {
            return;
        }
        let address = clinician.address;
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result = async {
                let clinician: Address = address.into();
                let message =
                    RevokeCredential { authority: keyring.keys.address(), clinician, nonce: U256::from(nonce) };
                let signature = ledger_domain().await?.sign_typed(&keyring.keys, &message);
                let body = api::RevokeCredentialBody { message, signature };
                api::credentials_revoke(body).await.map_err(|e| e.to_string())
            }
            .await;
            busy.set(false);
            match result {
                Ok(_) => reload.run(()),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let decision = match request.state {
        RequestState::Issued => "Issued",
        RequestState::Declined => "Declined",
        RequestState::Pending => "Waiting",
    };
    view! {
        <tr data-testid="decided-request">
            <td>
                {request.clinician.display_name.clone()}
                <br />
                <small class="muted">{request.license.specialty.clone()} " · " {request.license.organisation.clone()}</small>
            </td>
            <td>{decision} " " {request.decided_at.map(format_date)}</td>
            <td><CredentialBadge status=status /></td>
            <td>
                {revocable.then(|| view! {
                    <button type="button" class="button button-small button-danger" on:click=revoke disabled=move || busy.get()>
                        "Revoke"
                    </button>
                })}
                <ErrorMessage error=error />
            </td>
        </tr>
    }
}
