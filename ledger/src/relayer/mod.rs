//! The relayer: turns a signed EIP-712 message into a transaction the
//! server's key pays for, and sees it mined.
//!
//! For each request: the contract call is simulated first, so a refusal
//! (a bad signature, an expired grant…) comes back at once, in words, and
//! costs nothing. Then one worker takes everything that queued meanwhile,
//! puts the calls to one contract into one transaction (the contracts'
//! `bundle`, which runs each call as if alone and reports each failure; a
//! lone call goes as itself), signs the transactions with consecutive
//! relayer nonces, journals every request with its transaction's exact bytes
//! in SQLite (one fsync for the lot) and only then hands them to the ledger
//! and acknowledges them. Requests from one signer run one after the other
//! (their message nonces are consecutive); requests from different signers
//! share transactions and blocks. On start, every journalled transaction not
//! seen mined is sent again, byte for byte (re-signed only when its relayer
//! nonce was taken by something else), so an accepted request survives a
//! crash and is never relayed twice.

mod store;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Log, U256};
use tokio::sync::{mpsc, oneshot};

pub use store::{Job, JobStatus, JobStore, NewJob};
use worker::{attribute, finish, resynchronise, status_of, target_of, work};

use crate::artifacts;
use crate::calls::{self, SignedCall, Target};
use crate::client::{ClientError, LedgerClient, Outcome, Submitted};
use crate::node::{CallRequest, Fees, StoreError, TX_GAS_CAP, Wallet};
use crate::refusal::Refusal;

/// Most requests signed and journalled in one commit.
const MAX_BATCH: usize = 512;
/// Most calls in one bundle transaction, and most gas it may ask for.
const MAX_BUNDLE: usize = 100;
const MAX_BUNDLE_GAS: u64 = 10_000_000;
/// Times a transaction is sent again when the ledger does not answer.
const SEND_RETRIES: u32 = 4;
/// Simulations run at once on the embedded node: more only contend for the
/// ledger's state (and starve the miner of it).
const SIMULATIONS: usize = 4;
/// Simulations in flight at once to an external node: each is a network
/// round trip the node answers on its own threads.
const REMOTE_SIMULATIONS: usize = 32;

/// A signed message to relay: the contract call that carries it.
#[derive(Debug, Clone)]
pub struct Request {
    pub function: &'static str,
    /// Whose signature the contract checks (requests of one signer are serialised).
    pub signer: Address,
    pub target: Target,
    pub input: Bytes,
}

impl Request {
    /// The call carrying `message` signed with `signature`.
    pub fn signed<M: SignedCall>(message: &M, signature: Vec<u8>) -> Self {
        Self {
            function: M::FUNCTION,
            signer: crate::convert::to_alloy(message.signer()),
            target: M::TARGET,
            input: Bytes::from(calls::input(message, signature)),
        }
    }

    /// The call bringing a batch's record into the chart. It runs in the
    /// patient's turn, so after the patient's batch anchor it depends on.
    pub fn batch_proof(proof: &calls::BatchRecordProof) -> Self {
        Self {
            function: calls::BatchRecordProof::FUNCTION,
            signer: crate::convert::to_alloy(proof.patient),
            target: calls::BatchRecordProof::TARGET,
            input: Bytes::from(proof.input()),
        }
    }
}

impl Request {
    /// The host's record of a link's use (not signed: it runs in the
    /// patient's turn, after the link's creation it depends on).
    pub fn link_use(call: &calls::LinkUse) -> Self {
        Self {
            function: calls::LinkUse::FUNCTION,
            signer: crate::convert::to_alloy(call.patient),
            target: calls::LinkUse::TARGET,
            input: Bytes::from(call.input()),
        }
    }
}

/// A relayed request, mined with success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub job: i64,
    pub tx_hash: B256,
    pub block_number: u64,
    /// Gas of the whole transaction, and how many requests it carried.
    pub tx_gas_used: u64,
    pub calls_in_tx: u32,
    /// The events this request's call emitted.
    pub logs: Vec<Log>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The contract refused the message (nothing was relayed, or its call
    /// reverted).
    #[error("{0}")]
    Refused(Refusal),
    /// The ledger would not take the transaction.
    #[error("the ledger did not accept the transaction: {0}")]
    Failed(String),
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
}

/// An accepted request: journalled and handed to the ledger.
pub struct Ticket {
    pub job: i64,
    pub tx_hash: B256,
    /// Resolves when the transaction is mined (and durable).
    pub done: oneshot::Receiver<Result<Relayed, RelayError>>,
}

pub struct Relayer {
    inner: Arc<Inner>,
    commands: mpsc::UnboundedSender<Command>,
}

struct Inner {
    client: LedgerClient,
    wallet: Wallet,
    store: Mutex<JobStore>,
    simulations: tokio::sync::Semaphore,
    /// One lock per signer with requests in flight.
    signers: Mutex<HashMap<Address, Arc<tokio::sync::Mutex<()>>>>,
}

type Done = oneshot::Sender<Result<Relayed, RelayError>>;
type Reply = oneshot::Sender<Result<Sent, RelayError>>;
/// A request in a transaction: the acknowledgement it waits for, and the
/// receiving end of its outcome (handed over with the acknowledgement).
type Waiting = (Request, Reply, oneshot::Receiver<Result<Relayed, RelayError>>);

enum Command {
    Send { request: Request, gas_limit: u64, reply: Reply },
    Settle(Vec<(i64, JobStatus)>),
}

/// A request handed to the ledger; `done` says how it ended.
struct Sent {
    job: i64,
    tx_hash: B256,
    done: oneshot::Receiver<Result<Relayed, RelayError>>,
}

/// A journalled transaction on its way to the ledger: one call, or a bundle.
struct Outgoing {
    target: Target,
    /// The requests it carries, in call order.
    jobs: Vec<OutJob>,
    bundled: bool,
    gas_limit: u64,
    nonce: u64,
    raw: Vec<u8>,
    hash: B256,
    /// The transaction as signed here, when it was (not when read back from
    /// the journal): the ledger need not recover its sender.
    signed: Option<TxEnvelope>,
}

struct OutJob {
    id: i64,
    input: Bytes,
    /// Who waits for the outcome (nobody, for a job recovered from the journal).
    done: Option<Done>,
    /// A recovered job holds its signer's turn until it is settled, so the
    /// signer's next request is simulated after it.
    turn: Option<(Address, tokio::sync::OwnedMutexGuard<()>)>,
}

impl Outgoing {
    /// The transaction's input: the call itself, or `bundle(calls)`.
    fn input(&self) -> Bytes {
        if !self.bundled {
            return self.jobs[0].input.clone();
        }
        self.target.bundle(self.jobs.iter().map(|job| job.input.as_ref())).into()
    }

    fn fail(&mut self, error: &RelayError) {
        for job in &mut self.jobs {
            if let Some(done) = job.done.take() {
                let _ = done.send(Err(error.clone()));
            }
        }
    }

    /// Gives recovered jobs' signers their turn back.
    fn release(&mut self, inner: &Inner) {
        for job in &mut self.jobs {
            if let Some((signer, turn)) = job.turn.take() {
                drop(turn);
                inner.forget_signer(signer);
            }
        }
    }
}

impl Relayer {
    /// Opens the journal at `journal` and resends what was accepted but not
    /// seen mined; then starts relaying. Needs a Tokio runtime.
    pub async fn start(client: LedgerClient, wallet: Wallet, journal: &Path) -> Result<Self, RelayError> {
        let store = JobStore::open(journal).map_err(unavailable)?;
        let simulations = match client {
            LedgerClient::Embedded(_) => SIMULATIONS,
            LedgerClient::Remote(_) => REMOTE_SIMULATIONS,
        };
        let inner = Arc::new(Inner {
            client,
            wallet,
            store: Mutex::new(store),
            simulations: tokio::sync::Semaphore::new(simulations),
            signers: Mutex::new(HashMap::new()),
        });
        let (commands, receiver) = mpsc::unbounded_channel();
        // From the last mined nonce: a journalled transaction still waiting
        // in an external node's pool keeps its nonce and is sent again as is.
        let next_nonce = resynchronise(&inner, &commands).await?;
        tokio::spawn(work(Arc::clone(&inner), receiver, commands.clone(), next_nonce));
        Ok(Self { inner, commands })
    }

    pub fn address(&self) -> Address {
        self.inner.wallet.address()
    }

    pub fn client(&self) -> &LedgerClient {
        &self.inner.client
    }

    /// Relays `request` and waits until it is mined.
    pub async fn relay(&self, request: Request) -> Result<Relayed, RelayError> {
        let ticket = self.submit(request).await?;
        ticket.done.await.unwrap_or_else(|_| Err(RelayError::Unavailable("the relayer stopped".into())))
    }

    /// Checks `request` against the latest state, then journals it and hands
    /// it to the ledger. `Ok` is the acknowledgement: from here the request
    /// survives a crash. A refusal is returned without anything relayed.
    pub async fn submit(&self, request: Request) -> Result<Ticket, RelayError> {
        let (inner, commands) = (Arc::clone(&self.inner), self.commands.clone());
        let (ticket_tx, ticket) = oneshot::channel();
        // One task per request: it holds the signer's turn until the request
        // is settled, even when the caller stops waiting.
        tokio::spawn(async move {
            let signer = request.signer;
            let turn = inner.signer_lock(signer).lock_owned().await;
            match accept(&inner, &commands, request).await {
                Err(e) => {
                    drop(turn);
                    inner.forget_signer(signer);
                    let _ = ticket_tx.send(Err(e));
                }
                Ok(Sent { job, tx_hash, done }) => {
                    let (done_tx, done_rx) = oneshot::channel();
                    let _ = ticket_tx.send(Ok(Ticket { job, tx_hash, done: done_rx }));
                    let result = done.await.unwrap_or_else(|_| Err(stopped()));
                    // The signer's next request may go once this one is mined.
                    drop(turn);
                    inner.forget_signer(signer);
                    let _ = done_tx.send(result);
                }
            }
        });
        ticket.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// A job's state, checked against the ledger while it is in flight
    /// (a settled job's state is the journal's, with its refusal's code).
    pub async fn job(&self, id: i64) -> Result<Option<Job>, RelayError> {
        let Some(mut job) = self.journalled(id).await? else { return Ok(None) };
        if job.status != JobStatus::Sent {
            return Ok(Some(job));
        }
        if let Some((outcome, result, _)) = self.mined(&job).await? {
            job.status = status_of(&outcome, &result);
        }
        Ok(Some(job))
    }

    /// Job `id` as the journal holds it, without asking the ledger.
    pub async fn journalled(&self, id: i64) -> Result<Option<Job>, RelayError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.store().job(id))
            .await
            .map_err(|e| RelayError::Unavailable(e.to_string()))?
            .map_err(unavailable)
    }

    /// The newest journalled job whose call input hashes (keccak256) to
    /// `input_hash`: whether a request was accepted, found again after a
    /// crash.
    pub async fn find(&self, input_hash: B256) -> Result<Option<i64>, RelayError> {
        let (inner, hash) = (Arc::clone(&self.inner), input_hash);
        tokio::task::spawn_blocking(move || inner.store().find(hash))
            .await
            .map_err(|e| RelayError::Unavailable(e.to_string()))?
            .map_err(unavailable)
    }

    /// How job `id` ended, as [`Ticket::done`] would have said: `None`
    /// while it is still on its way (or unknown), so that work a crash cut
    /// off from its ticket can wait for the same answer.
    pub async fn outcome(&self, id: i64) -> Result<Option<Result<Relayed, RelayError>>, RelayError> {
        let Some(job) = self.journalled(id).await? else { return Ok(None) };
        if let JobStatus::Failed { error } = job.status {
            return Ok(Some(Err(RelayError::Failed(error))));
        }
        let Some((outcome, result, calls)) = self.mined(&job).await? else { return Ok(None) };
        Ok(Some(match result {
            Ok(logs) => Ok(Relayed {
                job: id,
                tx_hash: outcome.hash,
                block_number: outcome.block_number,
                tx_gas_used: outcome.gas_used,
                calls_in_tx: calls as u32,
                logs,
            }),
            Err(refusal) => Err(RelayError::Refused(refusal)),
        }))
    }

    /// Once `job`'s transaction is mined (and the job did not fail before
    /// the ledger took it): the transaction's outcome with what this job's
    /// call did in it.
    async fn mined(&self, job: &Job) -> Result<Option<Mined>, RelayError> {
        if matches!(job.status, JobStatus::Failed { .. }) {
            return Ok(None);
        }
        let Some(outcome) = self.inner.client.outcome(job.sent.tx_hash).await.map_err(from_client)? else {
            return Ok(None);
        };
        let target = target_of(&self.inner.client, job.sent.target);
        let calls = match job.sent.bundle_index {
            Some(_) => {
                let inner = Arc::clone(&self.inner);
                let hash = job.sent.tx_hash;
                tokio::task::spawn_blocking(move || inner.store().jobs_of(hash))
                    .await
                    .map_err(|e| RelayError::Unavailable(e.to_string()))?
                    .map_err(unavailable)?
                    .len()
            }
            None => 1,
        };
        let index = job.sent.bundle_index.unwrap_or(0) as usize;
        let mut results = attribute(&outcome, target, job.sent.bundle_index.is_some(), calls);
        if index >= results.len() {
            return Ok(None);
        }
        let result = results.swap_remove(index);
        Ok(Some((outcome, result, calls)))
    }
}

/// A mined transaction's outcome, what one call in it did, and how many
/// calls it carried.
type Mined = (Outcome, Result<Vec<Log>, Refusal>, usize);

fn stopped() -> RelayError {
    RelayError::Unavailable("the relayer stopped".into())
}

/// Simulates, then has the worker journal and send.
async fn accept(
    inner: &Inner,
    commands: &mpsc::UnboundedSender<Command>,
    request: Request,
) -> Result<Sent, RelayError> {
    let gas_used = preflight(inner, &request).await?;
    // Room for state that changed since the simulation.
    let gas_limit = (gas_used + gas_used / 5 + 10_000).min(TX_GAS_CAP);
    let (reply, sent) = oneshot::channel();
    commands.send(Command::Send { request, gas_limit, reply }).map_err(|_| stopped())?;
    sent.await.unwrap_or_else(|_| Err(stopped()))
}

/// The gas `request` uses now, or the contract's refusal.
async fn preflight(inner: &Inner, request: &Request) -> Result<u64, RelayError> {
    let call = CallRequest {
        from: Some(inner.wallet.address()),
        to: Some(request.target.address(&inner.client.contracts())),
        data: request.input.clone(),
        ..Default::default()
    };
    let _slot = inner.simulations.acquire().await.map_err(|_| stopped())?;
    match inner.client.simulate(call).await {
        Ok(gas) => Ok(gas),
        Err(ClientError::Reverted(data)) => Err(RelayError::Refused(Refusal::decode(request.target.artifact(), &data))),
        Err(e) => Err(from_client(e)),
    }
}

impl Inner {
    fn store(&self) -> MutexGuard<'_, JobStore> {
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn signers(&self) -> MutexGuard<'_, HashMap<Address, Arc<tokio::sync::Mutex<()>>>> {
        self.signers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn signer_lock(&self, signer: Address) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(self.signers().entry(signer).or_default())
    }

    /// Drops a signer's lock once no request of theirs holds or awaits it.
    fn forget_signer(&self, signer: Address) {
        let mut signers = self.signers();
        if signers.get(&signer).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            signers.remove(&signer);
        }
    }

    /// Signs `tx` with relayer nonce `nonce`.
    fn sign(&self, fees: (u128, u128), nonce: u64, tx: &mut Outgoing) {
        let fees = Fees { gas_limit: tx.gas_limit, max_fee_per_gas: fees.0, max_priority_fee_per_gas: fees.1 };
        let target = tx.target.address(&self.client.contracts());
        let envelope = self.wallet.sign(self.client.chain_id(), nonce, Some(target), tx.input(), fees);
        tx.raw = envelope.encoded_2718();
        tx.hash = *envelope.tx_hash();
        tx.nonce = nonce;
        tx.signed = Some(envelope);
    }

    /// Hands `tx` to the ledger with relayer nonce `*next`, re-signing it
    /// (and re-journalling) when it was signed with another nonce, or when the
    /// ledger says the nonce is taken. Advances `*next` when the ledger takes it.
    async fn send(&self, tx: &mut Outgoing, next: &mut u64) -> Result<Submitted, RelayError> {
        let mut unreachable = 0u32;
        let mut attempt = 0;
        while attempt < 2 {
            if tx.nonce != *next {
                let fees = self.client.fees().await.map_err(from_client)?;
                let old = tx.hash;
                self.sign(fees, *next, tx);
                self.store().resign(old, tx.nonce, &tx.raw, tx.hash).map_err(unavailable)?;
            }
            let submitted = match tx.signed.take() {
                Some(envelope) => self.client.submit_signed_by(envelope, self.wallet.address()).await,
                None => self.client.submit(&tx.raw).await,
            };
            match submitted {
                Ok(submitted) => {
                    *next += 1;
                    return Ok(submitted);
                }
                // Taken: by this very transaction (sent before a crash, or by a
                // send whose answer was lost), or by another one.
                Err(ClientError::Rejected(why)) if why.starts_with("nonce too low") => {
                    if self.client.outcome(tx.hash).await.map_err(from_client)?.is_some() {
                        *next += 1;
                        return Ok(Submitted::Remote);
                    }
                    if attempt > 0 {
                        return Err(RelayError::Failed(why));
                    }
                    tracing::warn!(tx = %tx.hash, %why, "relayer nonce taken by another transaction; re-signing");
                    *next = self.client.pending_nonce(self.wallet.address()).await.map_err(from_client)?;
                    attempt += 1;
                }
                Err(ClientError::Rejected(why)) if why.starts_with("nonce too high") && attempt == 0 => {
                    tracing::warn!(tx = %tx.hash, %why, "relayer nonce out of step; re-signing");
                    *next = self.client.pending_nonce(self.wallet.address()).await.map_err(from_client)?;
                    attempt += 1;
                }
                Err(ClientError::Rejected(why)) => return Err(RelayError::Failed(why)),
                // No answer: the same bytes again (sending twice is harmless),
                // a few times, then give up for now (the job stays journalled).
                Err(ClientError::Unavailable(why)) if unreachable < SEND_RETRIES => {
                    unreachable += 1;
                    tracing::warn!(tx = %tx.hash, %why, unreachable, "the ledger did not answer; sending again");
                    tokio::time::sleep(std::time::Duration::from_millis(250 << unreachable)).await;
                }
                Err(e) => return Err(from_client(e)),
            }
        }
        Err(RelayError::Failed("the relayer's nonce could not be agreed with the ledger".into()))
    }

    /// Sends `tx` and, in the background, waits for it and settles its
    /// jobs; or fails them at once when the ledger refuses it. When the
    /// ledger cannot be reached the jobs stay journalled as sent, and the
    /// relayer resynchronises (journal and nonce) before its next round.
    /// Returns whether that is needed.
    async fn dispatch(
        self: &Arc<Self>,
        mut tx: Outgoing,
        next: &mut u64,
        commands: &mpsc::UnboundedSender<Command>,
    ) -> bool {
        match self.send(&mut tx, next).await {
            Ok(submitted) => {
                let (inner, commands) = (Arc::clone(self), commands.clone());
                tokio::spawn(async move { finish(&inner, &commands, tx, submitted).await });
                false
            }
            Err(e @ RelayError::Unavailable(_)) => {
                tracing::warn!(tx = %tx.hash, error = %e, "the ledger is unreachable; the request stays journalled");
                tx.release(self);
                tx.fail(&e);
                true
            }
            Err(e) => {
                tracing::warn!(tx = %tx.hash, error = %e, "the ledger did not take a relayed transaction");
                let failed: Vec<(i64, JobStatus)> =
                    tx.jobs.iter().map(|job| (job.id, JobStatus::Failed { error: e.to_string() })).collect();
                if let Err(e) = self.store().settle(&failed) {
                    tracing::error!(error = %e, "relayer journal: recording a failure failed");
                }
                tx.release(self);
                tx.fail(&e);
                false
            }
        }
    }
}

fn unavailable(e: StoreError) -> RelayError {
    RelayError::Unavailable(format!("relayer journal: {e}"))
}

fn from_client(e: ClientError) -> RelayError {
    match e {
        ClientError::Reverted(_) => RelayError::Failed("execution reverted".into()),
        ClientError::Rejected(why) => RelayError::Failed(why),
        ClientError::Unavailable(why) => RelayError::Unavailable(why),
    }
}

#[cfg(test)]
mod tests;
