//! WebAuthn JSON in and out, and the checks on what a browser registers
//! with a passkey (its label, its sealed key store).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chartkey_api::{ApiError, MAX_PASSKEY_LABEL_CHARS, MAX_SEALED_KEYSTORE_BYTES, WebauthnJson};
use chartkey_core::keystore::SealedKeystore;

/// Checks a sealed key store's shape (not its content, which the server
/// cannot read) and that its kind matches what the browser claims.
/// Returns the form it is stored in.
pub(crate) fn check_sealed_keystore(sealed: &SealedKeystore, uses_passphrase: bool) -> Result<String, ApiError> {
    let stored = sealed.to_json();
    if stored.len() > MAX_SEALED_KEYSTORE_BYTES {
        return Err(ApiError::bad_request("The sealed key store is too large."));
    }
    sealed.check_shape().map_err(|_| ApiError::bad_request("The sealed key store is malformed."))?;
    if sealed.needs_passphrase() != uses_passphrase {
        return Err(ApiError::bad_request("The sealed key store does not match the chosen unlock method."));
    }
    Ok(stored)
}

pub(crate) fn passkey_taken() -> ApiError {
    ApiError::Conflict("That passkey is already registered with Chartkey.".into())
}

pub(crate) fn check_label(label: &str) -> Result<String, ApiError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > MAX_PASSKEY_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "Give the passkey a name of 1 to {MAX_PASSKEY_LABEL_CHARS} characters."
        )));
    }
    Ok(label.to_owned())
}

/// Options for the browser, as WebAuthn JSON.
pub(crate) fn webauthn_json(value: &impl serde::Serialize) -> Result<WebauthnJson, ApiError> {
    serde_json::value::to_raw_value(value).map_err(|_| ApiError::Internal)
}

/// The browser's credential, parsed into webauthn-rs types.
pub(crate) fn parse_credential<T: serde::de::DeserializeOwned>(json: &WebauthnJson) -> Result<T, ApiError> {
    serde_json::from_str(json.get()).map_err(|_| ApiError::bad_request("The passkey's answer is malformed."))
}

pub(crate) fn credential_id_text(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}
