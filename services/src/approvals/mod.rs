//! Passkey approval of one signed ledger message: sharing and stopping a
//! share ask for a fresh assertion, with user verification, from one of the
//! account's own passkeys. The WebAuthn challenge is
//! `proof::approval_challenge(digest, nonce)` (the message's EIP-712 digest
//! and a single-use server nonce), so the assertion itself proves which
//! message was approved; it is kept (`approvals`) for later audit. The
//! message itself is still authorised by the account key's signature
//! (checked by the contract); the approval proves the person with the
//! passkey was there and agreed to exactly this message, now.
//!
//! webauthn-rs always draws its own random challenge. Its
//! `danger-allow-state-serialisation` feature makes the authentication
//! state a serde value, whose challenge is replaced here (and in the
//! options) before the ceremony starts; verification is webauthn-rs's own.
//! (The other way, webauthn-rs-core's lower-level calls, gives up the safe
//! wrapper's checks; the serialisable state is also what several replicas
//! will need to share ceremonies.)

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chartkey_api::{ApiError, Approval, ApprovalStart};
use chartkey_core::value::Hash32;
use webauthn_rs::prelude::{Passkey, PasskeyAuthentication};

pub mod store;

use crate::accounts::store as accounts;
use crate::caller::Caller;
use crate::ceremonies::Ceremony;
use crate::state::AppState;
use crate::webauthn::{credential_id_text, parse_credential, webauthn_json};

/// Starts an approval of the message whose EIP-712 digest is `digest`
/// (0x hex): authentication options for the caller's own passkeys.
pub async fn start(state: &AppState, c: &Caller, digest: Hash32) -> Result<ApprovalStart, ApiError> {
    let account_id = c.require_session()?.account_id.clone();
    let digest = digest.0;
    let rows = accounts::passkeys_of(&state.pool, &account_id).await?;
    let passkeys: Vec<Passkey> =
        rows.iter().filter_map(|r| serde_json::from_str(&r.passkey_json).ok()).collect::<Vec<_>>();
    if passkeys.is_empty() {
        return Err(ApiError::bad_request("This account has no passkey to approve with."));
    }
    let (mut options, authentication) = state.webauthn.start_passkey_authentication(&passkeys).map_err(|e| {
        tracing::error!(error = %e, "starting a passkey approval");
        ApiError::Internal
    })?;
    let mut nonce = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    let challenge = chartkey_core::proof::approval_challenge(&digest, &nonce);
    options.public_key.challenge = challenge.to_vec();
    let authentication = with_challenge(authentication, &challenge)?;
    let ceremony_id =
        state.ceremonies.begin(c.ip, Ceremony::Approval { authentication, account_id, digest, nonce }).await?;
    Ok(ApprovalStart { ceremony_id, options: webauthn_json(&options)?, nonce: Hash32(nonce) })
}

/// `authentication` expecting `challenge` instead of the one webauthn-rs
/// drew.
fn with_challenge(
    authentication: PasskeyAuthentication,
    challenge: &[u8; 32],
) -> Result<PasskeyAuthentication, ApiError> {
    let broken = |what: &str| {
        tracing::error!(what, "the passkey authentication state changed shape");
        ApiError::Internal
    };
    let mut state = serde_json::to_value(&authentication).map_err(|_| broken("serialise"))?;
    let slot = state.pointer_mut("/ast/challenge").ok_or_else(|| broken("challenge"))?;
    *slot = serde_json::Value::String(URL_SAFE_NO_PAD.encode(challenge));
    serde_json::from_value(state).map_err(|_| broken("deserialise"))
}

/// Checks that `approval` is a verified assertion of one of `account_id`'s
/// passkeys, in a ceremony started for `digest`; single use.
pub async fn check(state: &AppState, account_id: &str, approval: &Approval, digest: [u8; 32]) -> Result<(), ApiError> {
    let refused = |why: &str| ApiError::Forbidden(why.into());
    let Ceremony::Approval { authentication, account_id: started_by, digest: approved, nonce } =
        state.ceremonies.take(&approval.ceremony_id).await?
    else {
        return Err(ApiError::bad_request("This passkey request does not belong to an approval. Start again."));
    };
    if started_by != account_id {
        return Err(refused("This approval was started by another account."));
    }
    if approved != digest {
        return Err(refused("This approval was given for something else. Review and approve again."));
    }
    let credential: webauthn_rs_proto::PublicKeyCredential = parse_credential(&approval.credential)?;
    let result = state.webauthn.finish_passkey_authentication(&credential, &authentication).map_err(|e| {
        tracing::warn!(error = %e, account = %account_id, "passkey approval refused");
        refused("The passkey's answer could not be verified. Try again.")
    })?;
    if !result.user_verified() {
        return Err(refused("Approving needs your face, fingerprint or device PIN."));
    }
    let credential_id = credential_id_text(result.cred_id());
    let approved = store::ApprovalRow {
        account_id,
        digest: Hash32(digest),
        nonce: Hash32(nonce),
        credential_id: &credential_id,
        assertion: approval.credential.get(),
    };
    store::insert(&state.pool, approved).await?;
    // The passkey's signature counter moved: keep it, so a cloned
    // authenticator shows.
    if let Some(row) = accounts::passkey(&state.pool, &credential_id).await?.filter(|r| r.account_id == account_id)
        && let Ok(mut passkey) = serde_json::from_str::<Passkey>(&row.passkey_json)
        && passkey.update_credential(&result) == Some(true)
    {
        let json = serde_json::to_string(&passkey).map_err(|_| ApiError::Internal)?;
        accounts::passkey_used(&state.pool, &row, json).await?;
    }
    tracing::info!(account = %account_id, "passkey approval verified");
    Ok(())
}
