//! Request and response bodies of the server functions.

use chartkey_core::directory::DirectoryEntry;
use chartkey_core::envelope::{RecordId, WrappedKey};
use chartkey_core::value::{Address, Hash32, Signature};
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
    pub sealed_keystore: String,
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
    pub signature: Signature,
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
    /// The Directory contract.
    pub directory: Address,
    /// The Records contract.
    pub records: Address,
    /// The server's relayer, which pays for relayed messages.
    pub relayer: Address,
}

/// A signed ledger message for the relayer, with its EIP-712 signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayBody {
    pub message: chartkey_core::eip712::LedgerMessage,
    pub signature: Signature,
}

/// A relayed message: accepted (journalled and sent) and, once `mined`, in
/// block `block_number`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayReceipt {
    pub job: i64,
    pub tx_hash: Hash32,
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
    pub hash: Hash32,
    pub timestamp: u64,
    pub transactions: u32,
    pub gas_used: u64,
}

/// A contract event, decoded: its name and its fields as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEvent {
    pub block_number: u64,
    pub tx_hash: Hash32,
    pub name: String,
    pub fields: Vec<(String, String)>,
}

/// A block as an outside witness follows the chain: number, hash and its
/// parent's hash. `GET /api/chain/heads?from=N` answers with these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub number: u64,
    pub hash: Hash32,
    pub parent_hash: Hash32,
}

/// Consecutive heads from the block asked for, and the chain's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHeads {
    pub chain_id: u64,
    pub head: u64,
    pub heads: Vec<ChainHead>,
}

/// A chain head vouched for by the ledger's administrator key (EIP-191
/// signature of `message`), to keep and check later with `chartkey ledger
/// verify --checkpoint FILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    pub chain_id: u64,
    pub number: u64,
    pub hash: Hash32,
    /// The administrator's address.
    pub signer: Address,
    pub message: String,
    pub signature: Signature,
}

/// A transaction's events that name the signed-in account; `others` counts
/// the rest (a bundle carries other people's messages too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTxView {
    pub hash: Hash32,
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
    /// The head it reached (none when it failed before the first block).
    pub head_hash: Option<Hash32>,
    /// The first bad block and why, when not ok.
    pub problem: Option<String>,
    pub millis: u64,
}

/// One new record: its envelope is already uploaded to the blob store
/// under `blob`; `wrapped_key` is its data key wrapped (HPKE) to the author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRecord {
    pub id: RecordId,
    /// SHA-256 of the envelope (its name in the blob store).
    pub blob: Hash32,
    pub category: u8,
    pub amends: Option<RecordId>,
    /// The data key wrapped for its author.
    pub wrapped_key: WrappedKey,
    /// The data key wrapped for the chart's patient, when someone else
    /// writes it (a clinician's write-back).
    #[serde(default)]
    pub patient_wrapped_key: Option<WrappedKey>,
    /// The data key wrapped for clinicians the patient shares this kind of
    /// record with (active category or everything shares), so records
    /// added later are shared too.
    #[serde(default)]
    pub also: Vec<ReaderKey>,
}

/// A data key wrapped for one reader (their ledger address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderKey {
    pub reader: Address,
    pub wrapped_key: WrappedKey,
}

/// Records to add to a chart, with the author's signature of the ledger
/// message that anchors them (`chartkey_core::records::anchor_message`:
/// one record alone, several as one Merkle batch, in this order). The chart
/// is the signed-in patient's own, or with `patient`, that patient's: a
/// clinician writing back one record under a read+write share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddRecordsBody {
    pub records: Vec<NewRecord>,
    pub signature: Signature,
    /// The patient's address, for a write-back.
    #[serde(default)]
    pub patient: Option<Address>,
}

/// A record's place in a Merkle batch, to check against the batch's root
/// on the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProof {
    pub root: Hash32,
    pub index: u64,
    pub size: u64,
    /// Audit path, from the leaf's sibling up.
    pub path: Vec<Hash32>,
}

/// What the ledger's Records contract holds for a record, read when the
/// record is listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedgerAnchor {
    /// Nothing: not (yet) anchored.
    Missing,
    /// A single anchor: the hash, category and author it names.
    Record { ciphertext_hash: Hash32, category: u8, author: Address },
    /// The record's batch root is anchored with this many leaves.
    Batch { count: u64 },
}

/// A record as the server lists it: ciphertext coordinates, the caller's
/// wrapped key, and the anchoring facts to verify before showing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMeta {
    pub id: RecordId,
    pub blob: Hash32,
    pub size: u64,
    pub category: u8,
    /// The author's ledger address and display name.
    pub author: Address,
    pub author_name: String,
    pub amends: Option<RecordId>,
    /// Records that correct this one, as the server says; the browser
    /// recomputes this from the verified records.
    pub amended_by: Vec<RecordId>,
    pub created_at: i64,
    /// The data key wrapped for the caller.
    pub wrapped_key: Option<WrappedKey>,
    /// The author's signature of the message that anchored the record (an
    /// `Anchor`, or the `AnchorBatch` of its batch): the browser checks it,
    /// so the server cannot change what it says of a record.
    pub signature: Signature,
    /// The anchoring transaction, once the relayer journalled it.
    pub anchor_tx: Option<Hash32>,
    pub anchor_block: Option<u64>,
    pub batch: Option<BatchProof>,
    pub ledger: LedgerAnchor,
}

/// Limits the browser checks before it starts encrypting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLimits {
    /// Largest record (encrypted) the server accepts, in bytes.
    pub max_record_bytes: u64,
}

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

/// Longest field of a credential request (licence number, specialty,
/// jurisdiction, organisation), in characters. The specialty must also fit
/// the ledger's 32 bytes.
pub const MAX_CREDENTIAL_FIELD_CHARS: usize = 80;

/// A clinician asks an authority to verify them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CredentialRequestBody {
    pub authority: Address,
    pub license_number: String,
    pub specialty: String,
    pub jurisdiction: String,
    pub organisation: String,
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
    pub license_number: String,
    pub specialty: String,
    pub jurisdiction: String,
    pub organisation: String,
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeCredentialBody {
    pub message: chartkey_core::eip712::RevokeCredential,
    pub signature: Signature,
}

/// The licence hash a credential carries on the ledger: keccak256 of the
/// licence number as the clinician gave it, trimmed.
pub fn license_id_hash(license_number: &str) -> [u8; 32] {
    ethers_core::utils::keccak256(license_number.trim().as_bytes())
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

/// Stop sharing: the patient's signed `Revoke`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StopBody {
    pub message: chartkey_core::eip712::Revoke,
    pub signature: Signature,
    /// The patient's passkey approval of this message's EIP-712 digest.
    pub approval: Approval,
}

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
}

/// The inbox: the newest notices and how many are unread.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inbox {
    pub unread: u32,
    pub notices: Vec<NoticeView>,
}

impl RecordMeta {
    /// The one read check, as the browser (and the tests, as it) makes it
    /// before showing a record: the envelope's hash, its audit path and
    /// its author's signature, against what the ledger holds
    /// ([`chartkey_core::records::check_read`]). A chart's records are
    /// written by its `patient`, or (a write-back) by a clinician the
    /// patient let write: then only as a single anchor, whose author the
    /// ledger names too (the contract took it from them only under a
    /// read+write grant).
    pub fn check(
        &self,
        domain: &chartkey_core::eip712::Domain,
        patient: ethers_core::types::Address,
        envelope: &[u8],
    ) -> Result<(), chartkey_core::records::Tampered> {
        use chartkey_core::records::{AnchoredRecord, Inclusion, OnLedger, Provenance, Tampered, check_read};
        let record =
            AnchoredRecord { id: self.id, ciphertext_hash: self.blob.0, category: self.category, amends: self.amends };
        let inclusion = self.batch.as_ref().map(|b| Inclusion {
            root: b.root.0,
            index: b.index,
            size: b.size,
            path: b.path.iter().map(|h| h.0).collect(),
        });
        let on_ledger = match &self.ledger {
            LedgerAnchor::Missing => OnLedger::Missing,
            LedgerAnchor::Record { ciphertext_hash, category, .. } => {
                OnLedger::Record { ciphertext_hash: ciphertext_hash.0, category: *category }
            }
            LedgerAnchor::Batch { count } => OnLedger::Batch { count: *count },
        };
        let named_by_ledger = matches!(&self.ledger, LedgerAnchor::Record { author, .. } if *author == self.author);
        if self.author != patient && !named_by_ledger {
            return Err(Tampered::BadSignature);
        }
        let provenance = Provenance { domain, patient, author: self.author.into(), signature: &self.signature.0 };
        check_read(&record, envelope, inclusion.as_ref(), &on_ledger, &provenance)
    }
}
