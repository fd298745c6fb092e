//! Chartkey's pure shared code, compiled both into the browser (wasm32) and
//! the server. No I/O lives here: randomness comes in as a parameter, so
//! every function is testable with fixed inputs (known-answer tests).
//!
//! - [`keys`]: the account secret and the keys derived from it.
//! - [`keystore`]: the account secret sealed under a passkey's PRF output or
//!   a passphrase.
//! - [`recovery`]: the 24-word recovery phrase (BIP39 English).
//! - [`directory`]: the signed public-key directory entry (EIP-712).
//! - [`envelope`]: a record encrypted in chunks under its own data key, and
//!   the data key wrapped to each reader (HPKE).
//! - [`merkle`]: RFC 6962 trees for anchoring many records at once.
//! - [`records`]: the ledger message that anchors new records.
//! - [`fhir`]: record categories, and splitting a FHIR import into records.
//! - [`summary`]: a readable digest of a FHIR resource, per type.
//! - [`role`]: what an account is for.
//! - [`value`]: hashes, addresses, signatures, keys and record ids, typed
//!   once with one text form for the wire and the database.

pub mod audit;
pub mod bundle_view;
pub mod card;
pub mod directory;
pub mod eip712;
pub mod envelope;
pub mod fhir;
pub mod heads;
pub mod ips;
pub mod keys;
pub mod keystore;
pub mod merkle;
pub mod proof;
pub mod records;
pub mod recovery;
pub mod role;
pub mod route;
pub mod shl;
pub mod summary;
#[cfg(test)]
mod test_rng;
pub mod units;
pub mod value;
pub mod when;

pub use keys::{AccountKeys, AccountSecret};
