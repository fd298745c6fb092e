//! Chartkey's ledger: the compiled contracts and an EVM to run them.
//!
//! - [`artifacts`]: the contracts compiled from contracts/src by the pinned
//!   solc (committed JSON: ABI and bytecode), with revert decoding.
//! - [`evm`]: an in-process EVM (revm) that deploys and calls them; the
//!   embedded node, JSON-RPC and the relayer build on it.

pub mod artifacts;
pub mod evm;

pub use artifacts::Artifact;
pub use evm::{Chain, Receipt, TxError};
