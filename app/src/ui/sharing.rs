//! Sharing, as the pages use it: a patient shares records with a verified
//! clinician and stops sharing; a clinician opens a shared record (an
//! access the ledger records first) and writes a record back to the
//! patient's chart. The protocol and the cryptography live here, beside
//! `records.rs`; the pages under `pages/sharing/` only ask and show.

use std::sync::Arc;

use chartkey_core::eip712::{Domain, Grant, Revoke, TypedMessage};
use chartkey_core::envelope::{self, RecordId};
use chartkey_core::role::Role;
use chartkey_core::value::{self, Hash32};
use ethers_core::types::{Address, U256};
use rand_core::OsRng;

use crate::api::{self, ShareKey};
use crate::ui::records::{self, ReadState};
use crate::ui::session::Keyring;

/// A share the patient approved on the review step.
#[derive(Clone)]
pub struct NewShare {
    pub grantee: value::Address,
    /// The records it covers now (their keys are wrapped for the grantee).
    pub metas: Vec<api::RecordMeta>,
    pub scope: u8,
    pub categories: u32,
    pub records: Vec<RecordId>,
    pub write: bool,
    pub expires_at: u64,
}

/// Checks the clinician's signed directory entry, wraps each record's key
/// to their encryption key, asks for the passkey's approval, signs the
/// grant and has the server write it on the ledger. `progress` hears each
/// step in words.
pub async fn share(keyring: &Keyring, new: NewShare, progress: impl Fn(String)) -> Result<(), String> {
    let grantee: Address = new.grantee.into();
    let published = api::directory_lookup(new.grantee).await.map_err(|e| e.to_string())?;
    let entry = published
        .entry
        .verify_for(&grantee)
        .map_err(|e| format!("The clinician's published keys do not check out ({e}). Nothing was shared."))?;
    if entry.role != Role::Clinician {
        return Err("This account is not a clinician's. Nothing was shared.".into());
    }
    progress(format!("Handing over the keys to {} records…", new.metas.len()));
    let keys = wrap_for(keyring, &new.metas, grantee, &entry.encryption_key)?;
    let nonce = api::shares_nonce(new.grantee).await.map_err(|e| e.to_string())?;
    let grant = Grant {
        patient: keyring.keys.address(),
        grantee,
        scope: new.scope,
        categories: new.categories,
        records: new.records.iter().map(|r| r.0).collect(),
        write: new.write,
        expires_at: new.expires_at,
        nonce: U256::from(nonce),
    };
    let domain = records_domain().await?;
    progress("Approve with your passkey (face, fingerprint or device PIN)…".into());
    let api::Approved { message: grant, signature, approval } = approved(keyring, &domain, grant).await?;
    progress("Signing the share and writing it on the ledger…".into());
    api::shares_grant(api::ShareBody { grant, signature, keys, approval }).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Stops sharing with `grantee` at once: approved with the passkey, signed,
/// written on the ledger.
pub async fn stop(keyring: &Keyring, grantee: value::Address) -> Result<(), String> {
    let nonce = api::shares_nonce(grantee).await.map_err(|e| e.to_string())?;
    let message = Revoke { patient: keyring.keys.address(), grantee: grantee.into(), nonce: U256::from(nonce) };
    let body = approved(keyring, &records_domain().await?, message).await?;
    api::shares_stop(body).await.map(drop).map_err(|e| e.to_string())
}

/// `message` approved with the passkey and signed under `domain`: what
/// every change the patient makes to a share, a link or an emergency
/// contact carries.
pub async fn approved<M: TypedMessage>(
    keyring: &Keyring,
    domain: &Domain,
    message: M,
) -> Result<api::Approved<M>, String> {
    let approval = approve(domain.digest(&message)).await?;
    Ok(api::Approved { signature: domain.sign_typed(&keyring.keys, &message), message, approval })
}

/// A record opened from a shared chart (decrypted in memory only).
#[derive(Clone)]
pub struct OpenedShared {
    pub id: RecordId,
    pub opened: Arc<records::Opened>,
    pub access_block: u64,
    pub access_tx: Hash32,
}

/// Encrypts `resource` for this clinician and the patient (whose signed
/// directory entry is checked first), uploads it, signs its anchor with the
/// clinician as author and adds it to the patient's chart.
pub async fn write_back(keyring: &Keyring, patient: value::Address, resource: &str) -> Result<Option<u64>, String> {
    use chartkey_core::envelope::DataKey;
    use chartkey_core::records::{self as core_records, AnchoredRecord};
    let patient_address: Address = patient.into();
    let published = api::directory_lookup(patient).await.map_err(|e| e.to_string())?;
    let entry = published
        .entry
        .verify_for(&patient_address)
        .map_err(|e| format!("The patient's published keys do not check out ({e}). Nothing was added."))?;
    let item = chartkey_core::fhir::split_import(resource).map_err(|e| e.to_string())?.remove(0);
    let plaintext = chartkey_core::fhir::entry_json(item.full_url.as_deref(), &item.json);
    let (id, key) = (RecordId::generate(&mut OsRng), DataKey::generate(&mut OsRng));
    let sealed = envelope::seal(&key, id, plaintext.as_bytes(), &mut OsRng);
    let hash = envelope::ciphertext_hash(&sealed);
    let keys = &keyring.keys;
    let mine = envelope::wrap_key(&key, id, keys.address(), &keys.encryption_public(), &mut OsRng)
        .map_err(|e| e.to_string())?;
    let theirs =
        envelope::wrap_key(&key, id, patient_address, &entry.encryption_key, &mut OsRng).map_err(|e| e.to_string())?;
    records::upload_envelope(&hash, &sealed).await?;
    let category = item.category().code();
    let anchored = [AnchoredRecord { id, ciphertext_hash: hash, category, amends: None }];
    let message =
        core_records::anchor_message(keys.address(), patient_address, &anchored).map_err(|e| e.to_string())?;
    let signature = match &message {
        chartkey_core::eip712::LedgerMessage::Anchor(m) => records_domain().await?.sign_typed(keys, m),
        _ => return Err("One record is anchored alone.".into()),
    };
    let body = api::AddRecordsBody {
        records: vec![api::NewRecord {
            id,
            blob: Hash32(hash),
            category,
            amends: None,
            wrapped_key: mine,
            patient_wrapped_key: Some(theirs),
            also: Vec::new(),
        }],
        signature,
        patient: Some(patient),
    };
    let receipt = api::records_add(body).await.map_err(|e| e.to_string())?;
    Ok(receipt.block_number)
}

/// Signs the access, has the server record it on the ledger, fetches the
/// envelope, verifies it against the patient's anchor and the ledger, and
/// decrypts it with the key wrapped for this clinician.
pub async fn open(
    keyring: &Keyring,
    patient: value::Address,
    meta: api::SharedRecord,
    nonce: u64,
    progress: impl Fn(String),
) -> Result<OpenedShared, String> {
    let patient: Address = patient.into();
    let checker = records::Checker::for_chart(patient).await?;
    let access = chartkey_core::eip712::Access {
        grantee: keyring.keys.address(),
        patient,
        record_id: meta.id.0,
        nonce: U256::from(nonce),
    };
    let signature = checker.domain().sign_typed(&keyring.keys, &access);
    let answer = api::records_open(api::OpenBody { access, signature }).await.map_err(|e| e.to_string())?;
    if answer.record.id != meta.id {
        return Err("The server answered with another record than the one opened; nothing is shown.".into());
    }
    progress("Fetching, verifying and decrypting…".into());
    let bytes =
        crate::ui::http::send("GET", &format!("/api/envelopes/{}", meta.id), "application/octet-stream", &[], None)
            .await?;
    match records::read(keyring, &checker, &answer.record, &bytes) {
        ReadState::Open(o) => Ok(OpenedShared {
            id: meta.id,
            opened: Arc::from(o),
            access_block: answer.access_block,
            access_tx: answer.access_tx,
        }),
        ReadState::Tampered(why) => Err(format!("This record failed its checks and is not shown: {why}")),
        ReadState::Unreadable(why) => Err(why),
        ReadState::Pending => Err("This record is not on the ledger yet.".into()),
    }
}

/// Wraps the data key of each record to the grantee's encryption key.
fn wrap_for(
    keyring: &Keyring,
    metas: &[api::RecordMeta],
    grantee: Address,
    grantee_key: &[u8; 32],
) -> Result<Vec<ShareKey>, String> {
    let keys = &keyring.keys;
    metas
        .iter()
        .map(|m| {
            let wrapped = m.wrapped_key.as_ref().ok_or("A record's key is missing.")?;
            let key = envelope::unwrap_key(wrapped, m.id, keys.address(), keys.encryption_secret())
                .map_err(|e| e.to_string())?;
            let theirs = envelope::wrap_key(&key, m.id, grantee, grantee_key, &mut OsRng).map_err(|e| e.to_string())?;
            Ok(ShareKey { record: m.id, wrapped_key: theirs })
        })
        .collect()
}

/// Asks for the passkey (with user verification) to approve the message
/// whose EIP-712 digest is `digest`.
pub async fn approve(digest: [u8; 32]) -> Result<api::Approval, String> {
    let start = api::approvals_start(Hash32(digest)).await.map_err(|e| e.to_string())?;
    // The passkey signs the challenge: it must be this message's, so that
    // the assertion proves what was approved (and a server could not ask
    // for an approval of something else under this screen).
    let expected = chartkey_core::proof::approval_challenge(&digest, &start.nonce.0);
    let options: serde_json::Value =
        serde_json::from_str(start.options.get()).map_err(|_| "The server's approval request is malformed.")?;
    let challenge = options["publicKey"]["challenge"].as_str().unwrap_or_default();
    if base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, challenge).ok().as_deref()
        != Some(&expected[..])
    {
        return Err("The server asked to approve something other than this message. Nothing was approved.".into());
    }
    let asserted = crate::ui::webauthn::assert(&start.options).await?;
    Ok(api::Approval { ceremony_id: start.ceremony_id, credential: asserted.credential })
}

pub async fn records_domain() -> Result<Domain, String> {
    let info = api::ledger_info().await.map_err(|e| e.to_string())?;
    Ok(Domain::records(info.chain_id, info.records.into()))
}
