//! Records: adding them to a patient's chart (checked, anchored, stored)
//! and listing them with what the ledger holds for each.
//!
//! The server never sees a record's plaintext or data key: it checks that
//! each envelope is stored under its name, rebuilds the anchoring message
//! from the records exactly as the browser did
//! (`chartkey_core::records::anchor_message`), relays it with the
//! patient's signature (the contract checks the signature), and only
//! then stores the records' rows.

use std::collections::HashMap;

use chartkey_api::{AddRecordsBody, ApiError, BatchProof, LedgerAnchor, RecordMeta, RelayReceipt};
use chartkey_core::envelope::{self, RecordId};
use chartkey_core::records::{AnchoredRecord, anchor_message, batch_tree};
use chartkey_core::role::Role;
use chartkey_core::value::{Address, Hash32};
use chartkey_ledger::abi::ChartkeyRecords;
use chartkey_ledger::calls::Target;
use chartkey_ledger::convert::{self, to_ethers};
use chartkey_ledger::relayer::JobStatus;

pub mod store;

use self::store::{NewRecords, RecordRow};
use super::chain::{caller, corrupt, relay_error, request_of, view};
use crate::blobs::BlobName;
use crate::caller::Caller;
use crate::state::AppState;

pub async fn add(state: &AppState, c: &Caller, body: AddRecordsBody) -> Result<RelayReceipt, ApiError> {
    let (account, address) = caller(state, c).await?;
    // Whose chart: the patient's own, or (a clinician's write-back) the
    // patient the body names, who must have shared with them.
    let (patient, patient_address) = match (Role::parse(&account.role), &body.patient) {
        (Some(Role::Patient), None) => (account.clone(), address),
        (Some(Role::Clinician), Some(patient)) => write_back_chart(state, &account, patient, &body).await?,
        (Some(Role::Clinician), None) => {
            return Err(ApiError::bad_request("Name the patient whose chart this record is for."));
        }
        _ => return Err(ApiError::Forbidden("Only a patient adds records to their own chart.".into())),
    };
    let writing_back = patient.id != account.id;
    let signature = body.signature.0.to_vec();
    let mut records = Vec::with_capacity(body.records.len());
    let mut sizes = Vec::with_capacity(body.records.len());
    for (i, r) in body.records.iter().enumerate() {
        let which = || record_label(body.records.len(), i);
        let blob = BlobName::from(r.blob);
        if r.category >= 32 {
            return Err(ApiError::bad_request(format!("{}: category {} does not exist.", which(), r.category)));
        }
        match (&r.patient_wrapped_key, writing_back) {
            (Some(_), true) | (None, false) => {}
            (None, true) => {
                return Err(ApiError::bad_request(format!(
                    "{}: it needs its key wrapped for the patient too.",
                    which()
                )));
            }
            (Some(_), false) => {
                return Err(ApiError::bad_request(format!("{}: only a write-back carries a patient's key.", which())));
            }
        }
        if writing_back && !r.also.is_empty() {
            return Err(ApiError::bad_request(format!("{}: a write-back carries only the patient's key.", which())));
        }
        let (size, head) = state.blobs.size_and_prefix(&blob, 5).await.map_err(storage_down)?.ok_or_else(|| {
            ApiError::bad_request(format!("{}: its encrypted content has not been uploaded.", which()))
        })?;
        // New records are sealed in the current envelope version, whose key
        // commitment lets each reader's key open it only if it is the one
        // it was sealed with (docs/envelope.md); older ones still read.
        if head.len() < 5 || head[..4] != envelope::MAGIC || head[4] != envelope::VERSION {
            return Err(ApiError::bad_request(format!(
                "{}: its content is not sealed as this version of Chartkey seals records. Reload the page and add it again.",
                which()
            )));
        }
        sizes.push(size);
        records.push(AnchoredRecord { id: r.id, ciphertext_hash: blob.0, category: r.category, amends: r.amends });
    }
    let message = anchor_message(to_ethers(address), to_ethers(patient_address), &records)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;

    // Ids must be new; a corrected record must be this patient's.
    let ids: Vec<RecordId> = records.iter().map(|r| r.id).collect();
    let blobs: Vec<Hash32> = body.records.iter().map(|r| r.blob).collect();
    if blobs.iter().collect::<std::collections::HashSet<_>>().len() != blobs.len() {
        return Err(ApiError::bad_request("Two records name the same encrypted content."));
    }
    let uploaded = store::uploaded_by(&state.pool, &account.id, &blobs).await?;
    if let Some(i) = blobs.iter().position(|b| !uploaded.contains(b)) {
        let which = record_label(body.records.len(), i);
        return Err(ApiError::bad_request(format!("{which}: its encrypted content has not been uploaded.")));
    }
    if !store::existing(&state.pool, &ids).await?.is_empty() {
        return Err(ApiError::Conflict("A record with this id is already in the chart.".into()));
    }
    // Content belongs to the one record that anchored it: whoever holds a
    // copy of the bytes (a clinician who opened it once) cannot make it a
    // record of another chart and read it from there.
    if !store::anchored_blobs(&state.pool, &blobs).await?.is_empty() {
        return Err(ApiError::Conflict(
            "This encrypted content already belongs to another record, so it cannot be added again.".into(),
        ));
    }
    if let Some(amended) = records.first().and_then(|r| r.amends)
        && !store::in_chart(&state.pool, &patient.id, amended).await?
    {
        return Err(ApiError::NotFound("The record to correct is not in your chart.".into()));
    }
    check_also(state, patient_address, &patient.id, &body.records).await?;

    crate::chain::spend_relay(state, &account.id).await?;
    let request = request_of(&message, signature);
    let function = request.function;
    // The rows are written before the anchor is journalled (with job 0:
    // not journalled yet), so that no anchor reaches the ledger without its
    // records in the chart; a restart in between is settled on start.
    let notice = writing_back.then(|| super::pending::WriteBack {
        patient_id: patient.id.clone(),
        author_id: account.id.clone(),
        record: records[0].id,
        category: records[0].category,
    });
    let batch_root = (records.len() > 1).then(|| Hash32(batch_tree(&records).expect("two or more records").root()));
    let rows = NewRecords {
        patient_id: patient.id.clone(),
        author_id: account.id.clone(),
        patient: patient.address,
        author: account.address,
        signature: body.signature,
        batch_root,
        records: body.records.iter().cloned().zip(sizes.iter().copied()).collect(),
    };
    let work = super::pending::Work::Anchor { ids, notice };
    let (job, tx_hash, settle) = super::pending::relay(state, request, work, Some(rows)).await?;
    tracing::info!(job, records = records.len(), function, "records added");
    // Once mined (now or later, or after a restart): the block, and a
    // write-back's notice to the patient; refused, the rows go.
    super::chain::settled(state, settle, job, tx_hash).await
}

/// How an error names record `i` of `count` in one request.
fn record_label(count: usize, i: usize) -> String {
    if count == 1 { "The record".to_owned() } else { format!("Record {}", i + 1) }
}

/// Keys wrapped for other readers of a patient's new records: each reader is
/// a clinician the patient shares with (the newest grant of the pair)
/// whose share is live on the ledger now (not stopped, not run out) and
/// covers the record's category (kinds of records, or everything), once
/// per record. The ledger still decides every open.
async fn check_also(
    state: &AppState,
    patient: alloy_primitives::Address,
    patient_id: &str,
    records: &[chartkey_api::NewRecord],
) -> Result<(), ApiError> {
    if records.iter().all(|r| r.also.is_empty()) {
        return Ok(());
    }
    let shares = crate::shares::store::scopes(&state.pool, patient_id).await?;
    let not_shared =
        || ApiError::bad_request("A record's key was wrapped for someone who is not shared this kind of record.");
    let mut live: HashMap<Address, bool> = HashMap::new();
    for r in records {
        let mut seen = std::collections::HashSet::new();
        for k in &r.also {
            let reader = k.reader;
            let covers = match shares.get(&reader) {
                Some((chartkey_core::eip712::SCOPE_EVERYTHING, _)) => true,
                Some((chartkey_core::eip712::SCOPE_CATEGORIES, categories)) => categories >> r.category & 1 == 1,
                _ => false,
            };
            if !covers {
                return Err(not_shared());
            }
            let is_live = match live.get(&reader) {
                Some(known) => *known,
                None => {
                    let on_ledger = super::chain::grant_on_ledger(state, patient, convert::alloy(reader)).await?;
                    *live.entry(reader).or_insert(on_ledger.live())
                }
            };
            if !is_live {
                return Err(ApiError::bad_request(
                    "A record's key was wrapped for a clinician whose share has ended. Reload and try again.",
                ));
            }
            if !seen.insert(reader) {
                return Err(ApiError::bad_request("A record's key was given twice for the same clinician."));
            }
        }
    }
    Ok(())
}

/// The chart a clinician writes back to: the patient the body names, who
/// has shared with the clinician (the ledger checks that the grant is
/// live, read+write and covers the record's category); one new record,
/// correcting nothing.
async fn write_back_chart(
    state: &AppState,
    clinician: &crate::accounts::store::AccountRow,
    patient: &Address,
    body: &AddRecordsBody,
) -> Result<(crate::accounts::store::AccountRow, alloy_primitives::Address), ApiError> {
    if body.records.len() != 1 {
        return Err(ApiError::bad_request("A clinician adds one record at a time."));
    }
    if body.records[0].amends.is_some() {
        return Err(ApiError::bad_request("A clinician's record cannot correct the patient's records."));
    }
    let not_shared = || ApiError::NotFound("This patient has not shared records with you.".into());
    let patient = crate::accounts::store::by_address(&state.pool, patient)
        .await?
        .filter(|p| Role::parse(&p.role) == Some(Role::Patient))
        .ok_or_else(not_shared)?;
    if !crate::shares::store::ever_shared(&state.pool, &patient.id, &clinician.address).await? {
        return Err(not_shared());
    }
    let address = convert::alloy(patient.address);
    Ok((patient, address))
}

/// Removes the rows of records whose anchoring transaction failed (as a
/// refused anchor's are: the records were never anchored).
async fn forget_job(state: &AppState, job: i64) -> Result<(), ApiError> {
    let ids = store::of_job(&state.pool, job).await?;
    tracing::warn!(job, "the anchor of these records failed");
    super::pending::forget_records(state, ids).await
}

/// The size limit for records, so the browser can refuse a file before
/// encrypting it.
pub async fn limits(state: &AppState, c: &Caller) -> Result<chartkey_api::RecordLimits, ApiError> {
    c.require_session()?;
    Ok(chartkey_api::RecordLimits { max_record_bytes: state.blobs.limit })
}

pub async fn list(state: &AppState, c: &Caller) -> Result<Vec<RecordMeta>, ApiError> {
    let (account, patient) = caller(state, c).await?;
    chart(state, &account.id, patient, account.address, None).await
}

/// The records of a patient's chart (`patient_id`, ledger address
/// `patient`) as `reader` (a ledger address) sees them: with the data key
/// wrapped for the reader, if any, and what the ledger holds for each.
/// With `only`, just that record (its batch is still rebuilt whole, for its
/// audit path, and its corrections are found).
pub(super) async fn chart(
    state: &AppState,
    patient_id: &str,
    patient: alloy_primitives::Address,
    reader: Address,
    only: Option<RecordId>,
) -> Result<Vec<RecordMeta>, ApiError> {
    let rows = store::chart(&state.pool, patient_id, &reader, only).await?;
    let (blocks, failed) = settle_anchors(state, &rows).await?;
    let rows: Vec<RecordRow> = rows.into_iter().filter(|r| !failed.contains(&r.anchor_job)).collect();
    let trees = batch_trees(&rows);
    let mut amended_by: HashMap<RecordId, Vec<RecordId>> = HashMap::new();
    for r in &rows {
        if let Some(a) = r.amends {
            amended_by.entry(a).or_default().push(r.id);
        }
    }
    let mut batch_on_ledger: HashMap<Hash32, LedgerAnchor> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let id = r.id;
        if only.is_some_and(|o| o != id) {
            continue;
        }
        let (batch, ledger) = match (&r.batch_root, r.leaf_index, r.batch_size) {
            (Some(root), Some(index), Some(size)) => {
                let tree = trees.get(root).ok_or_else(|| corrupt("batch"))?;
                let path = tree.proof(index as usize).ok_or_else(|| corrupt("leaf index"))?;
                let ledger = match batch_on_ledger.get(root) {
                    Some(l) => l.clone(),
                    None => {
                        let l = batch_of(state, patient, *root).await?;
                        batch_on_ledger.insert(*root, l.clone());
                        l
                    }
                };
                let proof = BatchProof {
                    root: *root,
                    index: index as u64,
                    size: size as u64,
                    path: path.into_iter().map(Hash32).collect(),
                };
                (Some(proof), ledger)
            }
            _ => (None, record_of(state, patient, &id).await?),
        };
        out.push(RecordMeta {
            id,
            blob: r.blob,
            size: r.size,
            category: r.category,
            author: r.author,
            author_name: r.author_name.clone(),
            amends: r.amends,
            amended_by: amended_by.get(&r.id).cloned().unwrap_or_default(),
            created_at: r.created_at,
            wrapped_key: r.wrapped_key.clone(),
            signature: r.signature,
            anchor_tx: r.anchor_tx,
            anchor_block: blocks.get(&r.anchor_job).copied().or(r.anchor_block.map(|b| b as u64)),
            batch,
            ledger,
        });
    }
    Ok(out)
}

/// Records whose anchor was not yet mined when they were added: ask the
/// relayer, remember the block of those mined since, and drop those whose
/// anchor was refused (returned as the second set).
async fn settle_anchors(state: &AppState, rows: &[RecordRow]) -> Result<(HashMap<i64, u64>, Vec<i64>), ApiError> {
    let mut pending: Vec<i64> = rows.iter().filter(|r| r.anchor_block.is_none()).map(|r| r.anchor_job).collect();
    pending.sort_unstable();
    pending.dedup();
    let mut mined = HashMap::new();
    let mut failed = Vec::new();
    for job in pending {
        let found = state.ledger.relayer.job(job).await.map_err(|e| relay_error(e, "job"))?;
        match found.map(|j| j.status) {
            Some(JobStatus::Mined { block_number }) => {
                mined.insert(job, block_number);
            }
            Some(JobStatus::Reverted { .. } | JobStatus::Failed { .. }) => {
                forget_job(state, job).await?;
                failed.push(job);
            }
            Some(JobStatus::Sent) | None => {}
        }
    }
    for (job, block) in &mined {
        store::mined(&state.pool, *job, *block).await?;
    }
    Ok((mined, failed))
}

/// Each batch's tree, rebuilt from its rows (ordered by leaf index).
fn batch_trees(rows: &[RecordRow]) -> HashMap<Hash32, chartkey_core::merkle::Tree> {
    let mut leaves: HashMap<Hash32, Vec<(i64, AnchoredRecord)>> = HashMap::new();
    for r in rows {
        let (Some(root), Some(index)) = (r.batch_root, r.leaf_index) else { continue };
        let record = AnchoredRecord { id: r.id, ciphertext_hash: r.blob.0, category: r.category, amends: r.amends };
        leaves.entry(root).or_default().push((index, record));
    }
    leaves
        .into_iter()
        .filter_map(|(root, mut members)| {
            members.sort_by_key(|(i, _)| *i);
            let records: Vec<_> = members.into_iter().map(|(_, r)| r).collect();
            Some((root, batch_tree(&records)?))
        })
        .collect()
}

/// Whether the ledger allows `grantee` to read `record` of `patient` now.
pub async fn can_access(
    state: &AppState,
    grantee: alloy_primitives::Address,
    patient: alloy_primitives::Address,
    record: RecordId,
) -> Result<bool, ApiError> {
    let call = ChartkeyRecords::canAccessCall { grantee, patient, recordId: record.0.into() };
    view(state, Target::Records, call).await
}

pub(super) async fn record_of(
    state: &AppState,
    patient: alloy_primitives::Address,
    id: &RecordId,
) -> Result<LedgerAnchor, ApiError> {
    let on_ledger =
        view(state, Target::Records, ChartkeyRecords::recordOfCall { patient, recordId: id.0.into() }).await?;
    Ok(if on_ledger.exists {
        LedgerAnchor::Record {
            ciphertext_hash: Hash32(on_ledger.ciphertextHash.0),
            category: on_ledger.category,
            author: convert::address(on_ledger.author),
        }
    } else {
        LedgerAnchor::Missing
    })
}

async fn batch_of(
    state: &AppState,
    patient: alloy_primitives::Address,
    root: Hash32,
) -> Result<LedgerAnchor, ApiError> {
    let batch = view(state, Target::Records, ChartkeyRecords::batchOfCall { patient, root: root.0.into() }).await?;
    Ok(if batch.anchoredAt != 0 {
        LedgerAnchor::Batch { count: u64::from(batch.count) }
    } else {
        LedgerAnchor::Missing
    })
}

pub(crate) fn storage_down(e: crate::blobs::BlobError) -> ApiError {
    tracing::error!(error = %e, "blob storage failed");
    ApiError::Internal
}
