//! Records and shares as the browser drives them: envelopes sealed on the
//! client, uploaded by name, anchored by a signed message, shared with a
//! passkey approval, opened with a signed access, and read back with the
//! browser's own checks.

use chartkey_core::AccountKeys;
use chartkey_core::eip712::{Access, Domain, Grant, LedgerMessage, TypedMessage};
use chartkey_core::envelope::{self, DataKey, RecordId};
use chartkey_core::fhir::{self, ImportedResource};
use chartkey_core::records::{self, AnchoredRecord};
use chartkey_core::value::{Hash32, Signature};
use ethers_core::types::U256;
use rand::rngs::OsRng;

use super::chain::Chain;
use super::{Account, ApiError, Client, Device, Site, fns, webauthn_json, webauthn_options};

pub const FLOYD: &str = include_str!("../../../fixtures/fhir/Floyd_Connelly_66843218-a9f9-4f16-8347-bdc2a0d14265.json");

pub struct Sealed {
    pub pack: Vec<u8>,
    pub records: Vec<fns::NewRecord>,
    pub anchored: Vec<AnchoredRecord>,
    pub keys: Vec<DataKey>,
    pub envelopes: Vec<Vec<u8>>,
}

/// Seals each resource as the browser does, wrapped to `owner`.
pub fn seal_all(owner: &AccountKeys, items: &[ImportedResource], amends: Option<RecordId>) -> Sealed {
    let mut out =
        Sealed { pack: Vec::new(), records: Vec::new(), anchored: Vec::new(), keys: Vec::new(), envelopes: Vec::new() };
    for item in items {
        let id = RecordId::generate(&mut OsRng);
        let key = DataKey::generate(&mut OsRng);
        let plaintext = fhir::entry_json(item.full_url.as_deref(), &item.json);
        let sealed = envelope::seal(&key, id, plaintext.as_bytes(), &mut OsRng);
        let hash = envelope::ciphertext_hash(&sealed);
        let wrapped = envelope::wrap_key(&key, id, owner.address(), &owner.encryption_public(), &mut OsRng).unwrap();
        records::pack_frame(&mut out.pack, &hash, &sealed);
        let category = item.category().code();
        out.records.push(fns::NewRecord {
            id,
            blob: Hash32(hash),
            category,
            amends,
            wrapped_key: wrapped,
            patient_wrapped_key: None,
            also: vec![],
        });
        out.anchored.push(AnchoredRecord { id, ciphertext_hash: hash, category, amends });
        out.keys.push(key);
        out.envelopes.push(sealed);
    }
    out
}

/// The first `n` resources of Floyd Connelly's bundle.
pub fn floyd(n: usize) -> Vec<ImportedResource> {
    fhir::split_import(FLOYD).unwrap().into_iter().take(n).collect()
}

pub async fn ledger_domain(client: &Client) -> Domain {
    let info = client.api(fns::LedgerInfo {}).await.expect("ledger/info");
    Domain::records(info.chain_id, info.records.into())
}

pub fn sign_anchor(domain: &Domain, keys: &AccountKeys, anchored: &[AnchoredRecord]) -> Signature {
    match records::anchor_message(keys.address(), keys.address(), anchored).unwrap() {
        LedgerMessage::Anchor(m) => domain.sign_typed(keys, &m),
        LedgerMessage::AnchorBatch(m) => domain.sign_typed(keys, &m),
        other => panic!("not an anchor: {other:?}"),
    }
}

pub async fn upload_pack(client: &Client, pack: Vec<u8>) -> (u16, serde_json::Value) {
    let res = client.http.post(format!("{}/api/blobs/pack", client.base)).body(pack).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// `PUT /api/blobs/{name}` with `body`.
pub async fn put_blob(client: &Client, name: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let res = client.http.put(format!("{}/api/blobs/{name}", client.base)).body(body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// The envelopes of `records`, as a pack whose frames are named by record id.
pub async fn fetch(client: &Client, records: &[RecordId]) -> (u16, Vec<u8>) {
    let res = client
        .http
        .post(format!("{}/api/envelopes", client.base))
        .json(&serde_json::json!({ "records": records }))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
}

/// One record's envelope.
pub async fn get_envelope(client: &Client, record: RecordId) -> (u16, Vec<u8>) {
    let res = client.http.get(format!("{}/api/envelopes/{}", client.base, record.to_hex())).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.bytes().await.unwrap().to_vec())
}

/// Sealed, uploaded and anchored: the `records/add` answer.
pub async fn add(account: &Account, domain: &Domain, sealed: &Sealed) -> Result<fns::RelayReceipt, ApiError> {
    let (status, body) = upload_pack(&account.client, sealed.pack.clone()).await;
    assert_eq!(status, 200, "{body:?}");
    let signature = sign_anchor(domain, &account.keys, &sealed.anchored);
    let body = fns::AddRecordsBody { records: sealed.records.clone(), signature, patient: None };
    account.client.api(fns::RecordsAdd { body }).await
}

/// The browser's read of a record of `patient`'s chart by `reader`: the
/// browser's own check against the author's signature and the ledger
/// (`RecordMeta::check`), then unwrap and open.
pub fn read_as(
    patient: &AccountKeys,
    reader: &AccountKeys,
    domain: &Domain,
    meta: &fns::RecordMeta,
    envelope_bytes: &[u8],
) -> Result<String, String> {
    meta.check(domain, patient.address(), envelope_bytes).map_err(|e| e.to_string())?;
    let wrapped = meta.wrapped_key.as_ref().ok_or("no key wrapped for the reader")?;
    let key = envelope::unwrap_key(wrapped, meta.id, reader.address(), reader.encryption_secret())
        .map_err(|e| e.to_string())?;
    let plaintext = envelope::open(&key, meta.id, envelope_bytes).map_err(|e| e.to_string())?;
    Ok(String::from_utf8(plaintext.to_vec()).unwrap())
}

/// The patient's own read, parsed as the chart shows it.
pub fn read(
    keys: &AccountKeys,
    domain: &Domain,
    meta: &fns::RecordMeta,
    envelope_bytes: &[u8],
) -> Result<ImportedResource, String> {
    let text = read_as(keys, keys, domain, meta, envelope_bytes)?;
    fhir::parse_entry(&text).map_err(|e| e.to_string())
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Waits until the wall clock is a full second past `unix` (an expiry
/// time), however long the steps before took: tests give a short-lived
/// share or credential a few seconds of margin to be set up on a loaded
/// machine and then wait only for what remains.
pub async fn sleep_past(unix: u64) {
    let target = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix + 1);
    if let Ok(left) = target.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(left + std::time::Duration::from_millis(100)).await;
    }
}

/// The next access nonce of `grantee` (the Records contract's `nonces`).
pub async fn access_nonce(chain: &Chain, grantee: &AccountKeys) -> U256 {
    let owner = chartkey_ledger::convert::to_alloy(grantee.address());
    let call = chartkey_ledger::abi::ChartkeyRecords::noncesCall { owner };
    let nonce = chain.rpc.view(chartkey_ledger::convert::to_alloy(chain.records), call).await;
    U256::from_little_endian(&nonce.to_le_bytes::<32>())
}

/// `grant`, signed by `signer`, with `keys` and `approval`, sent by
/// `client`'s session.
pub async fn share(
    client: &Client,
    domain: &Domain,
    signer: &AccountKeys,
    grant: &Grant,
    keys: Vec<fns::ShareKey>,
    approval: fns::Approval,
) -> Result<fns::RelayReceipt, ApiError> {
    let signature = domain.sign_typed(signer, grant);
    let body = fns::ShareBody { grant: grant.clone(), signature, keys, approval };
    client.api(fns::SharesGrant { body }).await
}

/// A passkey approval of `digest` by `device`, in a ceremony `client`'s
/// session starts.
pub async fn approve(portal: &Site, client: &Client, device: &mut Device, digest: [u8; 32]) -> fns::Approval {
    let start = client.api(fns::ApprovalsStart { digest: Hash32(digest) }).await.expect("approvals/start");
    let credential = device.assert(&portal.origin, webauthn_options(&start.options));
    fns::Approval { ceremony_id: start.ceremony_id, credential: webauthn_json(&credential) }
}

/// `message` as `account` sends it: signed under `domain`, and approved
/// with their passkey.
pub async fn approved<M: TypedMessage>(
    portal: &Site,
    account: &mut Account,
    domain: &Domain,
    message: M,
) -> fns::Approved<M> {
    let approval = approve(portal, &account.client, &mut account.device, domain.digest(&message)).await;
    fns::Approved { signature: domain.sign_typed(&account.keys, &message), message, approval }
}

/// `patient` shares `grant` (approved with their passkey), with `keys`.
pub async fn share_approved(
    portal: &Site,
    patient: &mut Account,
    grant: &Grant,
    keys: Vec<fns::ShareKey>,
) -> Result<fns::RelayReceipt, ApiError> {
    let domain = ledger_domain(&patient.client).await;
    let approval = approve(portal, &patient.client, &mut patient.device, domain.digest(grant)).await;
    share(&patient.client, &domain, &patient.keys, grant, keys, approval).await
}

/// `patient` shares everything with `grantee` for a day (their first
/// grant), with the keys of all of `sealed`'s records.
pub async fn share_all(
    portal: &Site,
    patient: &mut Account,
    grantee: &AccountKeys,
    sealed: &Sealed,
) -> Result<fns::RelayReceipt, ApiError> {
    let keys = sealed.keys.iter().zip(&sealed.anchored).map(|(key, a)| wrapped_for(key, a.id, grantee)).collect();
    share_approved(portal, patient, &everything(&patient.keys, grantee, 0), keys).await
}

/// Not an approval: for requests refused before it is looked at.
pub fn no_approval() -> fns::Approval {
    fns::Approval { ceremony_id: "none".into(), credential: webauthn_json(&serde_json::json!({})) }
}

pub fn access_body(domain: &Domain, signer: &AccountKeys, access: &Access) -> fns::OpenBody {
    fns::OpenBody { access: access.clone(), signature: domain.sign_typed(signer, access) }
}

/// `grantee`'s access to `record` of `patient`'s chart, with the
/// grantee's next nonce (unsigned).
pub async fn next_access(chain: &Chain, grantee: &AccountKeys, patient: &AccountKeys, record: RecordId) -> Access {
    let nonce = access_nonce(chain, grantee).await;
    Access { grantee: grantee.address(), patient: patient.address(), record_id: record.0, nonce }
}

/// `grantee` opens `record` of `patient`'s chart: a signed access, with
/// the grantee's next nonce.
pub async fn open(
    chain: &Chain,
    grantee: &Account,
    patient: &AccountKeys,
    record: RecordId,
) -> Result<fns::OpenedRecord, ApiError> {
    let domain = ledger_domain(&grantee.client).await;
    let access = next_access(chain, &grantee.keys, patient, record).await;
    grantee.client.api(fns::RecordsOpen { body: access_body(&domain, &grantee.keys, &access) }).await
}

/// `key` of record `id` wrapped for `to`, as a share's key entry.
pub fn wrapped_for(key: &DataKey, id: RecordId, to: &AccountKeys) -> fns::ShareKey {
    let wrapped_key = envelope::wrap_key(key, id, to.address(), &to.encryption_public(), &mut OsRng).unwrap();
    fns::ShareKey { record: id, wrapped_key }
}

/// `patient` stops sharing with `grantee` (approved with their passkey).
pub async fn stop_approved(
    portal: &Site,
    chain: &Chain,
    patient: &mut Account,
    grantee: &AccountKeys,
) -> Result<fns::RelayReceipt, ApiError> {
    let domain = ledger_domain(&patient.client).await;
    let message = chartkey_core::eip712::Revoke {
        patient: patient.keys.address(),
        grantee: grantee.address(),
        nonce: chain.consent_nonce(patient.keys.address(), grantee.address()).await.into(),
    };
    let body = approved(portal, patient, &domain, message).await;
    patient.client.api(fns::SharesStop { body }).await
}

/// A new record of `patient`'s, its key also wrapped for `readers`, sent
/// to `records/add` (the content uploaded first).
pub async fn add_shared(patient: &Account, readers: &[&AccountKeys]) -> (Sealed, Result<fns::RelayReceipt, ApiError>) {
    let domain = ledger_domain(&patient.client).await;
    let sealed = seal_all(&patient.keys, &floyd(1), None);
    let (status, body) = upload_pack(&patient.client, sealed.pack.clone()).await;
    assert_eq!(status, 200, "{body:?}");
    let id = sealed.anchored[0].id;
    let also = readers
        .iter()
        .map(|to| {
            let w = envelope::wrap_key(&sealed.keys[0], id, to.address(), &to.encryption_public(), &mut OsRng).unwrap();
            fns::ReaderKey { reader: to.address().into(), wrapped_key: w }
        })
        .collect();
    let record = fns::NewRecord { also, ..sealed.records[0].clone() };
    let signature = sign_anchor(&domain, &patient.keys, &sealed.anchored);
    let body = fns::AddRecordsBody { records: vec![record], signature, patient: None };
    let answer = patient.client.api(fns::RecordsAdd { body }).await;
    (sealed, answer)
}

/// A patient and a clinician verified by a named authority, on `portal`'s
/// ledger: the cast of every sharing test.
pub struct Parties {
    pub patient: Account,
    pub clinician: Account,
    pub authority: Account,
    pub chain: Chain,
    pub domain: Domain,
}

/// Signs up `patient` and `clinician` (and an authority for them), names
/// the authority with the administrator's key and has it verify the
/// clinician for a day.
pub async fn verified_parties(portal: &Site, patient: &str, clinician: &str) -> Parties {
    use chartkey_core::role::Role;
    let authority = super::sign_up(portal, &format!("Board of {clinician}"), Role::CredentialingAuthority).await;
    let patient = super::sign_up(portal, patient, Role::Patient).await;
    let clinician = super::sign_up(portal, clinician, Role::Clinician).await;
    let chain = Chain::of(portal, &patient.client).await;
    chain.set_authority(&portal.data_dir, authority.keys.address()).await;
    chain.verify_clinician(&authority, &clinician, "cardiology", now() + 86_400).await;
    let domain = ledger_domain(&patient.client).await;
    Parties { patient, clinician, authority, chain, domain }
}

/// A share of everything from `patient` to `grantee` for a day, read only.
pub fn everything(patient: &AccountKeys, grantee: &AccountKeys, nonce: u64) -> Grant {
    Grant {
        patient: patient.address(),
        grantee: grantee.address(),
        scope: chartkey_core::eip712::SCOPE_EVERYTHING,
        categories: 0,
        records: vec![],
        write: false,
        expires_at: now() + 86_400,
        nonce: nonce.into(),
    }
}
