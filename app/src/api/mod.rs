//! The portal's own calls: Leptos server functions under `/api`.
//!
//! Each function is declared once here and compiled twice: in the browser it
//! is a typed HTTP client; on the server (feature `ssr`) its body runs
//! there. Bodies are thin: they hand the call to the server's [`Backend`]
//! (implemented in the `chartkey-server` crate, so this crate never links
//! server-only dependencies), which authorises, validates and answers with
//! a typed [`ApiError`].

mod error;
#[cfg(feature = "ssr")]
pub mod ssr;
mod types;

pub use error::ApiError;
pub use types::*;

use chartkey_core::wire::{AccountInfo, LoginResult, PasskeyInfo, Role};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

#[cfg(feature = "ssr")]
use ssr::call;

/// Starts sign-up: returns WebAuthn creation options for a new passkey.
#[server(endpoint = "signup/start", input = Json)]
pub async fn signup_start(display_name: String, role: Role) -> Result<CreationStart, ApiError> {
    call(move |b, c| async move { b.signup_start(&c, display_name, role).await }).await
}

/// Finishes sign-up: registers the passkey, the sealed key store and the
/// signed directory entry, and signs the new account in.
#[server(endpoint = "signup/finish", input = Json)]
pub async fn signup_finish(finish: SignupFinishBody) -> Result<AccountInfo, ApiError> {
    call(move |b, c| async move { b.signup_finish(&c, finish).await }).await
}

/// Starts a discoverable passkey sign-in (no user name).
#[server(endpoint = "login/start", input = Json)]
pub async fn login_start() -> Result<RequestStart, ApiError> {
    call(move |b, c| async move { b.login_start(&c).await }).await
}

/// Finishes sign-in; returns the sealed key store for the passkey used.
#[server(endpoint = "login/finish", input = Json)]
pub async fn login_finish(finish: LoginFinishBody) -> Result<LoginResult, ApiError> {
    call(move |b, c| async move { b.login_finish(&c, finish).await }).await
}

/// Starts restoring access with a recovery phrase: a challenge for the
/// account key to sign.
#[server(endpoint = "restore/start", input = Json)]
pub async fn restore_start(address: String) -> Result<RestoreChallenge, ApiError> {
    call(move |b, c| async move { b.restore_start(&c, address).await }).await
}

/// With the signed challenge, the creation options for a new passkey.
#[server(endpoint = "restore/options", input = Json)]
pub async fn restore_options(proof: RestoreProofBody) -> Result<CreationStart, ApiError> {
    call(move |b, c| async move { b.restore_options(&c, proof).await }).await
}

#[server(endpoint = "restore/finish", input = Json)]
pub async fn restore_finish(finish: RestoreFinishBody) -> Result<AccountInfo, ApiError> {
    call(move |b, c| async move { b.restore_finish(&c, finish).await }).await
}

/// The signed-in account, or 401.
#[server(endpoint = "me", input = Json)]
pub async fn me() -> Result<AccountInfo, ApiError> {
    call(move |b, c| async move { b.me(&c).await }).await
}

#[server(endpoint = "logout", input = Json)]
pub async fn logout() -> Result<(), ApiError> {
    call(move |b, c| async move { b.logout(&c).await }).await
}

/// Records that the user confirmed writing down the recovery phrase.
#[server(endpoint = "recovery/confirmed", input = Json)]
pub async fn confirm_recovery() -> Result<AccountInfo, ApiError> {
    call(move |b, c| async move { b.confirm_recovery(&c).await }).await
}

#[server(endpoint = "passkeys/list", input = Json)]
pub async fn list_passkeys() -> Result<Vec<PasskeyInfo>, ApiError> {
    call(move |b, c| async move { b.list_passkeys(&c).await }).await
}

#[server(endpoint = "passkeys/add/start", input = Json)]
pub async fn add_passkey_start() -> Result<NewPasskeyChallenge, ApiError> {
    call(move |b, c| async move { b.add_passkey_start(&c).await }).await
}

#[server(endpoint = "passkeys/add/finish", input = Json)]
pub async fn add_passkey_finish(finish: AddPasskeyFinishBody) -> Result<PasskeyInfo, ApiError> {
    call(move |b, c| async move { b.add_passkey_finish(&c, finish).await }).await
}

/// A challenge for removing the passkey `credential_id`.
#[server(endpoint = "passkeys/remove/start", input = Json)]
pub async fn remove_passkey_start(credential_id: String) -> Result<RemovalChallenge, ApiError> {
    call(move |b, c| async move { b.remove_passkey_start(&c, credential_id).await }).await
}

/// Removes a passkey, with the unlocked account key's signature of
/// `chartkey_core::proof::remove_passkey_message` over the challenge of
/// `ceremony_id`; refused for the account's last passkey and for the one
/// this session signed in with.
#[server(endpoint = "passkeys/remove", input = Json)]
pub async fn remove_passkey(ceremony_id: String, credential_id: String, signature: String) -> Result<(), ApiError> {
    call(move |b, c| async move { b.remove_passkey(&c, ceremony_id, credential_id, signature).await }).await
}

/// Someone's signed directory entry. The caller must verify it
/// (`DirectoryEntry::verify`) before using the keys.
#[server(endpoint = "directory/lookup", input = Json)]
pub async fn directory_lookup(address: String) -> Result<PublicKeysOf, ApiError> {
    call(move |b, c| async move { b.directory_lookup(&c, address).await }).await
}

/// The ledger's chain id and contract addresses.
#[server(endpoint = "ledger/info", input = Json)]
pub async fn ledger_info() -> Result<LedgerContracts, ApiError> {
    call(move |b, c| async move { b.ledger_info(&c).await }).await
}

/// Relays a message the signed-in account signed (EIP-712) to the ledger.
/// Answers once it is mined, or, if that takes long, once it is accepted
/// (`mined: false`; ask `ledger/job` later). A contract's refusal comes back
/// as [`ApiError::Refused`], with nothing sent.
#[server(endpoint = "ledger/relay", input = Json)]
pub async fn ledger_relay(body: RelayBody) -> Result<RelayReceipt, ApiError> {
    call(move |b, c| async move { b.ledger_relay(&c, body).await }).await
}

/// A relayed message of the signed-in account, as it stands now.
#[server(endpoint = "ledger/job", input = Json)]
pub async fn ledger_job(job: i64) -> Result<RelayReceipt, ApiError> {
    call(move |b, c| async move { b.ledger_job(&c, job).await }).await
}

/// The chain, its latest blocks, and the events that name the caller.
#[server(endpoint = "ledger/overview", input = Json)]
pub async fn ledger_overview() -> Result<LedgerPage, ApiError> {
    call(move |b, c| async move { b.ledger_overview(&c).await }).await
}

/// A transaction's decoded events that name the caller.
#[server(endpoint = "ledger/transaction", input = Json)]
pub async fn ledger_transaction(hash: String) -> Result<LedgerTxView, ApiError> {
    call(move |b, c| async move { b.ledger_transaction(&c, hash).await }).await
}

/// Re-executes the embedded chain from genesis and checks every block.
#[server(endpoint = "ledger/verify", input = Json)]
pub async fn ledger_verify() -> Result<LedgerVerification, ApiError> {
    call(move |b, c| async move { b.ledger_verify(&c).await }).await
}

/// Adds records to the signed-in patient's chart and anchors them on the
/// ledger (one anchor, or one Merkle batch). Answers once the anchor is
/// mined, or accepted if that takes long.
#[server(endpoint = "records/add", input = Json)]
pub async fn records_add(body: AddRecordsBody) -> Result<RelayReceipt, ApiError> {
    call(move |b, c| async move { b.records_add(&c, body).await }).await
}

/// The signed-in patient's records, newest first, with what the ledger
/// holds for each.
#[server(endpoint = "records/list", input = Json)]
pub async fn records_list() -> Result<Vec<RecordMeta>, ApiError> {
    call(move |b, c| async move { b.records_list(&c).await }).await
}

/// The size limit for records, so the browser can refuse a file before
/// encrypting it.
#[server(endpoint = "records/limits", input = Json)]
pub async fn records_limits() -> Result<RecordLimits, ApiError> {
    call(move |b, c| async move { b.records_limits(&c).await }).await
}

/// The signed-in patient shares records: relays their signed grant (after
/// bringing any listed batch records into the chart on the ledger) and
/// keeps the data keys wrapped for the grantee. Answers once it is mined.
#[server(endpoint = "shares/grant", input = Json)]
pub async fn shares_grant(body: ShareBody) -> Result<RelayReceipt, ApiError> {
    call(move |b, c| async move { b.shares_grant(&c, body).await }).await
}

/// A grantee opens a shared record: the signed access is recorded on the
/// ledger first (which refuses it, saying why, unless the grant and the
/// grantee's credential are live and the record is in scope); only then
/// does the answer carry the record and its key for the grantee.
#[server(endpoint = "records/open", input = Json)]
pub async fn records_open(body: OpenBody) -> Result<OpenedRecord, ApiError> {
    call(move |b, c| async move { b.records_open(&c, body).await }).await
}

/// The signed-in clinician's verification: their badge, their latest
/// request, and the authorities they can ask.
#[server(endpoint = "credentials/mine", input = Json)]
pub async fn credentials_mine() -> Result<MyVerification, ApiError> {
    call(move |b, c| async move { b.credentials_mine(&c).await }).await
}

/// The signed-in clinician asks an authority to verify them.
#[server(endpoint = "credentials/request", input = Json)]
pub async fn credentials_request(body: CredentialRequestBody) -> Result<MyVerification, ApiError> {
    call(move |b, c| async move { b.credentials_request(&c, body).await }).await
}

/// The signed-in authority's desk: requests to decide, credentials issued.
#[server(endpoint = "credentials/desk", input = Json)]
pub async fn credentials_desk() -> Result<AuthorityDesk, ApiError> {
    call(move |b, c| async move { b.credentials_desk(&c).await }).await
}

/// The signed-in authority issues a requested credential (signed in its
/// browser); answers once it is mined.
#[server(endpoint = "credentials/issue", input = Json)]
pub async fn credentials_issue(body: IssueCredentialBody) -> Result<RelayReceipt, ApiError> {
    call(move |b, c| async move { b.credentials_issue(&c, body).await }).await
}

/// The signed-in authority declines a pending request.
#[server(endpoint = "credentials/decline", input = Json)]
pub async fn credentials_decline(request: i64) -> Result<(), ApiError> {
    call(move |b, c| async move { b.credentials_decline(&c, request).await }).await
}

/// The signed-in authority revokes a credential it issued.
#[server(endpoint = "credentials/revoke", input = Json)]
pub async fn credentials_revoke(body: RevokeCredentialBody) -> Result<RelayReceipt, ApiError> {
    call(move |b, c| async move { b.credentials_revoke(&c, body).await }).await
}

/// Clinicians whose name, specialty or organisation contains `query`, each
/// with what the ledger says of their credential.
#[server(endpoint = "clinicians/search", input = Json)]
pub async fn clinicians_search(query: String) -> Result<Vec<ClinicianCard>, ApiError> {
    call(move |b, c| async move { b.clinicians_search(&c, query).await }).await
}

/// The signed-in account's grants: those a patient gave, or those a
/// clinician holds; each with where it stands on the ledger now.
#[server(endpoint = "shares/list", input = Json)]
pub async fn shares_list() -> Result<Vec<ShareView>, ApiError> {
    call(move |b, c| async move { b.shares_list(&c).await }).await
}

/// The signed-in patient stops sharing with a clinician (their signed
/// `Revoke`); answers once it is mined.
#[server(endpoint = "shares/stop", input = Json)]
pub async fn shares_stop(body: StopBody) -> Result<RelayReceipt, ApiError> {
    call(move |b, c| async move { b.shares_stop(&c, body).await }).await
}

/// "Who viewed my records": every access the ledger recorded to the
/// signed-in patient's records (or, for a clinician, their own accesses),
/// newest first.
#[server(endpoint = "accesses/list", input = Json)]
pub async fn accesses_list() -> Result<Vec<AccessView>, ApiError> {
    call(move |b, c| async move { b.accesses_list(&c).await }).await
}

/// The nonce the signed-in patient's next grant to, or stop of, `grantee`
/// must carry (the Records contract's `consentNonce`).
#[server(endpoint = "shares/nonce", input = Json)]
pub async fn shares_nonce(grantee: String) -> Result<u64, ApiError> {
    call(move |b, c| async move { b.shares_nonce(&c, grantee).await }).await
}

/// A chart `patient` (their 0x address) shared with the signed-in
/// clinician: the share, and while it is active, the records shared.
#[server(endpoint = "shares/chart", input = Json)]
pub async fn shares_chart(patient: String) -> Result<SharedChart, ApiError> {
    call(move |b, c| async move { b.shares_chart(&c, patient).await }).await
}

/// The embedded ledger's head, signed by its administrator key: a
/// checkpoint the patient keeps, which `chartkey ledger verify
/// --checkpoint FILE` holds the chain to later.
#[server(endpoint = "ledger/checkpoint", input = Json)]
pub async fn ledger_checkpoint() -> Result<SignedCheckpoint, ApiError> {
    call(move |b, c| async move { b.ledger_checkpoint(&c).await }).await
}

/// Starts a passkey approval of the message whose EIP-712 digest is
/// `digest` (0x hex): authentication options for the caller's passkeys.
#[server(endpoint = "approvals/start", input = Json)]
pub async fn approvals_start(digest: String) -> Result<ApprovalStart, ApiError> {
    call(move |b, c| async move { b.approvals_start(&c, digest).await }).await
}

/// The signed-in account's notices, newest first, and the unread count.
/// New ones also arrive live on `GET /api/notices/stream` (server-sent events).
#[server(endpoint = "notices/list", input = Json)]
pub async fn notices_list() -> Result<Inbox, ApiError> {
    call(move |b, c| async move { b.notices_list(&c).await }).await
}

/// Marks the signed-in account's notices up to `up_to` (an id) as read.
#[server(endpoint = "notices/read", input = Json)]
pub async fn notices_read(up_to: i64) -> Result<Inbox, ApiError> {
    call(move |b, c| async move { b.notices_read(&c, up_to).await }).await
}
