//! Passkey approval of one signed ledger message: sharing and stopping a
//! share ask for a fresh assertion, with user verification, from one of the
//! account's own passkeys, in a ceremony bound to the message's EIP-712
//! digest. The message itself is still authorised by the account key's
//! signature (checked by the contract); the approval proves the person
//! with the passkey was there and agreed to exactly this message, now.

use chartkey_app::api::ssr::Caller;
use chartkey_app::api::{ApiError, Approval, RequestStart};
use webauthn_rs::prelude::Passkey;

use super::{credential_id_text, parse_credential, webauthn_json};
use crate::ceremonies::Ceremony;
use crate::db;
use crate::state::AppState;

/// Starts an approval of the message whose EIP-712 digest is `digest`
/// (0x hex): authentication options for the caller's own passkeys.
pub async fn start(state: &AppState, c: &Caller, digest: String) -> Result<RequestStart, ApiError> {
    let account_id = c.require_session()?.account_id.clone();
    let digest = parse_digest(&digest)?;
    let id = account_id.clone();
    let rows = state.db.call(move |conn| db::passkeys_of(conn, &id)).await?;
    let passkeys: Vec<Passkey> =
        rows.iter().filter_map(|r| serde_json::from_str(&r.passkey_json).ok()).collect::<Vec<_>>();
    if passkeys.is_empty() {
        return Err(ApiError::bad_request("This account has no passkey to approve with."));
    }
    let (options, authentication) = state.webauthn.start_passkey_authentication(&passkeys).map_err(|e| {
        tracing::error!(error = %e, "starting a passkey approval");
        ApiError::Internal
    })?;
    let ceremony_id = state.ceremonies.begin(c.ip, Ceremony::Approval { authentication, account_id, digest })?;
    Ok(RequestStart { ceremony_id, options: webauthn_json(&options)? })
}

/// Checks that `approval` is a verified assertion of one of `account_id`'s
/// passkeys, in a ceremony started for `digest`; single use.
pub async fn check(state: &AppState, account_id: &str, approval: &Approval, digest: [u8; 32]) -> Result<(), ApiError> {
    let refused = |why: &str| ApiError::Forbidden(why.into());
    let Ceremony::Approval { authentication, account_id: started_by, digest: approved } =
        state.ceremonies.take(&approval.ceremony_id)?
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
    let (credential_id, account) = (credential_id_text(result.cred_id()), account_id.to_owned());
    let counter_update = result.clone();
    state
        .db
        .call(move |conn| {
            let Some(row) = db::passkey_by_credential(conn, &credential_id)? else { return Ok(()) };
            if row.account_id != account {
                return Ok(());
            }
            let Ok(mut passkey) = serde_json::from_str::<Passkey>(&row.passkey_json) else { return Ok(()) };
            if passkey.update_credential(&counter_update) == Some(true) {
                let json = serde_json::to_string(&passkey).unwrap_or(row.passkey_json);
                conn.execute(
                    "UPDATE passkeys SET passkey_json = ?1, last_used_at = ?2 WHERE credential_id = ?3",
                    rusqlite::params![json, db::now(), credential_id],
                )?;
            }
            Ok(())
        })
        .await?;
    tracing::info!(account = %account_id, "passkey approval verified");
    Ok(())
}

fn parse_digest(text: &str) -> Result<[u8; 32], ApiError> {
    let bad = || ApiError::bad_request("The digest must be 32 bytes of 0x-prefixed hex.");
    let bytes = hex::decode(text.strip_prefix("0x").ok_or_else(bad)?).map_err(|_| bad())?;
    bytes.try_into().map_err(|_| bad())
}
