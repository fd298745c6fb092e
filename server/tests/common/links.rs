//! SMART Health Links made as the portal's browser makes them: the files
//! encrypted with a fresh key, the link signed and approved with a passkey.

use chartkey_core::eip712::Link;
use chartkey_core::shl::{self, Flags, LinkKey, LinkSecrets, ManifestId, SealedLink};
use rand::rngs::OsRng;

use super::chain::Chain;
use super::records::approved;
use super::{Account, ApiError, Site, fns};

/// A link as its patient's browser keeps it: the secret of its URL and its key.
pub struct Made {
    pub manifest: ManifestId,
    pub key: LinkKey,
    pub view: fns::LinkView,
}

impl Made {
    pub fn url(&self, server: &Site) -> String {
        format!("{}/shl/{}", server.base, self.manifest.to_text())
    }
}

pub fn encrypt(key: &LinkKey, files: &[&[u8]]) -> Vec<fns::LinkFileUpload> {
    files
        .iter()
        .map(|plain| fns::LinkFileUpload {
            content_type: shl::FHIR_JSON.into(),
            jwe: shl::encrypt_file(key, shl::FHIR_JSON, plain, &mut OsRng),
        })
        .collect()
}

pub fn hash_of(files: &[fns::LinkFileUpload]) -> [u8; 32] {
    shl::content_hash(files.iter().map(|f| (f.content_type.as_str(), f.jwe.as_str())))
}

/// `patient` makes a link to `files` as the portal does, approved with
/// their passkey.
pub async fn make(
    server: &Site,
    patient: &mut Account,
    flags: Flags,
    expires_at: u64,
    passcode: Option<&str>,
    files: &[&[u8]],
) -> Result<Made, ApiError> {
    let (manifest, key) = (ManifestId::generate(&mut OsRng), LinkKey::generate(&mut OsRng));
    let uploads = encrypt(&key, files);
    let link = Link {
        patient: patient.keys.address(),
        link_id: manifest.link_id(),
        content_hash: hash_of(&uploads),
        expires_at,
        flags: flags.bits(),
        host: host(patient).await,
    };
    let secrets = LinkSecrets { label: "For Dr Rao".into(), manifest, key: key.clone(), kinds: None };
    let body = signed_create(server, patient, link, uploads, passcode, Some(&secrets)).await;
    let view = patient.client.api(fns::LinksCreate { body }).await?;
    Ok(Made { manifest, key, view })
}

/// A creation body for `link`, its `secrets` sealed to the patient (by
/// default as if made with a fresh manifest id and key: the server cannot
/// tell).
pub async fn signed_create(
    server: &Site,
    patient: &mut Account,
    link: Link,
    files: Vec<fns::LinkFileUpload>,
    passcode: Option<&str>,
    secrets: Option<&LinkSecrets>,
) -> fns::LinkCreateBody {
    let fresh = || LinkSecrets {
        label: "For Dr Rao".into(),
        manifest: ManifestId::generate(&mut OsRng),
        key: LinkKey::generate(&mut OsRng),
        kinds: None,
    };
    let sealed = SealedLink::seal(&patient.keys, link.link_id, secrets.unwrap_or(&fresh()), &mut OsRng);
    let domain = access_domain(server, patient).await;
    let fns::Approved { message: link, signature, approval } = approved(server, patient, &domain, link).await;
    fns::LinkCreateBody { link, signature, approval, files, sealed, passcode: passcode.map(str::to_owned) }
}

/// The server's relayer: the host a link names.
pub async fn host(account: &Account) -> ethers_core::types::Address {
    account.client.api(fns::LedgerInfo {}).await.unwrap().relayer.into()
}

pub async fn access_domain(server: &Site, account: &Account) -> chartkey_core::eip712::Domain {
    let chain = Chain::of(server, &account.client).await;
    chartkey_core::eip712::Domain::access(chain.chain_id, chain.access)
}
