//! The portal's own calls: Leptos server functions under `/api`.
//!
//! Each function is declared once here and compiled twice: in the browser it
//! is a typed HTTP client; on the server (feature `ssr`) its body runs
//! there, calling the capability's function in `chartkey-services`, which
//! authorises, validates and answers with a typed [`ApiError`]. Only the
//! server build links that crate; bodies and answers are `chartkey-api`'s.

pub use chartkey_api::*;

use chartkey_core::role::Role;
use chartkey_core::value::{Address, Hash32, Signature};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

#[cfg(feature = "ssr")]
use chartkey_services as svc;

/// The server's state and the caller, which the route that runs server
/// functions provides as context.
#[cfg(feature = "ssr")]
fn context() -> Result<(svc::AppState, svc::Caller), ApiError> {
    match (use_context::<svc::AppState>(), use_context::<svc::Caller>()) {
        (Some(state), Some(caller)) => Ok((state, caller)),
        _ => {
            tracing::error!("server function called without its context");
            Err(ApiError::Internal)
        }
    }
}

/// Starts sign-up: returns WebAuthn creation options for a new passkey.
#[server(endpoint = "signup/start", input = Json)]
pub async fn signup_start(display_name: String, role: Role) -> Result<CreationStart, ApiError> {
    let (state, caller) = context()?;
    svc::accounts::signup_start(&state, &caller, display_name, role).await
}

/// Finishes sign-up: registers the passkey, the sealed key store and the
/// signed directory entry, and signs the new account in.
#[server(endpoint = "signup/finish", input = Json)]
pub async fn signup_finish(finish: SignupFinishBody) -> Result<AccountInfo, ApiError> {
    let (state, caller) = context()?;
    svc::accounts::signup_finish(&state, &caller, finish).await
}

/// Starts a discoverable passkey sign-in (no user name).
#[server(endpoint = "login/start", input = Json)]
pub async fn login_start() -> Result<RequestStart, ApiError> {
    let (state, caller) = context()?;
    svc::passkeys::login_start(&state, &caller).await
}

/// Finishes sign-in; returns the sealed key store for the passkey used.
#[server(endpoint = "login/finish", input = Json)]
pub async fn login_finish(finish: LoginFinishBody) -> Result<LoginResult, ApiError> {
    let (state, caller) = context()?;
    svc::passkeys::login_finish(&state, &caller, finish).await
}

/// Starts restoring access with a recovery phrase: a challenge for the
/// account key to sign.
#[server(endpoint = "restore/start", input = Json)]
pub async fn restore_start(address: Address) -> Result<RestoreChallenge, ApiError> {
    let (state, caller) = context()?;
    svc::accounts::restore_start(&state, &caller, address).await
}

/// With the signed challenge, the creation options for a new passkey.
#[server(endpoint = "restore/options", input = Json)]
pub async fn restore_options(proof: RestoreProofBody) -> Result<CreationStart, ApiError> {
    let (state, caller) = context()?;
    svc::accounts::restore_options(&state, &caller, proof).await
}

#[server(endpoint = "restore/finish", input = Json)]
pub async fn restore_finish(finish: RestoreFinishBody) -> Result<AccountInfo, ApiError> {
    let (state, caller) = context()?;
    svc::accounts::restore_finish(&state, &caller, finish).await
}

/// The signed-in account, or 401.
#[server(endpoint = "me", input = Json)]
pub async fn me() -> Result<AccountInfo, ApiError> {
    let (state, caller) = context()?;
    svc::accounts::me(&state, &caller).await
}

#[server(endpoint = "logout", input = Json)]
pub async fn logout() -> Result<(), ApiError> {
    let (state, caller) = context()?;
    svc::accounts::logout(&state, &caller).await
}

/// Records that the user confirmed writing down the recovery phrase.
#[server(endpoint = "recovery/confirmed", input = Json)]
pub async fn confirm_recovery() -> Result<AccountInfo, ApiError> {
    let (state, caller) = context()?;
    svc::accounts::confirm_recovery(&state, &caller).await
}

#[server(endpoint = "passkeys/list", input = Json)]
pub async fn list_passkeys() -> Result<Vec<PasskeyInfo>, ApiError> {
    let (state, caller) = context()?;
    svc::passkeys::list(&state, &caller).await
}

#[server(endpoint = "passkeys/add/start", input = Json)]
pub async fn add_passkey_start() -> Result<NewPasskeyChallenge, ApiError> {
    let (state, caller) = context()?;
    svc::passkeys::add_start(&state, &caller).await
}

#[server(endpoint = "passkeys/add/finish", input = Json)]
pub async fn add_passkey_finish(finish: AddPasskeyFinishBody) -> Result<PasskeyInfo, ApiError> {
    let (state, caller) = context()?;
    svc::passkeys::add_finish(&state, &caller, finish).await
}

/// A challenge for removing the passkey `credential_id`.
#[server(endpoint = "passkeys/remove/start", input = Json)]
pub async fn remove_passkey_start(credential_id: String) -> Result<RemovalChallenge, ApiError> {
    let (state, caller) = context()?;
    svc::passkeys::remove_start(&state, &caller, credential_id).await
}

/// Removes a passkey, with the unlocked account key's signature of
/// `chartkey_core::proof::remove_passkey_message` over the challenge of
/// `ceremony_id`; refused for the account's last passkey and for the one
/// this session signed in with.
#[server(endpoint = "passkeys/remove", input = Json)]
pub async fn remove_passkey(ceremony_id: String, credential_id: String, signature: Signature) -> Result<(), ApiError> {
    let (state, caller) = context()?;
    svc::passkeys::remove(&state, &caller, ceremony_id, credential_id, signature).await
}

/// Someone's signed directory entry. The caller must verify it
/// (`DirectoryEntry::verify`) before using the keys.
#[server(endpoint = "directory/lookup", input = Json)]
pub async fn directory_lookup(address: Address) -> Result<PublicKeysOf, ApiError> {
    let (state, caller) = context()?;
    svc::directory::lookup(&state, &caller, address).await
}

/// The ledger's chain id and contract addresses.
#[server(endpoint = "ledger/info", input = Json)]
pub async fn ledger_info() -> Result<LedgerContracts, ApiError> {
    let (state, _) = context()?;
    svc::chain::info(&state).await
}

/// Relays a message the signed-in account signed (EIP-712) to the ledger.
/// Answers once it is mined, or, if that takes long, once it is accepted
/// (`mined: false`; ask `ledger/job` later). A contract's refusal comes back
/// as [`ApiError::Refused`], with nothing sent.
#[server(endpoint = "ledger/relay", input = Json)]
pub async fn ledger_relay(body: RelayBody) -> Result<RelayReceipt, ApiError> {
    let (state, caller) = context()?;
    svc::chain::relay(&state, &caller, body).await
}

/// A relayed message of the signed-in account, as it stands now.
#[server(endpoint = "ledger/job", input = Json)]
pub async fn ledger_job(job: i64) -> Result<RelayReceipt, ApiError> {
    let (state, caller) = context()?;
    svc::chain::job(&state, &caller, job).await
}

/// The chain, its latest blocks, and the events that name the caller.
#[server(endpoint = "ledger/overview", input = Json)]
pub async fn ledger_overview() -> Result<LedgerPage, ApiError> {
    let (state, caller) = context()?;
    svc::chain::overview(&state, &caller).await
}

/// A transaction's decoded events that name the caller.
#[server(endpoint = "ledger/transaction", input = Json)]
pub async fn ledger_transaction(hash: Hash32) -> Result<LedgerTxView, ApiError> {
    let (state, caller) = context()?;
    svc::chain::transaction(&state, &caller, hash).await
}

/// Re-executes the embedded chain from genesis and checks every block.
#[server(endpoint = "ledger/verify", input = Json)]
pub async fn ledger_verify() -> Result<LedgerVerification, ApiError> {
    let (state, caller) = context()?;
    svc::chain::verify(&state, &caller).await
}

/// Adds records to the signed-in patient's chart and anchors them on the
/// ledger (one anchor, or one Merkle batch). Answers once the anchor is
/// mined, or accepted if that takes long.
#[server(endpoint = "records/add", input = Json)]
pub async fn records_add(body: AddRecordsBody) -> Result<RelayReceipt, ApiError> {
    let (state, caller) = context()?;
    svc::records::add(&state, &caller, body).await
}

/// The signed-in patient's records, newest first, with what the ledger
/// holds for each.
#[server(endpoint = "records/list", input = Json)]
pub async fn records_list() -> Result<Vec<RecordMeta>, ApiError> {
    let (state, caller) = context()?;
    svc::records::list(&state, &caller).await
}

/// The size limit for records, so the browser can refuse a file before
/// encrypting it.
#[server(endpoint = "records/limits", input = Json)]
pub async fn records_limits() -> Result<RecordLimits, ApiError> {
    let (state, caller) = context()?;
    svc::records::limits(&state, &caller).await
}

/// The signed-in patient makes a SMART Health Link: its files (encrypted in
/// the browser) stored, the link recorded on the ledger after a passkey
/// approval.
#[server(endpoint = "links/create", input = Json)]
pub async fn links_create(body: LinkCreateBody) -> Result<LinkView, ApiError> {
    let (state, caller) = context()?;
    svc::links::create(&state, &caller, body).await
}

/// The signed-in patient's links, each with its uses.
#[server(endpoint = "links/list", input = Json)]
pub async fn links_list() -> Result<Vec<LinkView>, ApiError> {
    let (state, caller) = context()?;
    svc::links::list(&state, &caller).await
}

/// A link's new expiry, and a long-term link's new files.
#[server(endpoint = "links/update", input = Json)]
pub async fn links_update(body: LinkUpdateBody) -> Result<LinkView, ApiError> {
    let (state, caller) = context()?;
    svc::links::update(&state, &caller, body).await
}

/// Stops a link at once (and records that on the ledger).
#[server(endpoint = "links/revoke", input = Json)]
pub async fn links_revoke(body: LinkRevokeBody) -> Result<RelayReceipt, ApiError> {
    let (state, caller) = context()?;
    svc::links::revoke(&state, &caller, body).await
}

/// The signed-in patient invites an emergency contact: a secret to hand
/// over as a link (never a search by name).
#[server(endpoint = "emergency/invite", input = Json)]
pub async fn emergency_invite(body: InviteBody) -> Result<Invitation, ApiError> {
    let (state, caller) = context()?;
    svc::emergency::invite(&state, &caller, body).await
}

/// The signed-in account accepts an invitation to be an emergency contact.
#[server(endpoint = "emergency/accept", input = Json)]
pub async fn emergency_accept(body: AcceptBody) -> Result<Accepted, ApiError> {
    let (state, caller) = context()?;
    svc::emergency::accept(&state, &caller, body).await
}

/// The patient names an accepted contact on the ledger, with the summary
/// wrapped to them (passkey approval).
#[server(endpoint = "emergency/name", input = Json)]
pub async fn emergency_name(body: NameContactBody) -> Result<RelayReceipt, ApiError> {
    let (state, caller) = context()?;
    svc::emergency::name(&state, &caller, body).await
}

/// A contact asks for emergency access (it opens after the wait).
#[server(endpoint = "emergency/request", input = Json)]
pub async fn emergency_request(body: EmergencyRequestBody) -> Result<RelayReceipt, ApiError> {
    let (state, caller) = context()?;
    svc::emergency::request(&state, &caller, body).await
}

/// The patient refuses a contact's request (passkey approval).
#[server(endpoint = "emergency/refuse", input = Json)]
pub async fn emergency_refuse(body: EmergencyRefuseBody) -> Result<RelayReceipt, ApiError> {
    let (state, caller) = context()?;
    svc::emergency::refuse(&state, &caller, body).await
}

/// The patient removes a contact (passkey approval).
#[server(endpoint = "emergency/remove", input = Json)]
pub async fn emergency_remove(body: EmergencyRemoveBody) -> Result<RelayReceipt, ApiError> {
    let (state, caller) = context()?;
    svc::emergency::remove(&state, &caller, body).await
}

/// A contact opens the patient's summary after the wait: recorded on the
/// ledger first, then released.
#[server(endpoint = "emergency/open", input = Json)]
pub async fn emergency_open(body: EmergencyOpenBody) -> Result<EmergencyOpened, ApiError> {
    let (state, caller) = context()?;
    svc::emergency::open(&state, &caller, body).await
}

/// The Emergency page: invitations, contacts, and who named the caller.
#[server(endpoint = "emergency/overview", input = Json)]
pub async fn emergency_page() -> Result<EmergencyOverview, ApiError> {
    let (state, caller) = context()?;
    svc::emergency::overview(&state, &caller).await
}

/// The signed-in patient shares records: relays their signed grant (after
/// bringing any listed batch records into the chart on the ledger) and
/// keeps the data keys wrapped for the grantee. Answers once it is mined.
#[server(endpoint = "shares/grant", input = Json)]
pub async fn shares_grant(body: ShareBody) -> Result<RelayReceipt, ApiError> {
    let (state, caller) = context()?;
    svc::shares::grant(&state, &caller, body).await
}

/// A grantee opens a shared record: the signed access is recorded on the
/// ledger first (which refuses it, saying why, unless the grant and the
/// grantee's credential are live and the record is in scope); only then
/// does the answer carry the record and its key for the grantee.
#[server(endpoint = "records/open", input = Json)]
pub async fn records_open(body: OpenBody) -> Result<OpenedRecord, ApiError> {
    let (state, caller) = context()?;
    svc::shares::open(&state, &caller, body).await
}

/// The signed-in clinician's verification: their badge, their latest
/// request, and the authorities they can ask.
#[server(endpoint = "credentials/mine", input = Json)]
pub async fn credentials_mine() -> Result<MyVerification, ApiError> {
    let (state, caller) = context()?;
    svc::credentials::mine(&state, &caller).await
}

/// The signed-in clinician asks an authority to verify them.
#[server(endpoint = "credentials/request", input = Json)]
pub async fn credentials_request(body: CredentialRequestBody) -> Result<MyVerification, ApiError> {
    let (state, caller) = context()?;
    svc::credentials::request(&state, &caller, body).await
}

/// The signed-in authority's desk: requests to decide, credentials issued.
#[server(endpoint = "credentials/desk", input = Json)]
pub async fn credentials_desk() -> Result<AuthorityDesk, ApiError> {
    let (state, caller) = context()?;
    svc::credentials::desk(&state, &caller).await
}

/// The signed-in authority issues a requested credential (signed in its
/// browser); answers once it is mined.
#[server(endpoint = "credentials/issue", input = Json)]
pub async fn credentials_issue(body: IssueCredentialBody) -> Result<RelayReceipt, ApiError> {
    let (state, caller) = context()?;
    svc::credentials::issue(&state, &caller, body).await
}

/// The signed-in authority declines a pending request.
#[server(endpoint = "credentials/decline", input = Json)]
pub async fn credentials_decline(request: i64) -> Result<(), ApiError> {
    let (state, caller) = context()?;
    svc::credentials::decline(&state, &caller, request).await
}

/// The signed-in authority revokes a credential it issued.
#[server(endpoint = "credentials/revoke", input = Json)]
pub async fn credentials_revoke(body: RevokeCredentialBody) -> Result<RelayReceipt, ApiError> {
    let (state, caller) = context()?;
    svc::credentials::revoke(&state, &caller, body).await
}

/// Clinicians whose name, specialty or organisation contains `query`, each
/// with what the ledger says of their credential.
#[server(endpoint = "clinicians/search", input = Json)]
pub async fn clinicians_search(query: String) -> Result<Vec<ClinicianCard>, ApiError> {
    let (state, caller) = context()?;
    svc::credentials::search(&state, &caller, query).await
}

/// The signed-in account's grants: those a patient gave, or those a
/// clinician holds; each with where it stands on the ledger now.
#[server(endpoint = "shares/list", input = Json)]
pub async fn shares_list() -> Result<Vec<ShareView>, ApiError> {
    let (state, caller) = context()?;
    svc::shares::list(&state, &caller).await
}

/// The signed-in patient stops sharing with a clinician (their signed
/// `Revoke`); answers once it is mined.
#[server(endpoint = "shares/stop", input = Json)]
pub async fn shares_stop(body: StopBody) -> Result<RelayReceipt, ApiError> {
    let (state, caller) = context()?;
    svc::shares::stop(&state, &caller, body).await
}

/// "Who viewed my records": every access the ledger recorded to the
/// signed-in patient's records (or, for a clinician, their own accesses),
/// newest first.
#[server(endpoint = "accesses/list", input = Json)]
pub async fn accesses_list() -> Result<Vec<AccessView>, ApiError> {
    let (state, caller) = context()?;
    svc::shares::accesses(&state, &caller).await
}

/// The nonce the signed-in patient's next grant to, or stop of, `grantee`
/// must carry (the Records contract's `consentNonce`).
#[server(endpoint = "shares/nonce", input = Json)]
pub async fn shares_nonce(grantee: Address) -> Result<u64, ApiError> {
    let (state, caller) = context()?;
    svc::shares::nonce(&state, &caller, grantee).await
}

/// A chart `patient` (their 0x address) shared with the signed-in
/// clinician: the share, and while it is active, the records shared.
#[server(endpoint = "shares/chart", input = Json)]
pub async fn shares_chart(patient: Address) -> Result<SharedChart, ApiError> {
    let (state, caller) = context()?;
    svc::shares::shared_chart(&state, &caller, patient).await
}

/// The embedded ledger's head, signed by its administrator key: a
/// checkpoint the patient keeps, which `chartkey ledger verify
/// --checkpoint FILE` holds the chain to later.
#[server(endpoint = "ledger/checkpoint", input = Json)]
pub async fn ledger_checkpoint() -> Result<SignedCheckpoint, ApiError> {
    let (state, caller) = context()?;
    svc::chain::checkpoint(&state, &caller).await
}

/// Starts a passkey approval of the message whose EIP-712 digest is
/// `digest` (0x hex): authentication options for the caller's passkeys.
#[server(endpoint = "approvals/start", input = Json)]
pub async fn approvals_start(digest: Hash32) -> Result<ApprovalStart, ApiError> {
    let (state, caller) = context()?;
    svc::approvals::start(&state, &caller, digest).await
}

/// The signed-in account's notices, newest first, and the unread count.
/// New ones also arrive live on `GET /api/notices/stream` (server-sent events).
#[server(endpoint = "notices/list", input = Json)]
pub async fn notices_list() -> Result<Inbox, ApiError> {
    let (state, caller) = context()?;
    svc::notices::list(&state, &caller).await
}

/// Marks the signed-in account's notices up to `up_to` (an id) as read.
#[server(endpoint = "notices/read", input = Json)]
pub async fn notices_read(up_to: i64) -> Result<Inbox, ApiError> {
    let (state, caller) = context()?;
    svc::notices::read(&state, &caller, up_to).await
}
