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
use common::chain::Chain;
use common::records::*;
use common::*;
use rand::rngs::OsRng;
use serde_json::{Value, json};

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

    let added = add(&patient, &domain, &sealed).await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    assert_eq!(added.body["mined"], true);
    // Uploading the same pack again is harmless.
    let (status, body) = upload_pack(&patient.client, sealed.pack.clone()).await;
    assert_eq!((status, body["new"].as_u64()), (200, Some(0)));

    let list = patient.client.call("records/list", json!({})).await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    let metas = list.body.as_array().unwrap();
    assert_eq!(metas.len(), 145);
    let roots: std::collections::HashSet<_> = metas.iter().map(|m| m["batch"]["root"].as_str().unwrap()).collect();
    assert_eq!(roots.len(), 1, "one batch anchor per import");
    assert!(metas.iter().all(|m| m["ledger"] == json!({"kind": "batch", "count": 145})));
    assert!(metas.iter().all(|m| m["anchor_block"] == added.body["block_number"]));

    let ids: Vec<RecordId> = metas.iter().map(|m| serde_json::from_value(m["id"].clone()).unwrap()).collect();
    let (status, pack) = fetch(&patient.client, &ids).await;
    assert_eq!(status, 200);
    let frames = records::parse_pack(&pack).unwrap();
    assert_eq!(frames.len(), 145);
    let mut read_back = Vec::new();
    for (meta, (name, bytes)) in metas.iter().zip(frames) {
        assert_eq!(json!(RecordId(name)), meta["id"], "frames are named by record id, in the order asked");
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
    let theirs = other.client.call("records/list", json!({})).await;
    assert_eq!(theirs.body, json!([]));
    assert_eq!(fetch(&other.client, &ids[..1]).await.0, 404);
    assert_eq!(get_envelope(&other.client, ids[0]).await.0, 404);
    assert_eq!(get_envelope(&patient.client, ids[0]).await.0, 200);

    // Nothing readable on the server's disk: database, blobs, anything.
    let tmp = server.stop_keeping_data().await;
    let files = files_under(tmp.path());
    assert!(files.iter().any(|f| f.to_string_lossy().contains("blobs")));
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
    let first = add(&patient, &domain, &sealed).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let original_id = sealed.anchored[0].id;

    let fixed = fhir::split_import(r#"{"resourceType":"Condition","id":"c1","code":{"text":"Mild asthma"}}"#).unwrap();
    let correction = seal_all(&patient.keys, &fixed, Some(original_id));
    let second = add(&patient, &domain, &correction).await;
    assert_eq!(second.status, 200, "{:?}", second.body);

    let list = patient.client.call("records/list", json!({})).await.body;
    let find = |id: RecordId| list.as_array().unwrap().iter().find(|m| m["id"] == json!(id)).unwrap().clone();
    let (old, new) = (find(original_id), find(correction.anchored[0].id));
    assert_eq!(old["amended_by"], json!([correction.anchored[0].id]));
    assert_eq!(new["amends"], json!(original_id));
    for meta in [&old, &new] {
        assert_eq!(meta["ledger"]["kind"], "record", "{meta}");
        assert!(meta["batch"].is_null());
        let (_, bytes) = fetch(&patient.client, &[serde_json::from_value(meta["id"].clone()).unwrap()]).await;
        let frames = records::parse_pack(&bytes).unwrap();
        read(&patient.keys, &domain, meta, frames[0].1).unwrap();
    }

    // A correction of a record that is not in the chart is refused.
    let stray = seal_all(&patient.keys, &fixed, Some(RecordId([9; 32])));
    let refused = add(&patient, &domain, &stray).await;
    assert_eq!(refused.status, 404, "{:?}", refused.body);
    server.stop().await;
}

#[tokio::test]
async fn a_flipped_byte_on_disk_is_detected_on_read() {
    let server = TestServer::start().await;
    let patient = sign_up(&server, "Tampered Patient", Role::Patient).await;
    let domain = ledger_domain(&patient.client).await;
    let items = fhir::split_import(FLOYD).unwrap();
    let sealed = seal_all(&patient.keys, &items[..3], None);
    assert_eq!(add(&patient, &domain, &sealed).await.status, 200);
    let list = patient.client.call("records/list", json!({})).await.body;
    let meta = list[0].clone();
    let name = meta["blob"].as_str().unwrap().trim_start_matches("0x");
    let path = server.data_dir.join("blobs").join(&name[..2]).join(name);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let (_, pack) = fetch(&patient.client, &[serde_json::from_value(meta["id"].clone()).unwrap()]).await;
    let frames = records::parse_pack(&pack).unwrap();
    let error = read(&patient.keys, &domain, &meta, frames[0].1).unwrap_err();
    assert!(error.contains("altered"), "{error}");

    // A server that lies about a record (another category, a correction
    // link, another author) and about the ledger to match is caught by the
    // author's signature.
    let other = list[1].clone();
    let (_, pack) = fetch(&patient.client, &[serde_json::from_value(other["id"].clone()).unwrap()]).await;
    let envelope = records::parse_pack(&pack).unwrap()[0].1.to_vec();
    read(&patient.keys, &domain, &other, &envelope).expect("the honest answer reads");
    let mut relabelled = other.clone();
    relabelled["category"] = json!((other["category"].as_u64().unwrap() + 1) % 11);
    assert!(read(&patient.keys, &domain, &relabelled, &envelope).unwrap_err().contains("proof"));
    let mut single = other.clone();
    single["batch"] = Value::Null;
    single["ledger"] = json!({"kind": "record", "ciphertext_hash": other["blob"], "category": other["category"], "author": other["author"]});
    assert!(read(&patient.keys, &domain, &single, &envelope).unwrap_err().contains("signature"));
    let mut forged = other.clone();
    forged["author"] = json!(format!("{:#x}", ethers_core::types::Address::repeat_byte(7)));
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
    let blob_dir = server.data_dir.join("blobs");
    let stored = || files_under(&blob_dir).len();

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
    assert_eq!(stored(), 0, "nothing stored: {:?}", files_under(&blob_dir));

    // Records whose content was never uploaded.
    let items = fhir::split_import(r#"{"resourceType":"Observation","code":{"text":"x"}}"#).unwrap();
    let sealed = seal_all(&patient.keys, &items, None);
    let signature = sign_anchor(&domain, &patient.keys, &sealed.anchored);
    let missing = patient
        .client
        .call("records/add", json!({ "body": { "records": sealed.records, "signature": signature } }))
        .await;
    assert_eq!(missing.status, 400, "{:?}", missing.body);
    // Signed by someone else: the ledger refuses, nothing is stored.
    assert_eq!(upload_pack(&patient.client, sealed.pack.clone()).await.0, 200);
    let forged = sign_anchor(&domain, &other_keys(), &sealed.anchored);
    let refused =
        patient.client.call("records/add", json!({ "body": { "records": sealed.records, "signature": forged } })).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    // A signature over other records than those sent.
    let mut tampered = sealed.records.clone();
    tampered[0]["category"] = json!(5);
    let mismatch =
        patient.client.call("records/add", json!({ "body": { "records": tampered, "signature": signature } })).await;
    assert_eq!(mismatch.status, 422, "{:?}", mismatch.body);
    // Malformed fields.
    let mut bad = sealed.records.clone();
    bad[0]["wrapped_key"] = json!("AAAA");
    assert_eq!(
        patient.client.call("records/add", json!({ "body": { "records": bad, "signature": signature } })).await.status,
        400
    );
    let mut bad = sealed.records.clone();
    bad[0]["category"] = json!(40);
    assert_eq!(
        patient.client.call("records/add", json!({ "body": { "records": bad, "signature": signature } })).await.status,
        400
    );
    assert_eq!(
        patient.client.call("records/add", json!({ "body": { "records": [], "signature": signature } })).await.status,
        400
    );
    // Only patients have charts of their own; a clinician must name the
    // patient whose chart they write to (a_clinician_writes_back_…).
    let clinician = sign_up(&server, "Dr Writer", Role::Clinician).await;
    let theirs = seal_all(&clinician.keys, &items, None);
    assert_eq!(add(&clinician, &domain, &theirs).await.status, 400);
    let verifier = sign_up(&server, "An Insurer", Role::Verifier).await;
    let insurers = seal_all(&verifier.keys, &items, None);
    assert_eq!(add(&verifier, &domain, &insurers).await.status, 403);
    // Content someone else uploaded cannot be named in one's own records
    // (fingerprints are public, on the ledger).
    let curious = sign_up(&server, "Curious Patient", Role::Patient).await;
    let borrowed = sign_anchor(&domain, &curious.keys, &sealed.anchored);
    let answer = curious
        .client
        .call("records/add", json!({ "body": { "records": sealed.records, "signature": borrowed } }))
        .await;
    assert_eq!(answer.status, 400, "{:?}", answer.body);
    assert!(answer.body.to_string().contains("not been uploaded"), "{:?}", answer.body);
    assert_eq!(server.query_one("SELECT count(*) FROM records"), "Integer(0)");

    // And then the good one goes through, once.
    let ok = patient
        .client
        .call("records/add", json!({ "body": { "records": sealed.records, "signature": signature } }))
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let again = patient
        .client
        .call("records/add", json!({ "body": { "records": sealed.records, "signature": signature } }))
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(server.query_one("SELECT count(*) FROM records"), "Integer(1)");
    server.stop().await;
}

#[tokio::test]
async fn shared_batch_records_open_only_through_the_ledger_and_stop_at_once() {
    let server = TestServer::start().await;
    let mut patient = sign_up(&server, "Share Patient", Role::Patient).await;
    let mut clinician = sign_up(&server, "Dr Share", Role::Clinician).await;
    let unverified = sign_up(&server, "Dr Unverified", Role::Clinician).await;
    let authority = sign_up(&server, "Share Board", Role::CredentialingAuthority).await;
    let chain = Chain::of(&server, &patient.client).await;
    let domain = ledger_domain(&patient.client).await;
    chain.set_authority(&server.data_dir, authority.keys.address()).await;
    chain.verify_clinician(&authority, &clinician, "psychiatry", now() + 365 * 86_400).await;

    let resources = fhir::split_import(FLOYD).unwrap();
    let sealed = seal_all(&patient.keys, &resources, None);
    assert_eq!(add(&patient, &domain, &sealed).await.status, 200);
    let chosen: Vec<usize> = vec![3, 40, 100];
    let wraps = |to: &AccountKeys| -> Vec<Value> {
        chosen
            .iter()
            .map(|&i| {
                let id = sealed.anchored[i].id;
                let w =
                    envelope::wrap_key(&sealed.keys[i], id, to.address(), &to.encryption_public(), &mut OsRng).unwrap();
                json!({ "record": id, "wrapped_key": w.to_base64() })
            })
            .collect()
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
    let keys_of = |who: &str| server.query_one(&format!("SELECT count(*) FROM record_keys WHERE reader = '{who}'"));

    // Refused, and nothing kept: an unverified clinician; someone else's
    // session; a listed record without its key; a key out of scope; a
    // malformed key.
    let to_unverified = grant_to(&unverified.keys, 0);
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&to_unverified)).await;
    let refused =
        share(&patient.client, &domain, &patient.keys, &to_unverified, wraps(&unverified.keys), approval).await;
    assert_eq!(
        (refused.status, &refused.body["Refused"]["code"]),
        (422, &json!("UnverifiedGrantee")),
        "{:?}",
        refused.body
    );
    assert_eq!(keys_of(&format!("{:#x}", unverified.keys.address())), "Integer(0)");
    let grant = grant_to(&clinician.keys, 0);
    let wrong_session = share(&clinician.client, &domain, &patient.keys, &grant, wraps(&clinician.keys), no_approval());
    assert_eq!(wrong_session.await.status, 403);
    let missing = wraps(&clinician.keys)[..2].to_vec();
    assert_eq!(share(&patient.client, &domain, &patient.keys, &grant, missing, no_approval()).await.status, 400);
    let mut extra = wraps(&clinician.keys);
    let other = sealed.anchored[5].id;
    extra.push(json!({ "record": other, "wrapped_key": extra[0]["wrapped_key"] }));
    assert_eq!(share(&patient.client, &domain, &patient.keys, &grant, extra, no_approval()).await.status, 400);
    let mut malformed = wraps(&clinician.keys);
    malformed[0]["wrapped_key"] = json!("AAAA");
    assert_eq!(share(&patient.client, &domain, &patient.keys, &grant, malformed, no_approval()).await.status, 400);
    // The passkey approval: missing, for another grant, started by another
    // account, or used twice, and nothing is shared.
    assert_eq!(
        share(&patient.client, &domain, &patient.keys, &grant, wraps(&clinician.keys), no_approval()).await.status,
        400
    );
    let for_other = approve(&server, &patient.client, &mut patient.device, domain.digest(&to_unverified)).await;
    let mismatch = share(&patient.client, &domain, &patient.keys, &grant, wraps(&clinician.keys), for_other).await;
    assert_eq!(mismatch.status, 403, "{:?}", mismatch.body);
    let theirs = approve(&server, &clinician.client, &mut clinician.device, domain.digest(&grant)).await;
    let by_other = share(&patient.client, &domain, &patient.keys, &grant, wraps(&clinician.keys), theirs).await;
    assert_eq!(by_other.status, 403, "{:?}", by_other.body);
    let clinician_reader = format!("{:#x}", clinician.keys.address());
    assert_eq!(keys_of(&clinician_reader), "Integer(0)");

    // Shared: three records of the imported batch, brought into the chart on
    // the ledger by their audit paths, then granted.
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&grant)).await;
    let shared = share(&patient.client, &domain, &patient.keys, &grant, wraps(&clinician.keys), approval.clone()).await;
    assert_eq!(shared.status, 200, "{:?}", shared.body);
    assert_eq!(shared.body["mined"], true);
    assert_eq!(keys_of(&clinician_reader), "Integer(3)");
    assert_eq!(server.query_one("SELECT serial FROM grants"), "Integer(1)");
    let reused = share(&patient.client, &domain, &patient.keys, &grant, wraps(&clinician.keys), approval).await;
    assert_eq!(reused.status, 400, "an approval is single use: {:?}", reused.body);

    let target = &sealed.anchored[chosen[0]];
    // Nothing is released before an access is on the ledger.
    assert_eq!(get_envelope(&clinician.client, target.id).await.0, 404);
    let access = Access {
        grantee: clinician.keys.address(),
        patient: patient.keys.address(),
        record_id: target.id.0,
        nonce: access_nonce(&chain, &clinician.keys).await,
    };
    // Forged (another key signed it), or sent from another session.
    let forged = clinician.client.call("records/open", access_body(&domain, &unverified.keys, &access)).await;
    assert_eq!((forged.status, &forged.body["Refused"]["code"]), (422, &json!("WrongSigner")), "{:?}", forged.body);
    let theirs = unverified.client.call("records/open", access_body(&domain, &clinician.keys, &access)).await;
    assert_eq!(theirs.status, 403);
    assert_eq!(server.query_one("SELECT count(*) FROM accesses"), "Integer(0)");

    // The patient's open page is told at once.
    let anonymous = server.client();
    let refused = anonymous.http.get(format!("{}/api/notices/stream", anonymous.base)).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let mut stream =
        patient.client.http.get(format!("{}/api/notices/stream", patient.client.base)).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let opened = clinician.client.call("records/open", access_body(&domain, &clinician.keys, &access)).await;
    assert_eq!(opened.status, 200, "{:?}", opened.body);
    let mut received = String::new();
    while !received.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), stream.chunk()).await;
        received.push_str(&String::from_utf8_lossy(&chunk.expect("a notice within 5 s").unwrap().unwrap()));
    }
    assert!(received.starts_with("event: notice\ndata: "), "{received}");
    let notice: Value = serde_json::from_str(received.lines().nth(1).unwrap().trim_start_matches("data: ")).unwrap();
    assert_eq!((&notice["kind"], &notice["actor_name"]), (&json!("access"), &json!("Dr Share")));
    assert_eq!((&notice["record"], &notice["tx"]), (&json!(target.id), &opened.body["access_tx"]));
    let inbox = patient.client.call("notices/list", json!({})).await;
    assert_eq!((&inbox.body["unread"], inbox.body["notices"].as_array().unwrap().len()), (&json!(1), 1));
    assert_eq!(clinician.client.call("notices/list", json!({})).await.body["unread"], 0);
    let read = patient.client.call("notices/read", json!({ "up_to": notice["id"] })).await;
    assert_eq!((&read.body["unread"], &read.body["notices"][0]["read"]), (&json!(0), &json!(true)));
    assert_eq!(server.query_one("SELECT count(*) FROM accesses"), "Integer(1)");
    let receipt = chain.rpc.result("eth_getTransactionReceipt", json!([opened.body["access_tx"]])).await;
    assert_eq!(receipt["status"], "0x1");
    let (status, bytes) = get_envelope(&clinician.client, target.id).await;
    assert_eq!(status, 200);
    let text = read_as(&patient.keys, &clinician.keys, &domain, &opened.body["record"], &bytes).unwrap();
    let resource = fhir::parse_entry(&text).unwrap();
    assert_eq!(resource.json, resources[chosen[0]].json);
    // Only that record's envelope was released.
    assert_eq!(get_envelope(&clinician.client, sealed.anchored[chosen[1]].id).await.0, 404);
    assert_eq!(get_envelope(&unverified.client, target.id).await.0, 404);
    assert_eq!(fetch(&clinician.client, &[target.id]).await.0, 404, "a grantee's reads go one open at a time");

    // A replayed request; a record outside the share.
    let replayed = clinician.client.call("records/open", access_body(&domain, &clinician.keys, &access)).await;
    assert_eq!(replayed.body["Refused"]["code"], "InvalidAccountNonce", "{:?}", replayed.body);
    let outside =
        Access { record_id: sealed.anchored[5].id.0, nonce: access_nonce(&chain, &clinician.keys).await, ..access };
    let refused = clinician.client.call("records/open", access_body(&domain, &clinician.keys, &outside)).await;
    assert_eq!(refused.status, 404, "{:?}", refused.body);

    // Both sides list the share; the patient sees the access.
    let given = patient.client.call("shares/list", json!({})).await;
    assert_eq!(given.status, 200, "{:?}", given.body);
    assert_eq!(given.body.as_array().unwrap().len(), 1, "{:?}", given.body);
    assert_eq!((&given.body[0]["state"], &given.body[0]["keys"]), (&json!("active"), &json!(3)));
    assert_eq!(given.body[0]["grantee"]["display_name"], "Dr Share");
    assert_eq!(given.body[0]["grantee"]["credential"]["status"], "verified");
    let held = clinician.client.call("shares/list", json!({})).await;
    assert_eq!(held.body[0]["patient_name"], "Share Patient");
    assert_eq!(held.body[0]["records"].as_array().unwrap().len(), 3);
    assert_eq!(unverified.client.call("shares/list", json!({})).await.body, json!([]));
    let viewed = patient.client.call("accesses/list", json!({})).await;
    assert_eq!(viewed.status, 200, "{:?}", viewed.body);
    assert_eq!(viewed.body.as_array().unwrap().len(), 1);
    assert_eq!(viewed.body[0]["grantee_name"], "Dr Share");
    assert_eq!(viewed.body[0]["record"], json!(target.id));
    assert_eq!(viewed.body[0]["tx"], opened.body["access_tx"]);
    assert_eq!(unverified.client.call("accesses/list", json!({})).await.body, json!([]));
    let patient_address = json!({ "patient": format!("{:#x}", patient.keys.address()) });
    let shared_chart = clinician.client.call("shares/chart", patient_address.clone()).await;
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
    assert_eq!(unverified.client.call("shares/chart", patient_address.clone()).await.status, 404);
    assert_eq!(patient.client.call("shares/chart", patient_address.clone()).await.status, 403);

    // Stop sharing: only the patient, only a share that exists. The next
    // open is refused, saying why, and the envelope opened a moment ago is
    // no longer released.
    let nonce = chain.consent_nonce(patient.keys.address(), clinician.keys.address()).await;
    let asked =
        patient.client.call("shares/nonce", json!({ "grantee": format!("{:#x}", clinician.keys.address()) })).await;
    assert_eq!(asked.body, json!(nonce), "the portal reads the same nonce");
    let revoke = |grantee: &AccountKeys, nonce: u64| Revoke {
        patient: patient.keys.address(),
        grantee: grantee.address(),
        nonce: nonce.into(),
    };
    let stop = |signer: &AccountKeys, m: Revoke, approval: Value| {
        let signature = format!("0x{}", hex::encode(domain.sign(signer, &m)));
        json!({ "body": { "message": m, "signature": signature, "approval": approval } })
    };
    let by_clinician = stop(&patient.keys, revoke(&clinician.keys, nonce), no_approval());
    assert_eq!(clinician.client.call("shares/stop", by_clinician).await.status, 403);
    let never = stop(&patient.keys, revoke(&unverified.keys, 0), no_approval());
    assert_eq!(patient.client.call("shares/stop", never).await.status, 404);
    let unapproved = stop(&patient.keys, revoke(&clinician.keys, nonce), no_approval());
    assert_eq!(patient.client.call("shares/stop", unapproved).await.status, 400);
    let forged_stop = revoke(&clinician.keys, nonce);
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&forged_stop)).await;
    let forged = patient.client.call("shares/stop", stop(&unverified.keys, forged_stop, approval)).await;
    assert_eq!(forged.body["Refused"]["code"], "WrongSigner", "{:?}", forged.body);
    let stop_message = revoke(&clinician.keys, nonce);
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&stop_message)).await;
    let stopped = patient.client.call("shares/stop", stop(&patient.keys, stop_message, approval)).await;
    assert_eq!(stopped.status, 200, "{:?}", stopped.body);
    assert_eq!(stopped.body["mined"], true);
    assert_eq!(patient.client.call("shares/list", json!({})).await.body[0]["state"], "stopped");
    let ended = clinician.client.call("shares/chart", patient_address.clone()).await;
    assert_eq!((&ended.body["share"]["state"], &ended.body["records"]), (&json!("stopped"), &json!([])));
    let again = Access { nonce: access_nonce(&chain, &clinician.keys).await, ..access };
    let stopped = clinician.client.call("records/open", access_body(&domain, &clinician.keys, &again)).await;
    assert_eq!((stopped.status, &stopped.body["Refused"]["code"]), (422, &json!("GrantRevoked")), "{:?}", stopped.body);
    assert!(stopped.body["Refused"]["message"].as_str().unwrap().contains("stopped sharing"));
    assert_eq!(get_envelope(&clinician.client, target.id).await.0, 404);
    assert_eq!(server.query_one("SELECT count(*) FROM accesses"), "Integer(1)");

    // Shared again, then the clinician's credential is revoked: the share
    // shows it, and opens are refused saying why.
    let nonce = chain.consent_nonce(patient.keys.address(), clinician.keys.address()).await;
    let renewal = grant_to(&clinician.keys, nonce);
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&renewal)).await;
    let renewed = share(&patient.client, &domain, &patient.keys, &renewal, wraps(&clinician.keys), approval).await;
    assert_eq!(renewed.status, 200, "{:?}", renewed.body);
    assert_eq!(patient.client.call("shares/list", json!({})).await.body[0]["state"], "active");
    chain.revoke_credential(&authority, &clinician).await;
    assert_eq!(patient.client.call("shares/list", json!({})).await.body[0]["state"], "credential_lapsed");
    let lapsed = Access { nonce: access_nonce(&chain, &clinician.keys).await, ..access };
    let refused = clinician.client.call("records/open", access_body(&domain, &clinician.keys, &lapsed)).await;
    assert_eq!(refused.body["Refused"]["code"], "CredentialInvalid", "{:?}", refused.body);
    assert!(refused.body["Refused"]["message"].as_str().unwrap().contains("credential"));
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
    let mut patient = sign_up(&server, "Write Patient", Role::Patient).await;
    let clinician = sign_up(&server, "Dr Writer", Role::Clinician).await;
    let stranger = sign_up(&server, "Other Patient", Role::Patient).await;
    let authority = sign_up(&server, "Write Board", Role::CredentialingAuthority).await;
    let chain = Chain::of(&server, &patient.client).await;
    let domain = ledger_domain(&patient.client).await;
    chain.set_authority(&server.data_dir, authority.keys.address()).await;
    chain.verify_clinician(&authority, &clinician, "general practice", now() + 365 * 86_400).await;

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
            LedgerMessage::Anchor(m) => format!("0x{}", hex::encode(domain.sign(&clinician.keys, &m))),
            other => panic!("not one anchor: {other:?}"),
        };
    let write_back = |to: &AccountKeys, patient_key: Option<String>| {
        let mut record = sealed.records[0].clone();
        record["patient_wrapped_key"] = json!(patient_key);
        json!({ "body": { "records": [record], "signature": sign_for(to), "patient": format!("{:#x}", to.address()) } })
    };

    // Nothing shared yet, or shared with someone else.
    let unshared = clinician.client.call("records/add", write_back(&patient.keys, Some(for_patient.to_base64()))).await;
    assert_eq!(unshared.status, 404, "{:?}", unshared.body);

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
    assert_eq!(share(&patient.client, &domain, &patient.keys, &read_only, vec![], approval).await.status, 200);
    let refused = clinician.client.call("records/add", write_back(&patient.keys, Some(for_patient.to_base64()))).await;
    assert_eq!(refused.body["Refused"]["code"], "NotAuthorisedAuthor", "{:?}", refused.body);
    assert_eq!(server.query_one(&format!("SELECT count(*) FROM records WHERE id = '{}'", id.to_hex())), "Integer(0)");

    // Read+write: anchored with the clinician as author.
    let read_write = Grant { write: true, nonce: 1.into(), ..read_only };
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&read_write)).await;
    assert_eq!(share(&patient.client, &domain, &patient.keys, &read_write, vec![], approval).await.status, 200);
    let missing_key = clinician.client.call("records/add", write_back(&patient.keys, None)).await;
    assert_eq!(missing_key.status, 400, "{:?}", missing_key.body);
    let elsewhere =
        clinician.client.call("records/add", write_back(&stranger.keys, Some(for_patient.to_base64()))).await;
    assert_eq!(elsewhere.status, 404, "{:?}", elsewhere.body);
    let mut own = sealed.records[0].clone();
    own["patient_wrapped_key"] = json!(for_patient.to_base64());
    let by_patient = patient
        .client
        .call("records/add", json!({ "body": { "records": [own], "signature": sign_for(&patient.keys) } }))
        .await;
    assert_eq!(by_patient.status, 400, "a patient's own record carries no second key: {:?}", by_patient.body);
    let written = clinician.client.call("records/add", write_back(&patient.keys, Some(for_patient.to_base64()))).await;
    assert_eq!(written.status, 200, "{:?}", written.body);
    assert_eq!(written.body["mined"], true);

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
    let listed = patient.client.call("records/list", json!({})).await;
    let meta = listed.body.as_array().unwrap().iter().find(|m| m["id"] == json!(id)).unwrap().clone();
    assert_eq!(meta["author_name"], "Dr Writer");
    assert_eq!(meta["author"].as_str().unwrap().to_lowercase(), format!("{:#x}", clinician.keys.address()));
    let (status, bytes) = get_envelope(&patient.client, id).await;
    assert_eq!(status, 200);
    let resource = read(&patient.keys, &domain, &meta, &bytes).unwrap();
    assert!(resource.json.contains("sleeping better"));

    // The patient is told.
    let inbox = patient.client.call("notices/list", json!({})).await;
    assert_eq!(inbox.body["notices"][0]["kind"], "write_back", "{:?}", inbox.body);
    assert_eq!(inbox.body["notices"][0]["actor_name"], "Dr Writer");

    // Its author reads it as any grantee does: through a logged open, while
    // the share holds, not because they wrote it.
    assert_eq!(get_envelope(&clinician.client, id).await.0, 404);
    assert_eq!(fetch(&clinician.client, &[id]).await.0, 404);
    let reopened = open(&chain, &clinician, &patient.keys, id).await;
    assert_eq!(reopened.status, 200, "{:?}", reopened.body);
    let (status, bytes) = get_envelope(&clinician.client, id).await;
    assert_eq!(status, 200);
    let text = read_as(&patient.keys, &clinician.keys, &domain, &reopened.body["record"], &bytes).unwrap();
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
        json!({ "reader": format!("{:#x}", to.address()), "wrapped_key": w.to_base64() })
    };
    let with_also = |also: Vec<Value>| {
        let mut record = added.records[0].clone();
        record["also"] = json!(also);
        json!({ "body": { "records": [record], "signature": sign_anchor(&domain, &patient.keys, &added.anchored) } })
    };
    let not_shared = patient.client.call("records/add", with_also(vec![wrap_for(&stranger.keys)])).await;
    assert_eq!(not_shared.status, 400, "{:?}", not_shared.body);
    let twice =
        patient.client.call("records/add", with_also(vec![wrap_for(&clinician.keys), wrap_for(&clinician.keys)])).await;
    assert_eq!(twice.status, 400, "{:?}", twice.body);
    let mut bad = wrap_for(&clinician.keys);
    bad["wrapped_key"] = json!("AAAA");
    assert_eq!(patient.client.call("records/add", with_also(vec![bad])).await.status, 400);
    let shared_later = patient.client.call("records/add", with_also(vec![wrap_for(&clinician.keys)])).await;
    assert_eq!(shared_later.status, 200, "{:?}", shared_later.body);
    let chart =
        clinician.client.call("shares/chart", json!({ "patient": format!("{:#x}", patient.keys.address()) })).await;
    let listed = chart.body["records"].as_array().unwrap();
    assert!(listed.iter().any(|m| m["id"] == json!(new_id)), "{listed:?}");
    let chain_nonce = access_nonce(&chain, &clinician.keys).await;
    let access = Access {
        grantee: clinician.keys.address(),
        patient: patient.keys.address(),
        record_id: new_id.0,
        nonce: chain_nonce,
    };
    let opened = clinician.client.call("records/open", access_body(&domain, &clinician.keys, &access)).await;
    assert_eq!(opened.status, 200, "{:?}", opened.body);
    server.stop().await;
}

/// A share's time runs out on the ledger's clock, or the clinician's
/// credential does: the open is refused, saying why, the lists say so, and
/// nothing is released.
#[tokio::test]
async fn an_expired_share_opens_nothing() {
    let server = TestServer::start().await;
    let mut patient = sign_up(&server, "Expiring Patient", Role::Patient).await;
    let clinician = sign_up(&server, "Dr Brief", Role::Clinician).await;
    let authority = sign_up(&server, "Brief Board", Role::CredentialingAuthority).await;
    let chain = Chain::of(&server, &patient.client).await;
    let domain = ledger_domain(&patient.client).await;
    chain.set_authority(&server.data_dir, authority.keys.address()).await;
    chain.verify_clinician(&authority, &clinician, "dermatology", now() + 365 * 86_400).await;
    let one = fhir::split_import(FLOYD).unwrap().into_iter().take(1).collect::<Vec<_>>();
    let sealed = seal_all(&patient.keys, &one, None);
    assert_eq!(add(&patient, &domain, &sealed).await.status, 200);
    let record = sealed.anchored[0].id;
    let wrapped = envelope::wrap_key(
        &sealed.keys[0],
        record,
        clinician.keys.address(),
        &clinician.keys.encryption_public(),
        &mut OsRng,
    )
    .unwrap();
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
    let keys = vec![json!({ "record": record, "wrapped_key": wrapped.to_base64() })];
    let shared = share(&patient.client, &domain, &patient.keys, &grant, keys, approval).await;
    assert_eq!(shared.status, 200, "{:?}", shared.body);
    assert_eq!(patient.client.call("shares/list", json!({})).await.body[0]["state"], "active");

    sleep_past(grant.expires_at).await;
    let access = Access {
        grantee: clinician.keys.address(),
        patient: patient.keys.address(),
        record_id: record.0,
        nonce: access_nonce(&chain, &clinician.keys).await,
    };
    let refused = clinician.client.call("records/open", access_body(&domain, &clinician.keys, &access)).await;
    assert_eq!((refused.status, &refused.body["Refused"]["code"]), (422, &json!("GrantExpired")), "{:?}", refused.body);
    assert!(refused.body["Refused"]["message"].as_str().unwrap().contains("has ended"));
    assert_eq!(get_envelope(&clinician.client, record).await.0, 404);
    assert_eq!(patient.client.call("shares/list", json!({})).await.body[0]["state"], "expired");
    let ended =
        clinician.client.call("shares/chart", json!({ "patient": format!("{:#x}", patient.keys.address()) })).await;
    assert_eq!((&ended.body["share"]["state"], &ended.body["records"]), (&json!("expired"), &json!([])));
    assert_eq!(server.query_one("SELECT count(*) FROM accesses"), "Integer(0)");

    // The clinician's credential runs out while a share is live: the share
    // shows "credential lapsed" and the open is refused, saying why.
    let short_lived = sign_up(&server, "Dr Lapsing Soon", Role::Clinician).await;
    let lapses_at = now() + 5;
    chain.verify_clinician(&authority, &short_lived, "dermatology", lapses_at).await;
    let wrapped = envelope::wrap_key(
        &sealed.keys[0],
        record,
        short_lived.keys.address(),
        &short_lived.keys.encryption_public(),
        &mut OsRng,
    )
    .unwrap();
    let week = Grant { grantee: short_lived.keys.address(), expires_at: now() + 7 * 86_400, ..grant };
    let approval = approve(&server, &patient.client, &mut patient.device, domain.digest(&week)).await;
    let keys = vec![json!({ "record": record, "wrapped_key": wrapped.to_base64() })];
    let shared = share(&patient.client, &domain, &patient.keys, &week, keys, approval).await;
    assert_eq!(shared.status, 200, "{:?}", shared.body);
    sleep_past(lapses_at).await;
    let listed = patient.client.call("shares/list", json!({})).await;
    let lapsed =
        listed.body.as_array().unwrap().iter().find(|s| s["grantee"]["display_name"] == "Dr Lapsing Soon").unwrap();
    assert_eq!(
        (&lapsed["state"], &lapsed["grantee"]["credential"]["status"]),
        (&json!("credential_lapsed"), &json!("expired"))
    );
    let access = Access {
        grantee: short_lived.keys.address(),
        patient: patient.keys.address(),
        record_id: record.0,
        nonce: access_nonce(&chain, &short_lived.keys).await,
    };
    let refused = short_lived.client.call("records/open", access_body(&domain, &short_lived.keys, &access)).await;
    assert_eq!(refused.body["Refused"]["code"], "CredentialInvalid", "{:?}", refused.body);
    assert_eq!(server.query_one("SELECT count(*) FROM accesses"), "Integer(0)");
    server.stop().await;
}
