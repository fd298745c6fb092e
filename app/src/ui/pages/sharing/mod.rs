//! Sharing. A patient shares chosen records, categories or everything with
//! a verified clinician for a chosen time, reviews it in plain words, and
//! the browser wraps each record's data key to the clinician's verified
//! encryption key and signs the grant; every share is listed with where it
//! stands on the ledger, and "Stop sharing" ends one at once; "Who viewed
//! my records" lists every access. A clinician sees what is shared with
//! them.

use std::collections::BTreeSet;
use std::sync::Arc;

use chartkey_core::eip712::{Domain, Grant, Revoke, SCOPE_CATEGORIES, SCOPE_EVERYTHING, SCOPE_RECORDS};
use chartkey_core::envelope::{self, RecordId};
use chartkey_core::fhir::Category;
use chartkey_core::role::Role;
use chartkey_core::value::{self, Hash32};
use ethers_core::types::{Address, U256};
use leptos::prelude::*;
use rand_core::OsRng;

use super::credentials::{ClinicianItem, ClinicianSearch};
use crate::api::{self, AccessView, ClinicianCard, ShareKey, ShareState, ShareView};
use crate::ui::components::{
    Busy, CredentialBadge, ErrorMessage, TableHead, format_date, format_datetime, format_fhir_date, save_file,
};
use crate::ui::records::{self as chart_records, Loaded, ReadState};
use crate::ui::session::{Keyring, use_session};

/// Longest a share may run (the Records contract's limit is 366 days).
mod clinician;
mod form;
mod shares;

use clinician::SharedWithMe;
use form::ShareForm;
use shares::{SharesList, WhoViewed};

const MAX_SHARE_DAYS: i64 = 365;

#[component]
pub fn SharingOverview() -> impl IntoView {
    let session = use_session();
    match session.account.get_untracked().map(|a| a.role) {
        Some(Role::Patient) => view! { <PatientSharing /> }.into_any(),
        Some(Role::Clinician) => view! { <SharedWithMe /> }.into_any(),
        _ => view! {
            <h1>"Sharing"</h1>
            <p class="alert alert-info">"Patients share records with clinicians; there is nothing to share from this account."</p>
        }
        .into_any(),
    }
}

/// The patient's page: share, the list of shares, who viewed.
#[component]
fn PatientSharing() -> impl IntoView {
    let session = use_session();
    let chart = RwSignal::new(None::<Arc<Vec<Loaded>>>);
    let shares = RwSignal::new(None::<Vec<ShareView>>);
    let accesses = RwSignal::new(None::<Vec<AccessView>>);
    let error = RwSignal::new(None::<String>);
    let loading = RwSignal::new(Some("Fetching and decrypting your records…".to_string()));
    let reload_lists = move || {
        leptos::task::spawn_local(async move {
            match api::shares_list().await {
                Ok(list) => shares.set(Some(list)),
                Err(e) => error.set(Some(e.to_string())),
            }
            match api::accesses_list().await {
                Ok(list) => accesses.set(Some(list)),
                Err(e) => error.set(Some(e.to_string())),
            }
        })
    };
    reload_lists();
    if let Some(keyring) = session.keyring.get_untracked() {
        leptos::task::spawn_local(async move {
            let result = chart_records::load_all(&keyring, move |done, total| {
                loading.set(Some(format!("Verifying and decrypting your records: {done} of {total}")));
            })
            .await;
            match result {
                Ok(list) => chart.set(Some(Arc::new(list))),
                Err(e) => error.set(Some(e)),
            }
            loading.set(None);
        });
    }
    let reload = Callback::new(move |()| reload_lists());
    view! {
        <h1>"Sharing"</h1>
        <p class="lead">
            "Choose what a verified clinician may see and for how long. Your browser hands them the keys to those "
            "records only; every time they open one, the ledger records it before anything is sent, and you see it here."
        </p>
        <ErrorMessage error=error />
        <Busy message=loading />
        {move || chart.get().map(|c| view! { <ShareForm chart=c on_shared=reload /> })}
        <SharesList shares=shares reload=reload />
        <WhoViewed accesses=accesses chart=chart />
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Choose,
    Review,
    Done,
}

/// The record ids a share of `scope` covers, among the records this browser
/// could verify and holds a key for.
fn covered(chart: &[Loaded], scope: u8, chosen: &BTreeSet<RecordId>, categories: u32) -> Vec<RecordId> {
    chart
        .iter()
        .filter(|l| matches!(l.state, ReadState::Open(_)) && l.meta.wrapped_key.is_some())
        .filter(|l| match scope {
            SCOPE_RECORDS => chosen.contains(&l.meta.id),
            SCOPE_CATEGORIES => categories >> l.meta.category & 1 == 1,
            _ => true,
        })
        .map(|l| l.meta.id)
        .collect()
}

fn title_of(l: &Loaded) -> String {
    match l.opened() {
        Some(o) => match &o.summary.date {
            Some(date) => format!("{} ({})", o.summary.title, format_fhir_date(date)),
            None => o.summary.title.clone(),
        },
        None => format!("Record {}", &l.meta.id.to_hex()[..10]),
    }
}

fn duration_words(days: i64) -> String {
    match days {
        1 => "1 day".into(),
        n => format!("{n} days"),
    }
}

/// Wraps the data key of each record to the grantee's encryption key.
pub(super) fn wrap_for(
    keyring: &Keyring,
    metas: &[api::RecordMeta],
    grantee: Address,
    grantee_key: &[u8; 32],
) -> Result<Vec<ShareKey>, String> {
    let keys = &keyring.keys;
    metas
        .iter()
        .map(|m| {
            let wrapped = m.wrapped_key.as_ref().ok_or("A record's key is missing.")?;
            let key = envelope::unwrap_key(wrapped, m.id, keys.address(), keys.encryption_secret())
                .map_err(|e| e.to_string())?;
            let theirs = envelope::wrap_key(&key, m.id, grantee, grantee_key, &mut OsRng).map_err(|e| e.to_string())?;
            Ok(ShareKey { record: m.id, wrapped_key: theirs })
        })
        .collect()
}

/// Asks for the passkey (with user verification) to approve the message
/// whose EIP-712 digest is `digest`.
pub(super) async fn approve(digest: [u8; 32]) -> Result<api::Approval, String> {
    let start = api::approvals_start(Hash32(digest)).await.map_err(|e| e.to_string())?;
    // The passkey signs the challenge: it must be this message's, so that
    // the assertion proves what was approved (and a server could not ask
    // for an approval of something else under this screen).
    let expected = chartkey_core::proof::approval_challenge(&digest, &start.nonce.0);
    let options: serde_json::Value =
        serde_json::from_str(start.options.get()).map_err(|_| "The server's approval request is malformed.")?;
    let challenge = options["publicKey"]["challenge"].as_str().unwrap_or_default();
    if base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, challenge).ok().as_deref()
        != Some(&expected[..])
    {
        return Err("The server asked to approve something other than this message. Nothing was approved.".into());
    }
    let asserted = crate::ui::webauthn::assert(&start.options).await?;
    Ok(api::Approval { ceremony_id: start.ceremony_id, credential: asserted.credential })
}

pub(super) async fn records_domain() -> Result<Domain, String> {
    let info = api::ledger_info().await.map_err(|e| e.to_string())?;
    Ok(Domain::records(info.chain_id, info.records.into()))
}
