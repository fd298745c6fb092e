//! Who may take an envelope. Ciphertext fingerprints are public (they are
//! on the ledger), so knowing one must never be enough: an upload under an
//! existing name must carry the bytes, a record may not name content that
//! another chart already anchored, and every read is authorised per record
//! (the chart's patient, or a grantee whose access the ledger recorded a
//! moment ago), never per blob name.

mod common;

use chartkey_core::eip712::Grant;
use chartkey_core::envelope::RecordId;
use chartkey_core::role::Role;
use chartkey_core::value::Hash32;
use common::chain::Chain;
use common::records::*;
use common::*;
use serde_json::json;

/// Finding 1 of the security review: a sock-puppet patient sends an empty
/// body under a victim's ciphertext hash, anchors a record of its own with
/// that hash, and reads the victim's envelope without any logged access.
#[tokio::test]
async fn a_known_fingerprint_claims_nothing() {
    let server = TestServer::start().await;
    let victim = sign_up(&server, "Vera Victim", Role::Patient).await;
    let puppet = sign_up(&server, "Sock Puppet", Role::Patient).await;
    let domain = ledger_domain(&victim.client).await;
    let sealed = seal_all(&victim.keys, &floyd(1), None);
    add(&victim, &domain, &sealed).await.unwrap();
    let name = hex::encode(sealed.anchored[0].ciphertext_hash);
    let uploads_of = |account: &str| {
        server.query_one_owned(format!("SELECT count(*) FROM blob_uploads WHERE account_id = '{account}'"))
    };

    // An upload under the existing name needs the bytes that hash to it.
    for body in [Vec::new(), b"not the envelope".to_vec(), sealed.envelopes[0][..10].to_vec()] {
        let (status, answer) = put_blob(&puppet.client, &name, body).await;
        assert_eq!(status, 422, "{answer:?}");
    }
    assert_eq!(uploads_of(&puppet.account_id).await, "0", "a refused upload claims nothing");

    // Without an upload of its own, the puppet's record naming the
    // victim's content is refused.
    let mut stolen = seal_all(&puppet.keys, &floyd(1), None);
    stolen.records[0].blob = Hash32(sealed.anchored[0].ciphertext_hash);
    stolen.anchored[0].ciphertext_hash = sealed.anchored[0].ciphertext_hash;
    let signature = sign_anchor(&domain, &puppet.keys, &stolen.anchored);
    let body = fns::AddRecordsBody { records: stolen.records.clone(), signature, patient: None };
    let refused = puppet.client.api(fns::RecordsAdd { body: body.clone() }).await;
    assert!(matches!(refused, Err(ApiError::BadRequest(_))), "{refused:?}");

    // Someone who once held the bytes (a clinician who opened the record,
    // say) can upload them, but still cannot anchor them into a chart of
    // their own: content another chart anchored stays that chart's.
    let (status, answer) = put_blob(&puppet.client, &name, sealed.envelopes[0].clone()).await;
    assert_eq!((status, &answer["new"]), (200, &json!(false)), "{answer:?}");
    let refused = puppet.client.api(fns::RecordsAdd { body }).await;
    match &refused {
        Err(ApiError::Conflict(message)) => assert!(message.contains("another record"), "{refused:?}"),
        other => panic!("expected Conflict: {other:?}"),
    }
    assert_eq!(server.query_one(&format!("SELECT count(*) FROM records WHERE blob = '0x{name}'")).await, "1");

    // Reads go by record id: the puppet gets nothing of the victim's.
    let victims = sealed.anchored[0].id;
    assert_eq!(get_envelope(&puppet.client, victims).await.0, 404);
    assert_eq!(fetch(&puppet.client, &[victims]).await.0, 404);
    assert_eq!(get_envelope(&server.client(), victims).await.0, 401);
    let (status, bytes) = get_envelope(&victim.client, victims).await;
    assert_eq!((status, bytes), (200, sealed.envelopes[0].clone()));
    // No route reads by blob name any more.
    let by_name = puppet.client.http.get(format!("{}/api/blobs/{name}", server.base)).send().await.unwrap();
    assert_eq!(by_name.status().as_u16(), 405);
    server.stop().await;
}

/// Finding 2: a clinician's chart listing carries no key material; the
/// wrapped key comes with `records/open`, after the ledger recorded the
/// access, and the envelope only in the release window after it.
#[tokio::test]
async fn a_shared_chart_lists_records_without_keys() {
    let server = TestServer::start().await;
    let Parties { mut patient, clinician, chain, domain, .. } =
        verified_parties(&server, "Lena Listed", "Dr Lister").await;
    let sealed = seal_all(&patient.keys, &floyd(2), None);
    add(&patient, &domain, &sealed).await.unwrap();
    share_all(&server, &mut patient, &clinician.keys, &sealed).await.unwrap();

    // Raw: the check for key material reads the answer as sent, with any
    // field the typed `SharedChart` would drop.
    let chart =
        clinician.client.call("shares/chart", json!({ "patient": format!("{:#x}", patient.keys.address()) })).await;
    assert_eq!(chart.status, 200, "{:?}", chart.body);
    let text = chart.body.to_string();
    for (i, record) in sealed.records.iter().enumerate() {
        assert!(text.contains(&sealed.anchored[i].id.to_hex()), "the record is listed: {text}");
        assert!(!text.contains(&record.blob.to_string()), "no content address: {text}");
    }
    assert!(!text.contains("wrapped_key"), "no wrapped key before an access is logged: {text}");
    assert_eq!(server.query_one("SELECT count(*) FROM accesses").await, "0");

    let id: RecordId = sealed.anchored[0].id;
    assert_eq!(get_envelope(&clinician.client, id).await.0, 404);
    let opened = open(&chain, &clinician, &patient.keys, id).await.unwrap();
    assert!(opened.record.wrapped_key.is_some());
    let (status, bytes) = get_envelope(&clinician.client, id).await;
    assert_eq!(status, 200);
    read_as(&patient.keys, &clinician.keys, &domain, &opened.record, &bytes).unwrap();
    // The other record stays closed until it is opened too.
    assert_eq!(get_envelope(&clinician.client, sealed.anchored[1].id).await.0, 404);
    server.stop().await;
}

/// Finding 12: a record added later carries keys only for clinicians whose
/// share is live now, not for one whose newest share was stopped or ran out.
#[tokio::test]
async fn later_records_are_wrapped_only_for_live_shares() {
    let server = TestServer::start().await;
    let Parties { mut patient, clinician, chain, .. } = verified_parties(&server, "Later Patient", "Dr Later").await;
    let grant = everything(&patient.keys, &clinician.keys, 0);
    share_approved(&server, &mut patient, &grant, vec![]).await.unwrap();
    let (_, live) = add_shared(&patient, &[&clinician.keys]).await;
    live.unwrap();

    stop_approved(&server, &chain, &mut patient, &clinician.keys).await.unwrap();
    let reader = format!("{:#x}", clinician.keys.address());
    let keys_before = server.query_one(&format!("SELECT count(*) FROM record_keys WHERE reader = '{reader}'")).await;
    let (sealed, refused) = add_shared(&patient, &[&clinician.keys]).await;
    assert!(matches!(refused, Err(ApiError::BadRequest(_))), "{refused:?}");
    let id = sealed.anchored[0].id.to_hex();
    assert_eq!(server.query_one(&format!("SELECT count(*) FROM records WHERE id = '{id}'")).await, "0");
    assert_eq!(
        server.query_one(&format!("SELECT count(*) FROM record_keys WHERE reader = '{reader}'")).await,
        keys_before
    );

    // A share that has run out counts as ended too.
    let brief =
        Grant { expires_at: now() + 5, nonce: chain.consent_nonce(grant.patient, grant.grantee).await.into(), ..grant };
    share_approved(&server, &mut patient, &brief, vec![]).await.unwrap();
    sleep_past(brief.expires_at).await;
    let (_, expired) = add_shared(&patient, &[&clinician.keys]).await;
    assert!(matches!(expired, Err(ApiError::BadRequest(_))), "{expired:?}");
    // Without the clinician's key, the record is added as usual.
    let (_, alone) = add_shared(&patient, &[]).await;
    alone.unwrap();
    server.stop().await;
}

/// Finding 10: new records must carry the envelope's key commitment
/// (version 2); a version 1 envelope, which an author could craft to open
/// differently under two keys, is not anchored anew.
#[tokio::test]
async fn a_new_record_must_be_sealed_with_a_key_commitment() {
    let server = TestServer::start().await;
    let patient = sign_up(&server, "Old Format", Role::Patient).await;
    let domain = ledger_domain(&patient.client).await;
    let v1: serde_json::Value =
        serde_json::from_str(include_str!("../../core/tests/vectors/envelope-v1.json")).unwrap();
    let old = hex::decode(v1["envelopes"][2]["envelope"].as_str().unwrap()).unwrap();
    assert_eq!(old[4], chartkey_core::envelope::VERSION_1);
    let mut sealed = seal_all(&patient.keys, &floyd(1), None);
    let hash = chartkey_core::envelope::ciphertext_hash(&old);
    sealed.pack.clear();
    chartkey_core::records::pack_frame(&mut sealed.pack, &hash, &old);
    sealed.records[0].blob = Hash32(hash);
    sealed.anchored[0].ciphertext_hash = hash;
    let refused = add(&patient, &domain, &sealed).await;
    match &refused {
        Err(ApiError::BadRequest(message)) => assert!(message.contains("not sealed as this version"), "{refused:?}"),
        other => panic!("expected BadRequest: {other:?}"),
    }
    assert_eq!(server.query_one("SELECT count(*) FROM records").await, "0");
    server.stop().await;
}

/// What the clinician's client was given of a chart: each response that
/// carried a shared record's ciphertext or its key wrapped for them.
#[derive(Default)]
struct Observer {
    /// (route, record, what) for each release seen.
    releases: Vec<(String, RecordId, &'static str)>,
}

impl Observer {
    fn observe(&mut self, route: &str, body: &[u8], sealed: &Sealed, wrapped: &[String]) {
        for (i, id) in sealed.anchored.iter().map(|a| a.id).enumerate() {
            let envelope = &sealed.envelopes[i];
            if body.windows(envelope.len()).any(|w| w == envelope.as_slice()) {
                self.releases.push((route.to_owned(), id, "ciphertext"));
            }
            let key = wrapped[i].as_bytes();
            if body.windows(key.len()).any(|w| w == key) {
                self.releases.push((route.to_owned(), id, "wrapped key"));
            }
        }
    }
}

/// Every route the clinician `who` can reach that could say something of
/// `patient`'s chart, called as the portal would (with an open of
/// `opened` first, if given), each answer given to `observer`.
async fn sweep(
    observer: &mut Observer,
    who: &Account,
    chain: &Chain,
    patient: &chartkey_core::AccountKeys,
    sealed: &Sealed,
    wrapped: &[String],
    opened: Option<RecordId>,
) {
    let of_patient = format!("{:#x}", patient.address());
    let calls = [
        ("shares/list", json!({})),
        ("shares/chart", json!({ "patient": of_patient })),
        ("accesses/list", json!({})),
        ("notices/list", json!({})),
        ("records/list", json!({})),
        ("ledger/overview", json!({})),
        ("credentials/mine", json!({})),
        ("directory/lookup", json!({ "address": of_patient })),
    ];
    // Raw calls: the observer reads each answer as sent, with any field a
    // typed answer would drop.
    for (name, args) in calls {
        let answer = who.client.call(name, args).await;
        observer.observe(name, answer.body.to_string().as_bytes(), sealed, wrapped);
    }
    if let Some(id) = opened {
        let domain = ledger_domain(&who.client).await;
        let access = next_access(chain, &who.keys, patient, id).await;
        let answer = who.client.call("records/open", json!({ "body": access_body(&domain, &who.keys, &access) })).await;
        observer.observe("records/open", answer.body.to_string().as_bytes(), sealed, wrapped);
    }
    let ids: Vec<RecordId> = sealed.anchored.iter().map(|a| a.id).collect();
    for id in &ids {
        let (_, body) = get_envelope(&who.client, *id).await;
        observer.observe("GET /api/envelopes/{id}", &body, sealed, wrapped);
    }
    for some in [&ids[..], &ids[..1]] {
        let (_, body) = fetch(&who.client, some).await;
        observer.observe("POST /api/envelopes", &body, sealed, wrapped);
    }
}

/// Acceptance 2 of the security issue, from outside the server: the test
/// plays the clinician through the real API and records every response
/// that carried ciphertext or a wrapped key; each must match an `Accessed`
/// event read from the ledger over JSON-RPC, an accesses row and a notice
/// to the patient. After the patient stops sharing, no route returns
/// either.
#[tokio::test]
async fn every_release_to_a_clinician_is_an_access_on_the_ledger() {
    let server = TestServer::start().await;
    let Parties { mut patient, clinician, chain, domain, .. } =
        verified_parties(&server, "Audited Patient", "Dr Audited").await;
    let sealed = seal_all(&patient.keys, &floyd(3), None);
    add(&patient, &domain, &sealed).await.unwrap();
    let keys: Vec<fns::ShareKey> =
        (0..3).map(|i| wrapped_for(&sealed.keys[i], sealed.anchored[i].id, &clinician.keys)).collect();
    let wrapped: Vec<String> = keys.iter().map(|k| k.wrapped_key.to_base64()).collect();
    let grant = everything(&patient.keys, &clinician.keys, 0);
    share_approved(&server, &mut patient, &grant, keys).await.unwrap();
    let ids: Vec<RecordId> = sealed.anchored.iter().map(|a| a.id).collect();
    let mut observer = Observer::default();

    sweep(&mut observer, &clinician, &chain, &patient.keys, &sealed, &wrapped, None).await;
    assert!(observer.releases.is_empty(), "released before any access: {:?}", observer.releases);
    sweep(&mut observer, &clinician, &chain, &patient.keys, &sealed, &wrapped, Some(ids[0])).await;
    sweep(&mut observer, &clinician, &chain, &patient.keys, &sealed, &wrapped, Some(ids[2])).await;
    sweep(&mut observer, &clinician, &chain, &patient.keys, &sealed, &wrapped, None).await;

    // What the clinician got: records 0 and 2, each key and content once
    // opened, record 1 never.
    let released: std::collections::BTreeSet<RecordId> = observer.releases.iter().map(|(_, id, _)| *id).collect();
    assert_eq!(released, [ids[0], ids[2]].into(), "{:?}", observer.releases);
    for (route, _, what) in &observer.releases {
        assert!(
            (route == "records/open" && *what == "wrapped key") || route == "GET /api/envelopes/{id}",
            "{what} via {route}"
        );
    }

    // Each released record has an Accessed event by this clinician on the
    // ledger, an accesses row and a notice to the patient.
    let topic = format!("{:#x}", chartkey_ledger::artifacts::records().abi.event("Accessed").unwrap().signature());
    let padded = |a: ethers_core::types::Address| format!("0x{:0>64}", hex::encode(a.as_bytes()));
    let filter = json!([{ "fromBlock": "0x0", "toBlock": "latest", "address": chain.records,
        "topics": [topic, padded(patient.keys.address()), padded(clinician.keys.address())] }]);
    let logs = chain.rpc.result("eth_getLogs", filter).await;
    let on_ledger: std::collections::BTreeSet<String> =
        logs.as_array().unwrap().iter().map(|l| l["topics"][3].as_str().unwrap().to_owned()).collect();
    let inbox = patient.client.api(fns::NoticesList {}).await.unwrap();
    for id in &released {
        assert!(on_ledger.contains(&id.to_hex()), "{id} released without an Accessed event: {on_ledger:?}");
        let rows =
            server.query_one(&format!("SELECT count(*) FROM accesses WHERE record_id = '{}'", id.to_hex())).await;
        assert_ne!(rows, "0", "{id} has an accesses row");
        assert!(
            inbox.notices.iter().any(|n| n.record == Some(*id) && n.kind == fns::NoticeKind::Access),
            "the patient was told of {id}: {inbox:?}"
        );
    }
    assert_eq!(on_ledger.len(), released.len(), "no access without a release, none twice");

    // After stopping, nothing: not even what was opened a moment ago.
    stop_approved(&server, &chain, &mut patient, &clinician.keys).await.unwrap();
    let before = observer.releases.len();
    sweep(&mut observer, &clinician, &chain, &patient.keys, &sealed, &wrapped, Some(ids[1])).await;
    sweep(&mut observer, &clinician, &chain, &patient.keys, &sealed, &wrapped, Some(ids[0])).await;
    assert_eq!(observer.releases.len(), before, "released after stop: {:?}", &observer.releases[before..]);
    server.stop().await;
}

/// The envelope routes, for every role: only the chart's patient reads
/// without an open; everyone else gets 404 (nothing says the record
/// exists), signed out 401, another site 403.
#[tokio::test]
async fn envelope_routes_for_every_role() {
    let server = TestServer::start().await;
    let Parties { mut patient, clinician, authority, domain, .. } =
        verified_parties(&server, "Role Patient", "Dr Role").await;
    let sealed = seal_all(&patient.keys, &floyd(1), None);
    add(&patient, &domain, &sealed).await.unwrap();
    let id = sealed.anchored[0].id;
    share_all(&server, &mut patient, &clinician.keys, &sealed).await.unwrap();
    let other_patient = sign_up(&server, "Role Other", Role::Patient).await;
    let unshared_clinician = sign_up(&server, "Dr Unshared", Role::Clinician).await;
    let verifier = sign_up(&server, "Role Insurer", Role::Verifier).await;

    assert_eq!(get_envelope(&patient.client, id).await.0, 200);
    assert_eq!(fetch(&patient.client, &[id]).await.0, 200);
    for (who, account) in [
        ("another patient", &other_patient),
        ("a clinician it is shared with, before an open", &clinician),
        ("a clinician it is not shared with", &unshared_clinician),
        ("a verifier", &verifier),
        ("an authority", &authority),
    ] {
        assert_eq!(get_envelope(&account.client, id).await.0, 404, "{who}");
        assert_eq!(fetch(&account.client, &[id]).await.0, 404, "{who}");
    }
    let anonymous = server.client();
    assert_eq!(get_envelope(&anonymous, id).await.0, 401);
    assert_eq!(fetch(&anonymous, &[id]).await.0, 401);
    let cross = patient
        .client
        .http
        .get(format!("{}/api/envelopes/{}", server.base, id.to_hex()))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    // Malformed ids and bodies.
    let bad = patient.client.http.get(format!("{}/api/envelopes/0x12", server.base)).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let bad = patient
        .client
        .http
        .post(format!("{}/api/envelopes", server.base))
        .json(&json!({ "records": ["not an id"] }))
        .send()
        .await
        .unwrap();
    assert!(bad.status().is_client_error(), "{}", bad.status());
    let too_many: Vec<RecordId> = (0..5_001u32).map(|i| RecordId([(i % 251) as u8; 32])).collect();
    assert_eq!(fetch(&patient.client, &too_many).await.0, 400);
    server.stop().await;
}

/// Ciphertext goes as it is, whatever the browser accepts: it does not
/// compress, and its Content-Length is what the browser's progress reads.
/// Nor is the notice stream compressed: each notice must leave at once.
#[tokio::test]
async fn ciphertext_and_the_notice_stream_go_uncompressed() {
    let server = TestServer::start().await;
    let patient = sign_up(&server, "Plain Patient", Role::Patient).await;
    let domain = ledger_domain(&patient.client).await;
    let sealed = seal_all(&patient.keys, &floyd(1), None);
    add(&patient, &domain, &sealed).await.unwrap();
    let (base, http) = (&patient.client.base, &patient.client.http);
    let id = sealed.anchored[0].id;

    let one = http.get(format!("{base}/api/envelopes/{}", id.to_hex())).header("accept-encoding", "gzip, br");
    let many = http.post(format!("{base}/api/envelopes")).json(&json!({ "records": [id] }));
    for request in [one, many.header("accept-encoding", "gzip, br")] {
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers().get("content-type").unwrap(), "application/octet-stream");
        assert!(res.headers().get("content-encoding").is_none(), "{:?}", res.headers());
        let length: usize = res.headers()["content-length"].to_str().unwrap().parse().unwrap();
        let body = res.bytes().await.unwrap();
        assert_eq!(body.len(), length);
        assert!(length >= sealed.envelopes[0].len());
    }

    let stream = http.get(format!("{base}/api/notices/stream")).header("accept-encoding", "gzip, br").send().await;
    let stream = stream.unwrap();
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert!(stream.headers().get("content-encoding").is_none(), "{:?}", stream.headers());
    drop(stream);
    server.stop().await;
}
