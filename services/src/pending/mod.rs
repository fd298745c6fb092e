//! Bookkeeping that waits for the ledger: what the server records once a
//! relayed grant, access or credential is mined (a grant's row and wrapped
//! keys, an access in "who viewed" with its notice, a credential request
//! marked issued).
//!
//! The relayer's journal and the server's database are two files, so no
//! transaction covers both. The work is therefore written here first
//! (`pending_relays`, synchronous=FULL), then the request is journalled;
//! once the ledger answers, the work is done and its row deleted in one
//! transaction (a refusal only deletes it). A crash can leave a row behind:
//! on start [`reconcile`] looks each one up in the journal by the hash of
//! the call's input. Not journalled means the request was never accepted
//! (the row goes); journalled means the relayer is sending it again, and the
//! row waits for the ledger's answer as the request would have.

use std::time::Duration;

use alloy_primitives::{B256, keccak256};
use chartkey_api::{ApiError, EmergencyStep, NoticeKind};
use chartkey_core::envelope::{RecordId, WrappedKey};
use chartkey_core::value::{Address, Hash32};
use chartkey_ledger::convert;
use chartkey_ledger::relayer::{RelayError, Relayed, Request, Ticket};
use serde::{Deserialize, Serialize};

pub mod store;

use super::chain::corrupt;
use super::chain::relay_error;
use crate::notices::store::NewNotice;
use crate::records::store::{self as records, NewRecords};
use crate::state::AppState;

/// What to record once a relayed message is mined.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Work {
    /// A grant's row, and the record keys wrapped for its grantee.
    Grant {
        patient_id: String,
        grantee_id: String,
        grantee_address: Address,
        scope: u8,
        categories: u32,
        /// JSON list of record ids (scope "records"), as stored.
        records: String,
        write: bool,
        expires_at: i64,
        keys: Vec<(RecordId, WrappedKey)>,
    },
    /// An access: a row in "who viewed", and a notice to the patient.
    Access { patient_id: String, grantee_id: String, record: RecordId, category: u8 },
    /// A credential request answered by the credential it asked for.
    Credential { request_id: i64 },
    /// Records whose rows are written before their anchor is journalled:
    /// given the job once journalled, and their block once mined, when a
    /// write-back's notice goes to the patient; a refusal removes them.
    Anchor { ids: Vec<RecordId>, notice: Option<WriteBack> },
    /// A use of a link: a row in the link's uses, and a notice to the patient.
    LinkUse { patient_id: String, link_id: Hash32, use_id: Hash32, recipient: String, salt: Hash32 },
    /// A step of emergency access: its event row (and for a naming, the
    /// contact's row with the summary's key for them), and a notice to the
    /// other side.
    Emergency { patient_id: String, contact_id: String, step: EmergencyStep, named: Option<Named> },
}

/// What naming a contact stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Named {
    pub wait_seconds: u32,
    pub summary: chartkey_api::SummaryForContact,
}

/// The notice a mined write-back sends to the patient.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBack {
    pub patient_id: String,
    pub author_id: String,
    pub record: RecordId,
    pub category: u8,
}

/// A pending row: its id, and the call it waits for.
pub struct Pending {
    id: i64,
    work: Work,
}

/// Writes `work` (and `rows`) for `request`, hands the request to the
/// relayer and starts its settlement, all in a task of its own: a client
/// that goes away mid-request cannot leave journalled work unwatched.
/// Returns the job, its transaction and the settlement (the block, or why
/// not); a refusal before anything was relayed leaves nothing behind.
pub async fn relay(
    state: &AppState,
    request: Request,
    work: Work,
    rows: Option<NewRecords>,
) -> Result<(i64, Hash32, tokio::task::JoinHandle<Result<u64, ApiError>>), ApiError> {
    let state = state.clone();
    tokio::spawn(async move {
        let function = request.function;
        let pending = record(&state, &request.input, work, rows.as_ref()).await?;
        let ticket = match state.ledger.relayer.submit(request).await {
            Ok(ticket) => ticket,
            Err(e) => {
                if let Work::Anchor { ids, .. } = &pending.work {
                    forget_records(&state, ids.clone()).await?;
                }
                forget(&state, pending).await?;
                return Err(relay_error(e, function));
            }
        };
        let (job, tx) = (ticket.job, convert::hash(ticket.tx_hash));
        if matches!(pending.work, Work::Anchor { .. }) {
            #[cfg(feature = "test-controls")]
            if state.config.stall_after_journal {
                // A test kills the server here: journalled, rows not yet told so.
                std::future::pending::<()>().await;
            }
            journalled(&state, &pending, job, tx).await?;
        }
        Ok((job, tx, settle(&state, pending, ticket, function)))
    })
    .await
    .map_err(|_| ApiError::Internal)?
}

/// Writes `work` (and `rows`, in one transaction) for the request whose
/// call input is `input`, before the request is handed to the relayer.
async fn record(state: &AppState, input: &[u8], work: Work, rows: Option<&NewRecords>) -> Result<Pending, ApiError> {
    let text = serde_json::to_string(&work).map_err(|_| ApiError::Internal)?;
    let id = store::insert(&state.pool, state.relayer_address(), keccak256(input).as_slice(), &text, rows).await?;
    Ok(Pending { id, work })
}

/// Deletes a pending row whose request was not accepted.
async fn forget(state: &AppState, pending: Pending) -> Result<(), ApiError> {
    Ok(store::forget(&state.pool, pending.id).await?)
}

/// Does `pending`'s work once its request (`ticket`) is mined, however long
/// that takes, and deletes the row; a refusal only deletes it. The handle
/// gives the block it was mined in, or why it was not.
fn settle(
    state: &AppState,
    pending: Pending,
    ticket: Ticket,
    function: &'static str,
) -> tokio::task::JoinHandle<Result<u64, ApiError>> {
    let state = state.clone();
    let job = ticket.job;
    tokio::spawn(async move {
        let outcome = ticket.done.await.unwrap_or_else(|_| Err(RelayError::Unavailable("the relayer stopped".into())));
        finish(&state, pending, job, outcome, function).await
    })
}

async fn finish(
    state: &AppState,
    pending: Pending,
    job: i64,
    outcome: Result<Relayed, RelayError>,
    function: &'static str,
) -> Result<u64, ApiError> {
    match outcome {
        Ok(relayed) => {
            apply(state, pending, &relayed).await?;
            Ok(relayed.block_number)
        }
        Err(RelayError::Refused(refusal)) => {
            if let Work::Anchor { ids, .. } = &pending.work {
                // Refused: the records were never anchored, so they are
                // not in the chart.
                forget_records(state, ids.clone()).await?;
            }
            forget(state, pending).await?;
            Err(relay_error(RelayError::Refused(refusal), function))
        }
        Err(e) => {
            // Not a final answer (the ledger unreachable, the relayer
            // stopping, a send that failed): the request is journalled and
            // will be sent again, so its work waits for the ledger's answer.
            tracing::warn!(function, job, error = %e, "relayed message not settled yet; its bookkeeping follows it");
            follow(state.clone(), pending, job);
            Err(ApiError::Conflict(
                "The ledger has not confirmed this yet; it will be recorded once it does. Check again in a moment."
                    .into(),
            ))
        }
    }
}

/// Longest pause between two looks at a request whose answer did not come.
const RECHECK_MAX: Duration = Duration::from_secs(5);

/// Follows journalled job `job` until the journal or the ledger says how it
/// ended, then does or drops `pending`'s work.
fn follow(state: AppState, pending: Pending, job: i64) {
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(100);
        loop {
            let answer = match state.ledger.relayer.outcome(job).await {
                Ok(Some(Err(RelayError::Failed(why)))) => {
                    // Failed as journalled: final only if the journal says
                    // so now (a resend at start may still mine it).
                    match state.ledger.relayer.job(job).await {
                        Ok(Some(j)) if matches!(j.status, chartkey_ledger::relayer::JobStatus::Failed { .. }) => {
                            Some(Err(RelayError::Refused(chartkey_ledger::refusal::Refusal {
                                code: "Failed".into(),
                                message: why,
                            })))
                        }
                        _ => None,
                    }
                }
                Ok(answer) => answer,
                Err(e) => {
                    tracing::warn!(job, error = %e, "checking a relayed request");
                    None
                }
            };
            if let Some(outcome) = answer {
                if let Err(e) = Box::pin(finish(&state, pending, job, outcome, "followed")).await {
                    tracing::warn!(job, error = %e, "a followed request was not recorded");
                }
                return;
            }
            if *state.stopping.borrow() {
                return;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RECHECK_MAX);
        }
    });
}

/// Does the work of a mined request and deletes its row, in one
/// transaction (nothing, if another task already did).
async fn apply(state: &AppState, pending: Pending, relayed: &Relayed) -> Result<(), ApiError> {
    let tx = convert::hash(relayed.tx_hash);
    let block = relayed.block_number as i64;
    let serial = match &pending.work {
        Work::Grant { .. } => Some(super::chain::granted_serial(relayed).ok_or_else(|| corrupt("Granted event"))?),
        _ => None,
    };
    let opens_at = match &pending.work {
        Work::Emergency { step: EmergencyStep::Requested, .. } => {
            Some(super::chain::emergency_opens_at(relayed).ok_or_else(|| corrupt("EmergencyRequested event"))?)
        }
        _ => None,
    };
    // Who is told what, now that it is mined (recorded with the work).
    let notice = |account_id, kind, actor_id| NewNotice {
        account_id,
        kind,
        actor_id,
        record: None,
        tx,
        link: None,
        opens_at: None,
    };
    let notice = match &pending.work {
        Work::Access { patient_id, grantee_id, record, category } => {
            Some(NewNotice { record: Some((*record, *category)), ..notice(patient_id, NoticeKind::Access, grantee_id) })
        }
        Work::Anchor { notice: Some(n), .. } => Some(NewNotice {
            record: Some((n.record, n.category)),
            ..notice(&n.patient_id, NoticeKind::WriteBack, &n.author_id)
        }),
        // The patient, whose link it is, is the actor.
        Work::LinkUse { patient_id, link_id, recipient, .. } => Some(NewNotice {
            link: Some(chartkey_api::LinkNotice { link_id: *link_id, recipient: recipient.clone() }),
            ..notice(patient_id, NoticeKind::LinkUse, patient_id)
        }),
        // Told to the other side of the step.
        Work::Emergency { patient_id, contact_id, step, .. } => Some(match step {
            EmergencyStep::Named => notice(contact_id, NoticeKind::EmergencyNamed, patient_id),
            EmergencyStep::Requested => {
                NewNotice { opens_at, ..notice(patient_id, NoticeKind::EmergencyRequested, contact_id) }
            }
            EmergencyStep::Refused => notice(contact_id, NoticeKind::EmergencyRefused, patient_id),
            EmergencyStep::Accessed => notice(patient_id, NoticeKind::EmergencyAccessed, contact_id),
            EmergencyStep::Removed => notice(contact_id, NoticeKind::EmergencyRemoved, patient_id),
        }),
        _ => None,
    };
    let reader = notice.as_ref().map(|n| n.account_id);
    let mined = store::Mined { job: relayed.job, tx, block, serial };
    let recorded = store::apply(&state.pool, pending.id, &pending.work, &mined, notice).await?;
    if let (Some(view), Some(reader)) = (recorded, reader) {
        // No open page is not an error: the inbox has it.
        state.notifier.send(reader, view).await;
    }
    Ok(())
}

/// Records that the anchor of `pending`'s records was journalled as `job`
/// (transaction `tx`): the chart follows the job from here, and the row
/// waits for the block.
async fn journalled(state: &AppState, pending: &Pending, job: i64, tx: Hash32) -> Result<(), ApiError> {
    let Work::Anchor { ids, .. } = &pending.work else { return Err(ApiError::Internal) };
    Ok(records::journalled(&state.pool, ids, job, tx).await?)
}

/// Picks up the rows a crash left: each request the journal holds is
/// followed until the ledger answers; the others were never accepted.
/// Runs once on start, after the relayer resent what its journal holds.
pub async fn reconcile(state: &AppState) -> Result<(), ApiError> {
    let rows = store::leftovers(&state.pool, state.relayer_address()).await?;
    let (mut followed, mut dropped, mut skipped) = (0usize, 0usize, 0usize);
    for (id, hash, text) in rows {
        // One row that cannot be read is reported, not a reason to stay down.
        match pick_up(state, id, &hash, &text).await {
            Ok(true) => followed += 1,
            Ok(false) => dropped += 1,
            Err(e) => {
                skipped += 1;
                tracing::error!(row = id, error = %e, "pending bookkeeping left as it is");
            }
        }
    }
    if followed + dropped + skipped > 0 {
        tracing::info!(followed, dropped, skipped, "bookkeeping left by a restart picked up");
    }
    Ok(())
}

/// One leftover row: followed (`true`) if its request was journalled,
/// dropped (`false`) if it never was.
async fn pick_up(state: &AppState, id: i64, hash: &[u8], text: &str) -> Result<bool, ApiError> {
    let work: Work = serde_json::from_str(text).map_err(|_| corrupt("pending work"))?;
    let hash = B256::try_from(hash).map_err(|_| corrupt("pending input hash"))?;
    let pending = Pending { id, work };
    let Some(job) = state.ledger.relayer.find(hash).await.map_err(|e| relay_error(e, "find"))? else {
        if let Work::Anchor { ids, .. } = &pending.work {
            // Never journalled: never anchored.
            forget_records(state, ids.clone()).await?;
        }
        forget(state, pending).await?;
        return Ok(false);
    };
    if matches!(pending.work, Work::Anchor { .. }) {
        // The chart follows the job from here.
        let tx = match state.ledger.relayer.journalled(job).await.map_err(|e| relay_error(e, "job"))? {
            Some(j) => convert::hash(j.sent.tx_hash),
            None => return Err(corrupt("journalled job")),
        };
        journalled(state, &pending, job, tx).await?;
    }
    follow(state.clone(), pending, job);
    Ok(true)
}

/// Removes the rows of records `ids`, whose anchor was never journalled or
/// was refused (the ids were checked new when the rows were written).
pub(crate) async fn forget_records(state: &AppState, ids: Vec<RecordId>) -> Result<(), ApiError> {
    let removed = records::remove(&state.pool, &ids).await?;
    tracing::info!(removed, "records removed: their anchor was not relayed");
    Ok(())
}
