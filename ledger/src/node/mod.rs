//! The embedded node: accepts signed Ethereum transactions, mines them into
//! blocks on revm, and keeps the chain durable in SQLite.
//!
//! - A submitted transaction is checked (signature, chain id, nonce, funds)
//!   and queued; the miner thread takes everything queued (up to the block gas
//!   limit) into one block, executes it, writes it with one fsync'd commit,
//!   and only then answers the submitters. While a block is being written new
//!   transactions queue up, so a busy node groups them into larger blocks.
//! - Opening a node re-executes the stored chain from genesis and checks every
//!   block (the same check as `chartkey ledger verify`), rebuilding the state
//!   in memory.

mod block;
mod genesis;
mod mined;
mod miner;
mod replay;
mod store;
mod upgrade;
mod wallet;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_consensus::{Header, ReceiptEnvelope, Transaction, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_rlp::Decodable;
use revm::context::TxEnv;
use revm::context_interface::result::{ExecutionResult, Output};
use revm::database::CacheDB;
use tokio::sync::oneshot;

pub use block::{BlockError, EXTRA_DATA, SignedTx};
pub use genesis::{Contracts, GENESIS_DEPLOYER, Genesis};
use mined::mined_tx;
pub use mined::{Block, MinedTx};
use miner::mine;
pub use replay::{checkpoint_view, verify};
use replay::{decode_block, genesis_header, replay, stored_genesis};
pub use store::{Store, StoreError, StoredBlock, StoredTx};
pub use upgrade::{UPGRADES, Upgrade};
pub use wallet::{Fees, Wallet};

use crate::exec::{self, BlockParams, State};
use block::{Parent, StateDiff};

pub use crate::exec::BLOCK_GAS_LIMIT;
/// Base fee of every block (constant: this chain has no fee market).
pub const BASE_FEE: u64 = 1_000_000_000;
/// Most gas one transaction may use (EIP-7825, in force on revm's default spec).
pub const TX_GAS_CAP: u64 = 1 << 24;
/// Cheapest possible transaction.
const INTRINSIC_GAS: u64 = 21_000;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("block {number} is bad: {reason}")]
    BadBlock { number: u64, reason: String },
    #[error("the ledger at {path} was created with a different genesis")]
    GenesisMismatch { path: PathBuf },
    #[error("no ledger at {path}")]
    Missing { path: PathBuf },
}

/// Why a transaction was not accepted (geth's wording), or the node cannot
/// take it now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Rejected(String),
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
}

/// A read-only call's result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("execution reverted")]
    Reverted(Bytes),
    #[error("{0}")]
    Halted(String),
    #[error("{0}")]
    Invalid(String),
}

/// A call or gas estimate (eth_call's transaction object).
#[derive(Debug, Clone, Default)]
pub struct CallRequest {
    pub from: Option<Address>,
    pub to: Option<Address>,
    pub data: Bytes,
    pub value: U256,
    pub gas: Option<u64>,
}

/// Answers once the transaction's block is durable (or why it was not mined).
pub type Acknowledgement = oneshot::Receiver<Result<Inclusion, SubmitError>>;

/// Where a mined transaction landed, and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inclusion {
    pub hash: B256,
    pub block_number: u64,
    pub block_hash: B256,
    pub index: u64,
    pub success: bool,
    pub gas_used: u64,
    pub logs: Vec<alloy_primitives::Log>,
}

/// What a verification went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyReport {
    pub blocks: u64,
    pub transactions: u64,
    pub head_hash: B256,
}

pub struct Node {
    inner: Arc<Inner>,
    miner: Option<JoinHandle<()>>,
}

struct Inner {
    genesis: Genesis,
    /// The executed state; the miner holds it (alone) while executing a
    /// block, calls share it.
    state: RwLock<Executed>,
    /// The last durable block.
    head: Mutex<(u64, B256, u64)>,
    pool: Mutex<Pool>,
    work: Condvar,
    reader: Mutex<Store>,
    time_offset: AtomicU64,
    /// Set by a test: mining waits (never in a release build).
    #[cfg(feature = "test-controls")]
    paused: AtomicBool,
    /// Set by a test: the miner waits this long (ms) before each block.
    #[cfg(feature = "test-controls")]
    block_delay_ms: AtomicU64,
    stopping: AtomicBool,
    failed: Mutex<Option<String>>,
}

struct Executed {
    db: State,
    header: Header,
    hash: B256,
}

#[derive(Default)]
struct Pool {
    queue: Vec<Pending>,
    known: HashSet<B256>,
    /// Senders with transactions queued or being mined: next nonce, count.
    senders: HashMap<Address, (u64, u64)>,
}

struct Pending {
    tx: SignedTx,
    done: oneshot::Sender<Result<Inclusion, SubmitError>>,
}

impl Node {
    /// Opens the chain at `path` with whatever genesis it was created with,
    /// or creates it from `init()` when there is none yet.
    pub fn open_or_init(path: &Path, init: impl FnOnce() -> Genesis) -> Result<Self, LedgerError> {
        let writer = Store::open(path)?;
        match stored_genesis(&writer)? {
            Some(genesis) => Self::start(path, writer, genesis, false),
            None => Self::start(path, writer, init(), true),
        }
    }

    /// Opens the chain stored at `path` (creating it from `genesis` when the
    /// file is new), re-executes and checks it, and starts mining.
    pub fn open(path: &Path, genesis: Genesis) -> Result<Self, LedgerError> {
        let writer = Store::open(path)?;
        match stored_genesis(&writer)? {
            Some(stored) if stored != genesis => Err(LedgerError::GenesisMismatch { path: path.to_owned() }),
            Some(_) => Self::start(path, writer, genesis, false),
            None => Self::start(path, writer, genesis, true),
        }
    }

    /// Writes genesis when the store is `new`, replays the chain and starts the miner.
    fn start(path: &Path, mut writer: Store, genesis: Genesis, new: bool) -> Result<Self, LedgerError> {
        if new {
            let (header, hash) = genesis_header(&genesis)?;
            let block = StoredBlock {
                number: 0,
                hash: hash.0,
                header: alloy_rlp::encode(&header),
                transactions: Vec::new(),
                receipts: Vec::new(),
            };
            writer.create(&serde_json::to_vec(&genesis).expect("genesis serialises"), &block)?;
        }
        let (mut executed, report) = replay(&writer, &genesis, &mut |_, _| {})?;
        upgrade::apply_missing(&mut writer, &mut executed, genesis.chain_id, unix_now())?;
        let head = (executed.header.number, executed.hash, executed.header.timestamp);
        tracing::info!(blocks = report.blocks, transactions = report.transactions, "ledger replayed and verified");
        let inner = Arc::new(Inner {
            genesis,
            state: RwLock::new(executed),
            head: Mutex::new(head),
            pool: Mutex::new(Pool::default()),
            work: Condvar::new(),
            reader: Mutex::new(Store::open(path)?),
            time_offset: AtomicU64::new(0),
            #[cfg(feature = "test-controls")]
            paused: AtomicBool::new(false),
            #[cfg(feature = "test-controls")]
            block_delay_ms: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            failed: Mutex::new(None),
        });
        let miner_inner = Arc::clone(&inner);
        let miner = std::thread::Builder::new()
            .name("ledger-miner".into())
            .spawn(move || mine(&miner_inner, writer))
            .expect("spawn the miner thread");
        Ok(Self { inner, miner: Some(miner) })
    }

    pub fn chain_id(&self) -> u64 {
        self.inner.genesis.chain_id
    }

    pub fn genesis(&self) -> &Genesis {
        &self.inner.genesis
    }

    pub fn contracts(&self) -> Contracts {
        Contracts::of_genesis()
    }

    /// The last durable block: number and hash.
    pub fn head(&self) -> (u64, B256) {
        let (number, hash, _) = *lock(&self.inner.head);
        (number, hash)
    }

    /// Moves the node's clock forward (later blocks and calls see it). A
    /// test control: not in release builds.
    #[cfg(feature = "test-controls")]
    pub fn advance_time(&self, seconds: u64) {
        self.inner.time_offset.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Holds every transaction in the pool, accepted but unmined, until
    /// called again with `false`; so a test can stop a server between
    /// journalling and mining. A test control: not in release builds.
    #[cfg(feature = "test-controls")]
    pub fn pause_mining(&self, paused: bool) {
        self.inner.paused.store(paused, Ordering::SeqCst);
        let _pool = lock(&self.inner.pool);
        self.inner.work.notify_all();
    }

    /// Makes the miner wait `delay` before each block, so that requests
    /// stay acknowledged but unmined for a while. A test control: not in
    /// release builds.
    #[cfg(feature = "test-controls")]
    pub fn delay_blocks(&self, delay: std::time::Duration) {
        self.inner.block_delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Submits a signed transaction (EIP-2718 bytes) and waits until the
    /// block that includes it is on disk.
    pub async fn send_raw_transaction(&self, raw: &[u8]) -> Result<Inclusion, SubmitError> {
        let done = self.admit(raw)?;
        done.await.unwrap_or_else(|_| Err(SubmitError::Unavailable("the ledger stopped".into())))
    }

    /// [`Self::send_raw_transaction`] for callers outside an async runtime.
    pub fn send_raw_transaction_blocking(&self, raw: &[u8]) -> Result<Inclusion, SubmitError> {
        let done = self.admit(raw)?;
        done.blocking_recv().unwrap_or_else(|_| Err(SubmitError::Unavailable("the ledger stopped".into())))
    }

    /// Admits a signed transaction to the queue without waiting for its
    /// block: the answer arrives on the returned channel once the block is on
    /// disk. Transactions admitted one after another keep their order, so one
    /// sender can have many in flight (a relayer).
    pub fn submit(&self, raw: &[u8]) -> Result<Acknowledgement, SubmitError> {
        self.admit(raw)
    }

    /// [`Self::submit`] for a transaction signed in this process by `sender`'s
    /// key (the relayer's): the sender is not recovered again, which is most
    /// of the cost of admitting a transaction. (Replay recovers every sender
    /// from the stored bytes, so a wrong `sender` could never go unnoticed;
    /// debug builds check it here too.)
    pub fn submit_signed_by(&self, envelope: TxEnvelope, sender: Address) -> Result<Acknowledgement, SubmitError> {
        debug_assert_eq!(
            SignedTx::recover(envelope.clone()).ok().map(|t| t.sender),
            Some(sender),
            "the sender signed it"
        );
        self.check_open()?;
        self.admit_signed(SignedTx { envelope, sender })
    }

    fn check_open(&self) -> Result<(), SubmitError> {
        if let Some(reason) = lock(&self.inner.failed).clone() {
            return Err(SubmitError::Unavailable(reason));
        }
        if self.inner.stopping.load(Ordering::SeqCst) {
            return Err(SubmitError::Unavailable("the ledger is stopping".into()));
        }
        Ok(())
    }

    fn admit(&self, raw: &[u8]) -> Result<Acknowledgement, SubmitError> {
        self.check_open()?;
        let reject = |msg: String| SubmitError::Rejected(msg);
        let envelope = TxEnvelope::decode_2718_exact(raw).map_err(|e| reject(format!("rlp: {e}")))?;
        let tx = SignedTx::recover(envelope).map_err(|e| reject(e.to_string()))?;
        self.admit_signed(tx)
    }

    fn admit_signed(&self, tx: SignedTx) -> Result<Acknowledgement, SubmitError> {
        let inner = &self.inner;
        let reject = |msg: String| SubmitError::Rejected(msg);
        let envelope = &tx.envelope;
        match envelope {
            TxEnvelope::Legacy(tx) if tx.tx().chain_id.is_none() => {
                return Err(reject("only replay-protected (EIP-155) transactions allowed over RPC".into()));
            }
            TxEnvelope::Legacy(_) | TxEnvelope::Eip2930(_) | TxEnvelope::Eip1559(_) => {}
            _ => return Err(reject("transaction type not supported".into())),
        }
        if envelope.chain_id() != Some(inner.genesis.chain_id) {
            return Err(reject("invalid chain id for signer".into()));
        }
        let (sender, nonce, gas_limit) = (tx.sender, tx.envelope.nonce(), tx.envelope.gas_limit());
        if gas_limit > TX_GAS_CAP {
            return Err(reject(format!("transaction gas limit too high (cap: {TX_GAS_CAP}, tx: {gas_limit})")));
        }
        if gas_limit < INTRINSIC_GAS {
            return Err(reject(format!("intrinsic gas too low: gas {gas_limit}, minimum needed {INTRINSIC_GAS}")));
        }
        let max_fee = tx.envelope.max_fee_per_gas();
        if max_fee < u128::from(BASE_FEE) {
            return Err(reject(format!(
                "max fee per gas less than block base fee: address {sender}, maxFeePerGas: {max_fee}, baseFee: {BASE_FEE}"
            )));
        }
        let cost = U256::from(gas_limit) * U256::from(max_fee) + tx.envelope.value();
        let state = read(&inner.state);
        let (state_nonce, balance) = (exec::nonce_of(&state.db, sender), exec::balance_of(&state.db, sender));
        let mut pool = lock(&inner.pool);
        let hash = tx.hash();
        if pool.known.contains(&hash) {
            return Err(reject("already known".into()));
        }
        let expected = pool.senders.get(&sender).map(|&(next, _)| next).unwrap_or(state_nonce);
        if nonce < expected {
            return Err(reject(format!("nonce too low: address {sender}, tx: {nonce} state: {expected}")));
        }
        if nonce > expected {
            return Err(reject(format!("nonce too high: address {sender}, tx: {nonce} state: {expected}")));
        }
        if balance < cost {
            return Err(reject(format!(
                "insufficient funds for gas * price + value: address {sender} have {balance} want {cost}"
            )));
        }
        let (done, receiver) = oneshot::channel();
        pool.known.insert(hash);
        let entry = pool.senders.entry(sender).or_insert((nonce, 0));
        *entry = (nonce + 1, entry.1 + 1);
        pool.queue.push(Pending { tx, done });
        drop(pool);
        drop(state);
        inner.work.notify_one();
        Ok(receiver)
    }

    /// The next nonce of `address`, counting transactions already executed.
    pub fn nonce(&self, address: Address) -> u64 {
        exec::nonce_of(&read(&self.inner.state).db, address)
    }

    /// The nonce the next transaction from `address` must carry: after those
    /// mined and those queued (eth_getTransactionCount at "pending").
    pub fn pending_nonce(&self, address: Address) -> u64 {
        let state = read(&self.inner.state);
        let pool = lock(&self.inner.pool);
        pool.senders.get(&address).map(|&(next, _)| next).unwrap_or_else(|| exec::nonce_of(&state.db, address))
    }

    pub fn balance(&self, address: Address) -> U256 {
        exec::balance_of(&read(&self.inner.state).db, address)
    }

    /// The deployed code of `address`.
    pub fn code(&self, address: Address) -> Bytes {
        let state = read(&self.inner.state);
        state
            .db
            .cache
            .accounts
            .get(&address)
            .and_then(|a| a.info.code.as_ref())
            .map(|code| code.original_bytes())
            .unwrap_or_default()
    }

    /// Runs `request` on the latest state without changing it; returns the
    /// output and the gas used.
    pub fn call(&self, request: &CallRequest) -> Result<(Bytes, u64), CallError> {
        let gas = request.gas.unwrap_or(TX_GAS_CAP).min(TX_GAS_CAP);
        self.inner.call(request, gas)
    }

    /// The gas `request` needs as a transaction: the smallest limit under
    /// which it succeeds (binary search, as geth does).
    pub fn estimate_gas(&self, request: &CallRequest) -> Result<u64, CallError> {
        let cap = request.gas.unwrap_or(TX_GAS_CAP).min(TX_GAS_CAP);
        let (_, used) = self.inner.call(request, cap)?;
        let (mut low, mut high) = (used.saturating_sub(1).max(INTRINSIC_GAS - 1), cap);
        if self.inner.call(request, used).is_ok() {
            return Ok(used);
        }
        while low + 1 < high {
            let mid = low + (high - low) / 2;
            if self.inner.call(request, mid).is_ok() { high = mid } else { low = mid }
        }
        Ok(high)
    }

    /// A stored block, decoded.
    pub fn block(&self, number: u64) -> Result<Option<Block>, LedgerError> {
        let (head, _) = self.head();
        if number > head {
            return Ok(None);
        }
        let Some(stored) = lock(&self.inner.reader).block(number)? else { return Ok(None) };
        decode_block(&stored).map(Some)
    }

    pub fn block_number_of_hash(&self, hash: B256) -> Result<Option<u64>, LedgerError> {
        let number = lock(&self.inner.reader).block_number_of_hash(&hash.0)?;
        Ok(number.filter(|&n| n <= self.head().0))
    }

    /// A mined transaction, its receipt and where it is. Reads its block
    /// but recovers the sender of this transaction only.
    pub fn transaction(&self, hash: B256) -> Result<Option<MinedTx>, LedgerError> {
        let Some((number, index)) = lock(&self.inner.reader).transaction_location(&hash.0)? else {
            return Ok(None);
        };
        if number > self.head().0 {
            return Ok(None);
        }
        let Some(stored) = lock(&self.inner.reader).block(number)? else { return Ok(None) };
        let index = index as usize;
        let bad = |reason: String| LedgerError::BadBlock { number, reason };
        let header =
            Header::decode(&mut stored.header.as_slice()).map_err(|e| bad(format!("header unreadable: {e}")))?;
        let Some(raw) = stored.transactions.get(index) else { return Ok(None) };
        let envelope =
            TxEnvelope::decode_2718_exact(&raw.raw).map_err(|e| bad(format!("transaction unreadable: {e}")))?;
        let tx = SignedTx::recover(envelope).map_err(|e| bad(e.to_string()))?;
        let receipts = stored.receipts[..(index + 1).min(stored.receipts.len())]
            .iter()
            .map(|raw| ReceiptEnvelope::decode_2718_exact(raw).map_err(|e| bad(format!("receipt unreadable: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let first_log_index = receipts[..index.min(receipts.len())].iter().map(|r| r.logs().len() as u64).sum();
        Ok(mined_tx(B256::from(stored.hash), &header, index, tx, &receipts, first_log_index))
    }

    fn stop(&mut self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.work.notify_all();
        if let Some(miner) = self.miner.take() {
            let _ = miner.join();
        }
    }
}

/// Dropping the node stops the miner once the queued transactions are in a block.
impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Inner {
    /// Whether a test paused mining; always false in a release build.
    fn paused(&self) -> bool {
        #[cfg(feature = "test-controls")]
        return self.paused.load(Ordering::SeqCst);
        #[cfg(not(feature = "test-controls"))]
        false
    }

    fn now(&self) -> u64 {
        unix_now() + self.time_offset.load(Ordering::SeqCst)
    }

    fn call(&self, request: &CallRequest, gas: u64) -> Result<(Bytes, u64), CallError> {
        // Calls read the state together (each on its own overlay); only the
        // miner's block excludes them.
        let state = read(&self.state);
        let from = request.from.unwrap_or_default();
        let tx = TxEnv::builder()
            .caller(from)
            .kind(request.to.map_or(TxKind::Create, TxKind::Call))
            .data(request.data.clone())
            .value(request.value)
            .nonce(exec::nonce_of(&state.db, from))
            .gas_limit(gas)
            .gas_price(0)
            .chain_id(Some(self.genesis.chain_id))
            .build()
            .map_err(|e| CallError::Invalid(format!("{e:?}")))?;
        let block = BlockParams {
            number: state.header.number + 1,
            timestamp: self.now().max(state.header.timestamp),
            basefee: 0,
        };
        let chain_id = self.genesis.chain_id;
        let outcome = exec::transact(CacheDB::new(&state.db), chain_id, &block, tx)
            .map_err(|e| CallError::Invalid(e.to_string()))?;
        let used = outcome.result.tx_gas_used();
        match outcome.result {
            ExecutionResult::Success { output, .. } => {
                let bytes = match output {
                    Output::Call(bytes) | Output::Create(bytes, _) => bytes,
                };
                Ok((bytes, used))
            }
            ExecutionResult::Revert { output, .. } => Err(CallError::Reverted(output)),
            ExecutionResult::Halt { reason, .. } => Err(CallError::Halted(halt_message(&format!("{reason:?}")))),
        }
    }

    fn fail(&self, reason: String) {
        tracing::error!(%reason, "ledger stopped accepting transactions");
        *lock(&self.failed) = Some(reason);
    }
}

/// geth's words for the common halts.
fn halt_message(reason: &str) -> String {
    if reason.starts_with("OutOfGas") {
        "out of gas".into()
    } else if reason.contains("InvalidFEOpcode") || reason.contains("OpcodeNotFound") {
        "invalid opcode".into()
    } else {
        reason.to_lowercase()
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // As `lock`: every writer finishes its update before releasing.
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves data that is still consistent for
    // reading (every writer finishes its update before releasing).
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The wall clock in Unix seconds.
fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
