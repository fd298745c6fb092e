//! What an account is for.

use serde::{Deserialize, Serialize};

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
