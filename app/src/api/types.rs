//! Request and response bodies of the server functions.

use chartkey_core::directory::DirectoryEntry;
use serde::{Deserialize, Serialize};

/// WebAuthn JSON, passed through unparsed: creation and request options
/// from the server (webauthn-rs's serialisation, base64url for binary
/// fields) and the browser's credential in return. The server parses it
/// into webauthn-rs types; the browser hands it to `navigator.credentials`.
pub type WebauthnJson = Box<serde_json::value::RawValue>;

/// Longest display name accepted, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 80;
/// Longest passkey label accepted, in characters.
pub const MAX_PASSKEY_LABEL_CHARS: usize = 60;
/// Largest sealed key store accepted, in bytes (a real one is ~200).
pub const MAX_SEALED_KEYSTORE_BYTES: usize = 1024;

/// A WebAuthn registration in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreationStart {
    pub ceremony_id: String,
    pub options: WebauthnJson,
}

/// A WebAuthn authentication in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestStart {
    pub ceremony_id: String,
    pub options: WebauthnJson,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupFinishBody {
    pub ceremony_id: String,
    pub credential: WebauthnJson,
    pub passkey_label: String,
    /// Opaque to the server: the account secret sealed in the browser.
    pub sealed_keystore: String,
    pub uses_passphrase: bool,
    pub directory: DirectoryEntry,
    /// The account's registration in the ledger's Directory contract
    /// (EIP-712 `Register`, nonce 0, `chartkey_core::eip712::first_registration`):
    /// the signature, 0x hex. The server relays it (after the passkey checks
    /// out; a missing or bad one is refused then).
    #[serde(default)]
    pub ledger_registration: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginFinishBody {
    pub ceremony_id: String,
    pub credential: WebauthnJson,
}

/// Restore, step 1: a challenge for the account key. The server says
/// nothing about the account (not even whether it exists) until the proof
/// checks out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreChallenge {
    pub ceremony_id: String,
    /// To sign, as `chartkey_core::proof::restore_message`, with EIP-191.
    pub challenge: String,
}

/// Restore, step 2: the proof that the phrase is known.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreProofBody {
    pub ceremony_id: String,
    pub signature: String,
}

/// Adding a passkey: creation options, and a challenge the unlocked account
/// key must sign together with the new credential's id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewPasskeyChallenge {
    pub ceremony_id: String,
    pub options: WebauthnJson,
    pub challenge: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreFinishBody {
    pub ceremony_id: String,
    pub credential: WebauthnJson,
    pub passkey_label: String,
    pub sealed_keystore: String,
    pub uses_passphrase: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddPasskeyFinishBody {
    pub ceremony_id: String,
    pub credential: WebauthnJson,
    pub passkey_label: String,
    pub sealed_keystore: String,
    pub uses_passphrase: bool,
    /// `personal_sign` of `chartkey_core::proof::add_passkey_message`.
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeysOf {
    pub display_name: String,
    pub entry: DirectoryEntry,
}

/// Where the ledger is: what the browser needs to build EIP-712 domains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerContracts {
    pub chain_id: u64,
    /// The Directory contract (0x-prefixed address).
    pub directory: String,
    /// The Records contract.
    pub records: String,
    /// The server's relayer, which pays for relayed messages.
    pub relayer: String,
}

/// A signed ledger message for the relayer. `signature` is the 65-byte
/// EIP-712 signature, 0x-prefixed hex.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayBody {
    pub message: chartkey_core::eip712::LedgerMessage,
    pub signature: String,
}

/// A relayed message: accepted (journalled and sent) and, once `mined`, in
/// block `block_number`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayReceipt {
    pub job: i64,
    pub tx_hash: String,
    pub mined: bool,
    pub block_number: Option<u64>,
}

/// The ledger page: the chain, its latest blocks, and what the ledger says
/// about the signed-in account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerPage {
    pub chain_id: u64,
    /// On an external Ethereum network (`--chain-rpc`) rather than embedded.
    pub external: bool,
    pub head: u64,
    /// Newest first.
    pub blocks: Vec<LedgerBlock>,
    /// Events that name this account, newest first.
    pub activity: Vec<LedgerEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerBlock {
    pub number: u64,
    pub hash: String,
    pub timestamp: u64,
    pub transactions: u32,
    pub gas_used: u64,
}

/// A contract event, decoded: its name and its fields as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEvent {
    pub block_number: u64,
    pub tx_hash: String,
    pub name: String,
    pub fields: Vec<(String, String)>,
}

/// A transaction's events that name the signed-in account; `others` counts
/// the rest (a bundle carries other people's messages too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTxView {
    pub hash: String,
    pub block_number: u64,
    pub success: bool,
    pub events: Vec<LedgerEvent>,
    pub others: u32,
}

/// The result of re-executing the chain from genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerVerification {
    pub ok: bool,
    pub blocks: u64,
    pub transactions: u64,
    pub head_hash: String,
    /// The first bad block and why, when not ok.
    pub problem: Option<String>,
    pub millis: u64,
}
