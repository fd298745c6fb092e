//! Records in the browser: encrypt and upload new ones, fetch, verify and
//! decrypt the chart. Plaintext and data keys exist only here, in memory.
//!
//! Adding: each resource becomes one envelope under a fresh data key
//! (wrapped to the patient's own encryption key), all envelopes go up in
//! one pack, the anchoring message is signed with the account key, and
//! `records/add` relays it. Reading: every envelope is hashed and checked
//! against the ledger (alone or by its Merkle proof) before it is
//! decrypted; one that fails is marked tampered and never parsed.

use std::collections::HashMap;

use chartkey_core::eip712::{Domain, LedgerMessage};
use chartkey_core::envelope::{self, DataKey, RecordId};
use chartkey_core::fhir::{self, Category, ImportedResource};
use chartkey_core::records::{self, AnchoredRecord};
use chartkey_core::summary::{Summary, summarize};
use chartkey_core::value::Hash32;
use rand_core::OsRng;

use super::http;
use super::session::Keyring;
use crate::api::{self, AddRecordsBody, LedgerAnchor, NewRecord, RecordMeta, RelayReceipt};

/// Where an import stands, for the progress bar.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Encrypting { done: usize, total: usize },
    Uploading { fraction: f64 },
    Anchoring,
}

impl Progress {
    /// Overall fraction: encryption 0–45 %, upload 45–90 %, anchoring last.
    pub fn fraction(&self) -> f64 {
        match self {
            Progress::Encrypting { done, total } => 0.45 * (*done as f64 / (*total).max(1) as f64),
            Progress::Uploading { fraction } => 0.45 + 0.45 * fraction,
            Progress::Anchoring => 0.95,
        }
    }

    pub fn label(&self) -> String {
        match self {
            Progress::Encrypting { done, total } => format!("Encrypting in this browser: {done} of {total}"),
            Progress::Uploading { .. } => "Uploading the encrypted records".to_string(),
            Progress::Anchoring => "Anchoring on the ledger".to_string(),
        }
    }
}

/// Something to add: a resource's JSON exactly as imported.
pub struct ToAdd {
    pub full_url: Option<String>,
    pub json: String,
    pub category: Category,
    pub amends: Option<RecordId>,
}

impl From<&ImportedResource> for ToAdd {
    fn from(r: &ImportedResource) -> Self {
        Self { full_url: r.full_url.clone(), json: r.json.clone(), category: r.category(), amends: None }
    }
}

/// A clinician the patient shares kinds of records (or everything) with,
/// whose keys checked out: new records of those kinds are wrapped for them.
struct Reader {
    address: ethers_core::types::Address,
    encryption_key: [u8; 32],
    scope: u8,
    categories: u32,
}

impl Reader {
    fn covers(&self, category: u8) -> bool {
        self.scope == chartkey_core::eip712::SCOPE_EVERYTHING
            || (self.scope == chartkey_core::eip712::SCOPE_CATEGORIES && self.categories >> category & 1 == 1)
    }
}

/// The active shares that take new records, with each clinician's signed
/// directory entry checked (a clinician whose keys do not check out gets
/// nothing).
async fn sharing_readers() -> Vec<Reader> {
    let Ok(shares) = api::shares_list().await else { return Vec::new() };
    let mut readers = Vec::new();
    for s in shares {
        if s.state != api::ShareState::Active || s.scope == chartkey_core::eip712::SCOPE_RECORDS {
            continue;
        }
        let address = s.grantee.address.into();
        let Ok(published) = api::directory_lookup(s.grantee.address).await else { continue };
        match published.entry.verify_for(&address) {
            Ok(entry) if entry.role == chartkey_core::role::Role::Clinician => readers.push(Reader {
                address,
                encryption_key: entry.encryption_key,
                scope: s.scope,
                categories: s.categories,
            }),
            _ => leptos::logging::warn!(
                "{}'s keys did not check out: new records are not shared",
                s.grantee.display_name
            ),
        }
    }
    readers
}

/// Lets the page repaint between slices of work.
async fn yield_now() {
    gloo_timers::future::TimeoutFuture::new(0).await;
}

/// Encrypts, uploads and anchors `items` as records of the signed-in patient.
pub async fn add(
    keyring: &Keyring,
    items: Vec<ToAdd>,
    progress: impl Fn(Progress) + 'static,
) -> Result<RelayReceipt, String> {
    let ledger = api::ledger_info().await.map_err(|e| e.to_string())?;
    let keys = &keyring.keys;
    let readers = sharing_readers().await;
    let total = items.len();
    let mut packs = vec![Vec::new()];
    let mut new_records = Vec::with_capacity(total);
    let mut anchored = Vec::with_capacity(total);
    progress(Progress::Encrypting { done: 0, total });
    for (i, item) in items.iter().enumerate() {
        let id = RecordId::generate(&mut OsRng);
        let key = DataKey::generate(&mut OsRng);
        let plaintext = fhir::entry_json(item.full_url.as_deref(), &item.json);
        let sealed = envelope::seal(&key, id, plaintext.as_bytes(), &mut OsRng);
        let hash = envelope::ciphertext_hash(&sealed);
        let wrapped = envelope::wrap_key(&key, id, keys.address(), &keys.encryption_public(), &mut OsRng)
            .map_err(|e| e.to_string())?;
        let category = item.category.code();
        let also = readers
            .iter()
            .filter(|r| r.covers(category))
            .map(|r| {
                envelope::wrap_key(&key, id, r.address, &r.encryption_key, &mut OsRng)
                    .map(|w| api::ReaderKey { reader: r.address.into(), wrapped_key: w })
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pack = packs.last_mut().expect("one pack at least");
        if !pack.is_empty() && (pack.len() + sealed.len()) as u64 > REQUEST_BYTES {
            packs.push(Vec::new());
        }
        records::pack_frame(packs.last_mut().expect("one pack at least"), &hash, &sealed);
        new_records.push(NewRecord {
            id,
            blob: Hash32(hash),
            category,
            amends: item.amends,
            wrapped_key: wrapped,
            patient_wrapped_key: None,
            also,
        });
        anchored.push(AnchoredRecord {
            id,
            ciphertext_hash: hash,
            category: item.category.code(),
            amends: item.amends,
        });
        if i % 64 == 63 {
            progress(Progress::Encrypting { done: i + 1, total });
            yield_now().await;
        }
    }
    progress(Progress::Encrypting { done: total, total });
    let message = records::anchor_message(keys.address(), keys.address(), &anchored).map_err(|e| e.to_string())?;

    let progress = std::rc::Rc::new(progress);
    progress(Progress::Uploading { fraction: 0.0 });
    let total_bytes: usize = packs.iter().map(Vec::len).sum::<usize>().max(1);
    let mut sent = 0usize;
    for pack in packs {
        let (base, len) = (sent, pack.len());
        let progress = progress.clone();
        let on_upload = Box::new(move |fraction: f64| {
            progress(Progress::Uploading { fraction: (base as f64 + fraction * len as f64) / total_bytes as f64 })
        }) as Box<dyn Fn(f64)>;
        http::send("POST", "/api/blobs/pack", "application/octet-stream", &pack, Some(on_upload)).await?;
        sent += len;
    }

    progress(Progress::Anchoring);
    let domain = Domain::records(ledger.chain_id, ledger.records.into());
    let signature = match &message {
        LedgerMessage::Anchor(m) => domain.sign_typed(keys, m),
        LedgerMessage::AnchorBatch(m) => domain.sign_typed(keys, m),
        _ => return Err("Records are anchored by Anchor or AnchorBatch messages only.".into()),
    };
    let body = AddRecordsBody { records: new_records, signature, patient: None };
    api::records_add(body).await.map_err(|e| e.to_string())
}

/// A record of the chart, as far as this browser could read it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub meta: RecordMeta,
    pub state: ReadState,
}

#[derive(Debug, Clone)]
pub enum ReadState {
    Open(Box<Opened>),
    /// The checks failed: nothing of the record is shown.
    Tampered(String),
    /// It checks out but cannot be read here (no key for this account, or
    /// a format this version does not know).
    Unreadable(String),
    /// Its anchoring transaction is not mined yet: nothing is shown until
    /// the ledger holds it.
    Pending,
}

#[derive(Debug, Clone)]
pub struct Opened {
    pub resource: ImportedResource,
    pub value: serde_json::Value,
    pub summary: Summary,
}

impl Loaded {
    pub fn opened(&self) -> Option<&Opened> {
        match &self.state {
            ReadState::Open(o) => Some(o),
            _ => None,
        }
    }
}

/// Most envelopes fetched per request.
const FETCH_BATCH: usize = 1000;

/// Most bytes sent or fetched in one request (a larger single record goes
/// alone).
const REQUEST_BYTES: u64 = 64 * 1024 * 1024;

/// Splits the chart into fetch requests of at most [`FETCH_BATCH`]
/// records and about [`REQUEST_BYTES`].
fn fetch_groups(metas: &[RecordMeta]) -> Vec<&[RecordMeta]> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, m) in metas.iter().enumerate() {
        if i > start && (i - start == FETCH_BATCH || bytes + m.size > REQUEST_BYTES) {
            groups.push(&metas[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += m.size;
    }
    if start < metas.len() {
        groups.push(&metas[start..]);
    }
    groups
}

/// What a reader checks records against: the ledger's records contract
/// and the chart's owner.
pub struct Checker {
    domain: Domain,
    patient: ethers_core::types::Address,
}

impl Checker {
    pub async fn for_own_chart(keyring: &Keyring) -> Result<Self, String> {
        let ledger = api::ledger_info().await.map_err(|e| e.to_string())?;
        Ok(Self { domain: Domain::records(ledger.chain_id, ledger.records.into()), patient: keyring.keys.address() })
    }

    /// For the chart of `patient`, shared with this account.
    pub async fn for_chart(patient: ethers_core::types::Address) -> Result<Self, String> {
        let ledger = api::ledger_info().await.map_err(|e| e.to_string())?;
        Ok(Self { domain: Domain::records(ledger.chain_id, ledger.records.into()), patient })
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }
}

/// Uploads one sealed envelope (named by its ciphertext `hash`) on its
/// own: a clinician's note, a summary sealed for an emergency contact.
pub async fn upload_envelope(hash: &[u8; 32], sealed: &[u8]) -> Result<(), String> {
    let mut pack = Vec::new();
    records::pack_frame(&mut pack, hash, sealed);
    http::send("POST", "/api/blobs/pack", "application/octet-stream", &pack, None).await?;
    Ok(())
}

/// Lists, fetches, verifies and decrypts every record of the chart.
pub async fn load_all(keyring: &Keyring, progress: impl Fn(usize, usize)) -> Result<Vec<Loaded>, String> {
    let checker = Checker::for_own_chart(keyring).await?;
    let metas = api::records_list().await.map_err(|e| e.to_string())?;
    let total = metas.len();
    let mut out = Vec::with_capacity(total);
    for group in fetch_groups(&metas) {
        let ids: Vec<RecordId> = group.iter().map(|m| m.id).collect();
        let body = serde_json::to_vec(&serde_json::json!({ "records": ids })).map_err(|e| e.to_string())?;
        let pack = http::send("POST", "/api/envelopes", "application/json", &body, None).await?;
        let frames = records::parse_pack(&pack).ok_or("The server sent a malformed answer.")?;
        let by_id: HashMap<RecordId, &[u8]> = frames.into_iter().map(|(id, b)| (RecordId(id), b)).collect();
        for (i, meta) in group.iter().enumerate() {
            let state = match by_id.get(&meta.id) {
                Some(envelope) => read(keyring, &checker, meta, envelope),
                None if meta.anchor_block.is_none() => ReadState::Pending,
                None => ReadState::Tampered("The server did not send this record's content.".into()),
            };
            out.push(Loaded { meta: meta.clone(), state });
            if i % 100 == 99 {
                progress(out.len(), total);
                yield_now().await;
            }
        }
        progress(out.len(), total);
    }
    // Which records correct which: only what verified records say (the
    // correction link is part of what their author signed).
    let mut amended_by: HashMap<RecordId, Vec<RecordId>> = HashMap::new();
    for l in &out {
        if let (Some(a), ReadState::Open(_) | ReadState::Unreadable(_)) = (l.meta.amends, &l.state) {
            amended_by.entry(a).or_default().push(l.meta.id);
        }
    }
    for l in &mut out {
        l.meta.amended_by = amended_by.remove(&l.meta.id).unwrap_or_default();
    }
    Ok(out)
}

/// Checks one envelope against its author's signature and the ledger, then
/// decrypts and parses it.
pub fn read(keyring: &Keyring, checker: &Checker, meta: &RecordMeta, envelope_bytes: &[u8]) -> ReadState {
    if meta.ledger == LedgerAnchor::Missing && meta.anchor_block.is_none() {
        return ReadState::Pending;
    }
    if let Err(e) = meta.check(&checker.domain, checker.patient, envelope_bytes) {
        return ReadState::Tampered(e.to_string());
    }
    let Some(wrapped) = &meta.wrapped_key else {
        return ReadState::Unreadable("This record's key was not shared with you.".into());
    };
    let keys = &keyring.keys;
    let key = match envelope::unwrap_key(wrapped, meta.id, keys.address(), keys.encryption_secret()) {
        Ok(k) => k,
        Err(e) => return ReadState::Unreadable(e.to_string()),
    };
    let plaintext = match envelope::open(&key, meta.id, envelope_bytes) {
        Ok(p) => p,
        // The hash matched the ledger, so the bytes are the author's own:
        // an authentication failure here is still tampering at the source.
        Err(e) => return ReadState::Tampered(e.to_string()),
    };
    let Ok(text) = std::str::from_utf8(&plaintext) else {
        return ReadState::Unreadable("This record is not text this version can show.".into());
    };
    let resource = match fhir::parse_entry(text) {
        Ok(r) => r,
        Err(e) => return ReadState::Unreadable(e.to_string()),
    };
    let value: serde_json::Value = serde_json::from_str(&resource.json).unwrap_or(serde_json::Value::Null);
    let summary = summarize(&value);
    ReadState::Open(Box::new(Opened { resource, value, summary }))
}

/// A FHIR Bundle (collection) of every readable record, resources byte for
/// byte as imported.
pub fn export_bundle(records: &[Loaded]) -> String {
    // Oldest first: the order they were added in.
    let mut opened: Vec<&Loaded> = records.iter().filter(|r| r.opened().is_some()).collect();
    opened.sort_by_key(|r| (r.meta.created_at, r.meta.batch.as_ref().map(|b| b.index)));
    fhir::collection_bundle(opened.iter().filter_map(|r| {
        let o = r.opened()?;
        Some((o.resource.full_url.as_deref(), o.resource.json.as_str()))
    }))
}

/// The patient summary (IPS) of the records read here, as of now: a record
/// a correction replaced is left out, its correction is in.
pub fn patient_summary(records: &[Loaded]) -> Result<chartkey_core::ips::PatientSummary, String> {
    let current: Vec<ImportedResource> = records
        .iter()
        .filter(|r| r.meta.amended_by.is_empty())
        .filter_map(|r| r.opened().map(|o| o.resource.clone()))
        .collect();
    let now = js_sys::Date::new_0().to_iso_string().as_string().unwrap_or_default();
    chartkey_core::ips::build(&current, &now, &mut OsRng).map_err(|e| e.to_string())
}

/// Benchmark hook for `cargo xtask bench records` (the portal exports it
/// as `chartkey_bench_seal`, see app/src/main.rs): seals `total` bytes fed in
/// `slice`-byte pieces, as an upload streams them, and returns the
/// milliseconds taken. Sealing only: no keys or records are touched.
pub fn bench_seal(total: u32, slice: u32) -> f64 {
    let slice = slice.max(1) as usize;
    let data = vec![0x5au8; slice];
    let key = DataKey::generate(&mut OsRng);
    let mut sealer = envelope::Sealer::new(&key, RecordId::generate(&mut OsRng), &mut OsRng);
    let mut out = Vec::with_capacity(slice + 4 * envelope::CHUNK_SIZE);
    let mut sealed = 0usize;
    let started = js_sys::Date::now();
    let mut left = total as usize;
    while left > 0 {
        let n = left.min(slice);
        // Sealing stops only past 2^32 chunks; the bench is far below.
        let _ = sealer.update(&data[..n], &mut out);
        sealed += out.len();
        out.clear();
        left -= n;
    }
    let _ = sealer.finish(&mut out);
    sealed += out.len();
    let elapsed = js_sys::Date::now() - started;
    // Keep the work observable so it cannot be optimised away.
    if sealed == 0 { f64::NAN } else { elapsed }
}
