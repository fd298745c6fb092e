//! Passkeys in the browser: `navigator.credentials.create/get` with the
//! WebAuthn PRF extension.
//!
//! The PRF output is read here and handed only to the key store code in
//! this browser; the credential sent to the server is rebuilt field by
//! field without any client extension results, so the PRF output can never
//! ride along.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chartkey_core::keystore::PRF_SALT;
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use webauthn_rs_proto::{
    AuthenticationExtensionsClientOutputs, AuthenticatorAssertionResponseRaw, AuthenticatorAttestationResponseRaw,
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RegistrationExtensionsClientOutputs,
    RequestChallengeResponse,
};
use zeroize::Zeroizing;

pub type PrfOutput = Zeroizing<[u8; 32]>;

/// What a new passkey can do for key custody.
pub enum Prf {
    /// The authenticator evaluated the PRF already.
    Output(PrfOutput),
    /// PRF is available but gives output only on an assertion (a second
    /// prompt).
    Enabled,
    /// No PRF: the keys need a passphrase instead.
    Unsupported,
}

pub struct Created {
    pub credential: RegisterPublicKeyCredential,
    pub credential_id: Vec<u8>,
    pub prf: Prf,
}

pub struct Asserted {
    pub credential: PublicKeyCredential,
    pub prf: Option<PrfOutput>,
}

/// Creates a passkey with the server's options, asking for PRF.
pub async fn create(options: CreationChallengeResponse) -> Result<Created, String> {
    let options: web_sys::CredentialCreationOptions = options.into();
    let public_key = get(&options, "publicKey")?;
    add_prf_request(&public_key)?;
    let promise = credentials()?.create_with_options(&options).map_err(describe_error)?;
    let credential: web_sys::PublicKeyCredential = JsFuture::from(promise)
        .await
        .map_err(describe_error)?
        .dyn_into()
        .map_err(|_| "The browser returned no passkey.")?;

    let raw_id = bytes(&get(&credential, "rawId")?);
    let response = get(&credential, "response")?;
    let prf = match get(&credential.get_client_extension_results(), "prf").ok().filter(|v| v.is_object()) {
        Some(prf) => match prf_first(&prf) {
            Some(output) => Prf::Output(output),
            None if get(&prf, "enabled").ok().and_then(|v| v.as_bool()) == Some(true) => Prf::Enabled,
            None => Prf::Unsupported,
        },
        None => Prf::Unsupported,
    };
    let credential = RegisterPublicKeyCredential {
        id: URL_SAFE_NO_PAD.encode(&raw_id),
        raw_id: raw_id.clone().into(),
        response: AuthenticatorAttestationResponseRaw {
            attestation_object: bytes(&get(&response, "attestationObject")?).into(),
            client_data_json: bytes(&get(&response, "clientDataJSON")?).into(),
            transports: None,
        },
        type_: "public-key".into(),
        extensions: RegistrationExtensionsClientOutputs::default(),
    };
    Ok(Created { credential, credential_id: raw_id, prf })
}

/// Asks for an assertion with the server's options (discoverable when the
/// options name no credential), evaluating the PRF.
pub async fn assert(options: RequestChallengeResponse) -> Result<Asserted, String> {
    let options: web_sys::CredentialRequestOptions = options.into();
    let public_key = get(&options, "publicKey")?;
    add_prf_request(&public_key)?;
    let promise = credentials()?.get_with_options(&options).map_err(describe_error)?;
    let credential: web_sys::PublicKeyCredential = JsFuture::from(promise)
        .await
        .map_err(describe_error)?
        .dyn_into()
        .map_err(|_| "The browser returned no passkey.")?;
    let prf = get(&credential.get_client_extension_results(), "prf")
        .ok()
        .filter(|v| v.is_object())
        .and_then(|p| prf_first(&p));
    let raw_id = bytes(&get(&credential, "rawId")?);
    let response = get(&credential, "response")?;
    let user_handle =
        get(&response, "userHandle").ok().filter(|v| !v.is_null() && !v.is_undefined()).map(|v| bytes(&v));
    let credential = PublicKeyCredential {
        id: URL_SAFE_NO_PAD.encode(&raw_id),
        raw_id: raw_id.into(),
        response: AuthenticatorAssertionResponseRaw {
            authenticator_data: bytes(&get(&response, "authenticatorData")?).into(),
            client_data_json: bytes(&get(&response, "clientDataJSON")?).into(),
            signature: bytes(&get(&response, "signature")?).into(),
            user_handle: user_handle.map(Into::into),
        },
        extensions: AuthenticationExtensionsClientOutputs::default(),
        type_: "public-key".into(),
    };
    Ok(Asserted { credential, prf })
}

/// Gets the PRF output of one specific, just-created passkey with a local
/// assertion (its challenge is random and never verified: only the PRF
/// result is used).
pub async fn prf_of(credential_id: &[u8], rp_id: &str) -> Result<Option<PrfOutput>, String> {
    let mut challenge = [0u8; 32];
    getrandom02::getrandom(&mut challenge).map_err(|_| "This browser has no secure random numbers.")?;
    let descriptor = Object::new();
    set(&descriptor, "type", &"public-key".into())?;
    set(&descriptor, "id", &Uint8Array::from(credential_id).into())?;
    let public_key = Object::new();
    set(&public_key, "challenge", &Uint8Array::from(&challenge[..]).into())?;
    set(&public_key, "rpId", &rp_id.into())?;
    set(&public_key, "allowCredentials", &Array::of1(&descriptor).into())?;
    set(&public_key, "userVerification", &"required".into())?;
    set(&public_key, "timeout", &JsValue::from_f64(120_000.0))?;
    add_prf_request(&public_key)?;
    let options = Object::new();
    set(&options, "publicKey", &public_key)?;
    let options: web_sys::CredentialRequestOptions = options.unchecked_into();
    let promise = credentials()?.get_with_options(&options).map_err(describe_error)?;
    let credential: web_sys::PublicKeyCredential = JsFuture::from(promise)
        .await
        .map_err(describe_error)?
        .dyn_into()
        .map_err(|_| "The browser returned no passkey.")?;
    Ok(get(&credential.get_client_extension_results(), "prf")
        .ok()
        .filter(|v| v.is_object())
        .and_then(|p| prf_first(&p)))
}

/// `extensions.prf = { eval: { first: PRF_SALT } }`, keeping other extensions.
fn add_prf_request(public_key: &JsValue) -> Result<(), String> {
    let extensions = match get(public_key, "extensions") {
        Ok(e) if e.is_object() => e,
        _ => {
            let e: JsValue = Object::new().into();
            set(public_key, "extensions", &e)?;
            e
        }
    };
    let eval = Object::new();
    set(&eval, "first", &Uint8Array::from(&PRF_SALT[..]).into())?;
    let prf = Object::new();
    set(&prf, "eval", &eval)?;
    set(&extensions, "prf", &prf)
}

fn prf_first(prf: &JsValue) -> Option<PrfOutput> {
    let first = get(&get(prf, "results").ok()?, "first").ok()?;
    if first.is_undefined() || first.is_null() {
        return None;
    }
    let out = Zeroizing::new(bytes(&first));
    let mut array = Zeroizing::new([0u8; 32]);
    if out.len() != 32 {
        return None;
    }
    array.copy_from_slice(&out);
    Some(array)
}

fn credentials() -> Result<web_sys::CredentialsContainer, String> {
    let window = web_sys::window().ok_or("No browser window.")?;
    if Reflect::get(&window, &"PublicKeyCredential".into()).map(|v| v.is_undefined()).unwrap_or(true) {
        return Err(
            "This browser does not support passkeys. Use a current version of Chrome, Edge, Safari or Firefox.".into(),
        );
    }
    Ok(window.navigator().credentials())
}

fn get(target: &JsValue, key: &str) -> Result<JsValue, String> {
    Reflect::get(target, &key.into()).map_err(|_| format!("The browser's passkey answer has no {key}."))
}

fn set(target: &JsValue, key: &str, value: &JsValue) -> Result<(), String> {
    Reflect::set(target, &key.into(), value)
        .map(|_| ())
        .map_err(|_| "Could not prepare the passkey request.".to_owned())
}

fn bytes(value: &JsValue) -> Vec<u8> {
    Uint8Array::new(value).to_vec()
}

/// Plain words for what went wrong in a WebAuthn call.
fn describe_error(err: JsValue) -> String {
    let name = err.dyn_ref::<web_sys::DomException>().map(|e| e.name()).unwrap_or_default();
    match name.as_str() {
        "NotAllowedError" => {
            "No passkey was used: the request was cancelled or timed out, or this device has no passkey \
                              for Chartkey. Try again, or use the device that holds your passkey."
                .into()
        }
        "InvalidStateError" => {
            "This authenticator already holds a passkey for this account. Use a different one.".into()
        }
        "NotSupportedError" => "This device cannot create the kind of passkey Chartkey needs.".into(),
        "SecurityError" => "The browser refused the passkey request for this address. Open Chartkey at the address \
                            your administrator gave you."
            .into(),
        "AbortError" => "The passkey request was cancelled.".into(),
        _ => "The passkey request failed. Try again.".into(),
    }
}
