//! Executing a block of signed transactions into a header and receipts. The
//! same code mines new blocks and re-executes stored ones (restart, verify),
//! so a stored block is valid exactly when executing it again reproduces it.

use std::collections::BTreeMap;

use alloy_consensus::proofs::{calculate_receipt_root, calculate_transaction_root};
use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{
    EMPTY_OMMER_ROOT_HASH, Eip658Value, Header, Receipt, ReceiptEnvelope, Transaction, TxEnvelope, Typed2718,
};
use alloy_primitives::{Address, B64, B256, Bloom, Bytes, U256, keccak256};
use revm::DatabaseCommit;
use revm::context::TxEnv;
use revm::context_interface::result::ExecutionResult;
use revm::state::{AccountInfo, EvmState};

use crate::exec::{self, BlockParams, State};

pub const EXTRA_DATA: &[u8] = b"chartkey";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("genesis: {0}")]
    Genesis(String),
    #[error("upgrade: {0}")]
    Upgrade(String),
    /// A transaction that cannot be included (geth's wording where it has one).
    #[error("{0}")]
    InvalidTransaction(String),
}

/// The final value of everything a block touched, in a canonical order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StateDiff {
    accounts: BTreeMap<Address, AccountDiff>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct AccountDiff {
    nonce: u64,
    balance: U256,
    code_hash: B256,
    storage: BTreeMap<U256, U256>,
}

impl StateDiff {
    pub fn record_account(&mut self, address: Address, info: &AccountInfo) {
        let entry = self.accounts.entry(address).or_default();
        entry.nonce = info.nonce;
        entry.balance = info.balance;
        entry.code_hash = info.code_hash;
    }

    /// Adds a transaction's changes (later values replace earlier ones).
    pub fn record(&mut self, changes: &EvmState) {
        for (&address, account) in changes {
            if !account.is_touched() {
                continue;
            }
            self.record_account(address, &account.info);
            let entry = self.accounts.get_mut(&address).expect("just inserted");
            for (&slot, value) in &account.storage {
                if value.is_changed() {
                    entry.storage.insert(slot, value.present_value);
                }
            }
        }
    }

    /// keccak256 over every touched account (address, nonce, balance, code
    /// hash, changed slots and values), in address and slot order.
    pub fn hash(&self) -> B256 {
        let mut bytes = Vec::with_capacity(self.accounts.len() * 128);
        for (address, account) in &self.accounts {
            bytes.extend_from_slice(address.as_slice());
            bytes.extend_from_slice(&account.nonce.to_be_bytes());
            bytes.extend_from_slice(&account.balance.to_be_bytes::<32>());
            bytes.extend_from_slice(account.code_hash.as_slice());
            bytes.extend_from_slice(&(account.storage.len() as u64).to_be_bytes());
            for (slot, value) in &account.storage {
                bytes.extend_from_slice(&slot.to_be_bytes::<32>());
                bytes.extend_from_slice(&value.to_be_bytes::<32>());
            }
        }
        keccak256(bytes)
    }
}

/// The header's state commitment: a hash chain over each block's state diff
/// (not a Merkle-Patricia state root; see ARCHITECTURE.md).
pub fn state_commitment(parent: B256, diff: &StateDiff) -> B256 {
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(parent.as_slice());
    bytes[32..].copy_from_slice(diff.hash().as_slice());
    keccak256(bytes)
}

/// A transaction with its sender recovered.
#[derive(Debug, Clone)]
pub struct SignedTx {
    pub envelope: TxEnvelope,
    pub sender: Address,
}

impl SignedTx {
    pub fn recover(envelope: TxEnvelope) -> Result<Self, BlockError> {
        let sender = envelope.recover_signer().map_err(|_| BlockError::InvalidTransaction("invalid sender".into()))?;
        Ok(Self { envelope, sender })
    }

    pub fn hash(&self) -> B256 {
        *self.envelope.tx_hash()
    }
}

/// The parent's hash and header, or what genesis fixes.
pub struct Parent<'a> {
    pub hash: B256,
    pub header: &'a Header,
}

/// The header of a block; the fields that are not inputs are constants of this chain.
pub fn header(
    parent: Option<&Parent<'_>>,
    number: u64,
    timestamp: u64,
    state_root: B256,
    transactions: &[TxEnvelope],
    receipts: &[ReceiptEnvelope],
) -> Header {
    let mut logs_bloom = Bloom::ZERO;
    for receipt in receipts {
        logs_bloom.accrue_bloom(receipt.logs_bloom());
    }
    Header {
        parent_hash: parent.map(|p| p.hash).unwrap_or_default(),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: Address::ZERO,
        state_root,
        transactions_root: calculate_transaction_root(transactions),
        receipts_root: calculate_receipt_root(receipts),
        logs_bloom,
        difficulty: U256::ZERO,
        number,
        gas_limit: super::BLOCK_GAS_LIMIT,
        gas_used: receipts.last().map(|r| r.cumulative_gas_used()).unwrap_or(0),
        timestamp,
        extra_data: Bytes::from_static(EXTRA_DATA),
        mix_hash: B256::ZERO,
        nonce: B64::ZERO,
        base_fee_per_gas: Some(super::BASE_FEE),
        ..Default::default()
    }
}

/// The revm transaction for a signed Ethereum transaction.
pub fn tx_env(tx: &SignedTx) -> Result<TxEnv, BlockError> {
    let envelope = &tx.envelope;
    let mut builder = TxEnv::builder()
        .tx_type(Some(envelope.ty()))
        .caller(tx.sender)
        .gas_limit(envelope.gas_limit())
        .nonce(envelope.nonce())
        .value(envelope.value())
        .data(envelope.input().clone())
        .kind(envelope.kind())
        .chain_id(envelope.chain_id());
    builder = match envelope {
        TxEnvelope::Legacy(_) | TxEnvelope::Eip2930(_) => {
            builder.gas_price(envelope.gas_price().expect("legacy and 2930 transactions have a gas price"))
        }
        TxEnvelope::Eip1559(_) => {
            builder.max_fee_per_gas(envelope.max_fee_per_gas()).gas_priority_fee(envelope.max_priority_fee_per_gas())
        }
        _ => return Err(BlockError::InvalidTransaction("transaction type not supported".into())),
    };
    if let Some(list) = envelope.access_list() {
        builder = builder.access_list(list.clone());
    }
    builder.build().map_err(|e| BlockError::InvalidTransaction(format!("{e:?}")))
}

/// Executes `transactions` on `state` as block `number` and commits them.
/// A transaction the EVM refuses (bad nonce, no funds for gas, …) is left
/// out and returned with the reason, so mining can answer its sender; when
/// re-executing a stored block the caller treats any such refusal as a bad
/// block.
pub fn execute(
    state: &mut State,
    chain_id: u64,
    parent: &Parent<'_>,
    timestamp: u64,
    transactions: Vec<SignedTx>,
) -> (super::Block, Vec<(SignedTx, BlockError)>) {
    let number = parent.header.number + 1;
    let params = BlockParams { number, timestamp, basefee: super::BASE_FEE };
    let mut diff = StateDiff::default();
    let mut included = Vec::with_capacity(transactions.len());
    let mut receipts = Vec::with_capacity(transactions.len());
    let mut refused = Vec::new();
    let mut cumulative_gas_used = 0u64;
    for tx in transactions {
        if cumulative_gas_used + tx.envelope.gas_limit() > super::BLOCK_GAS_LIMIT {
            refused.push((tx, BlockError::InvalidTransaction("exceeds block gas limit".into())));
            continue;
        }
        let env = match tx_env(&tx) {
            Ok(env) => env,
            Err(e) => {
                refused.push((tx, e));
                continue;
            }
        };
        let outcome = match exec::transact(&mut *state, chain_id, &params, env) {
            Ok(outcome) => outcome,
            Err(e) => {
                refused.push((tx, BlockError::InvalidTransaction(e.to_string())));
                continue;
            }
        };
        cumulative_gas_used += outcome.result.tx_gas_used();
        let success = matches!(outcome.result, ExecutionResult::Success { .. });
        let logs = outcome.result.logs().to_vec();
        diff.record(&outcome.state);
        state.commit(outcome.state);
        let receipt = Receipt { status: Eip658Value::Eip658(success), cumulative_gas_used, logs };
        receipts.push(ReceiptEnvelope::from_typed(tx.envelope.tx_type(), receipt.with_bloom()));
        included.push(tx);
    }
    let state_root = state_commitment(parent.header.state_root, &diff);
    let envelopes: Vec<TxEnvelope> = included.iter().map(|t| t.envelope.clone()).collect();
    let header = header(Some(parent), number, timestamp, state_root, &envelopes, &receipts);
    let hash = header.hash_slow();
    (super::Block { header, hash, transactions: included, receipts }, refused)
}
