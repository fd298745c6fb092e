//! The ledger: where its contracts are, relaying signed messages, and
//! what the Ledger page shows (blocks, events, heads, checkpoints).

use chartkey_core::value::{Address, FieldValue, Hash32, Signature};
use serde::{Deserialize, Serialize};

/// Where the ledger is: what the browser needs to build EIP-712 domains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerContracts {
    pub chain_id: u64,
    /// The Directory contract.
    pub directory: Address,
    /// The Records contract.
    pub records: Address,
    /// The Access contract (links, emergency contacts).
    pub access: Address,
    /// The server's relayer, which pays for relayed messages.
    pub relayer: Address,
}

/// A signed ledger message for the relayer.
pub type RelayBody = crate::Signed<chartkey_core::eip712::LedgerMessage>;

/// A relayed message: accepted (journalled and sent) and, once `mined`, in
/// block `block_number`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayReceipt {
    pub job: i64,
    pub tx_hash: Hash32,
    pub mined: bool,
    pub block_number: Option<u64>,
}

/// The ledger page: the chain, its latest blocks, and what the ledger says
/// about the signed-in account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerPage {
    pub chain_id: u64,
    /// On an external Ethereum network (`--chain-rpc`) rather than embedded.
    pub external: bool,
    pub head: u64,
    /// Newest first.
    pub blocks: Vec<LedgerBlock>,
    /// Events that name this account, newest first.
    pub activity: Vec<LedgerEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerBlock {
    pub number: u64,
    pub hash: Hash32,
    pub timestamp: u64,
    pub transactions: u32,
    pub gas_used: u64,
}

/// A contract event, decoded: its name and its fields, typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEvent {
    pub block_number: u64,
    pub tx_hash: Hash32,
    pub name: String,
    pub fields: Vec<(String, FieldValue)>,
}

/// A block as an outside witness follows the chain: number, hash and its
/// parent's hash. `GET /api/chain/heads?from=N` answers with these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub number: u64,
    pub hash: Hash32,
    pub parent_hash: Hash32,
}

/// Consecutive heads from the block asked for, and the chain's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHeads {
    pub chain_id: u64,
    pub head: u64,
    pub heads: Vec<ChainHead>,
}

/// A chain head vouched for by the ledger's administrator key (EIP-191
/// signature of `message`), to keep and check later with `chartkey ledger
/// verify --checkpoint FILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    pub chain_id: u64,
    pub number: u64,
    pub hash: Hash32,
    /// The administrator's address.
    pub signer: Address,
    pub message: String,
    pub signature: Signature,
}

/// A transaction's events that name the signed-in account; `others` counts
/// the rest (a bundle carries other people's messages too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTxView {
    pub hash: Hash32,
    pub block_number: u64,
    pub success: bool,
    pub events: Vec<LedgerEvent>,
    pub others: u32,
}

/// The result of re-executing the chain from genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerVerification {
    pub ok: bool,
    pub blocks: u64,
    pub transactions: u64,
    /// The head it reached (none when it failed before the first block).
    pub head_hash: Option<Hash32>,
    /// The first bad block and why, when not ok.
    pub problem: Option<String>,
    pub millis: u64,
}
