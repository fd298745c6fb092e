//! Chartkey's server side: what each of the portal's server functions
//! does, one module per capability, over the database, the blob store, the
//! ledger and WebAuthn state. The server functions (declared once, in
//! chartkey-app's `api`) call these functions directly; the binary
//! (chartkey-server) adds the HTTP routes around them.
//!
//! Every capability function authorises first (session, role, rate limit),
//! validates its input, and answers with a typed [`ApiError`].

pub mod accounts;
pub mod approvals;
pub mod authorities;
pub mod blobs;
pub mod caller;
pub mod ceremonies;
pub mod chain;
pub mod config;
pub mod credentials;
pub mod db;
pub mod directory;
pub mod ledger;
pub mod notices;
pub mod passkeys;
pub mod pending;
pub mod records;
pub mod sessions;
pub mod shares;
pub mod state;

pub use caller::{Caller, SessionRef};
pub use config::Config;
pub use records::can_access;
pub use state::AppState;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chartkey_api::*;
use chartkey_core::directory::DirectoryEntry;
use chartkey_core::keystore::SealedKeystore;
use chartkey_core::role::Role;

use crate::db::AccountRow;

/// The account as the browser sees it.
pub async fn account_info(state: &AppState, account_id: &str) -> Result<AccountInfo, ApiError> {
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
    c.set_cookie(sessions::session_cookie(&token, ttl, state.config.secure_cookies()));
    Ok(())
}

/// Per-client limit (IPv4 address or IPv6 /64). Idle clients are forgotten
/// once the table grows, so it cannot grow without bound.
fn rate_limit(limiter: &governor::DefaultKeyedRateLimiter<std::net::IpAddr>, c: &Caller) -> Result<(), ApiError> {
    let client = crate::state::client_key(c.ip);
    if allowed(limiter, &client) {
        return Ok(());
    }
    tracing::warn!(%client, "rate limited");
    Err(ApiError::RateLimited)
}

/// Takes one from `key`'s allowance in `limiter`: false when it is used up.
/// Idle keys are forgotten once the table grows, so it cannot grow without
/// bound.
pub fn allowed<K: Clone + Eq + std::hash::Hash>(limiter: &governor::DefaultKeyedRateLimiter<K>, key: &K) -> bool {
    if limiter.len() > 10_000 {
        limiter.retain_recent();
    }
    limiter.check_key(key).is_ok()
}

/// Spends one of the account's ledger messages for this hour (the relayer
/// pays for each): called once a request has passed every check and is
/// about to be relayed, so a refused one costs nothing.
pub(crate) fn spend_relay(state: &AppState, account_id: &str) -> Result<(), ApiError> {
    if allowed(&state.limits.relays, &account_id.to_owned()) {
        return Ok(());
    }
    tracing::warn!(account = %account_id, "relay allowance used up");
    Err(ApiError::OverQuota(format!(
        "This account has sent its {} ledger messages for this hour. Nothing was sent; try again later.",
        state.config.relays_per_hour
    )))
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
