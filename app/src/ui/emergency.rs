//! Emergency contacts, as the pages use them (docs/links.md "Emergency
//! contacts"): the patient invites by a link, names a contact who accepted
//! (their summary sealed here, its key wrapped to the contact in advance),
//! refuses a request or removes the contact; a contact asks, and once the
//! wait has passed opens the summary. Every step is a message signed here
//! and recorded on the ledger; the patient's steps are approved with a
//! passkey. The pages only ask and show.

use chartkey_core::eip712::{
    EmergencyAccess, EmergencyContact, EmergencyContactRemove, EmergencyRefusal, EmergencyRequest,
};
use chartkey_core::envelope::{self, DataKey, RecordId};
use chartkey_core::role::Role;
use chartkey_core::value::{Address, Hash32};
use ethers_core::types::U256;
use rand_core::OsRng;

use crate::api;
use crate::ui::links::{access_domain, approved};
use crate::ui::records::Loaded;
use crate::ui::session::Keyring;

/// Where a contact accepts an invitation: the secret in the fragment, which
/// browsers do not send.
pub const ACCEPT_PATH: &str = "/emergency";

/// The invitation's link, to give the contact.
pub fn invitation_link(token: Hash32) -> String {
    let origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
    format!("{origin}{ACCEPT_PATH}#accept={token}")
}

/// The invitation secret in this page's address (`#accept=0x…`), if any.
pub fn token_in_address() -> Option<Hash32> {
    let hash = web_sys::window()?.location().hash().ok()?;
    hash.strip_prefix("#accept=")?.parse().ok()
}

/// Names `contact` (who accepted an invitation) with `wait_seconds`: the
/// patient summary made from `records`, sealed here, uploaded, its key
/// wrapped to the contact's published encryption key; the message signed,
/// approved with the passkey and recorded on the ledger.
pub async fn name(
    keyring: &Keyring,
    records: &[Loaded],
    contact: Address,
    wait_seconds: u32,
    serial: u32,
    progress: impl Fn(String),
) -> Result<(), String> {
    progress("Checking the contact's published keys…".into());
    let published = api::directory_lookup(contact).await.map_err(|e| e.to_string())?;
    let contact_address: ethers_core::types::Address = contact.into();
    let entry = published
        .entry
        .verify_for(&contact_address)
        .map_err(|e| format!("The contact's published keys do not check out ({e}). Nothing was changed."))?;
    if entry.role == Role::CredentialingAuthority {
        return Err("An authority's account cannot be an emergency contact.".into());
    }
    progress("Making your summary and sealing it for them…".into());
    let summary = crate::ui::records::patient_summary(records)?;
    let (id, key) = (RecordId::generate(&mut OsRng), DataKey::generate(&mut OsRng));
    let sealed = envelope::seal(&key, id, summary.json.as_bytes(), &mut OsRng);
    let blob = envelope::ciphertext_hash(&sealed);
    let wrapped_key =
        envelope::wrap_key(&key, id, contact_address, &entry.encryption_key, &mut OsRng).map_err(|e| e.to_string())?;
    crate::ui::records::upload_envelope(&blob, &sealed).await?;
    let message = EmergencyContact {
        patient: keyring.keys.address(),
        contact: contact_address,
        wait_seconds,
        nonce: U256::from(serial),
    };
    progress("Approve with your passkey; it is then recorded on the ledger…".into());
    let api::Approved { message, signature, approval } = approved(keyring, message).await?;
    let summary = api::SummaryForContact { id, blob: Hash32(blob), wrapped_key };
    api::emergency_name(api::NameContactBody { message, signature, approval, summary })
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The patient refuses `contact`'s request (or ends their access).
pub async fn refuse(keyring: &Keyring, contact: Address, serial: u32) -> Result<(), String> {
    let message =
        EmergencyRefusal { patient: keyring.keys.address(), contact: contact.into(), nonce: U256::from(serial) };
    api::emergency_refuse(approved(keyring, message).await?).await.map(drop).map_err(|e| e.to_string())
}

/// The patient removes `contact` altogether.
pub async fn remove(keyring: &Keyring, contact: Address, serial: u32) -> Result<(), String> {
    let message =
        EmergencyContactRemove { patient: keyring.keys.address(), contact: contact.into(), nonce: U256::from(serial) };
    api::emergency_remove(approved(keyring, message).await?).await.map(drop).map_err(|e| e.to_string())
}

/// The contact asks for access to `patient`'s summary.
pub async fn request(keyring: &Keyring, patient: Address, nonce: u64) -> Result<(), String> {
    let message =
        EmergencyRequest { contact: keyring.keys.address(), patient: patient.into(), nonce: U256::from(nonce) };
    let signature = access_domain().await?.sign_typed(&keyring.keys, &message);
    api::emergency_request(api::Signed { message, signature }).await.map(drop).map_err(|e| e.to_string())
}

/// The contact opens `patient`'s summary once the wait has passed: the
/// access recorded on the ledger, then the envelope decrypted here with
/// the key the patient wrapped to them. The summary's JSON.
pub async fn open(keyring: &Keyring, patient: Address, nonce: u64) -> Result<String, String> {
    let message =
        EmergencyAccess { contact: keyring.keys.address(), patient: patient.into(), nonce: U256::from(nonce) };
    let signature = access_domain().await?.sign_typed(&keyring.keys, &message);
    let opened = api::emergency_open(api::Signed { message, signature }).await.map_err(|e| e.to_string())?;
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &opened.envelope)
        .map_err(|_| "The server sent a malformed summary.".to_string())?;
    if envelope::ciphertext_hash(&bytes) != opened.summary.blob.0 {
        return Err("The summary the server sent is not the one the patient sealed.".into());
    }
    let keys = &keyring.keys;
    let id = opened.summary.id;
    let key = envelope::unwrap_key(&opened.summary.wrapped_key, id, keys.address(), keys.encryption_secret())
        .map_err(|_| "The summary's key was not wrapped for you.".to_string())?;
    let plaintext = envelope::open(&key, id, &bytes).map_err(|e| e.to_string())?;
    String::from_utf8(plaintext.to_vec()).map_err(|_| "The summary is not text.".to_string())
}
