//! Types that travel between the browser and the server (serde only).
//! Nothing secret is here: these are public keys, opaque sealed blobs and
//! display data.

use serde::{Deserialize, Serialize};

use crate::directory::DirectoryEntry;

/// What an account is for. Recorded at sign-up; clinician verification by a
/// credentialing authority comes with the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Patient,
    Clinician,
    Verifier,
    CredentialingAuthority,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Patient, Role::Clinician, Role::Verifier, Role::CredentialingAuthority];

    /// Stable one-byte code, used in signed directory entries.
    pub fn code(self) -> u8 {
        match self {
            Role::Patient => 1,
            Role::Clinician => 2,
            Role::Verifier => 3,
            Role::CredentialingAuthority => 4,
        }
    }

    pub fn from_code(code: u8) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Clinician => "clinician",
            Role::Verifier => "verifier",
            Role::CredentialingAuthority => "credentialing_authority",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Plain words for the screen.
    pub fn label(self) -> &'static str {
        match self {
            Role::Patient => "Patient",
            Role::Clinician => "Clinician",
            Role::Verifier => "Verifier (insurer or other organisation)",
            Role::CredentialingAuthority => "Credentialing authority",
        }
    }
}

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
    /// The sealed key store for that credential (opaque JSON).
    pub sealed_keystore: String,
}

/// A sealed key store for one of the account's passkeys (for unlocking
/// after a reload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeystoreForCredential {
    pub credential_id: String,
    pub sealed_keystore: String,
}
