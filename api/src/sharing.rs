//! Sharing: grants with their wrapped keys, opening a shared record,
//! stopping, who viewed what, and the notices a patient gets.

use chartkey_core::envelope::{RecordId, WrappedKey};
use chartkey_core::value::{Address, Hash32, Signature};
use serde::{Deserialize, Serialize};

use crate::ceremonies::WebauthnJson;
use crate::credentials::ClinicianCard;
use crate::records::RecordMeta;

/// One record's data key wrapped for the grantee of a share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareKey {
    pub record: RecordId,
    pub wrapped_key: WrappedKey,
}

/// A grant the patient signed in the browser, with the data keys of the
/// records it covers wrapped to the grantee's encryption key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareBody {
    pub grant: chartkey_core::eip712::Grant,
    /// The patient's EIP-712 signature of `grant`.
    pub signature: Signature,
    pub keys: Vec<ShareKey>,
    /// The patient's passkey approval of this grant's EIP-712 digest.
    pub approval: Approval,
}

/// A passkey assertion (user verified) in a ceremony `approvals/start`
/// began for one message's EIP-712 digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval {
    pub ceremony_id: String,
    pub credential: WebauthnJson,
}

/// A ledger message and its sender's EIP-712 signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signed<M> {
    pub message: M,
    pub signature: Signature,
}

/// A patient's ledger message: signed, and approved with their passkey
/// (the approval's challenge names the message's EIP-712 digest).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approved<M> {
    pub message: M,
    pub signature: Signature,
    pub approval: Approval,
}

/// A grantee's request to open one record, signed in their browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenBody {
    pub access: chartkey_core::eip712::Access,
    /// The grantee's EIP-712 signature of `access`.
    pub signature: Signature,
}

/// An opened record: the access is on the ledger (`access_tx` in
/// `access_block`); the envelope may now be fetched by the grantee, for a
/// short while, and opened with `record.wrapped_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenedRecord {
    pub record: RecordMeta,
    pub access_tx: Hash32,
    pub access_block: u64,
}

/// Where a grant stands, as the ledger says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareState {
    Active,
    Expired,
    /// The patient stopped sharing (or replaced this grant).
    Stopped,
    /// The clinician's credential expired, was revoked, or its authority is
    /// no longer named.
    CredentialLapsed,
}

/// A grant, for the patient who gave it or the clinician who holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareView {
    pub patient: Address,
    pub patient_name: String,
    pub grantee: ClinicianCard,
    pub serial: u32,
    /// 0 listed records, 1 categories, 2 everything (`eip712::SCOPE_*`).
    pub scope: u8,
    pub categories: u32,
    /// Listed record ids, for scope 0.
    pub records: Vec<RecordId>,
    pub write: bool,
    pub expires_at: u64,
    pub granted_at: i64,
    pub grant_tx: Hash32,
    /// Records whose key is wrapped for the grantee.
    pub keys: u32,
    pub state: ShareState,
}

/// Stop sharing: the patient's `Revoke`.
pub type StopBody = Approved<chartkey_core::eip712::Revoke>;

/// One access the ledger recorded: who opened which record, when, in
/// which transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessView {
    pub grantee: Address,
    pub grantee_name: String,
    pub patient: Address,
    pub patient_name: String,
    pub record: RecordId,
    pub category: u8,
    pub at: i64,
    pub tx: Hash32,
    pub block: u64,
}

/// A chart shared with the signed-in clinician.
/// A record of a chart shared with a clinician, as listed before it is
/// opened: what kind it is and when it was added. Nothing to read it with:
/// its wrapped key and its content come only from `records/open`, after
/// the ledger recorded the access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedRecord {
    pub id: RecordId,
    pub category: u8,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharedChart {
    pub share: ShareView,
    /// While the share is active: the records shared with the clinician,
    /// newest first. Empty once it has ended.
    pub records: Vec<SharedRecord>,
    /// The clinician's next access nonce (the Records contract's `nonces`).
    pub next_nonce: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A clinician opened one of the patient's records.
    Access,
    /// A clinician added a record to the patient's chart.
    WriteBack,
    /// Someone used one of the patient's SMART Health Links (the actor is
    /// the patient, whose link it is).
    LinkUse,
    /// The actor (a patient) named the reader as an emergency contact.
    EmergencyNamed,
    /// The actor (a contact) asked for emergency access; it opens at
    /// `opens_at` unless refused.
    EmergencyRequested,
    /// The actor (the patient) refused the reader's emergency request.
    EmergencyRefused,
    /// The actor (a contact) opened the patient's summary in an emergency.
    EmergencyAccessed,
    /// The actor (a patient) removed the reader as an emergency contact.
    EmergencyRemoved,
}

/// A notice: who did what to which record, in which ledger transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeView {
    pub id: i64,
    pub kind: NoticeKind,
    pub actor: Address,
    pub actor_name: String,
    pub record: Option<RecordId>,
    pub category: Option<u8>,
    pub tx: Hash32,
    pub at: i64,
    pub read: bool,
    /// For a link's use: which link, and who the recipient said they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkNotice>,
    /// For an emergency request: when access opens unless refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkNotice {
    pub link_id: Hash32,
    pub recipient: String,
}

/// The inbox: the newest notices and how many are unread.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inbox {
    pub unread: u32,
    pub notices: Vec<NoticeView>,
}
