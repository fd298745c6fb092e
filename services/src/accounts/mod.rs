//! Accounts: sign-up, restore with the recovery phrase, the signed-in
//! account (me, sign-out, recovery phrase confirmed), and how an account
//! and its directory entry are described to the browser.

use chartkey_api::*;
use chartkey_core::directory::DirectoryEntry;
use chartkey_core::proof;
use chartkey_core::role::Role;
use chartkey_core::value::Address;
use webauthn_rs::prelude::{PasskeyRegistration, Uuid};
use webauthn_rs_proto::{
    AuthenticatorSelectionCriteria, CreationChallengeResponse, ResidentKeyRequirement, UserVerificationPolicy,
};

pub mod store;

use self::store::{AccountRow, PasskeyRow};
use crate::caller::Caller;
use crate::ceremonies::Ceremony;
use crate::db;
use crate::limits::rate_limit;
use crate::sessions::{self, start_session};
use crate::state::AppState;
use crate::webauthn::{check_label, check_sealed_keystore, credential_id_text, parse_credential, webauthn_json};

pub async fn signup_start(
    state: &AppState,
    c: &Caller,
    display_name: String,
    role: Role,
) -> Result<CreationStart, ApiError> {
    rate_limit(&state.limits.registration, c).await?;
    let display_name = check_display_name(&display_name)?;
    let account_id = Uuid::new_v4();
    let (options, registration) = new_registration(state, account_id, &display_name, None)?;
    let ceremony_id = state
        .ceremonies
        .begin(c.ip, Ceremony::Signup { registration, account_id: account_id.to_string(), display_name, role })
        .await?;
    Ok(CreationStart { ceremony_id, options: webauthn_json(&options)? })
}

pub async fn signup_finish(state: &AppState, c: &Caller, f: SignupFinishBody) -> Result<AccountInfo, ApiError> {
    // Input is checked before the ceremony is used up, so a mistake can be
    // corrected without a new passkey.
    let sealed_keystore = check_sealed_keystore(&f.sealed_keystore, f.uses_passphrase)?;
    let label = check_label(&f.passkey_label)?;
    let verified =
        f.directory.verify().map_err(|e| ApiError::bad_request(format!("Your public keys were refused: {e}")))?;
    let Ceremony::Signup { registration, account_id, display_name, role } =
        state.ceremonies.take(&f.ceremony_id).await?
    else {
        return Err(ApiError::bad_request("This request does not belong to a sign-up. Start again."));
    };
    if verified.role != role {
        return Err(ApiError::bad_request("The signed directory entry names a different role than the one chosen."));
    }
    let passkey = finish_registration(state, &f.credential, &registration)?;
    super::chain::register_account(state, &verified, f.ledger_registration).await?;

    let account = AccountRow {
        id: account_id.clone(),
        display_name,
        role: role.as_str().to_owned(),
        address: verified.address.into(),
        encryption_key: verified.encryption_key.into(),
        directory_signature: f.directory.signature,
        recovery_confirmed: false,
    };
    let row = passkey_row(&account_id, label, &passkey, sealed_keystore, f.uses_passphrase)?;
    store::create(&state.pool, &account, &row).await?;
    let credential_id = row.credential_id;
    tracing::info!(account = %account_id, role = role.as_str(), "account created");
    start_session(state, c, &account_id, &credential_id).await?;
    account_info(state, &account_id).await
}

/// Restore, step 1: a challenge, whatever the address. Whether an account
/// exists, and anything about it, is only told to the holder of its key.
pub async fn restore_start(state: &AppState, c: &Caller, address: Address) -> Result<RestoreChallenge, ApiError> {
    rate_limit(&state.limits.registration, c).await?;
    let challenge = crate::token::random_token();
    let ceremony_id =
        state.ceremonies.begin(c.ip, Ceremony::RestoreProof { address, challenge: challenge.clone() }).await?;
    Ok(RestoreChallenge { ceremony_id, challenge })
}

/// Restore, step 2: with proof of the account key, creation options for a
/// new passkey on that account.
pub async fn restore_options(state: &AppState, c: &Caller, p: RestoreProofBody) -> Result<CreationStart, ApiError> {
    let Ceremony::RestoreProof { address, challenge } = state.ceremonies.take(&p.ceremony_id).await? else {
        return Err(ApiError::bad_request("This request does not belong to a restore. Start again."));
    };
    let found = match store::by_address(&state.pool, &address).await? {
        Some(account) => Some((store::passkeys_of(&state.pool, &account.id).await?, account)),
        None => None,
    };
    let parsed = address.into();
    let signer = proof::recover_signer(&proof::restore_message(&parsed, &challenge), &p.signature);
    let Some((existing, account)) = found.filter(|_| signer == Some(parsed)) else {
        tracing::warn!("restore proof refused");
        return Err(ApiError::Forbidden("That recovery phrase does not open an account on this server.".into()));
    };
    let account_id = Uuid::parse_str(&account.id).map_err(|_| ApiError::Internal)?;
    let (options, registration) =
        new_registration(state, account_id, &account.display_name, Some(credential_ids(&existing)))?;
    let ceremony_id = state.ceremonies.begin(c.ip, Ceremony::Restore { registration, account_id: account.id }).await?;
    Ok(CreationStart { ceremony_id, options: webauthn_json(&options)? })
}

/// Restore, step 3: the new passkey and its sealed key store.
pub async fn restore_finish(state: &AppState, c: &Caller, f: RestoreFinishBody) -> Result<AccountInfo, ApiError> {
    let sealed_keystore = check_sealed_keystore(&f.sealed_keystore, f.uses_passphrase)?;
    let label = check_label(&f.passkey_label)?;
    let Ceremony::Restore { registration, account_id } = state.ceremonies.take(&f.ceremony_id).await? else {
        return Err(ApiError::bad_request("This request does not belong to a restore. Start again."));
    };
    let passkey = finish_registration(state, &f.credential, &registration)?;
    let row = passkey_row(&account_id, label, &passkey, sealed_keystore, f.uses_passphrase)?;
    store::add_passkey(&state.pool, &row).await?;
    let credential_id = row.credential_id;
    tracing::info!(account = %account_id, "access restored with recovery phrase");
    start_session(state, c, &account_id, &credential_id).await?;
    account_info(state, &account_id).await
}

/// The WebAuthn credential ids of stored passkeys (to exclude them from a
/// new registration).
pub(super) fn credential_ids(rows: &[PasskeyRow]) -> Vec<webauthn_rs::prelude::CredentialID> {
    rows.iter()
        .filter_map(|p| serde_json::from_str::<webauthn_rs::prelude::Passkey>(&p.passkey_json).ok())
        .map(|p| p.cred_id().clone())
        .collect()
}

fn check_display_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::bad_request("Enter your name."));
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS || name.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err(ApiError::bad_request(format!(
            "Your name can have at most {MAX_DISPLAY_NAME_CHARS} characters, and no control or invisible characters."
        )));
    }
    Ok(name.to_owned())
}

/// Zero-width and bidirectional-override characters: invisible, and able to
/// make one name display as another.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
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
) -> Result<PasskeyRow, ApiError> {
    Ok(PasskeyRow {
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

/// The signed-in account, or 401.
pub async fn me(state: &AppState, c: &Caller) -> Result<AccountInfo, ApiError> {
    let session = c.require_session()?;
    account_info(state, &session.account_id).await
}

/// Ends the caller's session (if any) and clears its cookie.
pub async fn logout(state: &AppState, c: &Caller) -> Result<(), ApiError> {
    if let Some(session) = &c.session {
        sessions::store::end(&state.pool, &session.token_hash).await?;
        tracing::info!(account = %session.account_id, "signed out");
    }
    c.set_cookie(sessions::clearing_cookie(state.config.secure_cookies()));
    Ok(())
}

/// Records that the user confirmed writing down the recovery phrase.
pub async fn confirm_recovery(state: &AppState, c: &Caller) -> Result<AccountInfo, ApiError> {
    let account_id = c.require_session()?.account_id.clone();
    store::confirm_recovery(&state.pool, &account_id).await?;
    account_info(state, &account_id).await
}

/// The account as the browser sees it.
pub async fn account_info(state: &AppState, account_id: &str) -> Result<AccountInfo, ApiError> {
    let row = store::by_id(&state.pool, account_id).await?.ok_or(ApiError::Unauthorized)?;
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

pub(crate) fn directory_entry(row: &AccountRow) -> Result<DirectoryEntry, ApiError> {
    let role = Role::parse(&row.role).ok_or_else(|| {
        tracing::error!(account = %row.id, "stored role is invalid");
        ApiError::Internal
    })?;
    Ok(DirectoryEntry {
        address: row.address,
        role,
        encryption_key: row.encryption_key,
        signature: row.directory_signature,
    })
}
