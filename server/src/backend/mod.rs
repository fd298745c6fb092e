//! The server's implementation of the portal's server functions
//! ([`Backend`]). Every method authorises first (session or rate limit),
//! validates its input, and answers with a typed [`ApiError`].

mod accounts;
mod approvals;
mod credentials;
pub(crate) mod ledger;
mod passkeys;
pub(crate) mod pending;
mod records;
mod shares;

pub(crate) use records::can_access;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chartkey_app::api::ssr::{Backend, Caller};
use chartkey_app::api::*;
use chartkey_core::directory::DirectoryEntry;
use chartkey_core::keystore::SealedKeystore;
use chartkey_core::wire::{AccountInfo, LoginResult, PasskeyInfo, Role};

use crate::db::{self, AccountRow};
use crate::sessions;
use crate::state::AppState;

pub struct ServerBackend {
    pub state: AppState,
}

#[async_trait::async_trait]
impl Backend for ServerBackend {
    async fn signup_start(&self, c: &Caller, display_name: String, role: Role) -> Result<CreationStart, ApiError> {
        accounts::signup_start(&self.state, c, display_name, role).await
    }
    async fn signup_finish(&self, c: &Caller, finish: SignupFinishBody) -> Result<AccountInfo, ApiError> {
        accounts::signup_finish(&self.state, c, finish).await
    }
    async fn login_start(&self, c: &Caller) -> Result<RequestStart, ApiError> {
        passkeys::login_start(&self.state, c).await
    }
    async fn login_finish(&self, c: &Caller, finish: LoginFinishBody) -> Result<LoginResult, ApiError> {
        passkeys::login_finish(&self.state, c, finish).await
    }
    async fn restore_start(&self, c: &Caller, address: String) -> Result<RestoreChallenge, ApiError> {
        accounts::restore_start(&self.state, c, address).await
    }
    async fn restore_options(&self, c: &Caller, proof: RestoreProofBody) -> Result<CreationStart, ApiError> {
        accounts::restore_options(&self.state, c, proof).await
    }
    async fn restore_finish(&self, c: &Caller, finish: RestoreFinishBody) -> Result<AccountInfo, ApiError> {
        accounts::restore_finish(&self.state, c, finish).await
    }
    async fn me(&self, c: &Caller) -> Result<AccountInfo, ApiError> {
        let session = c.require_session()?;
        account_info(&self.state, &session.account_id).await
    }
    async fn logout(&self, c: &Caller) -> Result<(), ApiError> {
        if let Some(session) = &c.session {
            let hash = session.token_hash.clone();
            self.state.db.call(move |conn| db::delete_session(conn, &hash)).await?;
            tracing::info!(account = %session.account_id, "signed out");
        }
        c.set_cookie(&sessions::clearing_cookie(self.state.config.secure_cookies()));
        Ok(())
    }
    async fn confirm_recovery(&self, c: &Caller) -> Result<AccountInfo, ApiError> {
        let account_id = c.require_session()?.account_id.clone();
        let id = account_id.clone();
        self.state
            .db
            .call(move |conn| {
                conn.execute(
                    "UPDATE accounts SET recovery_confirmed_at = ?1 WHERE id = ?2 AND recovery_confirmed_at IS NULL",
                    rusqlite::params![db::now(), id],
                )
            })
            .await?;
        account_info(&self.state, &account_id).await
    }
    async fn list_passkeys(&self, c: &Caller) -> Result<Vec<PasskeyInfo>, ApiError> {
        passkeys::list(&self.state, c).await
    }
    async fn add_passkey_start(&self, c: &Caller) -> Result<NewPasskeyChallenge, ApiError> {
        passkeys::add_start(&self.state, c).await
    }
    async fn add_passkey_finish(&self, c: &Caller, finish: AddPasskeyFinishBody) -> Result<PasskeyInfo, ApiError> {
        passkeys::add_finish(&self.state, c, finish).await
    }
    async fn remove_passkey_start(&self, c: &Caller, credential_id: String) -> Result<RemovalChallenge, ApiError> {
        passkeys::remove_start(&self.state, c, credential_id).await
    }
    async fn remove_passkey(
        &self,
        c: &Caller,
        ceremony_id: String,
        credential_id: String,
        signature: String,
    ) -> Result<(), ApiError> {
        passkeys::remove(&self.state, c, ceremony_id, credential_id, signature).await
    }
    /// The Directory contract is the source of truth: an account must be
    /// registered there, with the role and key of the entry the server
    /// serves (which the browser verifies against the account's own
    /// signature). A disagreement is refused and logged.
    ///
    /// Clinicians, authorities and verifiers are public; a patient's name
    /// and keys go only to the patient and to clinicians the patient has
    /// shared with (to anyone else the address is unknown here, whatever
    /// the ledger says of it).
    async fn directory_lookup(&self, c: &Caller, address: String) -> Result<PublicKeysOf, ApiError> {
        let caller_id = c.require_session()?.account_id.clone();
        let address = parse_address(&address)?;
        let lookup = address.clone();
        let unknown = || ApiError::NotFound("No account has that address.".into());
        let row = self
            .state
            .db
            .call(move |conn| {
                let Some(row) = db::account_by_address(conn, &lookup)? else { return Ok(None) };
                if Role::parse(&row.role) != Some(Role::Patient) || row.id == caller_id {
                    return Ok(Some(row));
                }
                let shared = conn
                    .prepare_cached("SELECT 1 FROM grants WHERE patient_id = ?1 AND grantee_id = ?2 LIMIT 1")?
                    .exists([&row.id, &caller_id])?;
                Ok(shared.then_some(row))
            })
            .await?
            .ok_or_else(unknown)?;
        let entry = directory_entry(&row)?;
        let on_chain = ledger::account_on_chain(&self.state, &address).await?;
        match on_chain {
            None => Err(ApiError::NotFound("That account is not registered on the ledger.".into())),
            Some((role, key)) if role != entry.role.code() || !key.eq_ignore_ascii_case(&row.encryption_key) => {
                tracing::error!(account = %row.id, "the ledger's Directory and the server's entry disagree");
                Err(ApiError::Conflict(
                    "The ledger and this server disagree about this account's keys, so they are not shown.".into(),
                ))
            }
            Some(_) => Ok(PublicKeysOf { display_name: row.display_name.clone(), entry }),
        }
    }
    async fn ledger_info(&self, _c: &Caller) -> Result<LedgerContracts, ApiError> {
        ledger::info(&self.state).await
    }
    async fn ledger_relay(&self, c: &Caller, body: RelayBody) -> Result<RelayReceipt, ApiError> {
        ledger::relay(&self.state, c, body).await
    }
    async fn ledger_job(&self, c: &Caller, job: i64) -> Result<RelayReceipt, ApiError> {
        ledger::job(&self.state, c, job).await
    }
    async fn ledger_overview(&self, c: &Caller) -> Result<LedgerPage, ApiError> {
        ledger::overview(&self.state, c).await
    }
    async fn ledger_transaction(&self, c: &Caller, hash: String) -> Result<LedgerTxView, ApiError> {
        ledger::transaction(&self.state, c, hash).await
    }
    async fn records_add(&self, c: &Caller, body: AddRecordsBody) -> Result<RelayReceipt, ApiError> {
        records::add(&self.state, c, body).await
    }
    async fn records_list(&self, c: &Caller) -> Result<Vec<RecordMeta>, ApiError> {
        records::list(&self.state, c).await
    }
    async fn records_limits(&self, c: &Caller) -> Result<RecordLimits, ApiError> {
        c.require_session()?;
        Ok(RecordLimits { max_record_bytes: self.state.blobs.limit })
    }
    async fn ledger_verify(&self, c: &Caller) -> Result<LedgerVerification, ApiError> {
        ledger::verify(&self.state, c).await
    }
    async fn shares_grant(&self, c: &Caller, body: ShareBody) -> Result<RelayReceipt, ApiError> {
        shares::grant(&self.state, c, body).await
    }
    async fn records_open(&self, c: &Caller, body: OpenBody) -> Result<OpenedRecord, ApiError> {
        shares::open(&self.state, c, body).await
    }
    async fn credentials_mine(&self, c: &Caller) -> Result<MyVerification, ApiError> {
        credentials::mine(&self.state, c).await
    }
    async fn credentials_request(&self, c: &Caller, body: CredentialRequestBody) -> Result<MyVerification, ApiError> {
        credentials::request(&self.state, c, body).await
    }
    async fn credentials_desk(&self, c: &Caller) -> Result<AuthorityDesk, ApiError> {
        credentials::desk(&self.state, c).await
    }
    async fn credentials_issue(&self, c: &Caller, body: IssueCredentialBody) -> Result<RelayReceipt, ApiError> {
        credentials::issue(&self.state, c, body).await
    }
    async fn credentials_decline(&self, c: &Caller, request: i64) -> Result<(), ApiError> {
        credentials::decline(&self.state, c, request).await
    }
    async fn credentials_revoke(&self, c: &Caller, body: RevokeCredentialBody) -> Result<RelayReceipt, ApiError> {
        credentials::revoke(&self.state, c, body).await
    }
    async fn clinicians_search(&self, c: &Caller, query: String) -> Result<Vec<ClinicianCard>, ApiError> {
        credentials::search(&self.state, c, query).await
    }
    async fn shares_list(&self, c: &Caller) -> Result<Vec<ShareView>, ApiError> {
        shares::list(&self.state, c).await
    }
    async fn shares_stop(&self, c: &Caller, body: StopBody) -> Result<RelayReceipt, ApiError> {
        shares::stop(&self.state, c, body).await
    }
    async fn accesses_list(&self, c: &Caller) -> Result<Vec<AccessView>, ApiError> {
        shares::accesses(&self.state, c).await
    }
    async fn shares_nonce(&self, c: &Caller, grantee: String) -> Result<u64, ApiError> {
        shares::nonce(&self.state, c, grantee).await
    }
    async fn shares_chart(&self, c: &Caller, patient: String) -> Result<SharedChart, ApiError> {
        shares::shared_chart(&self.state, c, patient).await
    }
    async fn ledger_checkpoint(&self, c: &Caller) -> Result<SignedCheckpoint, ApiError> {
        ledger::checkpoint(&self.state, c).await
    }
    async fn approvals_start(&self, c: &Caller, digest: String) -> Result<ApprovalStart, ApiError> {
        approvals::start(&self.state, c, digest).await
    }
    async fn notices_list(&self, c: &Caller) -> Result<Inbox, ApiError> {
        crate::notices::inbox(&self.state, &c.require_session()?.account_id).await
    }
    async fn notices_read(&self, c: &Caller, up_to: i64) -> Result<Inbox, ApiError> {
        let account_id = c.require_session()?.account_id.clone();
        crate::notices::mark_read(&self.state, &account_id, up_to).await?;
        crate::notices::inbox(&self.state, &account_id).await
    }
}

/// The account as the browser sees it.
pub(crate) async fn account_info(state: &AppState, account_id: &str) -> Result<AccountInfo, ApiError> {
    let id = account_id.to_owned();
    let row = state.db.call(move |conn| db::account_by_id(conn, &id)).await?.ok_or(ApiError::Unauthorized)?;
    let entry = directory_entry(&row)?;
    let role = entry.role;
    Ok(AccountInfo {
        account_id: row.id,
        display_name: row.display_name,
        role,
        directory: entry,
        recovery_confirmed: row.recovery_confirmed,
        idle_lock_secs: (role == Role::Clinician).then(|| state.config.clinician_idle_lock.as_secs()),
    })
}

fn directory_entry(row: &AccountRow) -> Result<DirectoryEntry, ApiError> {
    let role = Role::parse(&row.role).ok_or_else(|| {
        tracing::error!(account = %row.id, "stored role is invalid");
        ApiError::Internal
    })?;
    Ok(DirectoryEntry {
        address: row.address.clone(),
        role,
        encryption_key: row.encryption_key.clone(),
        signature: row.directory_signature.clone(),
    })
}

/// A 0x-prefixed 20-byte hex address, returned EIP-55 checksummed.
fn parse_address(address: &str) -> Result<String, ApiError> {
    let parsed: ethers_core::types::Address =
        address.trim().parse().map_err(|_| ApiError::bad_request("That is not a valid account address."))?;
    Ok(ethers_core::utils::to_checksum(&parsed, None))
}

/// Checks a sealed key store's shape (not its content, which the server
/// cannot read) and that its kind matches what the browser claims.
fn check_sealed_keystore(sealed: &str, uses_passphrase: bool) -> Result<(), ApiError> {
    if sealed.len() > MAX_SEALED_KEYSTORE_BYTES {
        return Err(ApiError::bad_request("The sealed key store is too large."));
    }
    let parsed =
        SealedKeystore::from_json(sealed).map_err(|_| ApiError::bad_request("The sealed key store is malformed."))?;
    if parsed.needs_passphrase() != uses_passphrase {
        return Err(ApiError::bad_request("The sealed key store does not match the chosen unlock method."));
    }
    Ok(())
}

fn passkey_taken() -> ApiError {
    ApiError::Conflict("That passkey is already registered with Chartkey.".into())
}

fn check_label(label: &str) -> Result<String, ApiError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > MAX_PASSKEY_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "Give the passkey a name of 1 to {MAX_PASSKEY_LABEL_CHARS} characters."
        )));
    }
    Ok(label.to_owned())
}

/// Options for the browser, as WebAuthn JSON.
fn webauthn_json(value: &impl serde::Serialize) -> Result<WebauthnJson, ApiError> {
    serde_json::value::to_raw_value(value).map_err(|_| ApiError::Internal)
}

/// The browser's credential, parsed into webauthn-rs types.
fn parse_credential<T: serde::de::DeserializeOwned>(json: &WebauthnJson) -> Result<T, ApiError> {
    serde_json::from_str(json.get()).map_err(|_| ApiError::bad_request("The passkey's answer is malformed."))
}

fn credential_id_text(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// Signs the caller in with the passkey `credential_id`: a fresh session
/// token (never reusing the one the browser had), stored hashed, sent as an
/// HttpOnly SameSite=Strict cookie. The session dies with its passkey.
pub(crate) async fn start_session(
    state: &AppState,
    c: &Caller,
    account_id: &str,
    credential_id: &str,
) -> Result<(), ApiError> {
    let token = sessions::random_token();
    let hash = sessions::token_hash(&token);
    let ttl = state.config.session_ttl.as_secs();
    let expires_at = db::now() + ttl as i64;
    let account = account_id.to_owned();
    let credential = credential_id.to_owned();
    let old = c.session.as_ref().map(|s| s.token_hash.clone());
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            if let Some(old) = old {
                db::delete_session(&tx, &old)?;
            }
            db::delete_expired_sessions(&tx)?;
            db::insert_session(&tx, &hash, &account, &credential, expires_at)?;
            tx.commit()
        })
        .await?;
    c.set_cookie(&sessions::session_cookie(&token, ttl, state.config.secure_cookies()));
    Ok(())
}

/// Per-client limit (IPv4 address or IPv6 /64). Idle clients are forgotten
/// once the table grows, so it cannot grow without bound.
fn rate_limit(limiter: &governor::DefaultKeyedRateLimiter<std::net::IpAddr>, c: &Caller) -> Result<(), ApiError> {
    let client = crate::state::client_key(c.ip);
    allowed(limiter, &client).map_err(|()| {
        tracing::warn!(%client, "rate limited");
        ApiError::RateLimited
    })
}

/// Takes one from `key`'s allowance in `limiter`. Idle keys are forgotten
/// once the table grows, so it cannot grow without bound.
pub(crate) fn allowed<K: Clone + Eq + std::hash::Hash>(
    limiter: &governor::DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), ()> {
    if limiter.len() > 10_000 {
        limiter.retain_recent();
    }
    limiter.check_key(key).map_err(|_| ())
}

/// Spends one of the account's ledger messages for this hour (the relayer
/// pays for each): called once a request has passed every check and is
/// about to be relayed, so a refused one costs nothing.
pub(crate) fn spend_relay(state: &AppState, account_id: &str) -> Result<(), ApiError> {
    allowed(&state.limits.relays, &account_id.to_owned()).map_err(|()| {
        tracing::warn!(account = %account_id, "relay allowance used up");
        ApiError::OverQuota(format!(
            "This account has sent its {} ledger messages for this hour. Nothing was sent; try again later.",
            state.config.relays_per_hour
        ))
    })
}

/// Checks `signature` is the account key's EIP-191 signature of `message`.
fn check_account_signature(address: &str, message: &str, signature: &str) -> Result<(), ApiError> {
    let address: ethers_core::types::Address = address.parse().map_err(|_| ApiError::Internal)?;
    if chartkey_core::proof::recover_signer(message, signature) != Some(address) {
        return Err(ApiError::Forbidden(
            "This needs your unlocked account key, and the signature sent does not match it. Unlock and try again."
                .into(),
        ));
    }
    Ok(())
}
