//! Passkey sign-in and the account's list of passkeys. Adding and removing
//! a passkey need the unlocked account key, not just a session: a session
//! left open on a locked workstation cannot take the account over.

use chartkey_api::*;
use chartkey_core::keystore::SealedKeystore;
use chartkey_core::proof;
use chartkey_core::value::{Address, Signature};
use webauthn_rs::prelude::{Passkey, Uuid};

use super::accounts::{account_info, credential_ids, finish_registration, new_registration, passkey_row};
use crate::caller::Caller;
use crate::ceremonies::Ceremony;
use crate::db;
use crate::limits::rate_limit;
use crate::sessions::start_session;
use crate::state::AppState;
use crate::webauthn::{
    check_label, check_sealed_keystore, credential_id_text, parse_credential, passkey_taken, webauthn_json,
};

pub async fn login_start(state: &AppState, c: &Caller) -> Result<RequestStart, ApiError> {
    rate_limit(&state.limits.login, c)?;
    let (mut options, authentication) = state.webauthn.start_discoverable_authentication().map_err(|e| {
        tracing::error!(error = %e, "starting discoverable authentication");
        ApiError::Internal
    })?;
    // A modal request from the "Sign in" button, not conditional (autofill) UI.
    options.mediation = None;
    let ceremony_id = state.ceremonies.begin(c.ip, Ceremony::Login { authentication }).await?;
    Ok(RequestStart { ceremony_id, options: webauthn_json(&options)? })
}

pub async fn login_finish(state: &AppState, c: &Caller, f: LoginFinishBody) -> Result<LoginResult, ApiError> {
    let credential: webauthn_rs_proto::PublicKeyCredential = parse_credential(&f.credential)?;
    let Ceremony::Login { authentication } = state.ceremonies.take(&f.ceremony_id).await? else {
        return Err(ApiError::bad_request("This request does not belong to a sign-in. Start again."));
    };
    let (user, credential_id) = state
        .webauthn
        .identify_discoverable_authentication(&credential)
        .map(|(user, cred)| (user, credential_id_text(cred)))
        .map_err(|_| ApiError::bad_request("The passkey did not say which account it belongs to."))?;
    let lookup = credential_id.clone();
    let row = state.db.call(move |conn| db::passkey_by_credential(conn, &lookup)).await?;
    let Some(row) = row.filter(|r| Uuid::parse_str(&r.account_id).ok() == Some(user)) else {
        tracing::info!("sign-in with an unknown passkey");
        return Err(ApiError::Forbidden(
            "This passkey is not registered with Chartkey on this server. Use another passkey, or create an account."
                .into(),
        ));
    };
    let mut passkey: Passkey = serde_json::from_str(&row.passkey_json).map_err(|_| ApiError::Internal)?;
    let result =
        state.webauthn.finish_discoverable_authentication_v2(&credential, authentication, &passkey).map_err(|e| {
            tracing::warn!(error = %e, account = %row.account_id, "passkey assertion refused");
            ApiError::Forbidden("The passkey's answer could not be verified. Try again.".into())
        })?;
    passkey.update_credential(&result);
    let passkey_json = serde_json::to_string(&passkey).map_err(|_| ApiError::Internal)?;
    let (cred, account) = (credential_id.clone(), row.account_id.clone());
    let sql = "UPDATE passkeys SET passkey_json = ?1, last_used_at = ?2 WHERE credential_id = ?3 AND account_id = ?4";
    let still_registered = state.db.execute(sql, (passkey_json, db::now(), cred, account)).await? == 1;
    if !still_registered {
        return Err(ApiError::Forbidden("This passkey was just removed from its account.".into()));
    }
    tracing::info!(account = %row.account_id, "signed in");
    start_session(state, c, &row.account_id, &credential_id).await?;
    Ok(LoginResult {
        account: account_info(state, &row.account_id).await?,
        credential_id,
        sealed_keystore: SealedKeystore::from_json(&row.sealed_keystore).map_err(|_| {
            tracing::error!(account = %row.account_id, "a stored key store is malformed");
            ApiError::Internal
        })?,
    })
}

pub async fn list(state: &AppState, c: &Caller) -> Result<Vec<PasskeyInfo>, ApiError> {
    let session = c.require_session()?.clone();
    let account_id = session.account_id.clone();
    let rows = state.db.call(move |conn| db::passkeys_of(conn, &account_id)).await?;
    Ok(rows.into_iter().map(|row| info(row, &session.credential_id)).collect())
}

pub async fn add_start(state: &AppState, c: &Caller) -> Result<NewPasskeyChallenge, ApiError> {
    let account_id = c.require_session()?.account_id.clone();
    rate_limit(&state.limits.registration, c)?;
    let id = account_id.clone();
    let (account, existing) =
        state.db.call(move |conn| Ok((db::account_by_id(conn, &id)?, db::passkeys_of(conn, &id)?))).await?;
    let account = account.ok_or(ApiError::Unauthorized)?;
    let user = Uuid::parse_str(&account.id).map_err(|_| ApiError::Internal)?;
    let (options, registration) =
        new_registration(state, user, &account.display_name, Some(credential_ids(&existing)))?;
    let challenge = crate::token::random_token();
    let ceremony_id = state
        .ceremonies
        .begin(c.ip, Ceremony::AddPasskey { registration, account_id, challenge: challenge.clone() })
        .await?;
    Ok(NewPasskeyChallenge { ceremony_id, options: webauthn_json(&options)?, challenge })
}

pub async fn add_finish(state: &AppState, c: &Caller, f: AddPasskeyFinishBody) -> Result<PasskeyInfo, ApiError> {
    let session = c.require_session()?.clone();
    let sealed_keystore = check_sealed_keystore(&f.sealed_keystore, f.uses_passphrase)?;
    let label = check_label(&f.passkey_label)?;
    let Ceremony::AddPasskey { registration, account_id, challenge } = state.ceremonies.take(&f.ceremony_id).await?
    else {
        return Err(ApiError::bad_request("This request does not belong to adding a passkey. Start again."));
    };
    if account_id != session.account_id {
        return Err(ApiError::Forbidden("This passkey request was started by another account.".into()));
    }
    let passkey = finish_registration(state, &f.credential, &registration)?;
    let row = passkey_row(&account_id, label, &passkey, sealed_keystore, f.uses_passphrase)?;
    let account = address_of(state, &account_id).await?;
    let message = proof::add_passkey_message(&account.into(), &challenge, &row.credential_id);
    check_account_signature(&account, &message, &f.signature)?;
    let stored = row.clone();
    if !state.db.call(move |conn| db::insert_passkey(conn, &stored)).await? {
        return Err(passkey_taken());
    }
    tracing::info!(account = %account_id, "passkey added");
    Ok(info(row, &session.credential_id))
}

pub async fn remove_start(state: &AppState, c: &Caller, credential_id: String) -> Result<RemovalChallenge, ApiError> {
    let account_id = c.require_session()?.account_id.clone();
    if credential_id.is_empty() || credential_id.len() > 1024 {
        return Err(ApiError::bad_request("That is not a passkey id."));
    }
    // Only one's own passkeys: the same answer for another account's and
    // for none at all.
    let (id, named) = (account_id.clone(), credential_id.clone());
    let owned =
        state.db.call(move |conn| Ok(db::passkeys_of(conn, &id)?.iter().any(|k| k.credential_id == named))).await?;
    if !owned {
        return Err(ApiError::NotFound("That passkey is not on your account.".into()));
    }
    let challenge = crate::token::random_token();
    let ceremony = Ceremony::RemovePasskey { account_id, credential_id, challenge: challenge.clone() };
    let ceremony_id = state.ceremonies.begin(c.ip, ceremony).await?;
    Ok(RemovalChallenge { ceremony_id, challenge })
}

pub async fn remove(
    state: &AppState,
    c: &Caller,
    ceremony_id: String,
    credential_id: String,
    signature: Signature,
) -> Result<(), ApiError> {
    let session = c.require_session()?.clone();
    let account_id = session.account_id.clone();
    let Ceremony::RemovePasskey { account_id: started_by, credential_id: named, challenge } =
        state.ceremonies.take(&ceremony_id).await?
    else {
        return Err(ApiError::bad_request("This request does not belong to removing a passkey. Start again."));
    };
    if started_by != account_id {
        return Err(ApiError::Forbidden("This request was started by another account.".into()));
    }
    if named != credential_id {
        return Err(ApiError::bad_request("This request was started for another passkey. Start again."));
    }
    let account = address_of(state, &account_id).await?;
    let message = proof::remove_passkey_message(&account.into(), &challenge, &credential_id);
    check_account_signature(&account, &message, &signature)?;
    if credential_id == session.credential_id {
        return Err(ApiError::Conflict(
            "You are signed in with this passkey, so it can't be removed now. Sign in with another passkey to remove it."
                .into(),
        ));
    }
    let id = account_id.clone();
    let outcome = state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let keys = db::passkeys_of(&tx, &id)?;
            if !keys.iter().any(|k| k.credential_id == credential_id) {
                return Ok(Removal::NotFound);
            }
            if keys.len() <= 1 {
                return Ok(Removal::LastOne);
            }
            tx.execute("DELETE FROM passkeys WHERE credential_id = ?1 AND account_id = ?2", [&credential_id, &id])?;
            // Sessions that signed in with it end now.
            tx.execute("DELETE FROM sessions WHERE credential_id = ?1", [&credential_id])?;
            tx.commit()?;
            Ok(Removal::Removed)
        })
        .await?;
    match outcome {
        Removal::Removed => {
            tracing::info!(account = %account_id, "passkey removed");
            Ok(())
        }
        Removal::NotFound => Err(ApiError::NotFound("That passkey is not on your account.".into())),
        Removal::LastOne => Err(ApiError::Conflict(
            "This is your only passkey, so it can't be removed. Add another passkey first.".into(),
        )),
    }
}

enum Removal {
    Removed,
    NotFound,
    LastOne,
}

async fn address_of(state: &AppState, account_id: &str) -> Result<Address, ApiError> {
    let id = account_id.to_owned();
    let account = state.db.call(move |conn| db::account_by_id(conn, &id)).await?.ok_or(ApiError::Unauthorized)?;
    Ok(account.address)
}

fn info(row: db::PasskeyRow, session_credential: &str) -> PasskeyInfo {
    PasskeyInfo {
        in_use: row.credential_id == session_credential,
        credential_id: row.credential_id,
        label: row.label,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        uses_passphrase: row.uses_passphrase,
    }
}

/// Checks `signature` is the account key's EIP-191 signature of `message`.
fn check_account_signature(address: &Address, message: &str, signature: &Signature) -> Result<(), ApiError> {
    if chartkey_core::proof::recover_signer(message, signature) != Some((*address).into()) {
        return Err(ApiError::Forbidden(
            "This needs your unlocked account key, and the signature sent does not match it. Unlock and try again."
                .into(),
        ));
    }
    Ok(())
}
