//! Chartkey's pure shared code, compiled both into the browser (wasm32) and
//! the server. No I/O lives here: randomness comes in as a parameter, so
//! every function is testable with fixed inputs (known-answer tests).
//!
//! - [`keys`]: the account secret and the keys derived from it.
//! - [`keystore`]: the account secret sealed under a passkey's PRF output or
//!   a passphrase.
//! - [`recovery`]: the 24-word recovery phrase (BIP39 English).
//! - [`directory`]: the signed public-key directory entry (EIP-712).
//! - [`wire`]: types that travel between browser and server.

pub mod directory;
pub mod eip712;
pub mod keys;
pub mod keystore;
pub mod proof;
pub mod recovery;
pub mod wire;

pub use keys::{AccountKeys, AccountSecret};
