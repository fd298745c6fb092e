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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginFinishBody {
    pub ceremony_id: String,
    pub credential: WebauthnJson,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreChallenge {
    pub ceremony_id: String,
    pub options: WebauthnJson,
    /// Signed by the account key (EIP-191) to prove the phrase is known.
    pub challenge: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreFinishBody {
    pub ceremony_id: String,
    pub credential: WebauthnJson,
    pub passkey_label: String,
    pub sealed_keystore: String,
    pub uses_passphrase: bool,
    /// `personal_sign` of `chartkey_core::proof::restore_message`.
    pub signature: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddPasskeyFinishBody {
    pub ceremony_id: String,
    pub credential: WebauthnJson,
    pub passkey_label: String,
    pub sealed_keystore: String,
    pub uses_passphrase: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeysOf {
    pub display_name: String,
    pub entry: DirectoryEntry,
}
