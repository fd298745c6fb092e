//! An external Ethereum node over JSON-RPC (geth, Besu, anvil…): the few
//! calls the relayer and the server's views need, typed with alloy's RPC
//! types, over reqwest.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::TransactionReceipt;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{ClientError, Outcome};
use crate::artifacts::{self, Artifact};
use crate::node::{CallRequest, Contracts, Fees, Wallet};

/// Longest a JSON-RPC request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the watcher asks for new blocks while someone waits.
const WATCH_INTERVAL: Duration = Duration::from_millis(20);
/// How often it also asks for every waited-for receipt directly.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

pub struct RemoteNode {
    http: reqwest::Client,
    url: String,
    chain_id: u64,
    contracts: Contracts,
    ids: AtomicU64,
    watch: Mutex<Watch>,
}

/// Transactions waited for, and whether the watcher runs.
#[derive(Default)]
struct Watch {
    waiting: HashMap<B256, Vec<oneshot::Sender<Result<Outcome, ClientError>>>>,
    running: bool,
}

impl RemoteNode {
    /// Connects to the node at `url` (asks its chain id) for the contracts at `contracts`.
    pub async fn connect(url: &str, contracts: Contracts) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        let mut node = Self {
            http,
            url: url.to_owned(),
            chain_id: 0,
            contracts,
            ids: AtomicU64::new(1),
            watch: Mutex::new(Watch::default()),
        };
        let chain_id: U64 = node.request("eth_chainId", json!([])).await?;
        node.chain_id = chain_id.to();
        Ok(node)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    pub fn contracts(&self) -> Contracts {
        self.contracts
    }

    /// One JSON-RPC call. An error object becomes [`ClientError::Reverted`]
    /// when it carries revert data (geth's code 3), else
    /// [`ClientError::Rejected`] with the node's message.
    pub async fn request<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, ClientError> {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let unavailable = |e: reqwest::Error| ClientError::Unavailable(format!("{method}: {e}"));
        let response = self.http.post(&self.url).json(&body).send().await.map_err(unavailable)?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(unavailable)?;
        if let Some(error) = answer.get("error") {
            return Err(rpc_error(error));
        }
        if !status.is_success() {
            return Err(ClientError::Unavailable(format!("{method}: HTTP {status}")));
        }
        let result = answer.get("result").cloned().unwrap_or(Value::Null);
        serde_json::from_value(result)
            .map_err(|e| ClientError::Unavailable(format!("{method}: unexpected answer: {e}")))
    }

    /// `address`'s transaction count at `tag` ("latest": mined; "pending":
    /// counting those in the node's pool).
    pub async fn nonce_at(&self, address: Address, tag: &str) -> Result<u64, ClientError> {
        let nonce: U64 = self.request("eth_getTransactionCount", json!([address, tag])).await?;
        Ok(nonce.to())
    }

    pub async fn pending_nonce(&self, address: Address) -> Result<u64, ClientError> {
        self.nonce_at(address, "pending").await
    }

    pub async fn block_number(&self) -> Result<u64, ClientError> {
        let head: U64 = self.request("eth_blockNumber", json!([])).await?;
        Ok(head.to())
    }

    /// Twice the latest base fee plus the node's suggested tip, as wallets offer.
    pub async fn fees(&self) -> Result<(u128, u128), ClientError> {
        let block: Value = self.request("eth_getBlockByNumber", json!(["latest", false])).await?;
        let base: u128 = match block.get("baseFeePerGas") {
            Some(fee) => serde_json::from_value::<U256>(fee.clone())
                .map_err(|e| ClientError::Unavailable(format!("baseFeePerGas: {e}")))?
                .to(),
            None => {
                let price: U256 = self.request("eth_gasPrice", json!([])).await?;
                return Ok((price.to(), price.to()));
            }
        };
        let tip: U256 = self.request("eth_maxPriorityFeePerGas", json!([])).await.unwrap_or(U256::ZERO);
        let tip: u128 = tip.to();
        Ok((2 * base + tip, tip))
    }

    fn call_object(request: &CallRequest) -> Value {
        let mut call = json!({ "data": request.data, "value": request.value });
        if let Some(from) = request.from {
            call["from"] = json!(from);
        }
        if let Some(to) = request.to {
            call["to"] = json!(to);
        }
        if let Some(gas) = request.gas {
            call["gas"] = json!(U64::from(gas));
        }
        call
    }

    pub async fn call(&self, request: &CallRequest) -> Result<Bytes, ClientError> {
        self.request("eth_call", json!([Self::call_object(request), "latest"])).await
    }

    pub async fn estimate_gas(&self, request: &CallRequest) -> Result<u64, ClientError> {
        let gas: U64 = self.request("eth_estimateGas", json!([Self::call_object(request)])).await?;
        Ok(gas.to())
    }

    pub async fn send_raw_transaction(&self, raw: &[u8]) -> Result<B256, ClientError> {
        self.request("eth_sendRawTransaction", json!([Bytes::copy_from_slice(raw)])).await
    }

    pub async fn code(&self, address: Address) -> Result<Bytes, ClientError> {
        self.request("eth_getCode", json!([address, "latest"])).await
    }

    /// The mined transaction's result, or `None` while it is not mined.
    pub async fn outcome(&self, hash: B256) -> Result<Option<Outcome>, ClientError> {
        let receipt: Option<TransactionReceipt> = self.request("eth_getTransactionReceipt", json!([hash])).await?;
        Ok(receipt.map(|r| Outcome {
            hash,
            block_number: r.block_number.unwrap_or_default(),
            success: r.status(),
            gas_used: r.gas_used,
            logs: r.inner.logs().iter().map(|log| log.inner.clone()).collect(),
            contract_address: r.contract_address,
        }))
    }

    /// Waits until `hash` is mined. One watcher per node follows new blocks
    /// for every transaction waited for (rather than each polling its own
    /// receipt, which floods the node under load).
    pub async fn wait(self: &Arc<Self>, hash: B256) -> Result<Outcome, ClientError> {
        let (sender, receiver) = oneshot::channel();
        {
            let mut watch = self.watch();
            watch.waiting.entry(hash).or_default().push(sender);
            if !watch.running {
                watch.running = true;
                tokio::spawn(Arc::clone(self).follow_blocks());
            }
        }
        // Mined before the watcher saw its block: ask once directly (on an
        // error, the watcher's sweep will ask again).
        if let Ok(Some(outcome)) = self.outcome(hash).await {
            self.resolve(hash, &Ok(outcome));
        }
        receiver.await.map_err(|_| ClientError::Unavailable("stopped waiting for the ledger".into()))?
    }

    fn watch(&self) -> MutexGuard<'_, Watch> {
        self.watch.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn resolve(&self, hash: B256, result: &Result<Outcome, ClientError>) {
        for waiter in self.watch().waiting.remove(&hash).unwrap_or_default() {
            let _ = waiter.send(result.clone());
        }
    }

    /// While anyone waits: reads each new block's transaction hashes and
    /// fetches the receipts of those waited for; every second, also asks for
    /// each waited-for receipt directly (a block missed between a waiter's
    /// own check and the watcher's first look).
    async fn follow_blocks(self: Arc<Self>) {
        let mut scanned: Option<u64> = None;
        let mut last_sweep = Instant::now();
        loop {
            if self.watch().waiting.is_empty() {
                let mut watch = self.watch();
                if watch.waiting.is_empty() {
                    watch.running = false;
                    return;
                }
            }
            if let Err(e) = self.scan(&mut scanned, &mut last_sweep).await {
                tracing::warn!(error = %e, url = %self.url, "following the external ledger's blocks failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            tokio::time::sleep(WATCH_INTERVAL).await;
        }
    }

    async fn scan(&self, scanned: &mut Option<u64>, last_sweep: &mut Instant) -> Result<(), ClientError> {
        let head = self.block_number().await?;
        let from = scanned.map_or(head.saturating_sub(1), |n| n + 1);
        for number in from..=head {
            let block: Value = self.request("eth_getBlockByNumber", json!([U64::from(number), false])).await?;
            let hashes: Vec<B256> =
                block.get("transactions").cloned().and_then(|t| serde_json::from_value(t).ok()).unwrap_or_default();
            let waited: Vec<B256> = {
                let watch = self.watch();
                hashes.into_iter().filter(|h| watch.waiting.contains_key(h)).collect()
            };
            for hash in waited {
                if let Some(outcome) = self.outcome(hash).await? {
                    self.resolve(hash, &Ok(outcome));
                }
            }
            *scanned = Some(number);
        }
        if last_sweep.elapsed() >= SWEEP_INTERVAL {
            *last_sweep = Instant::now();
            let waiting: Vec<B256> = self.watch().waiting.keys().copied().collect();
            for hash in waiting {
                if let Some(outcome) = self.outcome(hash).await? {
                    self.resolve(hash, &Ok(outcome));
                }
            }
        }
        Ok(())
    }
}

impl RemoteNode {
    /// Deploys the Directory (owned by `admin`), the Records and the Access
    /// contract with `deployer`'s key (which pays), and waits for each.
    pub async fn deploy(url: &str, deployer: &Wallet, admin: Address) -> Result<Contracts, ClientError> {
        let node = Arc::new(Self::connect(url, Contracts::none()).await?);
        let directory = node.create(deployer, artifacts::directory(), admin).await?;
        let records = node.create(deployer, artifacts::records(), directory).await?;
        let access = node.create(deployer, artifacts::access(), directory).await?;
        Ok(Contracts { directory, records, access })
    }

    /// Deploys the contracts added since `contracts` were (today the Access
    /// contract, when it is missing), for a chain whose contracts file an
    /// earlier build wrote.
    pub async fn deploy_missing(url: &str, deployer: &Wallet, contracts: Contracts) -> Result<Contracts, ClientError> {
        if !crate::abi::is_none(contracts.access) {
            return Ok(contracts);
        }
        let node = Arc::new(Self::connect(url, contracts).await?);
        let access = node.create(deployer, artifacts::access(), contracts.directory).await?;
        Ok(Contracts { access, ..contracts })
    }

    /// Deploys `artifact`, whose constructor takes one address.
    async fn create(
        self: &Arc<Self>,
        deployer: &Wallet,
        artifact: &Artifact,
        arg: Address,
    ) -> Result<Address, ClientError> {
        let mut code = artifact.bytecode.clone();
        code.extend_from_slice(arg.into_word().as_slice());
        let request = CallRequest { from: Some(deployer.address()), data: code.clone().into(), ..Default::default() };
        let gas = self.estimate_gas(&request).await?;
        let (max_fee_per_gas, max_priority_fee_per_gas) = self.fees().await?;
        let fees = Fees { gas_limit: gas + gas / 5, max_fee_per_gas, max_priority_fee_per_gas };
        let nonce = self.pending_nonce(deployer.address()).await?;
        let envelope = deployer.sign(self.chain_id, nonce, None, code.into(), fees);
        let hash = self.send_raw_transaction(&alloy_eips::eip2718::Encodable2718::encoded_2718(&envelope)).await?;
        let outcome = self.wait(hash).await?;
        match outcome.contract_address {
            Some(address) if outcome.success => Ok(address),
            _ => Err(ClientError::Rejected(format!("deploying {} failed (transaction {hash})", artifact.name))),
        }
    }

    /// Checks that each contract named has code on this chain.
    pub async fn check_contracts(&self) -> Result<(), ClientError> {
        let contracts = self.contracts;
        let named = [("Directory", contracts.directory), ("Records", contracts.records), ("Access", contracts.access)];
        // A zero Access address is one not deployed yet (`deploy_missing`).
        for (name, address) in named.into_iter().filter(|(name, a)| *name != "Access" || !a.is_zero()) {
            if self.code(address).await?.is_empty() {
                return Err(ClientError::Rejected(format!(
                    "no {name} contract at {address} on chain {} ({})",
                    self.chain_id, self.url
                )));
            }
        }
        Ok(())
    }
}

fn rpc_error(error: &Value) -> ClientError {
    let message = error.get("message").and_then(Value::as_str).unwrap_or("unknown error").to_owned();
    let data =
        error.get("data").and_then(Value::as_str).and_then(|d| d.strip_prefix("0x")).and_then(|d| hex::decode(d).ok());
    match (error.get("code").and_then(Value::as_i64), data) {
        (Some(3), Some(data)) => ClientError::Reverted(Bytes::from(data)),
        // Some nodes answer a revert without data as plain -32000.
        (_, _) if message.starts_with("execution reverted") => ClientError::Reverted(Bytes::new()),
        _ => ClientError::Rejected(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_revert_data_and_messages() {
        let revert = rpc_error(&json!({ "code": 3, "message": "execution reverted", "data": "0x1234" }));
        assert_eq!(revert, ClientError::Reverted(Bytes::from(vec![0x12, 0x34])));
        let bare = rpc_error(&json!({ "code": -32000, "message": "execution reverted" }));
        assert_eq!(bare, ClientError::Reverted(Bytes::new()));
        let nonce = rpc_error(&json!({ "code": -32000, "message": "nonce too low: next nonce 5, tx nonce 4" }));
        assert_eq!(nonce, ClientError::Rejected("nonce too low: next nonce 5, tx nonce 4".into()));
        assert_eq!(rpc_error(&json!({})), ClientError::Rejected("unknown error".into()));
        assert_eq!(rpc_error(&json!({ "code": 3, "data": "0xzz" })), ClientError::Rejected("unknown error".into()));
    }
}
