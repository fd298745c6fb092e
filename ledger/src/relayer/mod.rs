//! The relayer: turns a signed EIP-712 message into a transaction the
//! server's key pays for, and sees it mined.
//!
//! For each request: the contract call is simulated first, so a refusal
//! (a bad signature, an expired grant…) comes back at once, in words, and
//! costs nothing. Then one worker signs transactions with consecutive
//! relayer nonces, journals each with its exact bytes in SQLite (one fsync
//! for all requests that arrived together) and only then hands them to the
//! ledger and acknowledges them. Requests from one signer run one after the
//! other (their message nonces are consecutive); requests from different
//! signers share blocks. On start, every journalled transaction not seen
//! mined is sent again, byte for byte (re-signed only when its relayer nonce
//! was taken by something else), so an accepted request survives a crash
//! and is never relayed twice.

mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Log};
use tokio::sync::{mpsc, oneshot};

pub use store::{Job, JobStatus, JobStore, NewJob};

use crate::calls::{self, SignedCall, Target};
use crate::client::{ClientError, LedgerClient, Outcome, Submitted};
use crate::node::{CallRequest, Fees, StoreError, TX_GAS_CAP, Wallet};
use crate::refusal::Refusal;

/// Most requests signed and journalled in one commit.
const MAX_BATCH: usize = 512;
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
            signer: Address::from(message.signer().0),
            target: M::TARGET,
            input: Bytes::from(calls::input(message, signature)),
        }
    }
}

/// A relayed request, mined with success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub job: i64,
    pub tx_hash: B256,
    pub block_number: u64,
    pub gas_used: u64,
    pub logs: Vec<Log>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The contract refused the message (nothing was relayed, or the
    /// transaction reverted).
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

type Reply = oneshot::Sender<Result<Sent, RelayError>>;

enum Command {
    Send { request: Request, gas_limit: u64, reply: Reply },
    Settle(i64, JobStatus),
}

struct Sent {
    job: i64,
    tx_hash: B256,
    submitted: Submitted,
}

/// A journalled job on its way to the ledger.
struct Outgoing {
    id: i64,
    target: Address,
    input: Bytes,
    gas_limit: u64,
    nonce: u64,
    raw: Vec<u8>,
    hash: B256,
    /// The transaction as signed here, when it was (not when read back from
    /// the journal): the ledger need not recover its sender.
    signed: Option<TxEnvelope>,
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
        let mut next_nonce = inner.client.pending_nonce(inner.wallet.address()).await.map_err(from_client)?;
        recover(&inner, &commands, &mut next_nonce).await?;
        tokio::spawn(work(Arc::clone(&inner), receiver, next_nonce));
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
        let signer = request.signer;
        let turn = self.inner.signer_lock(signer).lock_owned().await;
        let (target, input) = (request.target, request.input.clone());
        let Sent { job, tx_hash, submitted } = match self.accept(request).await {
            Ok(sent) => sent,
            Err(e) => {
                drop(turn);
                self.inner.forget_signer(signer);
                return Err(e);
            }
        };
        let (done_tx, done) = oneshot::channel();
        let inner = Arc::clone(&self.inner);
        let commands = self.commands.clone();
        tokio::spawn(async move {
            let result = finish(&inner, &commands, job, tx_hash, submitted, target, input).await;
            drop(turn);
            inner.forget_signer(signer);
            let _ = done_tx.send(result);
        });
        Ok(Ticket { job, tx_hash, done })
    }

    /// Simulates, then has the worker journal and send.
    async fn accept(&self, request: Request) -> Result<Sent, RelayError> {
        let gas_used = self.preflight(&request).await?;
        // Room for state that changed since the simulation.
        let gas_limit = (gas_used + gas_used / 5 + 10_000).min(TX_GAS_CAP);
        let (reply, sent) = oneshot::channel();
        self.commands
            .send(Command::Send { request, gas_limit, reply })
            .map_err(|_| RelayError::Unavailable("the relayer stopped".into()))?;
        sent.await.unwrap_or_else(|_| Err(RelayError::Unavailable("the relayer stopped".into())))
    }

    /// A job's state, checked against the ledger while it is in flight.
    pub async fn job(&self, id: i64) -> Result<Option<Job>, RelayError> {
        let inner = Arc::clone(&self.inner);
        let job = tokio::task::spawn_blocking(move || inner.store().job(id))
            .await
            .map_err(|e| RelayError::Unavailable(e.to_string()))?
            .map_err(unavailable)?;
        let Some(mut job) = job else { return Ok(None) };
        if job.status == JobStatus::Sent
            && let Some(outcome) = self.inner.client.outcome(job.tx_hash).await.map_err(from_client)?
        {
            job.status = if outcome.success {
                JobStatus::Mined { block_number: outcome.block_number }
            } else {
                JobStatus::Reverted { block_number: outcome.block_number, error: "reverted".into() }
            };
        }
        Ok(Some(job))
    }

    /// The gas `request` uses now, or the contract's refusal.
    async fn preflight(&self, request: &Request) -> Result<u64, RelayError> {
        let call = CallRequest {
            from: Some(self.inner.wallet.address()),
            to: Some(request.target.address(&self.inner.client.contracts())),
            data: request.input.clone(),
            ..Default::default()
        };
        let _slot = self
            .inner
            .simulations
            .acquire()
            .await
            .map_err(|_| RelayError::Unavailable("the relayer stopped".into()))?;
        match self.inner.client.simulate(call).await {
            Ok(gas) => Ok(gas),
            Err(ClientError::Reverted(data)) => {
                Err(RelayError::Refused(Refusal::decode(request.target.artifact(), &data)))
            }
            Err(e) => Err(from_client(e)),
        }
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

    fn sign(
        &self,
        fees: (u128, u128),
        nonce: u64,
        target: Address,
        input: &Bytes,
        gas_limit: u64,
    ) -> (TxEnvelope, Vec<u8>, B256) {
        let fees = Fees { gas_limit, max_fee_per_gas: fees.0, max_priority_fee_per_gas: fees.1 };
        let envelope = self.wallet.sign(self.client.chain_id(), nonce, Some(target), input.clone(), fees);
        let raw = envelope.encoded_2718();
        let hash = *envelope.tx_hash();
        (envelope, raw, hash)
    }

    /// Hands `job` to the ledger with relayer nonce `*next`, re-signing it
    /// (and re-journalling) when it was signed with another nonce, or when the
    /// ledger says the nonce is taken. Advances `*next` when the ledger takes it.
    async fn send(&self, job: &mut Outgoing, next: &mut u64) -> Result<Submitted, RelayError> {
        for attempt in 0..2 {
            if job.nonce != *next {
                let fees = self.client.fees().await.map_err(from_client)?;
                let (envelope, raw, hash) = self.sign(fees, *next, job.target, &job.input, job.gas_limit);
                (job.nonce, job.raw, job.hash, job.signed) = (*next, raw, hash, Some(envelope));
                self.store().resign(job.id, job.nonce, &job.raw, job.hash).map_err(unavailable)?;
            }
            let submitted = match job.signed.take() {
                Some(envelope) => self.client.submit_signed_by(envelope, self.wallet.address()).await,
                None => self.client.submit(&job.raw).await,
            };
            match submitted {
                Ok(submitted) => {
                    *next += 1;
                    return Ok(submitted);
                }
                Err(ClientError::Rejected(why)) if attempt == 0 && why.starts_with("nonce too") => {
                    tracing::warn!(job = job.id, %why, "relayer nonce out of step; re-signing");
                    *next = self.client.pending_nonce(self.wallet.address()).await.map_err(from_client)?;
                }
                Err(ClientError::Rejected(why)) => return Err(RelayError::Failed(why)),
                Err(e) => return Err(from_client(e)),
            }
        }
        Err(RelayError::Failed("the relayer's nonce could not be agreed with the ledger".into()))
    }
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
    let (mut resent, mut settled) = (0usize, 0usize);
    for job in unsettled {
        if let Some(outcome) = inner.client.outcome(job.tx_hash).await.map_err(from_client)? {
            inner.store().settle(&[(job.id, status_of(&outcome))]).map_err(unavailable)?;
            settled += 1;
            continue;
        }
        let mut outgoing = Outgoing {
            id: job.id,
            target: job.target,
            input: Bytes::from(job.input),
            gas_limit: job.gas_limit,
            nonce: job.relayer_nonce,
            raw: job.raw,
            hash: job.tx_hash,
            signed: None,
        };
        match inner.send(&mut outgoing, next).await {
            Ok(submitted) => {
                resent += 1;
                let (inner, commands) = (Arc::clone(inner), commands.clone());
                let target = target_of(&inner.client, outgoing.target);
                tokio::spawn(async move {
                    let _ =
                        finish(&inner, &commands, outgoing.id, outgoing.hash, submitted, target, outgoing.input).await;
                });
            }
            Err(RelayError::Unavailable(why)) => return Err(RelayError::Unavailable(why)),
            Err(e) => {
                tracing::warn!(job = job.id, error = %e, "a journalled request could not be resent");
                inner.store().settle(&[(job.id, JobStatus::Failed { error: e.to_string() })]).map_err(unavailable)?;
            }
        }
    }
    tracing::info!(resent, settled, "relayer recovered its journal");
    Ok(())
}

fn target_of(client: &LedgerClient, address: Address) -> Target {
    if address == client.contracts().directory { Target::Directory } else { Target::Records }
}

fn status_of(outcome: &Outcome) -> JobStatus {
    if outcome.success {
        JobStatus::Mined { block_number: outcome.block_number }
    } else {
        JobStatus::Reverted { block_number: outcome.block_number, error: "reverted on the ledger".into() }
    }
}

/// Waits for a sent job's block, records the outcome, and says why when the
/// contract reverted (by simulating the call again: receipts carry no reason).
async fn finish(
    inner: &Inner,
    commands: &mpsc::UnboundedSender<Command>,
    job: i64,
    tx_hash: B256,
    submitted: Submitted,
    target: Target,
    input: Bytes,
) -> Result<Relayed, RelayError> {
    let outcome = inner.client.confirm(tx_hash, submitted).await.map_err(from_client)?;
    if outcome.success {
        let _ = commands.send(Command::Settle(job, status_of(&outcome)));
        return Ok(Relayed {
            job,
            tx_hash,
            block_number: outcome.block_number,
            gas_used: outcome.gas_used,
            logs: outcome.logs,
        });
    }
    let call = CallRequest {
        from: Some(inner.wallet.address()),
        to: Some(target.address(&inner.client.contracts())),
        data: input,
        ..Default::default()
    };
    let refusal = match inner.client.call(call).await {
        Err(ClientError::Reverted(data)) => Refusal::decode(target.artifact(), &data),
        _ => Refusal { code: "Reverted".into(), message: "The ledger refused this.".into() },
    };
    let _ = commands.send(Command::Settle(
        job,
        JobStatus::Reverted { block_number: outcome.block_number, error: refusal.code.clone() },
    ));
    Err(RelayError::Refused(refusal))
}

/// The one task that signs, journals and sends: consecutive relayer nonces,
/// one commit for everything that queued up meanwhile.
async fn work(inner: Arc<Inner>, mut receiver: mpsc::UnboundedReceiver<Command>, mut next: u64) {
    while let Some(first) = receiver.recv().await {
        let mut sends = Vec::new();
        let mut settles = Vec::new();
        let mut next_command = Some(first);
        while let Some(command) = next_command {
            match command {
                Command::Send { request, gas_limit, reply } => sends.push((request, gas_limit, reply)),
                Command::Settle(id, status) => settles.push((id, status)),
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
        let failed = |sends: Vec<(Request, u64, Reply)>, e: RelayError| {
            for (_, _, reply) in sends {
                let _ = reply.send(Err(e.clone()));
            }
        };
        let fees = match inner.client.fees().await {
            Ok(fees) => fees,
            Err(e) => {
                failed(sends, from_client(e));
                continue;
            }
        };
        let contracts = inner.client.contracts();
        let mut outgoing: Vec<Outgoing> = sends
            .iter()
            .enumerate()
            .map(|(i, (request, gas_limit, _))| {
                let target = request.target.address(&contracts);
                let nonce = next + i as u64;
                let (envelope, raw, hash) = inner.sign(fees, nonce, target, &request.input, *gas_limit);
                let input = request.input.clone();
                Outgoing { id: 0, target, input, gas_limit: *gas_limit, nonce, raw, hash, signed: Some(envelope) }
            })
            .collect();
        let new_jobs: Vec<NewJob> = sends
            .iter()
            .zip(&outgoing)
            .map(|((request, _, _), job)| NewJob {
                function: request.function.to_owned(),
                signer: request.signer,
                target: job.target,
                input: job.input.to_vec(),
                gas_limit: job.gas_limit,
                relayer_nonce: job.nonce,
                raw: job.raw.clone(),
                tx_hash: job.hash,
            })
            .collect();
        let journal = Arc::clone(&inner);
        let ids = match tokio::task::spawn_blocking(move || journal.store().insert(&new_jobs)).await {
            Ok(Ok(ids)) => ids,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "relayer journal: storing requests failed");
                failed(sends, unavailable(e));
                continue;
            }
            Err(e) => {
                failed(sends, RelayError::Unavailable(e.to_string()));
                continue;
            }
        };
        for ((job, id), (_, _, reply)) in outgoing.iter_mut().zip(ids).zip(sends) {
            job.id = id;
            let result = match inner.send(job, &mut next).await {
                Ok(submitted) => Ok(Sent { job: id, tx_hash: job.hash, submitted }),
                Err(e) => {
                    let status = JobStatus::Failed { error: e.to_string() };
                    if let Err(e) = inner.store().settle(&[(id, status)]) {
                        tracing::error!(error = %e, "relayer journal: recording a failure failed");
                    }
                    Err(e)
                }
            };
            let _ = reply.send(result);
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
