//! Server side of the server functions: the [`Backend`] trait the server
//! implements, and the per-request [`Caller`].

use std::net::IpAddr;
use std::sync::Arc;

use chartkey_core::wire::{AccountInfo, LoginResult, PasskeyInfo, Role};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

use super::*;

/// Who is calling: resolved by the server's authentication extractor before
/// the server function runs, and provided as context.
#[derive(Debug, Clone)]
pub struct Caller {
    pub ip: IpAddr,
    /// The account of a valid, unexpired session, if any.
    pub session: Option<SessionRef>,
}

#[derive(Debug, Clone)]
pub struct SessionRef {
    pub account_id: String,
    /// SHA-256 of the session token (the token itself is never stored).
    pub token_hash: String,
    /// The passkey this session signed in with.
    pub credential_id: String,
}

impl Caller {
    /// The session, or 401.
    pub fn require_session(&self) -> Result<&SessionRef, ApiError> {
        self.session.as_ref().ok_or(ApiError::Unauthorized)
    }

    /// Adds a `Set-Cookie` header to the response.
    pub fn set_cookie(&self, cookie: &str) {
        if let (Some(res), Ok(value)) = (use_context::<ResponseOptions>(), http::HeaderValue::from_str(cookie)) {
            res.append_header(http::header::SET_COOKIE, value);
        }
    }
}

/// Everything the portal's server functions do, implemented by the server.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    async fn signup_start(&self, caller: &Caller, display_name: String, role: Role) -> Result<CreationStart, ApiError>;
    async fn signup_finish(&self, caller: &Caller, finish: SignupFinishBody) -> Result<AccountInfo, ApiError>;
    async fn login_start(&self, caller: &Caller) -> Result<RequestStart, ApiError>;
    async fn login_finish(&self, caller: &Caller, finish: LoginFinishBody) -> Result<LoginResult, ApiError>;
    async fn restore_start(&self, caller: &Caller, address: String) -> Result<RestoreChallenge, ApiError>;
    async fn restore_options(&self, caller: &Caller, proof: RestoreProofBody) -> Result<CreationStart, ApiError>;
    async fn restore_finish(&self, caller: &Caller, finish: RestoreFinishBody) -> Result<AccountInfo, ApiError>;
    async fn me(&self, caller: &Caller) -> Result<AccountInfo, ApiError>;
    async fn logout(&self, caller: &Caller) -> Result<(), ApiError>;
    async fn confirm_recovery(&self, caller: &Caller) -> Result<AccountInfo, ApiError>;
    async fn list_passkeys(&self, caller: &Caller) -> Result<Vec<PasskeyInfo>, ApiError>;
    async fn add_passkey_start(&self, caller: &Caller) -> Result<NewPasskeyChallenge, ApiError>;
    async fn add_passkey_finish(&self, caller: &Caller, finish: AddPasskeyFinishBody) -> Result<PasskeyInfo, ApiError>;
    async fn remove_passkey_start(&self, caller: &Caller, credential_id: String) -> Result<RemovalChallenge, ApiError>;
    async fn remove_passkey(
        &self,
        caller: &Caller,
        ceremony_id: String,
        credential_id: String,
        signature: String,
    ) -> Result<(), ApiError>;
    async fn directory_lookup(&self, caller: &Caller, address: String) -> Result<PublicKeysOf, ApiError>;
    async fn ledger_info(&self, caller: &Caller) -> Result<LedgerContracts, ApiError>;
    async fn ledger_relay(&self, caller: &Caller, body: RelayBody) -> Result<RelayReceipt, ApiError>;
    async fn ledger_job(&self, caller: &Caller, job: i64) -> Result<RelayReceipt, ApiError>;
    async fn ledger_overview(&self, caller: &Caller) -> Result<LedgerPage, ApiError>;
    async fn ledger_transaction(&self, caller: &Caller, hash: String) -> Result<LedgerTxView, ApiError>;
    async fn ledger_verify(&self, caller: &Caller) -> Result<LedgerVerification, ApiError>;
    async fn records_add(&self, caller: &Caller, body: AddRecordsBody) -> Result<RelayReceipt, ApiError>;
    async fn records_list(&self, caller: &Caller) -> Result<Vec<RecordMeta>, ApiError>;
    async fn records_limits(&self, caller: &Caller) -> Result<RecordLimits, ApiError>;
    async fn shares_grant(&self, caller: &Caller, body: ShareBody) -> Result<RelayReceipt, ApiError>;
    async fn records_open(&self, caller: &Caller, body: OpenBody) -> Result<OpenedRecord, ApiError>;
    async fn credentials_mine(&self, caller: &Caller) -> Result<MyVerification, ApiError>;
    async fn credentials_request(
        &self,
        caller: &Caller,
        body: CredentialRequestBody,
    ) -> Result<MyVerification, ApiError>;
    async fn credentials_desk(&self, caller: &Caller) -> Result<AuthorityDesk, ApiError>;
    async fn credentials_issue(&self, caller: &Caller, body: IssueCredentialBody) -> Result<RelayReceipt, ApiError>;
    async fn credentials_decline(&self, caller: &Caller, request: i64) -> Result<(), ApiError>;
    async fn credentials_revoke(&self, caller: &Caller, body: RevokeCredentialBody) -> Result<RelayReceipt, ApiError>;
    async fn clinicians_search(&self, caller: &Caller, query: String) -> Result<Vec<ClinicianCard>, ApiError>;
    async fn shares_list(&self, caller: &Caller) -> Result<Vec<ShareView>, ApiError>;
    async fn shares_stop(&self, caller: &Caller, body: StopBody) -> Result<RelayReceipt, ApiError>;
    async fn accesses_list(&self, caller: &Caller) -> Result<Vec<AccessView>, ApiError>;
    async fn shares_nonce(&self, caller: &Caller, grantee: String) -> Result<u64, ApiError>;
    async fn shares_chart(&self, caller: &Caller, patient: String) -> Result<SharedChart, ApiError>;
    async fn ledger_checkpoint(&self, caller: &Caller) -> Result<SignedCheckpoint, ApiError>;
    async fn approvals_start(&self, caller: &Caller, digest: String) -> Result<ApprovalStart, ApiError>;
    async fn notices_list(&self, caller: &Caller) -> Result<Inbox, ApiError>;
    async fn notices_read(&self, caller: &Caller, up_to: i64) -> Result<Inbox, ApiError>;
}

pub type DynBackend = Arc<dyn Backend>;

/// Runs one server function body against the backend. (The server sets
/// the HTTP status of an error answer from [`ApiError::status`].)
pub async fn call<T, F, Fut>(body: F) -> Result<T, ApiError>
where
    F: FnOnce(DynBackend, Caller) -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let (Some(backend), Some(caller)) = (use_context::<DynBackend>(), use_context::<Caller>()) else {
        tracing::error!("server function called without backend context");
        return Err(ApiError::Internal);
    };
    body(backend, caller).await
}
