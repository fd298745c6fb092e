//! Passkeys in the browser: `navigator.credentials.create/get` with the
//! WebAuthn PRF extension.
//!
//! Options arrive and credentials leave as WebAuthn JSON (base64url for
//! binary fields), converted here with the browser's own JSON parser, so the
//! app carries no WebAuthn type library. The PRF output is read here and
//! handed only to the key store code in this browser: the credential sent to
//! the server is rebuilt field by field, without any client extension
//! results, so the PRF output can never ride along.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chartkey_core::keystore::PRF_SALT;
use js_sys::{Array, JSON, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use zeroize::Zeroizing;

use crate::api::WebauthnJson;

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
    pub credential: WebauthnJson,
    pub credential_id: Vec<u8>,
    /// The relying party id the passkey belongs to.
    pub rp_id: String,
    pub prf: Prf,
}

pub struct Asserted {
    pub credential: WebauthnJson,
    pub prf: Option<PrfOutput>,
}

/// Creates a passkey with the server's options, asking for PRF.
pub async fn create(options: &WebauthnJson) -> Result<Created, String> {
    let options = parse(options)?;
    let public_key = get(&options, "publicKey")?;
    to_buffer(&public_key, "challenge")?;
    to_buffer(&get(&public_key, "user")?, "id")?;
    descriptors_to_buffers(&public_key, "excludeCredentials")?;
    let rp_id = get(&get(&public_key, "rp")?, "id")?.as_string().unwrap_or_default();
    add_prf_request(&public_key)?;
    let promise = credentials()?.create_with_options(options.unchecked_ref()).map_err(describe_error)?;
    let credential = settle(promise).await?;

    let raw_id = bytes(&get(&credential, "rawId")?);
    let response = get(&credential, "response")?;
    let prf = match get(&credential.get_client_extension_results(), "prf").ok().filter(JsValue::is_object) {
        Some(prf) => match prf_first(&prf) {
            Some(output) => Prf::Output(output),
            None if get(&prf, "enabled").ok().and_then(|v| v.as_bool()) == Some(true) => Prf::Enabled,
            None => Prf::Unsupported,
        },
        None => Prf::Unsupported,
    };
    let json = credential_json(
        &raw_id,
        &[
            ("attestationObject", Some(get(&response, "attestationObject")?)),
            ("clientDataJSON", Some(get(&response, "clientDataJSON")?)),
        ],
    )?;
    Ok(Created { credential: json, credential_id: raw_id, rp_id, prf })
}

/// Asks for an assertion with the server's options (discoverable when the
/// options name no credential), evaluating the PRF.
pub async fn assert(options: &WebauthnJson) -> Result<Asserted, String> {
    let options = parse(options)?;
    let public_key = get(&options, "publicKey")?;
    to_buffer(&public_key, "challenge")?;
    descriptors_to_buffers(&public_key, "allowCredentials")?;
    add_prf_request(&public_key)?;
    let promise = credentials()?.get_with_options(options.unchecked_ref()).map_err(describe_error)?;
    let credential = settle(promise).await?;
    let prf = get(&credential.get_client_extension_results(), "prf")
        .ok()
        .filter(JsValue::is_object)
        .and_then(|p| prf_first(&p));
    let raw_id = bytes(&get(&credential, "rawId")?);
    let response = get(&credential, "response")?;
    let user_handle = get(&response, "userHandle").ok().filter(|v| !v.is_null() && !v.is_undefined());
    let json = credential_json(
        &raw_id,
        &[
            ("authenticatorData", Some(get(&response, "authenticatorData")?)),
            ("clientDataJSON", Some(get(&response, "clientDataJSON")?)),
            ("signature", Some(get(&response, "signature")?)),
            ("userHandle", user_handle),
        ],
    )?;
    Ok(Asserted { credential: json, prf })
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
    let promise = credentials()?.get_with_options(options.unchecked_ref()).map_err(describe_error)?;
    let credential = settle(promise).await?;
    Ok(get(&credential.get_client_extension_results(), "prf")
        .ok()
        .filter(JsValue::is_object)
        .and_then(|p| prf_first(&p)))
}

async fn settle(promise: js_sys::Promise) -> Result<web_sys::PublicKeyCredential, String> {
    JsFuture::from(promise)
        .await
        .map_err(describe_error)?
        .dyn_into()
        .map_err(|_| "The browser returned no passkey.".to_owned())
}

/// `{id, rawId, type, response: {…}}` with binary fields as base64url.
fn credential_json(raw_id: &[u8], fields: &[(&str, Option<JsValue>)]) -> Result<WebauthnJson, String> {
    let response = Object::new();
    for (name, value) in fields {
        if let Some(value) = value {
            set(&response, name, &b64(&bytes(value)).into())?;
        }
    }
    let credential = Object::new();
    set(&credential, "id", &b64(raw_id).into())?;
    set(&credential, "rawId", &b64(raw_id).into())?;
    set(&credential, "type", &"public-key".into())?;
    set(&credential, "response", &response)?;
    let text = JSON::stringify(&credential).map_err(|_| "Could not encode the passkey answer.")?;
    serde_json::value::RawValue::from_string(String::from(text))
        .map_err(|_| "Could not encode the passkey answer.".to_owned())
}

fn parse(json: &WebauthnJson) -> Result<JsValue, String> {
    JSON::parse(json.get()).map_err(|_| "The server sent unreadable passkey options.".to_owned())
}

/// Replaces a base64url string field with its bytes.
fn to_buffer(target: &JsValue, key: &str) -> Result<(), String> {
    let text = get(target, key)?.as_string().ok_or_else(|| format!("The passkey options have no {key}."))?;
    let decoded = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("The passkey options' {key} is not base64url."))?;
    set(target, key, &Uint8Array::from(decoded.as_slice()).into())
}

fn descriptors_to_buffers(public_key: &JsValue, key: &str) -> Result<(), String> {
    let list = get(public_key, key)?;
    if list.is_undefined() || list.is_null() {
        return Ok(());
    }
    for descriptor in Array::from(&list).iter() {
        to_buffer(&descriptor, "id")?;
    }
    Ok(())
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
    let array: [u8; 32] = out.as_slice().try_into().ok()?;
    Some(Zeroizing::new(array))
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
    Reflect::get(target, &key.into()).map_err(|_| format!("The passkey data has no {key}."))
}

fn set(target: &JsValue, key: &str, value: &JsValue) -> Result<(), String> {
    Reflect::set(target, &key.into(), value)
        .map(|_| ())
        .map_err(|_| "Could not prepare the passkey request.".to_owned())
}

fn bytes(value: &JsValue) -> Vec<u8> {
    Uint8Array::new(value).to_vec()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
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
