//! Records through the portal's API, as the browser drives it: envelopes
//! sealed on the client, uploaded by name, anchored by a signed message,
//! listed with what the ledger holds, fetched, checked and opened; and
//! every way it can go wrong leaves nothing behind.

mod common;

use chartkey_core::AccountKeys;
use chartkey_core::eip712::{Access, Grant, LedgerMessage, Revoke, SCOPE_RECORDS};
use chartkey_core::envelope::{self, RecordId};
use chartkey_core::fhir;
use chartkey_core::records;
use chartkey_core::role::Role;
use common::records::*;
use common::*;
use fns::{CredentialStatus, LedgerAnchor, NoticeKind, ShareState};
use rand::rngs::OsRng;
use serde_json::{Value, json};

/// The contract's error name, when the ledger refused.
fn refusal_of<T>(answer: &Result<T, ApiError>) -> Option<(&str, &str)> {
    match answer {
        Err(ApiError::Refused { code, message }) => Some((code, message)),
        _ => None,
    }
}

fn code<T>(answer: &Result<T, ApiError>) -> Option<&str> {
    refusal_of(answer).map(|(code, _)| code)
}

fn bad_request<T>(answer: &Result<T, ApiError>) -> bool {
    matches!(answer, Err(ApiError::BadRequest(_)))
}

fn forbidden<T>(answer: &Result<T, ApiError>) -> bool {
    matches!(answer, Err(ApiError::Forbidden(_)))
}

fn not_found<T>(answer: &Result<T, ApiError>) -> bool {
    matches!(answer, Err(ApiError::NotFound(_)))
}

fn add_body(records: Vec<fns::NewRecord>, signature: chartkey_core::value::Signature) -> fns::RecordsAdd {
    fns::RecordsAdd { body: fns::AddRecordsBody { records, signature, patient: None } }
}

/// Strings from the Floyd Connelly bundle that must never reach the
/// server's disk in the clear: name, address, code display texts.
const DISTINCTIVE: &[&str] =
    &["Connelly", "LEOMINSTER", "HOSPITAL ROAD", "Osteoarthritis of hip", "Body Height", "Musculoskeletal care"];

#[tokio::test]
async fn a_bundle_import_is_one_batch_and_reads_back_exactly() {
    let server = TestServer::start().await;
    let patient = sign_up(&server, "Import Patient", Role::Patient).await;
    let domain = ledger_domain(&patient.client).await;
    let resources = fhir::split_import(FLOYD).unwrap();
    assert_eq!(resources.len(), 145);
    let sealed = seal_all(&patient.keys, &resources, None);

    let added = add(&patient, &domain, &sealed).await.unwrap();
    assert!(added.mined);
    // Uploading the same pack again is harmless.
    let (status, body) = upload_pack(&patient.client, sealed.pack.clone()).await;
    assert_eq!((status, body["new"].as_u64()), (200, Some(0)));

    let metas = patient.client.api(fns::RecordsList {}).await.unwrap();
    assert_eq!(metas.len(), 145);
    let roots: std::collections::HashSet<_> = metas.iter().map(|m| m.batch.as_ref().unwrap().root).collect();
    assert_eq!(roots.len(), 1, "one batch anchor per import");
    assert!(metas.iter().all(|m| m.ledger == LedgerAnchor::Batch { count: 145 }));
    assert!(metas.iter().all(|m| m.anchor_block == added.block_number));

    let ids: Vec<RecordId> = metas.iter().map(|m| m.id).collect();
    let (status, pack) = fetch(&patient.client, &ids).await;
    assert_eq!(status, 200);
    let frames = records::parse_pack(&pack).unwrap();
    assert_eq!(frames.len(), 145);
    let mut read_back = Vec::new();
    for (meta, (name, bytes)) in metas.iter().zip(frames) {
        assert_eq!(RecordId(name), meta.id, "frames are named by record id, in the order asked");
        read_back.push(read(&patient.keys, &domain, meta, bytes).unwrap());
    }
    // Every resource, byte for byte, with its fullUrl.
    let mut expected: Vec<_> = resources.iter().map(|r| (r.full_url.clone(), r.json.clone())).collect();
    let mut got: Vec<_> = read_back.iter().map(|r| (r.full_url.clone(), r.json.clone())).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);

    // Another patient sees none of it and cannot fetch it.
    let other = sign_up(&server, "Other Patient", Role::Patient).await;
    let theirs = other.client.api(fns::RecordsList {}).await.unwrap();
    assert!(theirs.is_empty(), "{theirs:?}");
    assert_eq!(fetch(&other.client, &ids[..1]).await.0, 404);
    assert_eq!(get_envelope(&other.client, ids[0]).await.0, 404);
    assert_eq!(get_envelope(&patient.client, ids[0]).await.0, 200);

    // Nothing readable on the server's disk: database, blobs, anything;
    // nor, when it keeps them there, in PostgreSQL or the S3 bucket.
    if engines::shared() {
        let dump = engines::database_dump(&server.data_dir).await;
        let blobs = engines::blob_contents(&server.data_dir).await;
        assert!(!blobs.is_empty() && dump.contains("blob_uploads"));
        for needle in DISTINCTIVE {
            assert!(!dump.contains(needle), "{needle:?} in the database");
            for (path, bytes) in &blobs {
                assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle:?} in {path}");
            }
        }
    }
    let tmp = server.stop_keeping_data().await;
    let files = files_under(tmp.path());
    assert!(engines::shared() || files.iter().any(|f| f.to_string_lossy().contains("blobs")));
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for needle in DISTINCTIVE {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle:?} in {}", file.display());
        }
    }
}

#[tokio::test]
async fn a_correction_links_both_records_and_both_are_anchored() {
    let server = TestServer::start().await;
    let patient = sign_up(&server, "Correcting Patient", Role::Patient).await;
    let domain = ledger_domain(&patient.client).await;
    let original = fhir::split_import(r#"{"resourceType":"Condition","id":"c1","code":{"text":"Asthma"}}"#).unwrap();
    let sealed = seal_all(&patient.keys, &original, None);
    add(&patient, &domain, &sealed).await.unwrap();
    let original_id = sealed.anchored[0].id;

    let fixed = fhir::split_import(r#"{"resourceType":"Condition","id":"c1","code":{"text":"Mild asthma"}}"#).unwrap();
    let correction = seal_all(&patient.keys, &fixed, Some(original_id));
    add(&patient, &domain, &correction).await.unwrap();

    let list = patient.client.api(fns::RecordsList {}).await.unwrap();
    let find = |id: RecordId| list.iter().find(|m| m.id == id).unwrap().clone();
    let (old, new) = (find(original_id), find(correction.anchored[0].id));
    assert_eq!(old.amended_by, [correction.anchored[0].id]);
    assert_eq!(new.amends, Some(original_id));
    for meta in [&old, &new] {
        assert!(matches!(meta.ledger, LedgerAnchor::Record { .. }), "{meta:?}");
        assert!(meta.batch.is_none());
        let (_, bytes) = fetch(&patient.client, &[meta.id]).await;
        let frames = records::parse_pack(&bytes).unwrap();
        read(&patient.keys, &domain, meta, frames[0].1).unwrap();
    }

    // A correction of a record that is not in the chart is refused.
    let stray = seal_all(&patient.keys, &fixed, Some(RecordId([9; 32])));
    let refused = add(&patient, &domain, &stray).await;
    assert!(not_found(&refused), "{refused:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_flipped_byte_on_disk_is_detected_on_read() {
    let server = TestServer::start().await;
    let patient = sign_up(&server, "Tampered Patient", Role::Patient).await;
    let domain = ledger_domain(&patient.client).await;
    let items = fhir::split_import(FLOYD).unwrap();
    let sealed = seal_all(&patient.keys, &items[..3], None);
    add(&patient, &domain, &sealed).await.unwrap();
    let list = patient.client.api(fns::RecordsList {}).await.unwrap();
    let meta = list[0].clone();
    let blob = meta.blob.to_string();
    engines::tamper_with_blob(&server.data_dir, blob.trim_start_matches("0x"), |bytes| bytes[100] ^= 1).await;
    let (_, pack) = fetch(&patient.client, &[meta.id]).await;
    let frames = records::parse_pack(&pack).unwrap();
    let error = read(&patient.keys, &domain, &meta, frames[0].1).unwrap_err();
    assert!(error.contains("altered"), "{error}");

    // A server that lies about a record (another category, a correction
    // link, another author) and about the ledger to match is caught by the
    // author's signature.
    let other = list[1].clone();
    let (_, pack) = fetch(&patient.client, &[other.id]).await;
    let envelope = records::parse_pack(&pack).unwrap()[0].1.to_vec();
    read(&patient.keys, &domain, &other, &envelope).expect("the honest answer reads");
    let mut relabelled = other.clone();
    relabelled.category = (other.category + 1) % 11;
    assert!(read(&patient.keys, &domain, &relabelled, &envelope).unwrap_err().contains("proof"));
    let mut single = other.clone();
    single.batch = None;
    single.ledger =
        LedgerAnchor::Record { ciphertext_hash: other.blob, category: other.category, author: other.author };
    assert!(read(&patient.keys, &domain, &single, &envelope).unwrap_err().contains("signature"));
    let mut forged = other.clone();
    forged.author = ethers_core::types::Address::repeat_byte(7).into();
    assert!(read(&patient.keys, &domain, &forged, &envelope).unwrap_err().contains("signature"));
    server.stop().await;
}

#[tokio::test]
async fn bad_uploads_and_bad_records_change_nothing() {
    let server = TestServer::start_with(|c| c.max_record_bytes = 10_000).await;
    let patient = sign_up(&server, "Careful Patient", Role::Patient).await;
    let domain = ledger_domain(&patient.client).await;
    let http = &patient.client.http;
    let base = &server.base;

    // A body whose hash does not match its name.
    let name = hex::encode(envelope::ciphertext_hash(b"the real bytes"));
    let res = http.put(format!("{base}/api/blobs/{name}")).body("other bytes").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 422);
    let text = res.text().await.unwrap();
    assert!(text.contains("do not match"), "{text}");
    // Over the limit: refused from Content-Length, before the body is read.
    let big = vec![0u8; 10_001];
    let big_name = hex::encode(envelope::ciphertext_hash(&big));
    let res = http.put(format!("{base}/api/blobs/{big_name}")).body(big.clone()).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 413);
    assert!(res.text().await.unwrap().contains("too large"));
    let mut pack = Vec::new();
    records::pack_frame(&mut pack, &envelope::ciphertext_hash(&big), &big);
    assert_eq!(upload_pack(&patient.client, pack).await.0, 413);
    // Interrupted mid-body.
    let partial = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"the real")),
        Err(std::io::Error::other("connection dropped")),
    ]);
    let res = http
        .put(format!("{base}/api/blobs/{name}"))
        .header("content-length", "14")
        .body(reqwest::Body::wrap_stream(partial))
        .send()
        .await;
    assert!(res.is_err() || res.unwrap().status().as_u16() == 400);
    // Malformed names and packs.
    assert_eq!(http.put(format!("{base}/api/blobs/not-a-hash")).body("x").send().await.unwrap().status().as_u16(), 400);
    assert_eq!(upload_pack(&patient.client, vec![1, 2, 3]).await.0, 400);
    // Not signed in; from another site.
    let anonymous = reqwest::Client::new();
    let good = hex::encode(envelope::ciphertext_hash(b"the real bytes"));
    assert_eq!(
        anonymous
            .put(format!("{base}/api/blobs/{good}"))
            .body("the real bytes")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let cross = http
        .put(format!("{base}/api/blobs/{good}"))
        .header("origin", "https://evil.example")
        .body("the real bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status().as_u16(), 403);
    let stored = server.stored_blobs().await;
    assert!(stored.is_empty(), "nothing stored: {stored:?}");

    // Records whose content was never uploaded.
    let items = fhir::split_import(r#"{"resourceType":"Observation","code":{"text":"x"}}"#).unwrap();
    let sealed = seal_all(&patient.keys, &items, None);
    let signature = sign_anchor(&domain, &patient.keys, &sealed.anchored);
    let missing = patient.client.api(add_body(sealed.records.clone(), signature)).await;
    assert!(bad_request(&missing), "{missing:?}");
    // Signed by someone else: the ledger refuses, nothing is stored.
    assert_eq!(upload_pack(&patient.client, sealed.pack.clone()).await.0, 200);
    let forged = sign_anchor(&domain, &other_keys(), &sealed.anchored);
    let refused = patient.client.api(add_body(sealed.records.clone(), forged)).await;
    assert!(code(&refused).is_some(), "{refused:?}");
    // A signature over other records than those sent.
    let mut tampered = sealed.records.clone();
    tampered[0].category = 5;
    let mismatch = patient.client.api(add_body(tampered, signature)).await;
    assert!(code(&mismatch).is_some(), "{mismatch:?}");
    // Malformed fields.
    // Raw: "AAAA" is no `WrappedKey`.
    let mut bad = serde_json::to_value(add_body(sealed.records.clone(), signature)).unwrap();
    bad["body"]["records"][0]["wrapped_key"] = json!("AAAA");
    assert_eq!(patient.client.call("records/add", bad).await.status, 400);
    let mut bad = sealed.records.clone();
    bad[0].category = 40;
    assert!(bad_request(&patient.client.api(add_body(bad, signature)).await));
    assert!(bad_request(&patient.client.api(add_body(vec![], signature)).await));
    // Only patients have charts of their own; a clinician must name the
    // patient whose chart they write to (a_clinician_writes_back_…).
    let clinician = sign_up(&server, "Dr Writer", Role::Clinician).await;
    let theirs = seal_all(&clinician.keys, &items, None);
    assert!(bad_request(&add(&clinician, &domain, &theirs).await));
    let verifier = sign_up(&server, "An Insurer", Role::Verifier).await;
    let insurers = seal_all(&verifier.keys, &items, None);
    assert!(forbidden(&add(&verifier, &domain, &insurers).await));
    // Content someone else uploaded cannot be named in one's own records
    // (fingerprints are public, on the ledger).
    let curious = sign_up(&server, "Curious Patient", Role::Patient).await;
    let borrowed = sign_anchor(&domain, &curious.keys, &sealed.anchored);
    let answer = curious.client.api(add_body(sealed.records.clone(), borrowed)).await;
    assert!(matches!(&answer, Err(ApiError::BadRequest(m)) if m.contains("not been uploaded")), "{answer:?}");
    assert_eq!(server.query_one("SELECT count(*) FROM records").await, "0");

    // And then the good one goes through, once.
    patient.client.api(add_body(sealed.records.clone(), signature)).await.unwrap();
    let again = patient.client.api(add_body(sealed.records.clone(), signature)).await;
    assert!(matches!(again, Err(ApiError::Conflict(_))), "{again:?}");
    assert_eq!(server.query_one("SELECT count(*) FROM records").await, "1");
    server.stop().await;
}

#[tokio::test]
async fn shared_batch_records_open_only_through_the_ledger_and_stop_at_once() {
    let server = TestServer::start().await;
    let Parties { mut patient, mut clinician, authority, chain, domain } =
        verified_parties(&server, "Share Patient", "Dr Share").await;
    let unverified = sign_up(&server, "Dr Unverified", Role::Clinician).await;

    let resources = fhir::split_import(FLOYD).unwrap();
    let sealed = seal_all(&patient.keys, &resources, None);
    add(&patient, &domain, &sealed).await.unwrap();
    let chosen: Vec<usize> = vec![3, 40, 100];
    let wraps = |to: &AccountKeys| -> Vec<fns::ShareKey> {
        chosen.iter().map(|&i| wrapped_for(&sealed.keys[i], sealed.anchored[i].id, to)).collect()
    };
    let grant_to = |to: &AccountKeys, nonce: u64| Grant {
        patient: patient.keys.address(),
        grantee: to.address(),
        scope: SCOPE_RECORDS,
        categories: 0,
        records: chosen.iter().map(|&i| sealed.anchored[i].id.0).collect(),
        write: false,
        expires_at: now() + 7 * 86_400,
        nonce: nonce.into(),
    };
    let keys_of =
        |who: String| server.query_one_owned(format!("SELECT count(*) FROM record_keys WHERE reader = '{who}'"));

    // Refused, and nothing kept: an unverified clinician; someone else's
    // session; a listed record without its key; a key out of scope; a
    // malformed key.
    let to_unverified = grant_to(&unverified.keys, 0);
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&to_unverified)).await;
    let refused =
        share(&patient.client, &domain, &patient.keys, &to_unverified, wraps(&unverified.keys), approval).await;
    assert_eq!(code(&refused), Some("UnverifiedGrantee"), "{refused:?}");
    assert_eq!(keys_of(format!("{:#x}", unverified.keys.address())).await, "0");
    let grant = grant_to(&clinician.keys, 0);
    let wrong_session = share(&clinician.client, &domain, &patient.keys, &grant, wraps(&clinician.keys), no_approval());
    assert!(forbidden(&wrong_session.await));
    let missing = wraps(&clinician.keys)[..2].to_vec();
    assert!(bad_request(&share(&patient.client, &domain, &patient.keys, &grant, missing, no_approval()).await));
    let mut extra = wraps(&clinician.keys);
    let other = sealed.anchored[5].id;
    extra.push(fns::ShareKey { record: other, wrapped_key: extra[0].wrapped_key.clone() });
    assert!(bad_request(&share(&patient.client, &domain, &patient.keys, &grant, extra, no_approval()).await));
    // Raw: "AAAA" is no `WrappedKey`.
    let mut malformed = serde_json::to_value(wraps(&clinician.keys)).unwrap();
    malformed[0]["wrapped_key"] = json!("AAAA");
    let body = json!({ "body": { "grant": grant, "signature": domain.sign_typed(&patient.keys, &grant),
        "keys": malformed, "approval": no_approval() } });
    assert_eq!(patient.client.call("shares/grant", body).await.status, 400);
    // The passkey approval: missing, for another grant, started by another
    // account, or used twice, and nothing is shared.
    assert!(bad_request(
        &share(&patient.client, &domain, &patient.keys, &grant, wraps(&clinician.keys), no_approval()).await
    ));
    let for_other = approve(&server, &patient.client, &mut patient.device, domain.digest(&to_unverified)).await;
    let mismatch = share(&patient.client, &domain, &patient.keys, &grant, wraps(&clinician.keys), for_other).await;
    assert!(forbidden(&mismatch), "{mismatch:?}");
    let theirs = approve(&server, &clinician.client, &mut clinician.device, domain.digest(&grant)).await;
    let by_other = share(&patient.client, &domain, &patient.keys, &grant, wraps(&clinician.keys), theirs).await;
    assert!(forbidden(&by_other), "{by_other:?}");
    let clinician_reader = format!("{:#x}", clinician.keys.address());
    assert_eq!(keys_of(clinician_reader.clone()).await, "0");

    // Shared: three records of the imported batch, brought into the chart on
    // the ledger by their audit paths, then granted.
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&grant)).await;
    let shared = share(&patient.client, &domain, &patient.keys, &grant, wraps(&clinician.keys), approval.clone()).await;
    assert!(shared.unwrap().mined);
    assert_eq!(keys_of(clinician_reader.clone()).await, "3");
    assert_eq!(server.query_one("SELECT serial FROM grants").await, "1");
    let reused = share(&patient.client, &domain, &patient.keys, &grant, wraps(&clinician.keys), approval).await;
    assert!(bad_request(&reused), "an approval is single use: {reused:?}");

    let target = &sealed.anchored[chosen[0]];
    // Nothing is released before an access is on the ledger.
    assert_eq!(get_envelope(&clinician.client, target.id).await.0, 404);
    let access = next_access(&chain, &clinician.keys, &patient.keys, target.id).await;
    // Forged (another key signed it), or sent from another session.
    let open_as =
        |signer: &AccountKeys, access: &Access| fns::RecordsOpen { body: access_body(&domain, signer, access) };
    let forged = clinician.client.api(open_as(&unverified.keys, &access)).await;
    assert_eq!(code(&forged), Some("WrongSigner"), "{forged:?}");
    let theirs = unverified.client.api(open_as(&clinician.keys, &access)).await;
    assert!(forbidden(&theirs), "{theirs:?}");
    assert_eq!(server.query_one("SELECT count(*) FROM accesses").await, "0");

    // The patient's open page is told at once.
    let anonymous = server.client();
    let refused = anonymous.http.get(format!("{}/api/notices/stream", anonymous.base)).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let mut stream =
        patient.client.http.get(format!("{}/api/notices/stream", patient.client.base)).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let opened = clinician.client.api(open_as(&clinician.keys, &access)).await.unwrap();
    let mut received = String::new();
    while !received.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), stream.chunk()).await;
        received.push_str(&String::from_utf8_lossy(&chunk.expect("a notice within 5 s").unwrap().unwrap()));
    }
    assert!(received.starts_with("event: notice\ndata: "), "{received}");
    let notice: Value = serde_json::from_str(received.lines().nth(1).unwrap().trim_start_matches("data: ")).unwrap();
    assert_eq!((&notice["kind"], &notice["actor_name"]), (&json!("access"), &json!("Dr Share")));
    assert_eq!((&notice["record"], &notice["tx"]), (&json!(target.id), &json!(opened.access_tx)));
    let inbox = patient.client.api(fns::NoticesList {}).await.unwrap();
    assert_eq!((inbox.unread, inbox.notices.len()), (1, 1));
    assert_eq!(clinician.client.api(fns::NoticesList {}).await.unwrap().unread, 0);
    let read = patient.client.api(fns::NoticesRead { up_to: notice["id"].as_i64().unwrap() }).await.unwrap();
    assert_eq!((read.unread, read.notices[0].read), (0, true));
    assert_eq!(server.query_one("SELECT count(*) FROM accesses").await, "1");
    let receipt = chain.rpc.result("eth_getTransactionReceipt", json!([opened.access_tx])).await;
    assert_eq!(receipt["status"], "0x1");
    let (status, bytes) = get_envelope(&clinician.client, target.id).await;
    assert_eq!(status, 200);
    let text = read_as(&patient.keys, &clinician.keys, &domain, &opened.record, &bytes).unwrap();
    let resource = fhir::parse_entry(&text).unwrap();
    assert_eq!(resource.json, resources[chosen[0]].json);
    // Only that record's envelope was released.
    assert_eq!(get_envelope(&clinician.client, sealed.anchored[chosen[1]].id).await.0, 404);
    assert_eq!(get_envelope(&unverified.client, target.id).await.0, 404);
    assert_eq!(fetch(&clinician.client, &[target.id]).await.0, 404, "a grantee's reads go one open at a time");

    // A replayed request; a record outside the share.
    let replayed = clinician.client.api(open_as(&clinician.keys, &access)).await;
    assert_eq!(code(&replayed), Some("InvalidAccountNonce"), "{replayed:?}");
    let outside =
        Access { record_id: sealed.anchored[5].id.0, nonce: access_nonce(&chain, &clinician.keys).await, ..access };
    let refused = clinician.client.api(open_as(&clinician.keys, &outside)).await;
    assert!(not_found(&refused), "{refused:?}");

    // Both sides list the share; the patient sees the access.
    let given = patient.client.api(fns::SharesList {}).await.unwrap();
    assert_eq!(given.len(), 1, "{given:?}");
    assert_eq!((given[0].state, given[0].keys), (ShareState::Active, 3));
    assert_eq!(given[0].grantee.display_name, "Dr Share");
    assert!(given[0].grantee.credential.is_verified(), "{:?}", given[0].grantee.credential);
    let held = clinician.client.api(fns::SharesList {}).await.unwrap();
    assert_eq!(held[0].patient_name, "Share Patient");
    assert_eq!(held[0].records.len(), 3);
    assert!(unverified.client.api(fns::SharesList {}).await.unwrap().is_empty());
    let viewed = patient.client.api(fns::AccessesList {}).await.unwrap();
    assert_eq!(viewed.len(), 1);
    assert_eq!(viewed[0].grantee_name, "Dr Share");
    assert_eq!(viewed[0].record, target.id);
    assert_eq!(viewed[0].tx, opened.access_tx);
    assert!(unverified.client.api(fns::AccessesList {}).await.unwrap().is_empty());
    let patient_address = json!({ "patient": format!("{:#x}", patient.keys.address()) });
    let chart_of = || fns::SharesChart { patient: patient.keys.address().into() };
    // Raw: the check on which fields a listed record carries reads the
    // answer as sent, with any field the typed `SharedRecord` would drop.
    let shared_chart = clinician.client.call("shares/chart", patient_address).await;
    assert_eq!(shared_chart.status, 200, "{:?}", shared_chart.body);
    assert_eq!(shared_chart.body["share"]["state"], "active");
    assert_eq!(shared_chart.body["records"].as_array().unwrap().len(), 3);
    // The listing says what is there, not how to read it: no wrapped key,
    // no content address (those come from records/open, once logged).
    for listed in shared_chart.body["records"].as_array().unwrap() {
        let fields: std::collections::BTreeSet<&str> = listed.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(fields, ["category", "created_at", "id"].into(), "{listed}");
    }
    assert_eq!(shared_chart.body["next_nonce"], json!(access_nonce(&chain, &clinician.keys).await.as_u64()));
    assert!(not_found(&unverified.client.api(chart_of()).await));
    assert!(forbidden(&patient.client.api(chart_of()).await));

    // Stop sharing: only the patient, only a share that exists. The next
    // open is refused, saying why, and the envelope opened a moment ago is
    // no longer released.
    let nonce = chain.consent_nonce(patient.keys.address(), clinician.keys.address()).await;
    let asked = patient.client.api(fns::SharesNonce { grantee: clinician.keys.address().into() }).await;
    assert_eq!(asked, Ok(nonce), "the portal reads the same nonce");
    let revoke = |grantee: &AccountKeys, nonce: u64| Revoke {
        patient: patient.keys.address(),
        grantee: grantee.address(),
        nonce: nonce.into(),
    };
    let stop = |signer: &AccountKeys, message: Revoke, approval: fns::Approval| {
        let signature = domain.sign_typed(signer, &message);
        fns::SharesStop { body: fns::StopBody { message, signature, approval } }
    };
    let by_clinician = stop(&patient.keys, revoke(&clinician.keys, nonce), no_approval());
    assert!(forbidden(&clinician.client.api(by_clinician).await));
    let never = stop(&patient.keys, revoke(&unverified.keys, 0), no_approval());
    assert!(not_found(&patient.client.api(never).await));
    let unapproved = stop(&patient.keys, revoke(&clinician.keys, nonce), no_approval());
    assert!(bad_request(&patient.client.api(unapproved).await));
    let forged_stop = revoke(&clinician.keys, nonce);
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&forged_stop)).await;
    let forged = patient.client.api(stop(&unverified.keys, forged_stop, approval)).await;
    assert_eq!(code(&forged), Some("WrongSigner"), "{forged:?}");
    let stop_message = revoke(&clinician.keys, nonce);
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&stop_message)).await;
    let stopped = patient.client.api(stop(&patient.keys, stop_message, approval)).await.unwrap();
    assert!(stopped.mined);
    assert_eq!(patient.client.api(fns::SharesList {}).await.unwrap()[0].state, ShareState::Stopped);
    let ended = clinician.client.api(chart_of()).await.unwrap();
    assert_eq!((ended.share.state, ended.records.is_empty()), (ShareState::Stopped, true));
    let again = Access { nonce: access_nonce(&chain, &clinician.keys).await, ..access };
    let stopped = clinician.client.api(open_as(&clinician.keys, &again)).await;
    assert_eq!(code(&stopped), Some("GrantRevoked"), "{stopped:?}");
    assert!(refusal_of(&stopped).unwrap().1.contains("stopped sharing"));
    assert_eq!(get_envelope(&clinician.client, target.id).await.0, 404);
    assert_eq!(server.query_one("SELECT count(*) FROM accesses").await, "1");

    // Shared again, then the clinician's credential is revoked: the share
    // shows it, and opens are refused saying why.
    let nonce = chain.consent_nonce(patient.keys.address(), clinician.keys.address()).await;
    let renewal = grant_to(&clinician.keys, nonce);
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&renewal)).await;
    share(&patient.client, &domain, &patient.keys, &renewal, wraps(&clinician.keys), approval).await.unwrap();
    assert_eq!(patient.client.api(fns::SharesList {}).await.unwrap()[0].state, ShareState::Active);
    chain.revoke_credential(&authority, &clinician).await;
    assert_eq!(patient.client.api(fns::SharesList {}).await.unwrap()[0].state, ShareState::CredentialLapsed);
    let lapsed = Access { nonce: access_nonce(&chain, &clinician.keys).await, ..access };
    let refusal = clinician.client.api(open_as(&clinician.keys, &lapsed)).await;
    assert_eq!(code(&refusal), Some("CredentialInvalid"), "{refusal:?}");
    assert!(refusal_of(&refusal).unwrap().1.contains("credential"));
    // Shutting down ends the open notice stream rather than waiting for it.
    server.stop().await;
    drop(stream);
}

/// A clinician's note under a read+write share: anchored with the
/// clinician as author, readable by the patient, and the patient is told.
/// Refused on a read-only share, to a patient who has not shared, and
/// without the patient's key.
#[tokio::test]
async fn a_clinician_writes_back_under_a_read_write_share_and_the_patient_reads_it() {
    let server = TestServer::start().await;
    let Parties { mut patient, clinician, chain, domain, .. } =
        verified_parties(&server, "Write Patient", "Dr Writer").await;
    let stranger = sign_up(&server, "Other Patient", Role::Patient).await;

    // The clinician's note, sealed in their browser for them and the patient.
    let note = fhir::split_import(
        r#"{"resourceType":"DocumentReference","status":"current","description":"Follow-up note: sleeping better.",
            "content":[{"attachment":{"contentType":"text/plain","data":"U2xlZXBpbmcgYmV0dGVyLg=="}}]}"#,
    )
    .unwrap();
    let sealed = seal_all(&clinician.keys, &note, None);
    let id = sealed.anchored[0].id;
    let for_patient =
        envelope::wrap_key(&sealed.keys[0], id, patient.keys.address(), &patient.keys.encryption_public(), &mut OsRng)
            .unwrap();
    let (status, body) = upload_pack(&clinician.client, sealed.pack.clone()).await;
    assert_eq!(status, 200, "{body:?}");
    let sign_for =
        |who: &AccountKeys| match records::anchor_message(clinician.keys.address(), who.address(), &sealed.anchored)
            .unwrap()
        {
            LedgerMessage::Anchor(m) => domain.sign_typed(&clinician.keys, &m),
            other => panic!("not one anchor: {other:?}"),
        };
    let write_back = |to: &AccountKeys, patient_key: Option<envelope::WrappedKey>| {
        let record = fns::NewRecord { patient_wrapped_key: patient_key, ..sealed.records[0].clone() };
        let body =
            fns::AddRecordsBody { records: vec![record], signature: sign_for(to), patient: Some(to.address().into()) };
        fns::RecordsAdd { body }
    };

    // Nothing shared yet, or shared with someone else.
    let unshared = clinician.client.api(write_back(&patient.keys, Some(for_patient.clone()))).await;
    assert!(not_found(&unshared), "{unshared:?}");

    // A read-only share: the ledger refuses the clinician as an author.
    let read_only = Grant {
        patient: patient.keys.address(),
        grantee: clinician.keys.address(),
        scope: chartkey_core::eip712::SCOPE_EVERYTHING,
        categories: 0,
        records: vec![],
        write: false,
        expires_at: now() + 86_400,
        nonce: 0.into(),
    };
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&read_only)).await;
    share(&patient.client, &domain, &patient.keys, &read_only, vec![], approval).await.unwrap();
    let refusal = clinician.client.api(write_back(&patient.keys, Some(for_patient.clone()))).await;
    assert_eq!(code(&refusal), Some("NotAuthorisedAuthor"), "{refusal:?}");
    assert_eq!(server.query_one(&format!("SELECT count(*) FROM records WHERE id = '{}'", id.to_hex())).await, "0");

    // Read+write: anchored with the clinician as author.
    let read_write = Grant { write: true, nonce: 1.into(), ..read_only };
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&read_write)).await;
    share(&patient.client, &domain, &patient.keys, &read_write, vec![], approval).await.unwrap();
    let missing_key = clinician.client.api(write_back(&patient.keys, None)).await;
    assert!(bad_request(&missing_key), "{missing_key:?}");
    let elsewhere = clinician.client.api(write_back(&stranger.keys, Some(for_patient.clone()))).await;
    assert!(not_found(&elsewhere), "{elsewhere:?}");
    let own = fns::NewRecord { patient_wrapped_key: Some(for_patient.clone()), ..sealed.records[0].clone() };
    let by_patient = patient.client.api(add_body(vec![own], sign_for(&patient.keys))).await;
    assert!(bad_request(&by_patient), "a patient's own record carries no second key: {by_patient:?}");
    let written = clinician.client.api(write_back(&patient.keys, Some(for_patient.clone()))).await.unwrap();
    assert!(written.mined);

    // The ledger names the clinician as the author.
    let to_alloy = chartkey_ledger::convert::to_alloy;
    let call = chartkey_ledger::abi::ChartkeyRecords::recordOfCall {
        patient: to_alloy(patient.keys.address()),
        recordId: id.0.into(),
    };
    let on_ledger = chain.rpc.view(to_alloy(chain.records), call).await;
    assert!(on_ledger.exists);
    assert_eq!(on_ledger.author, to_alloy(clinician.keys.address()), "author");

    // The patient's chart lists it, "added by Dr Writer", and it reads back.
    let listed = patient.client.api(fns::RecordsList {}).await.unwrap();
    let meta = listed.iter().find(|m| m.id == id).unwrap().clone();
    assert_eq!(meta.author_name, "Dr Writer");
    assert_eq!(meta.author.to_string(), format!("{:#x}", clinician.keys.address()));
    let (status, bytes) = get_envelope(&patient.client, id).await;
    assert_eq!(status, 200);
    let resource = read(&patient.keys, &domain, &meta, &bytes).unwrap();
    assert!(resource.json.contains("sleeping better"));

    // The patient is told.
    let inbox = patient.client.api(fns::NoticesList {}).await.unwrap();
    assert_eq!(inbox.notices[0].kind, NoticeKind::WriteBack, "{inbox:?}");
    assert_eq!(inbox.notices[0].actor_name, "Dr Writer");

    // Its author reads it as any grantee does: through a logged open, while
    // the share holds, not because they wrote it.
    assert_eq!(get_envelope(&clinician.client, id).await.0, 404);
    assert_eq!(fetch(&clinician.client, &[id]).await.0, 404);
    let reopened = open(&chain, &clinician, &patient.keys, id).await.unwrap();
    let (status, bytes) = get_envelope(&clinician.client, id).await;
    assert_eq!(status, 200);
    let text = read_as(&patient.keys, &clinician.keys, &domain, &reopened.record, &bytes).unwrap();
    assert!(text.contains("sleeping better"));

    // A record the patient adds later is shared too (an everything share):
    // its key comes wrapped for the clinician, and only for clinicians the
    // patient shares that kind of record with.
    let later = fhir::split_import(FLOYD).unwrap().into_iter().take(1).collect::<Vec<_>>();
    let added = seal_all(&patient.keys, &later, None);
    let (status, body) = upload_pack(&patient.client, added.pack.clone()).await;
    assert_eq!(status, 200, "{body:?}");
    let new_id = added.anchored[0].id;
    let wrap_for = |to: &AccountKeys| {
        let w = envelope::wrap_key(&added.keys[0], new_id, to.address(), &to.encryption_public(), &mut OsRng).unwrap();
        fns::ReaderKey { reader: to.address().into(), wrapped_key: w }
    };
    let with_also = |also: Vec<fns::ReaderKey>| {
        let record = fns::NewRecord { also, ..added.records[0].clone() };
        add_body(vec![record], sign_anchor(&domain, &patient.keys, &added.anchored))
    };
    let not_shared = patient.client.api(with_also(vec![wrap_for(&stranger.keys)])).await;
    assert!(bad_request(&not_shared), "{not_shared:?}");
    let twice = patient.client.api(with_also(vec![wrap_for(&clinician.keys), wrap_for(&clinician.keys)])).await;
    assert!(bad_request(&twice), "{twice:?}");
    // Raw: "AAAA" is no `WrappedKey`.
    let mut bad = serde_json::to_value(with_also(vec![wrap_for(&clinician.keys)])).unwrap();
    bad["body"]["records"][0]["also"][0]["wrapped_key"] = json!("AAAA");
    assert_eq!(patient.client.call("records/add", bad).await.status, 400);
    patient.client.api(with_also(vec![wrap_for(&clinician.keys)])).await.unwrap();
    let chart = clinician.client.api(fns::SharesChart { patient: patient.keys.address().into() }).await.unwrap();
    let listed = &chart.records;
    assert!(listed.iter().any(|m| m.id == new_id), "{listed:?}");
    open(&chain, &clinician, &patient.keys, new_id).await.unwrap();
    server.stop().await;
}

/// A share's time runs out on the ledger's clock, or the clinician's
/// credential does: the open is refused, saying why, the lists say so, and
/// nothing is released.
#[tokio::test]
async fn an_expired_share_opens_nothing() {
    let server = TestServer::start().await;
    let Parties { mut patient, clinician, authority, chain, domain } =
        verified_parties(&server, "Expiring Patient", "Dr Brief").await;
    let one = fhir::split_import(FLOYD).unwrap().into_iter().take(1).collect::<Vec<_>>();
    let sealed = seal_all(&patient.keys, &one, None);
    add(&patient, &domain, &sealed).await.unwrap();
    let record = sealed.anchored[0].id;
    let keys = vec![wrapped_for(&sealed.keys[0], record, &clinician.keys)];
    let grant = Grant {
        patient: patient.keys.address(),
        grantee: clinician.keys.address(),
        scope: SCOPE_RECORDS,
        categories: 0,
        records: vec![record.0],
        write: false,
        expires_at: now() + 5,
        nonce: 0.into(),
    };
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&grant)).await;
    share(&patient.client, &domain, &patient.keys, &grant, keys, approval).await.unwrap();
    assert_eq!(patient.client.api(fns::SharesList {}).await.unwrap()[0].state, ShareState::Active);

    sleep_past(grant.expires_at).await;
    let refusal = open(&chain, &clinician, &patient.keys, record).await;
    assert_eq!(code(&refusal), Some("GrantExpired"), "{refusal:?}");
    assert!(refusal_of(&refusal).unwrap().1.contains("has ended"));
    assert_eq!(get_envelope(&clinician.client, record).await.0, 404);
    assert_eq!(patient.client.api(fns::SharesList {}).await.unwrap()[0].state, ShareState::Expired);
    let ended = clinician.client.api(fns::SharesChart { patient: patient.keys.address().into() }).await.unwrap();
    assert_eq!((ended.share.state, ended.records.is_empty()), (ShareState::Expired, true));
    assert_eq!(server.query_one("SELECT count(*) FROM accesses").await, "0");

    // The clinician's credential runs out while a share is live: the share
    // shows "credential lapsed" and the open is refused, saying why.
    let short_lived = sign_up(&server, "Dr Lapsing Soon", Role::Clinician).await;
    let lapses_at = now() + 5;
    chain.verify_clinician(&authority, &short_lived, "dermatology", lapses_at).await;
    let keys = vec![wrapped_for(&sealed.keys[0], record, &short_lived.keys)];
    let week = Grant { grantee: short_lived.keys.address(), expires_at: now() + 7 * 86_400, ..grant };
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&week)).await;
    share(&patient.client, &domain, &patient.keys, &week, keys, approval).await.unwrap();
    sleep_past(lapses_at).await;
    let listed = patient.client.api(fns::SharesList {}).await.unwrap();
    let lapsed = listed.iter().find(|s| s.grantee.display_name == "Dr Lapsing Soon").unwrap();
    assert_eq!(lapsed.state, ShareState::CredentialLapsed);
    assert!(matches!(lapsed.grantee.credential, CredentialStatus::Expired { .. }), "{lapsed:?}");
    let refusal = open(&chain, &short_lived, &patient.keys, record).await;
    assert_eq!(code(&refusal), Some("CredentialInvalid"), "{refusal:?}");
    assert_eq!(server.query_one("SELECT count(*) FROM accesses").await, "0");
    server.stop().await;
}
