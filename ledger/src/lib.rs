//! Chartkey's ledger: the compiled contracts and an EVM to run them.
//!
//! - [`artifacts`]: the contracts compiled from contracts/src by the pinned
//!   solc (committed JSON: ABI and bytecode), with revert decoding.
//! - [`abi`]: the contracts' calls, views and events as typed Rust
//!   (alloy `sol!`), and [`client::LedgerClient::view`] to read them.
//! - [`calls`]: which contract function carries each signed message.
//! - [`convert`]: addresses between ethers-core and alloy (the one place).
//! - [`exec`]: one transaction on revm in a given block (shared).
//! - [`evm`]: an in-memory test chain that deploys and calls the contracts
//!   with unsigned transactions (contract tests).
//! - [`node`]: the embedded node: signed transactions, blocks, durable
//!   storage, re-execution and verification.
//! - [`rpc`]: Ethereum JSON-RPC over the node, as geth answers it.
//! - [`client`]: the ledger as the server reaches it (the embedded node, or
//!   an external one over JSON-RPC), and deploying the contracts there.
//! - [`anvil`]: Foundry's anvil as an external node for tests and benchmarks.
//! - [`relayer`]: signed messages into paid, journalled transactions.
//! - [`refusal`]: a contract's revert, in words.

pub mod abi;
pub mod anvil;
pub mod artifacts;
pub mod calls;
pub mod client;
pub mod convert;
pub mod evm;
pub mod exec;
pub mod node;
pub mod refusal;
pub mod relayer;
pub mod rpc;
mod sqlite;

pub use artifacts::Artifact;
pub use evm::{Chain, Receipt, TxError};
pub use node::{Genesis, Node};
