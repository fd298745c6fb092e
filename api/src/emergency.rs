//! Emergency contacts, as in password managers' emergency access: the
//! patient invites someone by a link (never by searching names), names
//! them once they accepted, with a waiting period; the contact asks; the
//! patient can refuse during the wait; after it, the contact opens the
//! patient's summary, whose key was wrapped to them in advance. Each step
//! is a signed message recorded on the ledger (the Access contract) and a
//! notice to the other side.

use chartkey_core::envelope::{RecordId, WrappedKey};
use chartkey_core::value::{Address, Hash32, Signature};
use serde::{Deserialize, Serialize};

use crate::{Approval, Approved, Signed};

/// A new invitation: how long the patient proposes the contact waits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteBody {
    pub wait_seconds: u32,
}

/// An invitation's secret (shown once, as a link to give the contact) and
/// when it lapses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub token: Hash32,
    pub expires_at: i64,
}

/// The contact's answer to an invitation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceptBody {
    pub token: Hash32,
}

/// Whose invitation was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub patient: Address,
    pub patient_name: String,
}

/// The patient's summary as the contact will read it: an envelope in the
/// blob store (uploaded by the patient) and its data key wrapped to the
/// contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryForContact {
    /// The id the envelope is bound to.
    pub id: RecordId,
    /// The envelope's SHA-256 (its name in the blob store).
    pub blob: Hash32,
    pub wrapped_key: WrappedKey,
}

/// The patient names an accepted contact (or changes the wait or the
/// summary): signed, approved with a passkey.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NameContactBody {
    pub message: chartkey_core::eip712::EmergencyContact,
    pub signature: Signature,
    pub approval: Approval,
    pub summary: SummaryForContact,
}

pub type EmergencyRequestBody = Signed<chartkey_core::eip712::EmergencyRequest>;
pub type EmergencyRefuseBody = Approved<chartkey_core::eip712::EmergencyRefusal>;
pub type EmergencyRemoveBody = Approved<chartkey_core::eip712::EmergencyContactRemove>;
pub type EmergencyOpenBody = Signed<chartkey_core::eip712::EmergencyAccess>;

/// What an emergency access releases, once the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyOpened {
    pub summary: SummaryForContact,
    /// The envelope, base64url.
    pub envelope: String,
    pub access_tx: Hash32,
}

/// Where a named contact stands, as the ledger says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EmergencyState {
    /// Named; no request open.
    Named,
    /// Asked; opens at `opens_at` unless the patient refuses.
    Waiting { opens_at: i64 },
    /// The wait has passed: the contact can open the summary.
    Open,
    /// Removed by the patient.
    Removed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmergencyStep {
    Named,
    Requested,
    Refused,
    Accessed,
    Removed,
}

/// One step on the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyEventView {
    pub step: EmergencyStep,
    pub at: i64,
    pub tx: Hash32,
}

/// One side's view of a patient–contact pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyPairView {
    pub patient: Address,
    pub patient_name: String,
    pub contact: Address,
    pub contact_name: String,
    pub wait_seconds: u32,
    pub state: EmergencyState,
    /// The pair's serial: the nonce of the patient's next message about it.
    pub serial: u32,
    /// Newest first.
    pub events: Vec<EmergencyEventView>,
}

/// An invitation the patient made: accepted by whom, if anyone yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationView {
    pub wait_seconds: u32,
    pub created_at: i64,
    pub expires_at: i64,
    pub contact: Option<Address>,
    pub contact_name: Option<String>,
    pub accepted_at: Option<i64>,
}

/// The Emergency page: the patient's invitations and contacts, and the
/// patients who named the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyOverview {
    pub invitations: Vec<InvitationView>,
    pub contacts: Vec<EmergencyPairView>,
    pub named_me: Vec<EmergencyPairView>,
    /// The caller's next nonce on the Access contract (for requests and
    /// accesses they sign as a contact).
    pub next_nonce: u64,
}
