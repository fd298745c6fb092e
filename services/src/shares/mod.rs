//! Sharing: a patient's grants, relayed with the records' data keys wrapped
//! for the grantee, and a grantee's opens, recorded on the ledger before
//! anything of the record is released.
//!
//! The ledger decides. The server authorises the session (a patient grants
//! only their own records, a grantee opens only with their own signature),
//! checks what it can of the input, brings batch records into the chart on
//! the ledger when a grant or an open needs them alone, and relays; the
//! contract checks the signatures, the grant, its scope and expiry and the
//! grantee's credential, and refuses in words the server passes on.

use std::collections::{HashMap, HashSet};

use chartkey_api::{
    AccessView, ApiError, LedgerAnchor, OpenBody, OpenedRecord, RecordMeta, RelayReceipt, ShareBody, ShareState,
    ShareView, SharedChart, StopBody,
};
use chartkey_core::eip712::{SCOPE_CATEGORIES, SCOPE_EVERYTHING, SCOPE_RECORDS};
use chartkey_core::envelope::RecordId;
use chartkey_core::records::AnchoredRecord;
use chartkey_core::role::Role;
use chartkey_core::value::Address;
use chartkey_ledger::abi::ChartkeyRecords;
use chartkey_ledger::calls::BatchRecordProof;
use chartkey_ledger::calls::Target;
use chartkey_ledger::convert::{self, to_ethers};
use chartkey_ledger::relayer::Request;

pub mod store;

use self::store::{GrantRow, Side};
use super::chain::{caller, caller_as, corrupt, grant_on_ledger, next_nonce, own_message, relay_and_wait, settled};
use super::credentials::card;
use super::records::{chart, record_of};
use crate::caller::Caller;
use crate::db;
use crate::state::AppState;

/// Most records one grant may carry keys for.
pub const MAX_SHARED_KEYS: usize = 5_000;

pub async fn grant(state: &AppState, c: &Caller, body: ShareBody) -> Result<RelayReceipt, ApiError> {
    let (account, address) = caller_as(state, c, Role::Patient, "Only a patient shares records.").await?;
    let g = body.grant;
    own_message(address, g.patient, "You can only share your own records.")?;
    let signature = body.signature.0.to_vec();
    if body.keys.len() > MAX_SHARED_KEYS {
        return Err(ApiError::bad_request(format!("At most {MAX_SHARED_KEYS} records can be shared at once.")));
    }
    let grantee_address = Address::from(g.grantee);
    let grantee = crate::accounts::store::by_address(&state.pool, &grantee_address)
        .await?
        .ok_or_else(|| ApiError::NotFound("No one with this address has an account here.".into()))?;
    if Role::parse(&grantee.role) != Some(Role::Clinician) {
        return Err(ApiError::bad_request("Records can only be shared with a clinician."));
    }

    // Every key is for a record of this chart that the grant covers, once;
    // a grant of listed records carries a key for each of them.
    let chart = chart(state, &account.id, address, account.address, None).await?;
    let by_id: HashMap<RecordId, &RecordMeta> = chart.iter().map(|m| (m.id, m)).collect();
    let listed: HashSet<RecordId> = g.records.iter().map(|r| RecordId(*r)).collect();
    if listed.len() != g.records.len() {
        return Err(ApiError::bad_request("A record is listed twice."));
    }
    let mut keys = Vec::with_capacity(body.keys.len());
    let mut seen = HashSet::new();
    for k in &body.keys {
        let meta =
            by_id.get(&k.record).ok_or_else(|| ApiError::NotFound("A record to share is not in your chart.".into()))?;
        let in_scope = match g.scope {
            SCOPE_RECORDS => listed.contains(&k.record),
            SCOPE_CATEGORIES => g.categories >> meta.category & 1 == 1,
            SCOPE_EVERYTHING => true,
            _ => return Err(ApiError::bad_request("Choose records, categories or everything to share.")),
        };
        if !in_scope {
            return Err(ApiError::bad_request("A key was given for a record this share does not cover."));
        }
        if !seen.insert(k.record) {
            return Err(ApiError::bad_request("A record's key was given twice."));
        }
        keys.push((k.record, k.wrapped_key.clone()));
    }
    if g.scope == SCOPE_RECORDS
        && let Some(missing) = listed.iter().find(|id| !seen.contains(id))
    {
        return Err(if by_id.contains_key(missing) {
            ApiError::bad_request("Each shared record needs its key wrapped for the clinician.")
        } else {
            ApiError::NotFound("A record to share is not in your chart.".into())
        });
    }

    super::approvals::check(state, &account.id, &body.approval, records_domain(state).digest(&g)).await?;
    crate::chain::spend_relay(state, &account.id).await?;
    if g.scope == SCOPE_RECORDS {
        // Listed records must be on the ledger by themselves.
        let members: Vec<&RecordMeta> = g.records.iter().filter_map(|r| by_id.get(&RecordId(*r)).copied()).collect();
        prove_batch_members(state, address, &members).await?;
    }

    let request = Request::signed(&g, signature);
    // The grant's row and keys are written before the request is journalled
    // and recorded once it is mined, even if that is after this answer or
    // after a restart: a refused grant leaves nothing behind.
    let work = super::pending::Work::Grant {
        patient_id: account.id.clone(),
        grantee_id: grantee.id.clone(),
        grantee_address,
        scope: g.scope,
        categories: g.categories,
        records: serde_json::to_string(&g.records.iter().map(|r| RecordId(*r)).collect::<Vec<_>>())
            .map_err(|_| ApiError::Internal)?,
        write: g.write,
        expires_at: g.expires_at as i64,
        keys,
    };
    let key_count = body.keys.len();
    let (job, tx_hash, settle) = super::pending::relay(state, request, work, None).await?;
    tracing::info!(job, keys = key_count, "grant accepted");
    settled(state, settle, job, tx_hash).await
}

pub async fn open(state: &AppState, c: &Caller, body: OpenBody) -> Result<OpenedRecord, ApiError> {
    let (account, address) = caller(state, c).await?;
    let a = body.access;
    own_message(address, a.grantee, "You can only open records with your own signature.")?;
    let signature = body.signature.0.to_vec();
    let not_shared = || ApiError::NotFound("This record is not shared with you.".into());
    let patient_address = Address::from(a.patient);
    let patient = crate::accounts::store::by_address(&state.pool, &patient_address).await?.ok_or_else(not_shared)?;
    let patient_ledger = convert::alloy(patient.address);
    let id = RecordId(a.record_id);
    let mut found = chart(state, &patient.id, patient_ledger, account.address, Some(id)).await?;
    let meta = found.pop().ok_or_else(not_shared)?;
    if meta.wrapped_key.is_none() {
        // Nothing to release even if the ledger allowed it (the patient's
        // browser has not wrapped this record for the grantee).
        return Err(not_shared());
    }
    crate::chain::spend_relay(state, &account.id).await?;
    prove_batch_members(state, patient_ledger, &[&meta]).await?;

    let request = Request::signed(&a, signature);
    // "Who viewed" and the patient's notice follow from the mined access,
    // even when it is mined after this answer gave up waiting, or after a
    // restart; nothing of the record is released unless it was mined in time.
    let work = super::pending::Work::Access {
        patient_id: patient.id.clone(),
        grantee_id: account.id.clone(),
        record: id,
        category: meta.category,
    };
    let (job, tx_hash, settle) = super::pending::relay(state, request, work, None).await?;
    let receipt = settled(state, settle, job, tx_hash).await?;
    let Some(block) = receipt.block_number.filter(|_| receipt.mined) else {
        return Err(ApiError::Conflict(
            "The ledger has not recorded this access yet, so nothing was released. Try again in a moment.".into(),
        ));
    };
    tracing::info!(block, "access recorded, record released");
    Ok(OpenedRecord { record: meta, access_tx: receipt.tx_hash, access_block: block })
}

/// Brings the batch records among `metas` that the ledger does not yet hold
/// by themselves into the patient's chart there, by their audit paths, and
/// waits until that is mined.
async fn prove_batch_members(
    state: &AppState,
    patient: alloy_primitives::Address,
    metas: &[&RecordMeta],
) -> Result<(), ApiError> {
    let mut proofs = Vec::new();
    for meta in metas {
        let Some(batch) = &meta.batch else { continue };
        if !matches!(record_of(state, patient, &meta.id).await?, LedgerAnchor::Missing) {
            continue;
        }
        let proof = BatchRecordProof {
            patient: to_ethers(patient),
            root: batch.root.0,
            index: u32::try_from(batch.index).map_err(|_| corrupt("leaf index"))?,
            record: AnchoredRecord {
                id: meta.id,
                ciphertext_hash: meta.blob.0,
                category: meta.category,
                amends: meta.amends,
            },
            path: batch.path.iter().map(|h| h.0).collect(),
        };
        proofs.push(relay_and_wait(state, Request::batch_proof(&proof)));
    }
    for receipt in futures_util::future::join_all(proofs).await {
        if !receipt?.mined {
            return Err(ApiError::Conflict(
                "The ledger is busy: the records could not be prepared for sharing yet. Try again in a moment.".into(),
            ));
        }
    }
    Ok(())
}

/// Most grants and accesses one list answers.
const LISTED: i64 = 500;

pub async fn list(state: &AppState, c: &Caller) -> Result<Vec<ShareView>, ApiError> {
    let (account, _) = caller(state, c).await?;
    let Some(side) = side_of(&account.role) else { return Ok(Vec::new()) };
    views(state, side, &account.id, None).await
}

/// A patient's shares, or a clinician's: no one else has any.
fn side_of(role: &str) -> Option<Side> {
    match Role::parse(role) {
        Some(Role::Patient) => Some(Side::Patient),
        Some(Role::Clinician) => Some(Side::Grantee),
        _ => None,
    }
}

/// The newest grant of each pair on `side` of account `id` (and of patient
/// `patient_id`, if given), as the ledger says it stands now.
async fn views(state: &AppState, side: Side, id: &str, patient_id: Option<&str>) -> Result<Vec<ShareView>, ApiError> {
    let rows = store::grants(&state.pool, side, id, patient_id, LISTED).await?;
    let mut shares = Vec::with_capacity(rows.len());
    for row in rows {
        let grantee = crate::accounts::store::by_id(&state.pool, &row.grantee_id)
            .await?
            .ok_or_else(|| corrupt("grantee account"))?;
        let grantee = card(state, &grantee).await?;
        let state_now = share_state(state, &row, &grantee).await?;
        shares.push(ShareView {
            patient: row.patient,
            patient_name: row.patient_name,
            grantee,
            serial: row.serial,
            scope: row.scope,
            categories: row.categories,
            records: serde_json::from_str(&row.records).map_err(|_| corrupt("grant records"))?,
            write: row.write,
            expires_at: row.expires_at as u64,
            granted_at: row.granted_at,
            grant_tx: row.grant_tx,
            keys: row.keys,
            state: state_now,
        });
    }
    Ok(shares)
}

/// What the ledger says of a stored grant now.
async fn share_state(
    state: &AppState,
    row: &GrantRow,
    grantee: &chartkey_api::ClinicianCard,
) -> Result<ShareState, ApiError> {
    let on_ledger = grant_on_ledger(state, convert::alloy(row.patient), convert::alloy(grantee.address)).await?;
    Ok(if on_ledger.revoked || on_ledger.serial != row.serial {
        ShareState::Stopped
    } else if on_ledger.expires_at <= db::now() as u64 {
        ShareState::Expired
    } else if !grantee.credential.is_verified() {
        ShareState::CredentialLapsed
    } else {
        ShareState::Active
    })
}

pub async fn stop(state: &AppState, c: &Caller, body: StopBody) -> Result<RelayReceipt, ApiError> {
    let (account, address) = caller_as(state, c, Role::Patient, "Only a patient stops sharing their records.").await?;
    let m = body.message;
    own_message(address, m.patient, "You can only stop your own shares.")?;
    let signature = body.signature.0.to_vec();
    if !store::ever_shared(&state.pool, &account.id, &Address::from(m.grantee)).await? {
        return Err(ApiError::NotFound("You have not shared records with this clinician.".into()));
    }
    super::approvals::check(state, &account.id, &body.approval, records_domain(state).digest(&m)).await?;
    crate::chain::spend_relay(state, &account.id).await?;
    relay_and_wait(state, Request::signed(&m, signature)).await
}

pub async fn accesses(state: &AppState, c: &Caller) -> Result<Vec<AccessView>, ApiError> {
    let (account, _) = caller(state, c).await?;
    let Some(side) = side_of(&account.role) else { return Ok(Vec::new()) };
    Ok(store::accesses(&state.pool, side, &account.id, LISTED).await?)
}

pub async fn nonce(state: &AppState, c: &Caller, grantee: Address) -> Result<u64, ApiError> {
    let (_, address) = caller(state, c).await?;
    let grantee = convert::alloy(grantee);
    let nonce =
        next_nonce(state, Target::Records, ChartkeyRecords::consentNonceCall { patient: address, grantee }).await?;
    u64::try_from(nonce).map_err(|_| corrupt("consentNonce"))
}

/// A chart shared with the signed-in clinician: the share as the ledger
/// says it stands, and while it is active, which records were wrapped for
/// them (kind, date and id only: keys and content come from
/// `records/open`, after the ledger recorded the access).
pub async fn shared_chart(state: &AppState, c: &Caller, patient: Address) -> Result<SharedChart, ApiError> {
    let (account, address) =
        caller_as(state, c, Role::Clinician, "Only a clinician opens charts shared with them.").await?;
    let not_shared = || ApiError::NotFound("This patient has not shared records with you.".into());
    let patient = crate::accounts::store::by_address(&state.pool, &patient).await?.ok_or_else(not_shared)?;
    let share = views(state, Side::Grantee, &account.id, Some(&patient.id)).await?.pop().ok_or_else(not_shared)?;
    let records = if share.state == ShareState::Active {
        store::wrapped_for(&state.pool, &patient.id, &account.address).await?
    } else {
        Vec::new()
    };
    let next_nonce = next_nonce(state, Target::Records, ChartkeyRecords::noncesCall { owner: address }).await?;
    let next_nonce = u64::try_from(next_nonce).map_err(|_| corrupt("nonces"))?;
    Ok(SharedChart { share, records, next_nonce })
}

/// The Records contract's EIP-712 domain on this ledger.
fn records_domain(state: &AppState) -> chartkey_core::eip712::Domain {
    let client = &state.ledger.client;
    chartkey_core::eip712::Domain::records(client.chain_id(), to_ethers(client.contracts().records))
}
