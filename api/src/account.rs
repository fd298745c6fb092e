//! Accounts and passkeys as the server describes them to their owner.
//! Nothing secret is here: public keys, opaque sealed blobs, display data.

use chartkey_core::directory::DirectoryEntry;
use chartkey_core::keystore::SealedKeystore;
use chartkey_core::role::Role;
use serde::{Deserialize, Serialize};

/// The signed-in account, as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    pub account_id: String,
    pub display_name: String,
    pub role: Role,
    pub directory: DirectoryEntry,
    pub recovery_confirmed: bool,
    /// Seconds of inactivity after which the browser locks the keys; `None`
    /// means no automatic lock for this role.
    pub idle_lock_secs: Option<u64>,
}

/// One of an account's passkeys, for the account page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyInfo {
    /// base64url credential id.
    pub credential_id: String,
    pub label: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// True when this passkey unlocks with a passphrase (no PRF support).
    pub uses_passphrase: bool,
    /// True for the passkey the current session signed in with.
    pub in_use: bool,
}

/// What the browser needs after a passkey login to unlock the keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResult {
    pub account: AccountInfo,
    /// base64url id of the credential that was used.
    pub credential_id: String,
    /// The sealed key store for that credential (opaque to the server).
    pub sealed_keystore: SealedKeystore,
}
