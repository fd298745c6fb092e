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

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Log, U256};
use tokio::sync::{mpsc, oneshot};

pub use store::{Job, JobStatus, JobStore, NewJob};

use crate::artifacts;
use crate::artifacts::encode_call;
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
/// Simulations run at once: more only contend for the ledger's state (and
/// starve the miner of it).
const SIMULATIONS: usize = 4;

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
        let calls = ethers_core::abi::Token::Array(
            self.jobs.iter().map(|job| ethers_core::abi::Token::Bytes(job.input.to_vec())).collect(),
        );
        encode_call(&self.target.artifact().abi, "bundle", &[calls]).expect("bundle takes bytes[]").into()
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
        let inner = Arc::new(Inner {
            client,
            wallet,
            store: Mutex::new(store),
            simulations: tokio::sync::Semaphore::new(SIMULATIONS),
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
        let Some(outcome) = self.inner.client.outcome(job.tx_hash).await.map_err(from_client)? else {
            return Ok(None);
        };
        let target = target_of(&self.inner.client, job.target);
        let calls = match job.bundle_index {
            Some(_) => {
                let inner = Arc::clone(&self.inner);
                let hash = job.tx_hash;
                tokio::task::spawn_blocking(move || inner.store().jobs_of(hash))
                    .await
                    .map_err(|e| RelayError::Unavailable(e.to_string()))?
                    .map_err(unavailable)?
                    .len()
            }
            None => 1,
        };
        let index = job.bundle_index.unwrap_or(0) as usize;
        let mut results = attribute(&outcome, target, job.bundle_index.is_some(), calls);
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

/// Resends the journal from the last mined nonce; the nonce new work starts at.
async fn resynchronise(inner: &Arc<Inner>, commands: &mpsc::UnboundedSender<Command>) -> Result<u64, RelayError> {
    let address = inner.wallet.address();
    let mut next = inner.client.nonce(address).await.map_err(from_client)?;
    recover(inner, commands, &mut next).await?;
    Ok(next.max(inner.client.pending_nonce(address).await.map_err(from_client)?))
}

/// Resends what the journal holds as sent but the ledger has not mined.
async fn recover(
    inner: &Arc<Inner>,
    commands: &mpsc::UnboundedSender<Command>,
    next: &mut u64,
) -> Result<(), RelayError> {
    let unsettled = inner.store().unsettled().map_err(unavailable)?;
    if unsettled.is_empty() {
        return Ok(());
    }
    // The transactions, in nonce order, each with its jobs in call order.
    let mut transactions: Vec<Vec<Job>> = Vec::new();
    for job in unsettled {
        match transactions.last_mut() {
            Some(jobs) if jobs[0].tx_hash == job.tx_hash => jobs.push(job),
            _ => transactions.push(vec![job]),
        }
    }
    let (mut resent, mut settled) = (0usize, 0usize);
    for jobs in transactions {
        let first = &jobs[0];
        let target = target_of(&inner.client, first.target);
        let bundled = first.bundle_index.is_some();
        if let Some(outcome) = inner.client.outcome(first.tx_hash).await.map_err(from_client)? {
            let statuses = attribute(&outcome, target, bundled, jobs.len())
                .into_iter()
                .zip(&jobs)
                .map(|(result, job)| (job.id, status_of(&outcome, &result)))
                .collect::<Vec<_>>();
            inner.store().settle(&statuses).map_err(unavailable)?;
            settled += jobs.len();
            continue;
        }
        let tx = Outgoing {
            target,
            bundled,
            gas_limit: if bundled { jobs.iter().map(|j| j.gas_limit).sum() } else { first.gas_limit },
            nonce: first.relayer_nonce,
            raw: first.raw.clone(),
            hash: first.tx_hash,
            signed: None,
            jobs: jobs
                .iter()
                .map(|j| OutJob {
                    id: j.id,
                    input: Bytes::from(j.input.clone()),
                    done: None,
                    turn: inner.signer_lock(j.signer).try_lock_owned().ok().map(|turn| (j.signer, turn)),
                })
                .collect(),
        };
        resent += 1;
        if inner.dispatch(tx, next, commands).await {
            return Err(RelayError::Unavailable("the ledger is unreachable".into()));
        }
    }
    tracing::info!(resent, settled, "relayer recovered its journal");
    Ok(())
}

fn target_of(client: &LedgerClient, address: Address) -> Target {
    if address == client.contracts().directory { Target::Directory } else { Target::Records }
}

fn status_of(outcome: &Outcome, result: &Result<Vec<Log>, Refusal>) -> JobStatus {
    match result {
        Ok(_) => JobStatus::Mined { block_number: outcome.block_number },
        Err(refusal) => JobStatus::Reverted { block_number: outcome.block_number, error: refusal.code.clone() },
    }
}

/// What each of a transaction's `calls` did: its events, or the
/// contract's refusal. A bundle reports a call that reverted in a
/// `BundledCallReverted(index, reason)` event; every other call emits its
/// own events, in call order (one each, for Chartkey's contracts: when the
/// count does not allow telling them apart, each gets all of them).
fn attribute(outcome: &Outcome, target: Target, bundled: bool, calls: usize) -> Vec<Result<Vec<Log>, Refusal>> {
    let reverted = || Refusal { code: "Reverted".into(), message: "The ledger refused this.".into() };
    if !outcome.success {
        return vec![Err(reverted()); calls];
    }
    if !bundled {
        return vec![Ok(outcome.logs.clone())];
    }
    let event = bundled_call_reverted();
    let mut failures = BTreeMap::new();
    let mut others = Vec::new();
    for log in &outcome.logs {
        let topics = log.data.topics();
        if topics.first() == Some(&event) && topics.len() == 2 {
            let index = U256::from_be_bytes(topics[1].0);
            let reason = ethers_core::abi::decode(&[ethers_core::abi::ParamType::Bytes], &log.data.data)
                .ok()
                .and_then(|tokens| tokens.into_iter().next())
                .and_then(|token| token.into_bytes())
                .unwrap_or_default();
            if let Ok(index) = usize::try_from(index) {
                failures.insert(index, Refusal::decode(target.artifact(), &reason));
            }
        } else {
            others.push(log.clone());
        }
    }
    let one_each = others.len() + failures.len() == calls;
    let mut others = others.into_iter();
    (0..calls)
        .map(|index| match failures.remove(&index) {
            Some(refusal) => Err(refusal),
            None if one_each => Ok(others.next().into_iter().collect()),
            None => Ok(outcome.logs.clone()),
        })
        .collect()
}

fn bundled_call_reverted() -> B256 {
    let event = artifacts::records().abi.event("BundledCallReverted").expect("the contracts report bundle failures");
    B256::from(event.signature().0)
}

/// Waits for a sent transaction's block, records the outcome of each job it
/// carries and tells whoever waits. A call sent alone that reverted is
/// simulated again for its reason (receipts carry none); a bundle's events
/// carry each failed call's reason.
async fn finish(inner: &Inner, commands: &mpsc::UnboundedSender<Command>, mut tx: Outgoing, submitted: Submitted) {
    let outcome = match inner.client.confirm(tx.hash, submitted).await {
        Ok(outcome) => outcome,
        // Still journalled as sent: a restart settles it.
        Err(e) => {
            tx.release(inner);
            return tx.fail(&from_client(e));
        }
    };
    let mut results = attribute(&outcome, tx.target, tx.bundled, tx.jobs.len());
    if !tx.bundled && !outcome.success {
        let call = CallRequest {
            from: Some(inner.wallet.address()),
            to: Some(tx.target.address(&inner.client.contracts())),
            data: tx.jobs[0].input.clone(),
            ..Default::default()
        };
        if let Err(ClientError::Reverted(data)) = inner.client.call(call).await {
            results = vec![Err(Refusal::decode(tx.target.artifact(), &data))];
        }
    }
    let statuses = tx.jobs.iter().zip(&results).map(|(job, result)| (job.id, status_of(&outcome, result))).collect();
    let _ = commands.send(Command::Settle(statuses));
    tx.release(inner);
    let calls_in_tx = tx.jobs.len() as u32;
    for (job, result) in tx.jobs.iter_mut().zip(results) {
        let Some(done) = job.done.take() else { continue };
        let _ = done.send(match result {
            Ok(logs) => Ok(Relayed {
                job: job.id,
                tx_hash: tx.hash,
                block_number: outcome.block_number,
                tx_gas_used: outcome.gas_used,
                calls_in_tx,
                logs,
            }),
            Err(refusal) => Err(RelayError::Refused(refusal)),
        });
    }
}

/// Groups requests into transactions: each contract's calls in bundles of at
/// most [`MAX_BUNDLE`] calls and [`MAX_BUNDLE_GAS`]; a lone call as itself.
fn group(sends: Vec<(Request, u64, Reply)>) -> Vec<(Outgoing, Vec<Waiting>)> {
    let mut groups: Vec<(Outgoing, Vec<Waiting>)> = Vec::new();
    for (request, gas_limit, reply) in sends {
        let open = groups.iter().position(|(tx, _)| {
            tx.target == request.target && tx.jobs.len() < MAX_BUNDLE && tx.gas_limit + gas_limit <= MAX_BUNDLE_GAS
        });
        let index = match open {
            Some(index) => index,
            None => {
                groups.push((
                    Outgoing {
                        target: request.target,
                        jobs: Vec::new(),
                        bundled: false,
                        gas_limit: 0,
                        nonce: 0,
                        raw: Vec::new(),
                        hash: B256::ZERO,
                        signed: None,
                    },
                    Vec::new(),
                ));
                groups.len() - 1
            }
        };
        let (tx, requests) = &mut groups[index];
        let (done, waiting) = oneshot::channel();
        tx.gas_limit += gas_limit;
        tx.jobs.push(OutJob { id: 0, input: request.input.clone(), done: Some(done), turn: None });
        requests.push((request, reply, waiting));
    }
    for (tx, _) in &mut groups {
        tx.bundled = tx.jobs.len() > 1;
        if tx.bundled {
            // The bundle's own loop and copies, on top of its calls.
            tx.gas_limit = (tx.gas_limit + 5_000 + 3_000 * tx.jobs.len() as u64).min(TX_GAS_CAP);
        }
    }
    groups
}

/// The one task that signs, journals and sends: consecutive relayer nonces,
/// one commit for everything that queued up meanwhile.
async fn work(
    inner: Arc<Inner>,
    mut receiver: mpsc::UnboundedReceiver<Command>,
    commands: mpsc::UnboundedSender<Command>,
    mut next: u64,
) {
    let mut resync = false;
    while let Some(first) = receiver.recv().await {
        let mut sends = Vec::new();
        let mut settles = Vec::new();
        let mut next_command = Some(first);
        while let Some(command) = next_command {
            match command {
                Command::Send { request, gas_limit, reply } => sends.push((request, gas_limit, reply)),
                Command::Settle(statuses) => settles.extend(statuses),
            }
            next_command = if sends.len() < MAX_BATCH { receiver.try_recv().ok() } else { None };
        }
        if !settles.is_empty() {
            let inner = Arc::clone(&inner);
            let result = tokio::task::spawn_blocking(move || inner.store().settle(&settles)).await;
            if let Ok(Err(e)) = result {
                tracing::error!(error = %e, "relayer journal: recording outcomes failed");
            }
        }
        if sends.is_empty() {
            continue;
        }
        if resync {
            // The ledger did not answer earlier: resend the journal (in nonce
            // order, from the last mined nonce) before anything new.
            match resynchronise(&inner, &commands).await {
                Ok(nonce) => {
                    next = nonce;
                    resync = false;
                }
                Err(e) => {
                    for (_, _, reply) in sends {
                        let _ = reply.send(Err(e.clone()));
                    }
                    continue;
                }
            }
        }
        let fees = match inner.client.fees().await {
            Ok(fees) => fees,
            Err(e) => {
                let e = from_client(e);
                for (_, _, reply) in sends {
                    let _ = reply.send(Err(e.clone()));
                }
                continue;
            }
        };
        let mut groups = group(sends);
        for (i, (tx, _)) in groups.iter_mut().enumerate() {
            inner.sign(fees, next + i as u64, tx);
        }
        let contracts = inner.client.contracts();
        let new_jobs: Vec<NewJob> = groups
            .iter()
            .flat_map(|(tx, requests)| {
                requests.iter().zip(&tx.jobs).enumerate().map(move |(index, ((request, _, _), job))| NewJob {
                    function: request.function.to_owned(),
                    signer: request.signer,
                    target: tx.target.address(&contracts),
                    input: job.input.to_vec(),
                    gas_limit: tx.gas_limit.min(request_gas(tx, index)),
                    relayer_nonce: tx.nonce,
                    raw: tx.raw.clone(),
                    tx_hash: tx.hash,
                    bundle_index: tx.bundled.then_some(index as u32),
                })
            })
            .collect();
        let journal = Arc::clone(&inner);
        let ids = match tokio::task::spawn_blocking(move || journal.store().insert(&new_jobs)).await {
            Ok(Ok(ids)) => ids,
            failure => {
                let e = match failure {
                    Ok(Err(e)) => unavailable(e),
                    Err(e) => RelayError::Unavailable(e.to_string()),
                    Ok(Ok(_)) => unreachable!(),
                };
                tracing::error!(error = %e, "relayer journal: storing requests failed");
                for (_, requests) in groups {
                    for (_, reply, _) in requests {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
                continue;
            }
        };
        let mut ids = ids.into_iter();
        for (mut tx, requests) in groups {
            for job in &mut tx.jobs {
                job.id = ids.next().unwrap_or_default();
            }
            // Acknowledged: journalled. The ledger's answer comes through `done`.
            for ((_, reply, done), job) in requests.into_iter().zip(&tx.jobs) {
                let _ = reply.send(Ok(Sent { job: job.id, tx_hash: tx.hash, done }));
            }
            if resync {
                // Journalled; sent by the resynchronisation, in nonce order.
                tx.fail(&RelayError::Unavailable("the ledger is unreachable; the request is kept".into()));
                continue;
            }
            resync = inner.dispatch(tx, &mut next, &commands).await;
        }
    }
}

/// The gas limit journalled for call `index` of `tx` (its share, so a
/// bundle rebuilt from the journal asks for the same total).
fn request_gas(tx: &Outgoing, index: usize) -> u64 {
    let calls = tx.jobs.len() as u64;
    let share = tx.gas_limit / calls;
    if index == 0 { tx.gas_limit - share * (calls - 1) } else { share }
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
mod tests {
    use alloy_primitives::LogData;

    use super::*;

    fn request(target: Target, byte: u8) -> (Request, u64, Reply) {
        let request = Request { function: "f", signer: Address::repeat_byte(byte), target, input: vec![byte].into() };
        (request, 100_000, oneshot::channel().0)
    }

    #[test]
    fn calls_to_one_contract_share_a_transaction() {
        let sends = vec![
            request(Target::Records, 1),
            request(Target::Directory, 2),
            request(Target::Records, 3),
            request(Target::Records, 4),
        ];
        let groups = group(sends);
        assert_eq!(groups.len(), 2);
        let (records, directory) = (&groups[0].0, &groups[1].0);
        assert!(records.bundled && !directory.bundled, "a lone call goes as itself");
        let inputs: Vec<u8> = records.jobs.iter().map(|job| job.input[0]).collect();
        assert_eq!(inputs, [1, 3, 4], "in arrival order");
        assert!(records.gas_limit > 300_000, "the calls' gas and the bundle's own");
        assert_eq!(directory.input(), Bytes::from(vec![2]));
        let bundle = artifacts::records().abi.function("bundle").unwrap();
        assert_eq!(records.input()[..4], bundle.short_signature());

        let many: Vec<_> = (0..(MAX_BUNDLE + 1) as u32).map(|i| request(Target::Records, i as u8)).collect();
        let groups = group(many);
        assert_eq!(groups.iter().map(|(tx, _)| tx.jobs.len()).collect::<Vec<_>>(), [MAX_BUNDLE, 1]);
        let heavy: Vec<_> =
            (0..3).map(|i| (request(Target::Records, i).0, MAX_BUNDLE_GAS / 2, oneshot::channel().0)).collect();
        assert_eq!(group(heavy).len(), 2, "a bundle stays under its gas cap");
    }

    fn log(topics: Vec<B256>, data: Vec<u8>) -> Log {
        Log { address: Address::ZERO, data: LogData::new(topics, data.into()).unwrap() }
    }

    #[test]
    fn a_bundles_events_are_told_apart() {
        let event = |byte| log(vec![B256::repeat_byte(byte)], vec![]);
        let revert = artifacts::records()
            .abi
            .error("RecordExists")
            .unwrap()
            .encode(&[ethers_core::abi::Token::FixedBytes(vec![7; 32])])
            .unwrap();
        let failed = log(
            vec![bundled_call_reverted(), B256::from(U256::from(1u8))],
            ethers_core::abi::encode(&[ethers_core::abi::Token::Bytes(revert)]),
        );
        let outcome = |logs| Outcome {
            hash: B256::ZERO,
            block_number: 3,
            success: true,
            gas_used: 1,
            logs,
            contract_address: None,
        };
        let results = attribute(&outcome(vec![event(1), failed.clone(), event(3)]), Target::Records, true, 3);
        assert_eq!(results[0], Ok(vec![event(1)]));
        assert_eq!(results[1].as_ref().unwrap_err().code, "RecordExists");
        assert_eq!(results[2], Ok(vec![event(3)]));
        // Events that cannot be told apart go to every call that succeeded.
        let all = vec![event(1), event(2), failed, event(3)];
        let results = attribute(&outcome(all.clone()), Target::Records, true, 3);
        assert_eq!((&results[0], &results[2]), (&Ok(all.clone()), &Ok(all)));
        assert!(results[1].is_err());
        // A transaction that failed as a whole fails every call.
        let whole = Outcome { success: false, ..outcome(vec![]) };
        assert!(attribute(&whole, Target::Records, true, 2).iter().all(|r| r.as_ref().unwrap_err().code == "Reverted"));
        assert_eq!(attribute(&outcome(vec![event(9)]), Target::Records, false, 1), vec![Ok(vec![event(9)])]);
    }
}
