//! Request and response bodies of the sign-up, sign-in, restore, passkey
//! and approval ceremonies, and of the public key directory.

use chartkey_core::directory::DirectoryEntry;
use chartkey_core::keystore::SealedKeystore;
use chartkey_core::value::{Hash32, Signature};
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

/// A passkey approval in progress: its options carry the challenge
/// `chartkey_core::proof::approval_challenge(digest, nonce)`, which the
/// browser checks against the message it shows before asking for the
/// passkey.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalStart {
    pub ceremony_id: String,
    pub options: WebauthnJson,
    /// The server's single-use nonce (32 random bytes).
    pub nonce: Hash32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignupFinishBody {
    pub ceremony_id: String,
    pub credential: WebauthnJson,
    pub passkey_label: String,
    /// Opaque to the server: the account secret sealed in the browser.
    pub sealed_keystore: SealedKeystore,
    pub uses_passphrase: bool,
    pub directory: DirectoryEntry,
    /// The account's registration in the ledger's Directory contract
    /// (EIP-712 `Register`, nonce 0, `chartkey_core::eip712::first_registration`):
    /// the signature. The server relays it (after the passkey checks out; a
    /// missing or bad one is refused then).
    #[serde(default)]
    pub ledger_registration: Option<Signature>,
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
    pub signature: Signature,
}

/// Adding a passkey: creation options, and a challenge the unlocked account
/// key must sign together with the new credential's id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewPasskeyChallenge {
    pub ceremony_id: String,
    pub options: WebauthnJson,
    pub challenge: String,
}

/// A single-use challenge for the account key's signature removing one
/// passkey (`chartkey_core::proof::remove_passkey_message`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemovalChallenge {
    pub ceremony_id: String,
    pub challenge: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreFinishBody {
    pub ceremony_id: String,
    pub credential: WebauthnJson,
    pub passkey_label: String,
    pub sealed_keystore: SealedKeystore,
    pub uses_passphrase: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddPasskeyFinishBody {
    pub ceremony_id: String,
    pub credential: WebauthnJson,
    pub passkey_label: String,
    pub sealed_keystore: SealedKeystore,
    pub uses_passphrase: bool,
    /// `personal_sign` of `chartkey_core::proof::add_passkey_message`.
    pub signature: Signature,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeysOf {
    pub display_name: String,
    pub entry: DirectoryEntry,
}
