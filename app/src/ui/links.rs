//! Share by link, as the pages use it: a SMART Health Link made in this
//! browser (its key never leaves it), and stopping one. The protocol and
//! the cryptography live here; `pages/records/link.rs` and `pages/links.rs`
//! only ask and show.

use chartkey_core::eip712::{Domain, FLAG_LONG_TERM, Link, LinkRevoke, LinkUpdate, TypedMessage};
use chartkey_core::fhir::ImportedResource;
use chartkey_core::shl::{self, Flags, LinkKey, LinkSecrets, ManifestId, SealedLink};
use chartkey_core::value::Hash32;
use ethers_core::types::U256;
use rand_core::OsRng;

use crate::api;
use crate::ui::records::Loaded;
use crate::ui::session::Keyring;
use crate::ui::sharing::approved as approved_under;

/// What a link carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// The patient summary (IPS), made now from the records read here.
    Summary,
    /// The current records of these kinds (bit n: category n), as one Bundle.
    Kinds(u32),
}

/// A link the patient asked for.
#[derive(Clone, Debug)]
pub struct NewLink {
    pub content: Content,
    pub label: String,
    /// Seconds from now; `None`: no expiry.
    pub lifetime: Option<u64>,
    pub passcode: Option<String>,
    pub long_term: bool,
    /// `U`: the link's URL answers a GET with the one file (no passcode).
    pub direct: bool,
}

/// A link made: its text (`shlink:/…`) and its QR code (SVG).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Made {
    pub link: String,
    pub qr_svg: Option<String>,
}

/// The FHIR the link carries, from the records read here.
fn content_of(records: &[Loaded], content: Content) -> Result<String, String> {
    match content {
        Content::Summary => crate::ui::records::patient_summary(records).map(|s| s.json),
        Content::Kinds(kinds) => {
            let chosen: Vec<ImportedResource> = records
                .iter()
                .filter(|r| r.meta.amended_by.is_empty() && kinds >> r.meta.category & 1 == 1)
                .filter_map(|r| r.opened().map(|o| o.resource.clone()))
                .collect();
            if chosen.is_empty() {
                return Err("None of your records is of the kinds chosen.".into());
            }
            shl::collection(&chosen).map_err(|_| "A record could not be read as FHIR.".to_string())
        }
    }
}

/// Makes the link: the content encrypted here with a fresh key, the link
/// approved with the passkey, signed, and recorded on the ledger; only the
/// encrypted file goes to the server. `progress` hears each step.
pub async fn create(
    keyring: &Keyring,
    records: &[Loaded],
    new: NewLink,
    progress: impl Fn(String),
) -> Result<Made, String> {
    let label = new.label.trim().to_owned();
    if label.is_empty() || label.chars().count() > shl::MAX_LABEL_CHARS {
        return Err(format!("Give the link a label of 1 to {} characters.", shl::MAX_LABEL_CHARS));
    }
    if new.direct && new.passcode.is_some() {
        return Err("A direct-file link cannot ask for a passcode: choose one or the other.".into());
    }
    progress("Making the content and encrypting it in this browser…".into());
    let (manifest, key) = (ManifestId::generate(&mut OsRng), LinkKey::generate(&mut OsRng));
    let files = encrypted(records, new.content, &key)?;
    let now = (js_sys::Date::now() / 1000.0) as u64;
    let expires_at = new.lifetime.map(|s| now + s).unwrap_or(0);
    let flags = Flags { long_term: new.long_term, passcode: new.passcode.is_some(), direct: new.direct };
    let link_id = manifest.link_id();
    let info = api::ledger_info().await.map_err(|e| e.to_string())?;
    let message = Link {
        patient: keyring.keys.address(),
        link_id,
        content_hash: shl::content_hash(files.iter().map(|f| (f.content_type.as_str(), f.jwe.as_str()))),
        expires_at,
        flags: flags.bits(),
        // The server's relayer, the one address that may log the link's uses.
        host: info.relayer.into(),
    };
    let domain = Domain::access(info.chain_id, info.access.into());
    progress("Approve with your passkey (face, fingerprint or device PIN)…".into());
    let api::Approved { message, signature, approval } = approved_under(keyring, &domain, message).await?;
    progress("Signing the link and writing it on the ledger…".into());
    let kinds = match new.content {
        Content::Summary => None,
        Content::Kinds(k) => Some(k),
    };
    let secrets = LinkSecrets { label, manifest, key, kinds };
    let sealed = SealedLink::seal(&keyring.keys, link_id, &secrets, &mut OsRng);
    let body = api::LinkCreateBody { link: message, signature, approval, files, sealed, passcode: new.passcode };
    api::links_create(body).await.map_err(|e| e.to_string())?;
    Ok(shown(&secrets, (expires_at != 0).then_some(expires_at), flags))
}

/// The content encrypted with `key`, as the link's one file.
fn encrypted(records: &[Loaded], content: Content, key: &LinkKey) -> Result<Vec<api::LinkFileUpload>, String> {
    let fhir = content_of(records, content)?;
    let jwe = shl::encrypt_file(key, shl::FHIR_JSON, fhir.as_bytes(), &mut OsRng);
    Ok(vec![api::LinkFileUpload { content_type: shl::FHIR_JSON.into(), jwe }])
}

/// The expiries offered, from now: (label, seconds; `None` for no expiry).
pub const LIFETIMES: [(&str, Option<u64>); 6] = [
    ("1 hour", Some(3_600)),
    ("1 day", Some(86_400)),
    ("1 week", Some(7 * 86_400)),
    ("30 days", Some(30 * 86_400)),
    ("1 year", Some(365 * 86_400)),
    ("No expiry", None),
];

/// The label of an emergency card's link.
pub const CARD_LABEL: &str = "Emergency card";

/// An emergency card's link: the patient summary, long-term (updated as
/// the records change), no passcode, no end date.
pub fn emergency_card() -> NewLink {
    NewLink {
        content: Content::Summary,
        label: CARD_LABEL.into(),
        lifetime: None,
        passcode: None,
        long_term: true,
        direct: false,
    }
}

/// The live emergency card link among `links`, the newest if several, as
/// shown (its text and QR code).
pub fn find_card(keyring: &Keyring, links: &[api::LinkView]) -> Option<Made> {
    links
        .iter()
        .filter(|l| l.revoked_at.is_none() && l.expires_at.is_none() && l.flags == FLAG_LONG_TERM)
        .filter_map(|l| Some((l, l.sealed.open(&keyring.keys, l.link_id.0)?)))
        .filter(|(_, secrets)| secrets.label == CARD_LABEL)
        .max_by_key(|(l, _)| l.created_at)
        .map(|(l, secrets)| shown(&secrets, None, Flags::from_bits(l.flags).unwrap_or_default()))
}

/// The link behind this portal's viewer (`<origin>/view#shlink:/…`: a
/// phone's camera opens it in a browser) and its QR code, from its secrets.
pub fn shown(secrets: &LinkSecrets, expires: Option<u64>, flags: Flags) -> Made {
    let origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
    let link = shl::Link {
        url: format!("{origin}/shl/{}", secrets.manifest.to_text()),
        key: secrets.key.clone(),
        expires,
        flags,
        label: Some(secrets.label.clone()),
    }
    .with_viewer(&format!("{origin}{}", shl::VIEWER_PATH));
    let qr_svg = shl::qr_svg(&link, &format!("QR code of the link “{}”", secrets.label));
    Made { link, qr_svg }
}

/// Makes a long-term link's content again from the records read here
/// (the same kinds, or a new summary), encrypted with its own key, and
/// has the server serve it once the ledger recorded the change.
pub async fn update(
    keyring: &Keyring,
    records: &[Loaded],
    link: &api::LinkView,
    secrets: &LinkSecrets,
) -> Result<(), String> {
    let content = secrets.kinds.map_or(Content::Summary, Content::Kinds);
    let files = encrypted(records, content, &secrets.key)?;
    let message = LinkUpdate {
        patient: keyring.keys.address(),
        link_id: link.link_id.0,
        content_hash: shl::content_hash(files.iter().map(|f| (f.content_type.as_str(), f.jwe.as_str()))),
        expires_at: link.expires_at.unwrap_or(0),
        nonce: U256::from(link.serial),
    };
    let api::Approved { message, signature, approval } = approved(keyring, message).await?;
    api::links_update(api::LinkUpdateBody { message, signature, approval, files }).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Changes when a link ends (`lifetime` from now; `None`: never), its
/// content unchanged: approved with the passkey, signed, written on the
/// ledger; the server enforces the new end from then on. (The `exp` inside
/// the link as first given keeps its old value: receivers treat it as a
/// hint, and the host answers by the ledger's.)
pub async fn change_expiry(keyring: &Keyring, link: &api::LinkView, lifetime: Option<u64>) -> Result<(), String> {
    let now = (js_sys::Date::now() / 1000.0) as u64;
    let message = LinkUpdate {
        patient: keyring.keys.address(),
        link_id: link.link_id.0,
        content_hash: [0; 32],
        expires_at: lifetime.map_or(0, |s| now + s),
        nonce: U256::from(link.serial),
    };
    let api::Approved { message, signature, approval } = approved(keyring, message).await?;
    let body = api::LinkUpdateBody { message, signature, approval, files: Vec::new() };
    api::links_update(body).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Stops link `link_id` at once: approved with the passkey, signed,
/// written on the ledger.
pub async fn stop(keyring: &Keyring, link_id: Hash32, serial: u32) -> Result<(), String> {
    let message = LinkRevoke { patient: keyring.keys.address(), link_id: link_id.0, nonce: U256::from(serial) };
    api::links_revoke(approved(keyring, message).await?).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// `message` (to the Access contract) approved with the passkey and
/// signed: what every change the patient makes to a link or an emergency
/// contact carries.
pub async fn approved<M: TypedMessage>(keyring: &Keyring, message: M) -> Result<api::Approved<M>, String> {
    approved_under(keyring, &access_domain().await?, message).await
}

pub async fn access_domain() -> Result<Domain, String> {
    let info = api::ledger_info().await.map_err(|e| e.to_string())?;
    Ok(Domain::access(info.chain_id, info.access.into()))
}
