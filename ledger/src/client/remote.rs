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
        let answer = self.post(method, &body).await?;
        answer_of(method, &answer)
    }

    /// Several calls in one JSON-RPC batch (one round trip), each answered
    /// as [`Self::request`] would, in order.
    pub async fn batch<T: DeserializeOwned>(
        &self,
        calls: &[(&str, Value)],
    ) -> Result<Vec<Result<T, ClientError>>, ClientError> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let first = self.ids.fetch_add(calls.len() as u64, Ordering::Relaxed);
        let body: Vec<Value> = calls
            .iter()
            .zip(first..)
            .map(|((method, params), id)| json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .collect();
        let what = calls[0].0;
        let answers = match self.post(what, &Value::Array(body)).await? {
            Value::Array(answers) => answers,
            // A node that refuses batches answers with one error object.
            single => {
                return Err(answer_of::<Value>(what, &single)
                    .err()
                    .unwrap_or_else(|| unexpected(what, "one answer to a batch")));
            }
        };
        Ok(calls
            .iter()
            .zip(in_order(answers, first, calls.len()))
            .map(|((method, _), answer)| match answer {
                Some(answer) => answer_of(method, &answer),
                None => Err(unexpected(method, "no answer in the batch")),
            })
            .collect())
    }

    /// POSTs `body`; the parsed answer. Errors carried in the body are the
    /// caller's to read (a batch answers each call on its own).
    async fn post(&self, method: &str, body: &Value) -> Result<Value, ClientError> {
        let unavailable = |e: reqwest::Error| ClientError::Unavailable(format!("{method}: {e}"));
        let response = self.http.post(&self.url).json(body).send().await.map_err(unavailable)?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(unavailable)?;
        if !status.is_success() && answer.get("error").is_none() && !answer.is_array() {
            return Err(ClientError::Unavailable(format!("{method}: HTTP {status}")));
        }
        Ok(answer)
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

    /// Twice the latest base fee plus the node's suggested tip, as wallets
    /// offer (both asked in one batch).
    pub async fn fees(&self) -> Result<(u128, u128), ClientError> {
        let mut answers = self
            .batch::<Value>(&[
                ("eth_getBlockByNumber", json!(["latest", false])),
                ("eth_maxPriorityFeePerGas", json!([])),
            ])
            .await?
            .into_iter();
        let block = answers.next().unwrap_or_else(|| Err(unexpected("eth_getBlockByNumber", "no answer")))?;
        let base: u128 = match block.get("baseFeePerGas") {
            Some(fee) => serde_json::from_value::<U256>(fee.clone())
                .map_err(|e| ClientError::Unavailable(format!("baseFeePerGas: {e}")))?
                .to(),
            None => {
                let price: U256 = self.request("eth_gasPrice", json!([])).await?;
                return Ok((price.to(), price.to()));
            }
        };
        let tip = answers.next().and_then(Result::ok).and_then(|tip| serde_json::from_value::<U256>(tip).ok());
        let tip: u128 = tip.unwrap_or(U256::ZERO).to();
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
        self.call_at(request, "latest").await
    }

    /// `eth_call` on the state at block `tag` ("latest", "pending").
    pub async fn call_at(&self, request: &CallRequest, tag: &str) -> Result<Bytes, ClientError> {
        self.request("eth_call", json!([Self::call_object(request), tag])).await
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
        Ok(receipt.map(|r| outcome_of(hash, &r)))
    }

    /// [`Self::outcome`] of each of `hashes`, in one batch.
    async fn outcomes(&self, hashes: &[B256]) -> Result<Vec<(B256, Outcome)>, ClientError> {
        let calls: Vec<(&str, Value)> = hashes.iter().map(|h| ("eth_getTransactionReceipt", json!([h]))).collect();
        let receipts = self.batch::<Option<TransactionReceipt>>(&calls).await?;
        let mut mined = Vec::new();
        for (hash, receipt) in hashes.iter().zip(receipts) {
            if let Some(receipt) = receipt? {
                mined.push((*hash, outcome_of(*hash, &receipt)));
            }
        }
        Ok(mined)
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
    /// own check and the watcher's first look). Each look is three round
    /// trips however many blocks and receipts it reads (JSON-RPC batches).
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
        // The new blocks' transaction hashes in one batch (at most a hundred
        // blocks a round), then the receipts of those waited for in another.
        let numbers: Vec<u64> = (from..=head).take(100).collect();
        let calls: Vec<(&str, Value)> =
            numbers.iter().map(|n| ("eth_getBlockByNumber", json!([U64::from(*n), false]))).collect();
        let mut waited = Vec::new();
        for block in self.batch::<Value>(&calls).await? {
            let block = block?;
            let hashes: Vec<B256> =
                block.get("transactions").cloned().and_then(|t| serde_json::from_value(t).ok()).unwrap_or_default();
            let watch = self.watch();
            waited.extend(hashes.into_iter().filter(|h| watch.waiting.contains_key(h)));
        }
        if last_sweep.elapsed() >= SWEEP_INTERVAL {
            *last_sweep = Instant::now();
            waited.extend(self.watch().waiting.keys().copied());
            waited.sort_unstable();
            waited.dedup();
        }
        for (hash, outcome) in self.outcomes(&waited).await? {
            self.resolve(hash, &Ok(outcome));
        }
        if let Some(last) = numbers.last() {
            *scanned = Some(*last);
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

/// A batch's answers (in whatever order the node sent them) matched to the
/// `count` calls numbered from `first`; `None` for a call not answered.
fn in_order(answers: Vec<Value>, first: u64, count: usize) -> Vec<Option<Value>> {
    let mut by_id: HashMap<u64, Value> =
        answers.into_iter().filter_map(|a| Some((a.get("id")?.as_u64()?, a))).collect();
    (first..first + count as u64).map(|id| by_id.remove(&id)).collect()
}

/// One JSON-RPC answer's result as `T`, or its error.
fn answer_of<T: DeserializeOwned>(method: &str, answer: &Value) -> Result<T, ClientError> {
    if let Some(error) = answer.get("error") {
        return Err(rpc_error(error));
    }
    let result = answer.get("result").cloned().unwrap_or(Value::Null);
    serde_json::from_value(result).map_err(|e| unexpected(method, &format!("unexpected answer: {e}")))
}

fn unexpected(method: &str, what: &str) -> ClientError {
    ClientError::Unavailable(format!("{method}: {what}"))
}

fn outcome_of(hash: B256, r: &TransactionReceipt) -> Outcome {
    Outcome {
        hash,
        block_number: r.block_number.unwrap_or_default(),
        success: r.status(),
        gas_used: r.gas_used,
        logs: r.inner.logs().iter().map(|log| log.inner.clone()).collect(),
        contract_address: r.contract_address,
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
    fn batch_answers_are_matched_by_id_and_missing_ones_are_errors() {
        let answers = vec![
            json!({ "jsonrpc": "2.0", "id": 8, "result": "0x2" }),
            json!({ "jsonrpc": "2.0", "id": "7", "result": "0x1" }),
            json!({ "jsonrpc": "2.0", "result": "0x0" }),
            json!({ "jsonrpc": "2.0", "id": 9, "error": { "code": -32000, "message": "nonce too low" } }),
            json!({ "jsonrpc": "2.0", "id": 99, "result": "0x9" }),
        ];
        let matched = in_order(answers, 7, 3);
        assert_eq!(matched.len(), 3);
        assert_eq!(matched[0], None, "an id that is not a number answers nothing");
        let second: Result<U64, _> = answer_of("eth_blockNumber", matched[1].as_ref().unwrap());
        assert_eq!(second, Ok(U64::from(2)));
        let third: Result<U64, _> = answer_of("eth_sendRawTransaction", matched[2].as_ref().unwrap());
        assert_eq!(third, Err(ClientError::Rejected("nonce too low".into())));
        let wrong_type: Result<U64, _> = answer_of("eth_blockNumber", &json!({ "id": 1, "result": [1] }));
        assert!(matches!(wrong_type, Err(ClientError::Unavailable(why)) if why.contains("unexpected answer")));
        assert_eq!(in_order(Vec::new(), 1, 2), vec![None, None]);
    }

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
