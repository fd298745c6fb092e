//! The patient's records: add (FHIR import, files), timeline with filters
//! and search, the record view with its ledger line, corrections,
//! "Download my records", the patient summary (IPS) and sharing by link.
//!
//! Everything shown from a record is text, inserted as text nodes: FHIR
//! narrative and any other markup a record carries is never interpreted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chartkey_core::envelope::RecordId;
use chartkey_core::fhir::{self, Category, ImportedResource};
use leptos::prelude::*;

use crate::api;
use crate::ui::components::{
    Busy, ErrorMessage, PageHead, SummaryFacts, format_date, format_fhir_date, object_url, save_file,
};
use crate::ui::records::{self, Loaded, Progress, ReadState, ToAdd};
use crate::ui::session::{Keyring, use_session};

mod add;
mod link;
mod summary;
mod timeline;
mod trends;
mod view;

use add::AddRecords;
use link::ShareByLink;
use summary::PatientSummary;
use timeline::Timeline;
use trends::Trends;
use view::RecordView;

/// What the page holds: every record as read in this browser.
#[derive(Clone, Copy)]
struct Chart {
    records: RwSignal<Option<Arc<Vec<Loaded>>>>,
    selected: RwSignal<Option<RecordId>>,
    error: RwSignal<Option<String>>,
    loading: RwSignal<Option<String>>,
}

impl Chart {
    fn reload(self, keyring: Arc<Keyring>) {
        self.loading.set(Some("Fetching and decrypting your records…".into()));
        leptos::task::spawn_local(async move {
            let loading = self.loading;
            let result = records::load_all(&keyring, move |done, total| {
                loading.set(Some(format!("Verifying and decrypting your records: {done} of {total}")));
            })
            .await;
            match result {
                Ok(list) => {
                    self.error.set(None);
                    self.records.set(Some(Arc::new(list)));
                }
                Err(e) => self.error.set(Some(e)),
            }
            self.loading.set(None);
        });
    }

    fn find(&self, id: RecordId) -> Option<Loaded> {
        self.records.with(|r| r.as_ref().and_then(|list| list.iter().find(|l| l.meta.id == id).cloned()))
    }
}

#[component]
pub fn RecordsOverview() -> impl IntoView {
    let session = use_session();
    let chart = Chart {
        records: RwSignal::new(None),
        selected: RwSignal::new(None),
        error: RwSignal::new(None),
        loading: RwSignal::new(None),
    };
    provide_context(chart);
    // The open record is in the address: /records/<id>.
    crate::ui::nav::bind_selection("/records", chart.selected);
    if let Some(keyring) = session.keyring.get_untracked() {
        chart.reload(keyring);
    }
    let is_patient =
        move || session.account.with(|a| a.as_ref().is_some_and(|a| a.role == chartkey_core::role::Role::Patient));
    view! {
        <PageHead title="Records"
            lead="Your records are encrypted in this browser before they are uploaded, and each one's fingerprint \
            is anchored on the ledger. Every time a record is opened, it is checked against that \
            fingerprint." />
        <Show when=is_patient fallback=|| view! { <p class="alert alert-info">"Only patients keep a chart of their own."</p> }>
            <AddRecords />
            <RecordView />
            <Timeline />
            <Trends />
            <PatientSummary />
            <ShareByLink />
        </Show>
    }
}

// ----- Adding -----
