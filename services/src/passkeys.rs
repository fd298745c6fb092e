//! Passkey sign-in and the account's list of passkeys. Adding and removing
//! a passkey need the unlocked account key, not just a session: a session
//! left open on a locked workstation cannot take the account over.

use chartkey_api::*;
use chartkey_core::keystore::SealedKeystore;
use chartkey_core::proof;
use chartkey_core::value::{Address, Signature};
use webauthn_rs::prelude::{Passkey, Uuid};

use super::accounts::store::{self, PasskeyRow};
use super::accounts::{account_info, credential_ids, finish_registration, new_registration, passkey_row};
use crate::caller::Caller;
use crate::ceremonies::Ceremony;
use crate::limits::rate_limit;
use crate::sessions::start_session;
use crate::state::AppState;
use crate::webauthn::{check_label, check_sealed_keystore, credential_id_text, parse_credential, webauthn_json};

pub async fn login_start(state: &AppState, c: &Caller) -> Result<RequestStart, ApiError> {
    rate_limit(&state.limits.login, c).await?;
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
    let row = store::passkey(&state.pool, &credential_id).await?;
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
    if !store::passkey_used(&state.pool, &row, passkey_json).await? {
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
    let rows = store::passkeys_of(&state.pool, &session.account_id).await?;
    Ok(rows.into_iter().map(|row| info(row, &session.credential_id)).collect())
}

pub async fn add_start(state: &AppState, c: &Caller) -> Result<NewPasskeyChallenge, ApiError> {
    let account_id = c.require_session()?.account_id.clone();
    rate_limit(&state.limits.registration, c).await?;
    let account = store::by_id(&state.pool, &account_id).await?.ok_or(ApiError::Unauthorized)?;
    let existing = store::passkeys_of(&state.pool, &account_id).await?;
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
    store::add_passkey(&state.pool, &row).await?;
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
    let owned = store::passkeys_of(&state.pool, &account_id).await?.iter().any(|k| k.credential_id == credential_id);
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
    store::remove_passkey(&state.pool, &account_id, &credential_id).await?;
    tracing::info!(account = %account_id, "passkey removed");
    Ok(())
}

async fn address_of(state: &AppState, account_id: &str) -> Result<Address, ApiError> {
    let account = store::by_id(&state.pool, account_id).await?.ok_or(ApiError::Unauthorized)?;
    Ok(account.address)
}

fn info(row: PasskeyRow, session_credential: &str) -> PasskeyInfo {
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
