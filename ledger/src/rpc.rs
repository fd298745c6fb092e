//! Ethereum JSON-RPC over the embedded node, answering as geth does: the
//! same JSON shapes (alloy's RPC types), error codes and messages.
//!
//! State queries answer for the latest block only (the node keeps no
//! historical state); asking for an older block's state is an error.

use alloy_consensus::{Sealed, Transaction as _, TxEnvelope, transaction::Recovered};
use alloy_eips::BlockNumberOrTag;
use alloy_primitives::{Address, B256, Bytes, TxKind, U64, U256};
use alloy_rpc_types_eth::{
    Block as RpcBlock, BlockTransactions, Filter, FilterBlockOption, Header as RpcHeader, Log, Transaction,
    TransactionReceipt, TransactionRequest,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::artifacts::revert_message;
use crate::node::{BASE_FEE, Block, CallError, CallRequest, LedgerError, MinedTx, Node, SubmitError};

/// Most blocks one eth_getLogs may scan.
pub const MAX_LOG_RANGE: u64 = 10_000;
/// Most requests one batch may hold.
pub const MAX_BATCH: usize = 100;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(-32602, message)
    }

    fn server(message: impl Into<String>) -> Self {
        Self::new(-32000, message)
    }
}

impl From<LedgerError> for RpcError {
    fn from(error: LedgerError) -> Self {
        Self::new(-32603, error.to_string())
    }
}

/// Answers one HTTP body: a request or a batch. `None` when nothing is to be
/// sent back (only notifications).
pub async fn handle(node: &Node, body: &[u8]) -> Option<Value> {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) => return Some(error_response(Value::Null, RpcError::new(-32700, "parse error"))),
    };
    match parsed {
        Value::Array(requests) if requests.is_empty() => {
            Some(error_response(Value::Null, RpcError::new(-32600, "empty batch")))
        }
        Value::Array(requests) if requests.len() > MAX_BATCH => {
            let error = RpcError::new(-32600, format!("batch of {} requests, more than {MAX_BATCH}", requests.len()));
            Some(error_response(Value::Null, error))
        }
        Value::Array(requests) => {
            let mut answers = Vec::with_capacity(requests.len());
            for request in requests {
                if let Some(answer) = handle_one(node, request).await {
                    answers.push(answer);
                }
            }
            (!answers.is_empty()).then_some(Value::Array(answers))
        }
        request => handle_one(node, request).await,
    }
}

async fn handle_one(node: &Node, request: Value) -> Option<Value> {
    let Value::Object(mut request) = request else {
        return Some(error_response(Value::Null, RpcError::new(-32600, "invalid request")));
    };
    let id = request.remove("id");
    let valid = request.get("jsonrpc") == Some(&json!("2.0"))
        && matches!(id, None | Some(Value::Null | Value::Number(_) | Value::String(_)));
    let (Some(Value::String(method)), true) = (request.remove("method"), valid) else {
        return Some(error_response(id.unwrap_or(Value::Null), RpcError::new(-32600, "invalid request")));
    };
    let params = match request.remove("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(params)) => params,
        Some(_) => {
            let error = RpcError::invalid_params("non-array args");
            return Some(error_response(id.unwrap_or(Value::Null), error));
        }
    };
    let result = dispatch(node, &method, params).await;
    // A request without an id is a notification: no answer.
    let id = id?;
    Some(match result {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(error) => error_response(id, error),
    })
}

fn error_response(id: Value, error: RpcError) -> Value {
    let mut object = json!({ "code": error.code, "message": error.message });
    if let Some(data) = error.data {
        object["data"] = data;
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": object })
}

/// The positional parameters of a call, decoded one by one.
struct Params {
    values: Vec<Value>,
}

impl Params {
    fn required<T: DeserializeOwned>(&self, index: usize) -> Result<T, RpcError> {
        let value = self
            .values
            .get(index)
            .ok_or_else(|| RpcError::invalid_params(format!("missing value for required argument {index}")))?;
        serde_json::from_value(value.clone())
            .map_err(|e| RpcError::invalid_params(format!("invalid argument {index}: {e}")))
    }

    fn optional<T: DeserializeOwned>(&self, index: usize) -> Result<Option<T>, RpcError> {
        match self.values.get(index) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.required(index).map(Some),
        }
    }

    fn at_most(&self, count: usize) -> Result<(), RpcError> {
        if self.values.len() > count {
            return Err(RpcError::invalid_params(format!("too many arguments, want at most {count}")));
        }
        Ok(())
    }
}

async fn dispatch(node: &Node, method: &str, params: Vec<Value>) -> Result<Value, RpcError> {
    let p = Params { values: params };
    match method {
        "eth_chainId" => {
            p.at_most(0)?;
            Ok(json!(U64::from(node.chain_id())))
        }
        "net_version" => {
            p.at_most(0)?;
            Ok(json!(node.chain_id().to_string()))
        }
        "eth_blockNumber" => {
            p.at_most(0)?;
            Ok(json!(U64::from(node.head().0)))
        }
        "eth_gasPrice" => {
            p.at_most(0)?;
            Ok(json!(U256::from(BASE_FEE)))
        }
        "eth_maxPriorityFeePerGas" => {
            p.at_most(0)?;
            Ok(json!(U256::ZERO))
        }
        "eth_getBlockByNumber" => {
            p.at_most(2)?;
            let tag: BlockNumberOrTag = p.required(0)?;
            let full: bool = p.required(1)?;
            let Some(number) = block_number(node, tag) else { return Ok(Value::Null) };
            Ok(node.block(number)?.map(|b| block_json(&b, full)).unwrap_or(Value::Null))
        }
        "eth_getBlockByHash" => {
            p.at_most(2)?;
            let hash: B256 = p.required(0)?;
            let full: bool = p.required(1)?;
            let Some(number) = node.block_number_of_hash(hash)? else { return Ok(Value::Null) };
            Ok(node.block(number)?.map(|b| block_json(&b, full)).unwrap_or(Value::Null))
        }
        "eth_getTransactionByHash" => {
            p.at_most(1)?;
            let hash: B256 = p.required(0)?;
            Ok(node.transaction(hash)?.map(|t| json!(transaction(&t))).unwrap_or(Value::Null))
        }
        "eth_getTransactionReceipt" => {
            p.at_most(1)?;
            let hash: B256 = p.required(0)?;
            Ok(node.transaction(hash)?.map(|t| json!(receipt(&t))).unwrap_or(Value::Null))
        }
        "eth_getTransactionCount" | "eth_getBalance" | "eth_getCode" => {
            p.at_most(2)?;
            let address: Address = p.required(0)?;
            let tag: Option<BlockNumberOrTag> = p.optional(1)?;
            latest_state(node, tag)?;
            Ok(match method {
                // "pending" counts transactions waiting for the next block, as geth's pool does.
                "eth_getTransactionCount" if tag == Some(BlockNumberOrTag::Pending) => {
                    json!(U64::from(node.pending_nonce(address)))
                }
                "eth_getTransactionCount" => json!(U64::from(node.nonce(address))),
                "eth_getBalance" => json!(node.balance(address)),
                _ => json!(node.code(address)),
            })
        }
        "eth_call" => {
            p.at_most(2)?;
            let request = call_request(&p)?;
            latest_state(node, p.optional(1)?)?;
            node.call(&request).map(|(output, _)| json!(output)).map_err(call_error)
        }
        "eth_estimateGas" => {
            p.at_most(2)?;
            let request = call_request(&p)?;
            latest_state(node, p.optional(1)?)?;
            node.estimate_gas(&request).map(|gas| json!(U64::from(gas))).map_err(call_error)
        }
        "eth_getLogs" => {
            p.at_most(1)?;
            let filter: Filter = p.required(0)?;
            logs(node, &filter).map(|logs| json!(logs))
        }
        "eth_sendRawTransaction" => {
            p.at_most(1)?;
            let raw: Bytes = p.required(0)?;
            match node.send_raw_transaction(&raw).await {
                Ok(inclusion) => Ok(json!(inclusion.hash)),
                Err(SubmitError::Rejected(message)) => Err(RpcError::server(message)),
                Err(SubmitError::Unavailable(message)) => {
                    Err(RpcError::server(format!("ledger unavailable: {message}")))
                }
            }
        }
        _ => Err(RpcError::new(-32601, format!("the method {method} does not exist/is not available"))),
    }
}

/// The block a tag or number names, if it exists.
fn block_number(node: &Node, tag: BlockNumberOrTag) -> Option<u64> {
    let head = node.head().0;
    match tag {
        BlockNumberOrTag::Earliest => Some(0),
        BlockNumberOrTag::Number(n) if n <= head => Some(n),
        BlockNumberOrTag::Number(_) => None,
        _ => Some(head),
    }
}

/// State is kept for the latest block only.
fn latest_state(node: &Node, tag: Option<BlockNumberOrTag>) -> Result<(), RpcError> {
    match tag {
        None
        | Some(BlockNumberOrTag::Latest | BlockNumberOrTag::Pending)
        | Some(BlockNumberOrTag::Safe | BlockNumberOrTag::Finalized) => Ok(()),
        Some(BlockNumberOrTag::Number(n)) if n == node.head().0 => Ok(()),
        Some(BlockNumberOrTag::Number(n)) if n > node.head().0 => Err(RpcError::server("header not found")),
        Some(_) => Err(RpcError::server("historical state is not available (this node keeps the latest state only)")),
    }
}

fn call_request(p: &Params) -> Result<CallRequest, RpcError> {
    let request: TransactionRequest = p.required(0)?;
    let data = request.input.unique_input().map_err(|_| {
        RpcError::invalid_params(
            "invalid argument 0: both \"data\" and \"input\" are set and not equal. Please use \"input\" to pass transaction call data",
        )
    })?;
    let data = data.cloned().unwrap_or_default();
    Ok(CallRequest {
        from: request.from,
        to: match request.to {
            Some(TxKind::Call(to)) => Some(to),
            _ => None,
        },
        data,
        value: request.value.unwrap_or_default(),
        gas: request.gas,
    })
}

/// geth: code 3 with the revert data for reverts, -32000 otherwise.
fn call_error(error: CallError) -> RpcError {
    match error {
        CallError::Reverted(data) => {
            let message = match revert_message(&data) {
                Some(reason) => format!("execution reverted: {reason}"),
                None => "execution reverted".to_owned(),
            };
            RpcError { code: 3, message, data: Some(json!(data)) }
        }
        CallError::Halted(message) | CallError::Invalid(message) => RpcError::server(message),
    }
}

fn effective_gas_price(tx: &TxEnvelope) -> u128 {
    tx.effective_gas_price(Some(BASE_FEE))
}

fn transaction(mined: &MinedTx) -> Transaction {
    Transaction {
        inner: Recovered::new_unchecked(mined.tx.envelope.clone(), mined.tx.sender),
        block_hash: Some(mined.block_hash),
        block_number: Some(mined.block_number),
        transaction_index: Some(mined.index),
        effective_gas_price: Some(effective_gas_price(&mined.tx.envelope)),
        block_timestamp: None,
    }
}

fn receipt(mined: &MinedTx) -> TransactionReceipt {
    let mut log_index = mined.first_log_index;
    let inner = mined.receipt.clone().map_logs(|log| {
        let log = Log {
            inner: log,
            block_hash: Some(mined.block_hash),
            block_number: Some(mined.block_number),
            block_timestamp: None,
            transaction_hash: Some(mined.tx.hash()),
            transaction_index: Some(mined.index),
            log_index: Some(log_index),
            removed: false,
        };
        log_index += 1;
        log
    });
    TransactionReceipt {
        inner,
        transaction_hash: mined.tx.hash(),
        transaction_index: Some(mined.index),
        block_hash: Some(mined.block_hash),
        block_number: Some(mined.block_number),
        gas_used: mined.gas_used,
        effective_gas_price: effective_gas_price(&mined.tx.envelope),
        blob_gas_used: None,
        blob_gas_price: None,
        from: mined.tx.sender,
        to: mined.tx.envelope.to(),
        contract_address: mined.contract_address,
    }
}

fn block_json(block: &Block, full: bool) -> Value {
    let transactions = if full {
        BlockTransactions::Full(block.mined_all().iter().map(transaction).collect())
    } else {
        BlockTransactions::Hashes(block.transactions.iter().map(|t| t.hash()).collect())
    };
    let size = alloy_rlp::encode(&block.header).len()
        + block
            .transactions
            .iter()
            .map(|t| alloy_eips::eip2718::Encodable2718::encode_2718_len(&t.envelope))
            .sum::<usize>()
        + 8;
    let mut header = RpcHeader::from_sealed(Sealed::new_unchecked(block.header.clone(), block.hash));
    header.size = Some(U256::from(size));
    json!(RpcBlock { header, uncles: Vec::new(), transactions, withdrawals: None })
}

/// The logs `filter` selects, as eth_getLogs answers (at most
/// [`MAX_LOG_RANGE`] blocks).
pub fn logs(node: &Node, filter: &Filter) -> Result<Vec<Log>, RpcError> {
    let head = node.head().0;
    let (from, to) = match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let number = node.block_number_of_hash(hash)?.ok_or_else(|| RpcError::server("unknown block"))?;
            (number, number)
        }
        FilterBlockOption::Range { from_block, to_block } => {
            let resolve = |tag: Option<BlockNumberOrTag>| match tag {
                None => head,
                Some(BlockNumberOrTag::Earliest) => 0,
                Some(BlockNumberOrTag::Number(n)) => n,
                Some(_) => head,
            };
            (resolve(from_block), resolve(to_block).min(head))
        }
    };
    if from > to {
        return if matches!(filter.block_option, FilterBlockOption::Range { .. }) && from > head {
            Ok(Vec::new())
        } else {
            Err(RpcError::server("invalid block range params"))
        };
    }
    if to - from >= MAX_LOG_RANGE {
        return Err(RpcError::server(format!("query exceeds max block range {MAX_LOG_RANGE}")));
    }
    let mut found = Vec::new();
    for number in from..=to {
        let Some(block) = node.block(number)? else { continue };
        if !filter.matches_bloom(block.header.logs_bloom) {
            continue;
        }
        for mined in block.mined_all() {
            for log in receipt(&mined).inner.logs() {
                if filter.matches_address(log.address()) && filter.matches_topics(log.topics()) {
                    found.push(log.clone());
                }
            }
        }
    }
    Ok(found)
}
