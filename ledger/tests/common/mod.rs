//! Shared by the contract tests.

#![allow(dead_code)]

use chartkey_core::{AccountKeys, AccountSecret};
use chartkey_ledger::{Receipt, TxError};

pub const CHAIN_ID: u64 = 31337;
pub const START: u64 = 1_800_000_000;
pub const DAY: u64 = 86_400;

/// Deterministic accounts: `keys(1)`, `keys(2)`…
pub fn keys(n: u8) -> AccountKeys {
    AccountSecret::from_bytes([n; 32]).derive()
}

/// The decoded revert reason, or a panic if the call did not revert.
pub fn reason(result: Result<Receipt, TxError>) -> String {
    match result {
        Err(TxError::Reverted { reason, .. }) => reason,
        other => panic!("expected a revert, got {other:?}"),
    }
}
