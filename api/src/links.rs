//! SMART Health Links as the portal manages them: made and changed by the
//! patient (each change signed, approved with a passkey and recorded on the
//! ledger), listed with every use. The manifest protocol itself (what a
//! receiver without an account calls) is plain HTTP at `/shl/…`, with
//! core's `shl` types.

use chartkey_core::shl::SealedLink;
use chartkey_core::value::{Hash32, Signature};
use serde::{Deserialize, Serialize};

use crate::Approval;

/// One encrypted file of a link: a compact JWE made in the patient's
/// browser with the link's key, which the server never sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkFileUpload {
    /// What is inside (`application/fhir+json`).
    pub content_type: String,
    pub jwe: String,
}

/// A new link: the patient's signed `Link` message (its id is the keccak256
/// of the manifest URL's secret part), the files, the link's secrets (label,
/// URL secret, key) sealed to the patient, and the passcode when the link
/// asks for one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkCreateBody {
    pub link: chartkey_core::eip712::Link,
    pub signature: Signature,
    pub approval: Approval,
    pub files: Vec<LinkFileUpload>,
    pub sealed: SealedLink,
    /// Required exactly when the link's `P` flag is set; never stored in clear.
    pub passcode: Option<String>,
}

/// A changed expiry and, for a long-term link, new files (`files` empty:
/// unchanged; the message's content hash is then zero).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkUpdateBody {
    pub message: chartkey_core::eip712::LinkUpdate,
    pub signature: Signature,
    pub approval: Approval,
    pub files: Vec<LinkFileUpload>,
}

/// Stopping a link, at once.
pub type LinkRevokeBody = crate::Approved<chartkey_core::eip712::LinkRevoke>;

/// A link as the patient's Links page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    pub link_id: Hash32,
    /// The label, the URL's secret and the key, sealed to the patient.
    pub sealed: SealedLink,
    /// The contract's bits: 1 long-term, 2 passcode, 4 direct file.
    pub flags: u8,
    /// Unix seconds; `None`: no expiry.
    pub expires_at: Option<u64>,
    /// The nonce the next update or revocation carries.
    pub serial: u32,
    pub files: u32,
    pub bytes: u64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// Passcode attempts left (links with a passcode).
    pub attempts_left: Option<u32>,
    /// Newest first.
    pub uses: Vec<LinkUseView>,
}

/// One use the ledger recorded: the label the recipient gave, when, and
/// in which transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkUseView {
    pub recipient: String,
    pub at: i64,
    pub tx: Hash32,
}
