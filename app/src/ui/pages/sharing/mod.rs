//! Sharing. A patient shares chosen records, categories or everything with
//! a verified clinician for a chosen time, reviews it in plain words, and
//! the browser wraps each record's data key to the clinician's verified
//! encryption key and signs the grant; every share is listed with where it
//! stands on the ledger, and "Stop sharing" ends one at once; "Who viewed
//! my records" lists every access. A clinician sees what is shared with
//! them.

use std::collections::BTreeSet;
use std::sync::Arc;

use chartkey_core::eip712::{SCOPE_CATEGORIES, SCOPE_EVERYTHING, SCOPE_RECORDS};
use chartkey_core::envelope::RecordId;
use chartkey_core::fhir::Category;
use chartkey_core::role::Role;
use chartkey_core::value;
use leptos::prelude::*;

use super::clinicians::{ClinicianItem, ClinicianSearch};
use crate::api::{self, AccessView, ClinicianCard, ShareState, ShareView};
use crate::ui::components::{
    Busy, CredentialBadge, ErrorMessage, ExportHead, Listing, NotForThisAccount, PageHead, StopSharing, TableHead,
    format_date, format_datetime, format_fhir_date, load, save_file,
};
use crate::ui::error::UiError;
use crate::ui::records::{self as chart_records, Loaded, ReadState};
use crate::ui::session::use_session;
use crate::ui::sharing;

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
    match use_session().role() {
        Some(Role::Patient) => view! { <PatientSharing /> }.into_any(),
        Some(Role::Clinician) => view! { <SharedWithMe /> }.into_any(),
        _ => {
            let why = "Patients share records with clinicians; there is nothing to share from this account.";
            view! { <NotForThisAccount title="Sharing" why /> }.into_any()
        }
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
        <PageHead title="Sharing" error=error
            lead="Choose what a verified clinician may see and for how long. Your browser hands them the keys to \
            those records only; every time they open one, the ledger records it before anything is sent, and \
            you see it here." />
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
