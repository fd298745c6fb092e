//! Sign-up and restore-with-recovery-phrase.

use chartkey_app::api::ssr::Caller;
use chartkey_app::api::*;
use chartkey_core::proof;
use chartkey_core::wire::{AccountInfo, Role};
use webauthn_rs::prelude::{PasskeyRegistration, Uuid};
use webauthn_rs_proto::{
    AuthenticatorSelectionCriteria, CreationChallengeResponse, ResidentKeyRequirement, UserVerificationPolicy,
};

use super::*;
use crate::ceremonies::Ceremony;

pub async fn signup_start(
    state: &AppState,
    c: &Caller,
    display_name: String,
    role: Role,
) -> Result<CreationStart, ApiError> {
    rate_limit(&state.limits.registration, c)?;
    let display_name = check_display_name(&display_name)?;
    let account_id = Uuid::new_v4();
    let (options, registration) = new_registration(state, account_id, &display_name, None)?;
    let ceremony_id = state.ceremonies.begin(Ceremony::Signup {
        registration,
        account_id: account_id.to_string(),
        display_name,
        role,
    })?;
    Ok(CreationStart { ceremony_id, options: webauthn_json(&options)? })
}

pub async fn signup_finish(state: &AppState, c: &Caller, f: SignupFinishBody) -> Result<AccountInfo, ApiError> {
    let Ceremony::Signup { registration, account_id, display_name, role } = state.ceremonies.take(&f.ceremony_id)?
    else {
        return Err(ApiError::bad_request("This request does not belong to a sign-up. Start again."));
    };
    check_sealed_keystore(&f.sealed_keystore, f.uses_passphrase)?;
    let label = check_label(&f.passkey_label)?;
    let verified =
        f.directory.verify().map_err(|e| ApiError::bad_request(format!("Your public keys were refused: {e}")))?;
    if verified.role != role {
        return Err(ApiError::bad_request("The signed directory entry names a different role than the one chosen."));
    }
    let passkey = finish_registration(state, &f.credential, &registration)?;

    let account = AccountRow {
        id: account_id.clone(),
        display_name,
        role: role.as_str().to_owned(),
        address: f.directory.address.clone(),
        encryption_key: f.directory.encryption_key.clone(),
        directory_signature: f.directory.signature.clone(),
        recovery_confirmed: false,
    };
    let row = passkey_row(&account_id, label, &passkey, f.sealed_keystore, f.uses_passphrase)?;
    let conflict = state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            if db::account_by_address(&tx, &account.address)?.is_some() {
                return Ok(Some(ApiError::Conflict(
                    "An account with these keys already exists. Sign in instead.".into(),
                )));
            }
            db::insert_account(&tx, &account)?;
            if !db::insert_passkey(&tx, &row)? {
                return Ok(Some(passkey_taken()));
            }
            tx.commit()?;
            Ok(None)
        })
        .await?;
    if let Some(conflict) = conflict {
        return Err(conflict);
    }
    tracing::info!(account = %account_id, role = role.as_str(), "account created");
    start_session(state, c, &account_id).await?;
    account_info(state, &account_id).await
}

pub async fn restore_start(state: &AppState, c: &Caller, address: String) -> Result<RestoreChallenge, ApiError> {
    rate_limit(&state.limits.registration, c)?;
    let address = parse_address(&address)?;
    let (account, existing) = state
        .db
        .call(move |conn| {
            let Some(account) = db::account_by_address(conn, &address)? else {
                return Ok(None);
            };
            let existing = db::passkeys_of(conn, &account.id)?;
            Ok(Some((account, existing)))
        })
        .await?
        .ok_or_else(|| ApiError::NotFound("No account on this server belongs to that recovery phrase.".into()))?;
    let account_id = Uuid::parse_str(&account.id).map_err(|_| ApiError::Internal)?;
    let exclude = existing
        .iter()
        .filter_map(|p| serde_json::from_str::<webauthn_rs::prelude::Passkey>(&p.passkey_json).ok())
        .map(|p| p.cred_id().clone())
        .collect();
    let (options, registration) = new_registration(state, account_id, &account.display_name, Some(exclude))?;
    let challenge = sessions::random_token();
    let ceremony_id = state.ceremonies.begin(Ceremony::Restore {
        registration,
        account_id: account.id.clone(),
        challenge: challenge.clone(),
    })?;
    Ok(RestoreChallenge { ceremony_id, options: webauthn_json(&options)?, challenge })
}

pub async fn restore_finish(state: &AppState, c: &Caller, f: RestoreFinishBody) -> Result<AccountInfo, ApiError> {
    let Ceremony::Restore { registration, account_id, challenge } = state.ceremonies.take(&f.ceremony_id)? else {
        return Err(ApiError::bad_request("This request does not belong to a restore. Start again."));
    };
    check_sealed_keystore(&f.sealed_keystore, f.uses_passphrase)?;
    let label = check_label(&f.passkey_label)?;
    let id = account_id.clone();
    let account = state.db.call(move |conn| db::account_by_id(conn, &id)).await?.ok_or(ApiError::Internal)?;
    let address: ethers_core::types::Address = account.address.parse().map_err(|_| ApiError::Internal)?;
    let message = proof::restore_message(&address, &challenge);
    if proof::recover_signer(&message, &f.signature) != Some(address) {
        tracing::warn!(account = %account_id, "restore proof did not match the account key");
        return Err(ApiError::Forbidden("The recovery phrase does not match this account.".into()));
    }
    let passkey = finish_registration(state, &f.credential, &registration)?;
    let row = passkey_row(&account_id, label, &passkey, f.sealed_keystore, f.uses_passphrase)?;
    if !state.db.call(move |conn| db::insert_passkey(conn, &row)).await? {
        return Err(passkey_taken());
    }
    tracing::info!(account = %account_id, "access restored with recovery phrase");
    start_session(state, c, &account_id).await?;
    account_info(state, &account_id).await
}

fn check_display_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::bad_request("Enter your name."));
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "Your name can have at most {MAX_DISPLAY_NAME_CHARS} characters and no control characters."
        )));
    }
    Ok(name.to_owned())
}

/// WebAuthn creation options: user verification required and a
/// discoverable (resident) credential, so sign-in needs no user name.
pub(super) fn new_registration(
    state: &AppState,
    user: Uuid,
    display_name: &str,
    exclude: Option<Vec<webauthn_rs::prelude::CredentialID>>,
) -> Result<(CreationChallengeResponse, PasskeyRegistration), ApiError> {
    let (mut options, registration) =
        state.webauthn.start_passkey_registration(user, display_name, display_name, exclude).map_err(|e| {
            tracing::error!(error = %e, "starting passkey registration");
            ApiError::Internal
        })?;
    options.public_key.authenticator_selection = Some(AuthenticatorSelectionCriteria {
        authenticator_attachment: None,
        resident_key: Some(ResidentKeyRequirement::Required),
        require_resident_key: true,
        user_verification: UserVerificationPolicy::Required,
    });
    Ok((options, registration))
}

pub(super) fn finish_registration(
    state: &AppState,
    credential: &WebauthnJson,
    registration: &PasskeyRegistration,
) -> Result<webauthn_rs::prelude::Passkey, ApiError> {
    let credential: webauthn_rs_proto::RegisterPublicKeyCredential = parse_credential(credential)?;
    state.webauthn.finish_passkey_registration(&credential, registration).map_err(|e| {
        tracing::warn!(error = %e, "passkey registration refused");
        ApiError::bad_request("The new passkey could not be verified. Try again, or use another device.")
    })
}

pub(super) fn passkey_row(
    account_id: &str,
    label: String,
    passkey: &webauthn_rs::prelude::Passkey,
    sealed_keystore: String,
    uses_passphrase: bool,
) -> Result<db::PasskeyRow, ApiError> {
    Ok(db::PasskeyRow {
        credential_id: credential_id_text(passkey.cred_id()),
        account_id: account_id.to_owned(),
        label,
        passkey_json: serde_json::to_string(passkey).map_err(|_| ApiError::Internal)?,
        sealed_keystore,
        uses_passphrase,
        created_at: db::now(),
        last_used_at: None,
    })
}
