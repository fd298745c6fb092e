//! Clinician credentials: requests to an authority, what the ledger says
//! of a credential, and the messages that issue and revoke one.

use chartkey_core::value::{Address, Hash32, Signature};
use serde::{Deserialize, Serialize};

/// Longest field of a credential request (licence number, specialty,
/// jurisdiction, organisation), in characters. The specialty must also fit
/// the ledger's 32 bytes.
pub const MAX_CREDENTIAL_FIELD_CHARS: usize = 80;

/// What a clinician says of their licence when they ask to be verified
/// (each field at most [`MAX_CREDENTIAL_FIELD_CHARS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct License {
    pub license_number: String,
    pub specialty: String,
    pub jurisdiction: String,
    pub organisation: String,
}

/// A clinician asks an authority to verify them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialRequestBody {
    pub authority: Address,
    #[serde(flatten)]
    pub license: License,
}

/// What the ledger says of a clinician's credential, with the issuing
/// authority's name from this server's accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CredentialStatus {
    NotVerified,
    Verified {
        authority: Address,
        authority_name: String,
        specialty: String,
        expires_at: u64,
    },
    Expired {
        authority: Address,
        authority_name: String,
        specialty: String,
        expires_at: u64,
    },
    Revoked {
        authority: Address,
        authority_name: String,
        specialty: String,
        expires_at: u64,
    },
    /// The issuing authority is no longer named by the server's operator.
    AuthorityRemoved {
        authority: Address,
        authority_name: String,
        specialty: String,
        expires_at: u64,
    },
}

impl CredentialStatus {
    pub fn is_verified(&self) -> bool {
        matches!(self, CredentialStatus::Verified { .. })
    }
}

/// A clinician as others see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClinicianCard {
    pub address: Address,
    pub display_name: String,
    /// From the clinician's latest credential request, if any.
    pub specialty: Option<String>,
    pub organisation: Option<String>,
    pub jurisdiction: Option<String>,
    pub credential: CredentialStatus,
}

/// A credentialing authority named on the ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorityInfo {
    pub address: Address,
    pub display_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    Pending,
    Issued,
    Declined,
}

/// A credential request and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialRequestView {
    pub id: i64,
    pub clinician: ClinicianCard,
    pub authority: AuthorityInfo,
    #[serde(flatten)]
    pub license: License,
    pub requested_at: i64,
    pub state: RequestState,
    pub decided_at: Option<i64>,
    pub decision_tx: Option<Hash32>,
}

/// A clinician's verification page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MyVerification {
    pub me: ClinicianCard,
    /// The latest request, pending or decided.
    pub request: Option<CredentialRequestView>,
    pub authorities: Vec<AuthorityInfo>,
}

/// An authority's desk: whether the operator has named it on the ledger,
/// the requests addressed to it and the credentials it issued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorityDesk {
    pub named: bool,
    /// The command the server's operator runs to name this authority.
    pub operator_command: String,
    /// The authority's next Directory nonce (for the message it signs).
    pub next_nonce: u64,
    pub pending: Vec<CredentialRequestView>,
    pub decided: Vec<CredentialRequestView>,
}

/// An authority issues the credential a request asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssueCredentialBody {
    pub request: i64,
    pub message: chartkey_core::eip712::IssueCredential,
    pub signature: Signature,
}

/// An authority revokes a credential it issued.
pub type RevokeCredentialBody = crate::Signed<chartkey_core::eip712::RevokeCredential>;

/// The licence hash a credential carries on the ledger: keccak256 of the
/// licence number as the clinician gave it, trimmed.
pub fn license_id_hash(license_number: &str) -> [u8; 32] {
    ethers_core::utils::keccak256(license_number.trim().as_bytes())
}
