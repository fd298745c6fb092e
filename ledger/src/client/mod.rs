//! How the server and its relayer reach the ledger: the embedded node in this
//! process, or an external Ethereum node over JSON-RPC (`--chain-rpc`).
//! Everything above this type (relayer, views) is written against it.

mod remote;

use std::sync::Arc;

use alloy_consensus::TxEnvelope;
use alloy_primitives::{Address, B256, Bytes, Log};

pub use remote::RemoteNode;

use crate::node::{Acknowledgement, BASE_FEE, CallError, CallRequest, Contracts, LedgerError, Node, SubmitError};

/// A ledger the server reads and relays to.
#[derive(Clone)]
pub enum LedgerClient {
    Embedded(Arc<Node>),
    Remote(Arc<RemoteNode>),
}

/// A transaction handed to the ledger, not yet confirmed.
pub enum Submitted {
    Embedded(Acknowledgement),
    /// Sent, or held by the ledger already: waited for by its hash.
    Remote,
}

/// A block, briefly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSummary {
    pub number: u64,
    pub hash: B256,
    pub parent_hash: B256,
    pub timestamp: u64,
    pub transactions: usize,
    pub gas_used: u64,
}

/// A mined transaction's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub hash: B256,
    pub block_number: u64,
    pub success: bool,
    pub gas_used: u64,
    pub logs: Vec<Log>,
    /// The contract a creation made.
    pub contract_address: Option<Address>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The call reverted, with the contract's revert data.
    #[error("execution reverted")]
    Reverted(Bytes),
    /// The ledger refused the transaction (geth's wording).
    #[error("{0}")]
    Rejected(String),
    /// The ledger cannot be reached or failed.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
}

impl From<CallError> for ClientError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Reverted(data) => Self::Reverted(data),
            CallError::Halted(why) | CallError::Invalid(why) => Self::Rejected(why),
        }
    }
}

impl From<SubmitError> for ClientError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Rejected(why) => Self::Rejected(why),
            SubmitError::Unavailable(why) => Self::Unavailable(why),
        }
    }
}

impl From<LedgerError> for ClientError {
    fn from(e: LedgerError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl LedgerClient {
    pub fn chain_id(&self) -> u64 {
        match self {
            Self::Embedded(node) => node.chain_id(),
            Self::Remote(remote) => remote.chain_id(),
        }
    }

    pub fn contracts(&self) -> Contracts {
        match self {
            Self::Embedded(node) => node.contracts(),
            Self::Remote(remote) => remote.contracts(),
        }
    }

    /// The number of `address`'s transactions mined.
    pub async fn nonce(&self, address: Address) -> Result<u64, ClientError> {
        match self {
            Self::Embedded(node) => Ok(node.nonce(address)),
            Self::Remote(remote) => remote.nonce_at(address, "latest").await,
        }
    }

    /// The nonce `address`'s next transaction must carry, counting those
    /// waiting to be mined.
    pub async fn pending_nonce(&self, address: Address) -> Result<u64, ClientError> {
        match self {
            Self::Embedded(node) => Ok(node.pending_nonce(address)),
            Self::Remote(remote) => remote.pending_nonce(address).await,
        }
    }

    /// The fee cap a relayed transaction offers per gas, and its tip.
    pub async fn fees(&self) -> Result<(u128, u128), ClientError> {
        match self {
            // The base fee is constant; twice it leaves room, as wallets do.
            Self::Embedded(_) => Ok((2 * u128::from(BASE_FEE), 0)),
            Self::Remote(remote) => remote.fees().await,
        }
    }

    /// [`Self::call`] on the state with the transactions waiting to be mined
    /// applied (an external node's "pending"; the embedded node mines what
    /// it takes at once, so there its latest state).
    pub async fn call_pending(&self, request: CallRequest) -> Result<Bytes, ClientError> {
        match self {
            Self::Embedded(_) => self.call(request).await,
            Self::Remote(remote) => remote.call_at(&request, "pending").await,
        }
    }

    /// Runs `request` on the latest state; the output, or why it reverted.
    pub async fn call(&self, request: CallRequest) -> Result<Bytes, ClientError> {
        match self {
            Self::Embedded(node) => execute(node, request).await.map(|(output, _)| output),
            Self::Remote(remote) => remote.call(&request).await,
        }
    }

    /// Runs `request` as a transaction would run now: the gas it uses (the
    /// node's estimate on an external node), or why it reverts.
    pub async fn simulate(&self, request: CallRequest) -> Result<u64, ClientError> {
        match self {
            // One execution: the relayer adds its own margin.
            Self::Embedded(node) => execute(node, request).await.map(|(_, gas)| gas),
            Self::Remote(remote) => remote.estimate_gas(&request).await,
        }
    }

    /// Hands a signed transaction to the ledger. An error here means the
    /// ledger did not take it (it will not be mined); a ledger that holds
    /// it already (sent before a restart, or by a send whose answer was
    /// lost) counts as taking it: it is then waited for by its hash.
    pub async fn submit(&self, raw: &[u8]) -> Result<Submitted, ClientError> {
        let sent = match self {
            Self::Embedded(node) => node.submit(raw).map(Submitted::Embedded).map_err(ClientError::from),
            Self::Remote(remote) => remote.send_raw_transaction(raw).await.map(|_| Submitted::Remote),
        };
        held_already(sent)
    }

    /// [`Self::submit`] for a transaction this process signed with
    /// `sender`'s key: the embedded node skips recovering the sender.
    pub async fn submit_signed_by(&self, envelope: TxEnvelope, sender: Address) -> Result<Submitted, ClientError> {
        match self {
            Self::Embedded(node) => held_already(
                node.submit_signed_by(envelope, sender).map(Submitted::Embedded).map_err(ClientError::from),
            ),
            Self::Remote(_) => {
                use alloy_eips::eip2718::Encodable2718;
                self.submit(&envelope.encoded_2718()).await
            }
        }
    }

    /// Waits until a submitted transaction is mined (and, on the embedded
    /// node, its block is on disk).
    pub async fn confirm(&self, hash: B256, submitted: Submitted) -> Result<Outcome, ClientError> {
        match (submitted, self) {
            (Submitted::Embedded(ack), _) => {
                let inclusion = ack.await.map_err(|_| ClientError::Unavailable("the ledger stopped".into()))??;
                debug_assert_eq!(inclusion.hash, hash);
                Ok(Outcome {
                    hash,
                    block_number: inclusion.block_number,
                    success: inclusion.success,
                    gas_used: inclusion.gas_used,
                    logs: inclusion.logs,
                    contract_address: None,
                })
            }
            (Submitted::Remote, Self::Remote(remote)) => remote.wait(hash).await,
            (Submitted::Remote, Self::Embedded(_)) => self
                .outcome(hash)
                .await?
                .ok_or_else(|| ClientError::Unavailable(format!("transaction {hash} is not on the embedded ledger"))),
        }
    }

    /// The number of the latest block.
    pub async fn head(&self) -> Result<u64, ClientError> {
        match self {
            Self::Embedded(node) => Ok(node.head().0),
            Self::Remote(remote) => remote.block_number().await,
        }
    }

    /// Block `number`, briefly; `None` past the head.
    pub async fn block_summary(&self, number: u64) -> Result<Option<BlockSummary>, ClientError> {
        match self {
            Self::Embedded(node) => {
                let node = Arc::clone(node);
                blocking(move || {
                    Ok(node.block(number)?.map(|block| BlockSummary {
                        number,
                        hash: block.hash,
                        parent_hash: block.header.parent_hash,
                        timestamp: block.header.timestamp,
                        transactions: block.transactions.len(),
                        gas_used: block.header.gas_used,
                    }))
                })
                .await
            }
            Self::Remote(remote) => {
                let params = serde_json::json!([alloy_primitives::U64::from(number), false]);
                let block: Option<alloy_rpc_types_eth::Block> = remote.request("eth_getBlockByNumber", params).await?;
                Ok(block.map(|b| BlockSummary {
                    number,
                    hash: b.header.hash,
                    parent_hash: b.header.parent_hash,
                    timestamp: b.header.timestamp,
                    transactions: b.transactions.len(),
                    gas_used: b.header.gas_used,
                }))
            }
        }
    }

    /// The logs `filter` selects (eth_getLogs).
    pub async fn logs(
        &self,
        filter: alloy_rpc_types_eth::Filter,
    ) -> Result<Vec<alloy_rpc_types_eth::Log>, ClientError> {
        match self {
            Self::Embedded(node) => {
                let node = Arc::clone(node);
                blocking(move || crate::rpc::logs(&node, &filter).map_err(|e| ClientError::Rejected(e.message))).await
            }
            Self::Remote(remote) => remote.request("eth_getLogs", serde_json::json!([filter])).await,
        }
    }

    /// The result of a mined transaction, or `None` when it is not mined.
    pub async fn outcome(&self, hash: B256) -> Result<Option<Outcome>, ClientError> {
        match self {
            Self::Embedded(node) => {
                let node = Arc::clone(node);
                blocking(move || {
                    let mined = node.transaction(hash)?;
                    Ok(mined.map(|m| Outcome {
                        hash,
                        block_number: m.block_number,
                        success: m.receipt.status(),
                        gas_used: m.gas_used,
                        logs: m.receipt.logs().to_vec(),
                        contract_address: m.contract_address,
                    }))
                })
                .await
            }
            Self::Remote(remote) => remote.outcome(hash).await,
        }
    }
}

fn held_already(sent: Result<Submitted, ClientError>) -> Result<Submitted, ClientError> {
    match sent {
        Err(ClientError::Rejected(why)) if already_held(&why) => Ok(Submitted::Remote),
        other => other,
    }
}

/// Whether a node's refusal means it holds this transaction already (geth:
/// "already known", anvil: "transaction already imported", Besu: "known
/// transaction"), or one with its nonce it will not replace.
fn already_held(refusal: &str) -> bool {
    let refusal = refusal.to_ascii_lowercase();
    ["already known", "already imported", "known transaction", "replacement transaction underpriced"]
        .iter()
        .any(|phrase| refusal.contains(phrase))
}

/// Runs `request` on the embedded node's latest state, off the async
/// threads: its output and the gas it used.
async fn execute(node: &Arc<Node>, request: CallRequest) -> Result<(Bytes, u64), ClientError> {
    let node = Arc::clone(node);
    blocking(move || node.call(&request).map_err(ClientError::from)).await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ClientError> + Send + 'static,
) -> Result<T, ClientError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ClientError::Unavailable(format!("ledger task failed: {e}")))?
}
