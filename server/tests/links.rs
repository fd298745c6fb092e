//! SMART Health Links through the server: made with the browser's own
//! steps (files encrypted with a key the server never gets), resolved by
//! the manifest protocol only after the ledger recorded the use, and every
//! refusal the IG and the trust model name.

mod common;

use std::time::Duration;

use chartkey_core::eip712::{Link, LinkRevoke, LinkUpdate};
use chartkey_core::role::Role;
use chartkey_core::shl::{self, Flags, LinkKey, ManifestId};
use common::chain::Chain;
use common::links::*;
use common::records::{approved, now};
use common::*;
use ethers_core::types::U256;
use rand::rngs::OsRng;
use serde_json::{Value, json};

/// POSTs `body` to a manifest URL: the status and the JSON answer.
async fn ask(url: &str, body: Value) -> (u16, Value) {
    let answer = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    let status = answer.status().as_u16();
    assert_eq!(answer.headers()["access-control-allow-origin"], "*", "any origin may ask");
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// The manifest's files decrypted with the link's key (fetching locations).
async fn files_of(made: &Made, manifest: &Value) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for file in manifest["files"].as_array().unwrap() {
        assert_eq!(file["contentType"], shl::FHIR_JSON);
        let jwe = match (file["embedded"].as_str(), file["location"].as_str()) {
            (Some(jwe), None) => jwe.to_owned(),
            (None, Some(url)) => {
                let answer = reqwest::get(url).await.unwrap();
                assert_eq!(answer.status(), 200);
                assert_eq!(answer.headers()["content-type"], "application/jose");
                answer.text().await.unwrap()
            }
            other => panic!("a file is embedded or located: {other:?}"),
        };
        out.push(shl::decrypt_file(&made.key, &jwe).unwrap().bytes);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_answers_after_the_ledger_recorded_its_use() {
    let server = TestServer::start().await;
    let mut patient = sign_up(&server, "Link Patient", Role::Patient).await;
    let small = br#"{"resourceType":"Bundle","type":"document"}"#.to_vec();
    let large = format!(r#"{{"resourceType":"Observation","note":"{}"}}"#, "x".repeat(100_000)).into_bytes();
    let long_term = Flags { long_term: true, ..Flags::default() };
    let made = make(&server, &mut patient, long_term, 0, None, &[&small, &large]).await.unwrap();
    assert_eq!((made.view.files, made.view.serial, made.view.attempts_left), (2, 0, None));

    let (status, manifest) =
        ask(&made.url(&server), json!({ "recipient": "Dr Rao, Mercy ER", "embeddedLengthMax": 50_000 })).await;
    assert_eq!(status, 200, "{manifest}");
    assert_eq!(manifest["status"], "can-change");
    assert!(manifest["files"][0]["embedded"].is_string() && manifest["files"][1]["location"].is_string());
    assert_eq!(files_of(&made, &manifest).await, vec![small.clone(), large.clone()]);

    // On the ledger: the link and a hash of the recipient, never the label.
    let chain = Chain::of(&server, &patient.client).await;
    let used = chartkey_ledger::artifacts::access().abi.event("LinkUsed").unwrap().signature();
    let logs = server
        .rpc()
        .result(
            "eth_getLogs",
            json!([{ "fromBlock": "0x0", "address": chain.access, "topics": [format!("{used:#x}")] }]),
        )
        .await;
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["topics"][2], format!("0x{}", hex::encode(made.manifest.link_id())));
    // keccak256(salt ‖ label), the salt kept in the database only: not the
    // label, nor its plain hash, which a dictionary of names would find.
    let data = logs[0]["data"].as_str().unwrap();
    let salt = server.query_one("SELECT salt FROM link_uses").await;
    let salt: [u8; 32] = hex::decode(salt.trim_start_matches("0x")).unwrap().try_into().unwrap();
    let salted = chartkey_services::links::manifest::recipient_hash(&salt, "Dr Rao, Mercy ER");
    assert!(data.contains(&hex::encode(salted)));
    assert!(!data.contains(&hex::encode(ethers_core::utils::keccak256(b"Dr Rao, Mercy ER"))));
    assert!(!data.contains(&hex::encode("Dr Rao")));

    // The patient is told, and the Links page lists the use.
    let inbox = patient.client.api(fns::NoticesList {}).await.unwrap();
    let notice = &inbox.notices[0];
    assert_eq!(notice.kind, fns::NoticeKind::LinkUse);
    assert_eq!(notice.link.as_ref().unwrap().recipient, "Dr Rao, Mercy ER");
    let listed = patient.client.api(fns::LinksList {}).await.unwrap();
    assert_eq!(listed[0].uses.len(), 1);
    let secrets = listed[0].sealed.open(&patient.keys, made.manifest.link_id()).expect("the patient's own");
    assert_eq!((secrets.label.as_str(), secrets.manifest, &secrets.key), ("For Dr Rao", made.manifest, &made.key));

    // A long-term link's content changes; the next resolution serves it.
    let newer = br#"{"resourceType":"Bundle","type":"document","id":"2"}"#.to_vec();
    let uploads = encrypt(&made.key, &[&newer]);
    let m = LinkUpdate {
        patient: patient.keys.address(),
        link_id: made.manifest.link_id(),
        content_hash: hash_of(&uploads),
        expires_at: 0,
        nonce: U256::zero(),
    };
    let domain = access_domain(&server, &patient).await;
    let fns::Approved { message, signature, approval } = approved(&server, &mut patient, &domain, m).await;
    let body = fns::LinkUpdateBody { message, signature, approval, files: uploads };
    let updated = patient.client.api(fns::LinksUpdate { body }).await.unwrap();
    assert_eq!((updated.files, updated.serial), (1, 1));
    let (status, manifest) = ask(&made.url(&server), json!({ "recipient": "Dr Rao" })).await;
    assert_eq!(status, 200);
    assert_eq!(files_of(&made, &manifest).await, vec![newer]);

    // A direct-file link answers a GET with its one file.
    let direct = Flags { direct: true, ..Flags::default() };
    let made = make(&server, &mut patient, direct, now() + 3_600, None, &[&small]).await.unwrap();
    let answer = reqwest::get(format!("{}?recipient=Triage%20nurse", made.url(&server))).await.unwrap();
    assert_eq!(answer.status(), 200);
    let jwe = answer.text().await.unwrap();
    assert_eq!(shl::decrypt_file(&made.key, &jwe).unwrap().bytes, small);
    let no_recipient = reqwest::get(made.url(&server)).await.unwrap();
    assert_eq!(no_recipient.status(), 400, "a direct file names its recipient too");
    let preflight = reqwest::Client::new().request(reqwest::Method::OPTIONS, made.url(&server)).send().await.unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-methods"], "GET, POST");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passcodes_count_down_and_the_cap_holds_under_parallel_requests() {
    let server = TestServer::start_with(|c| c.link_passcode_attempts = 10).await;
    let mut patient = sign_up(&server, "Passcode Patient", Role::Patient).await;
    let flags = Flags { passcode: true, ..Flags::default() };
    let made = make(&server, &mut patient, flags, 0, Some("4711"), &[b"{}"]).await.unwrap();
    assert_eq!(made.view.attempts_left, Some(10));
    let url = made.url(&server);
    assert_eq!(
        ask(&url, json!({ "recipient": "A", "passcode": "0000" })).await,
        (401, json!({ "remainingAttempts": 9 }))
    );
    assert_eq!(ask(&url, json!({ "recipient": "A" })).await, (401, json!({ "remainingAttempts": 8 })));
    let (status, manifest) = ask(&url, json!({ "recipient": "A", "passcode": "4711" })).await;
    assert_eq!(status, 200);
    assert_eq!(files_of(&made, &manifest).await, vec![b"{}".to_vec()]);

    // 20 wrong passcodes at once: exactly the 8 attempts left are spent.
    let tries = (0..20).map(|i| {
        let url = url.clone();
        tokio::spawn(async move { ask(&url, json!({ "recipient": "B", "passcode": format!("{i}") })).await })
    });
    let mut remaining = Vec::new();
    let mut gone = 0;
    for answer in futures_util::future::join_all(tries).await {
        match answer.unwrap() {
            (401, body) => remaining.push(body["remainingAttempts"].as_u64().unwrap()),
            (404, _) => gone += 1,
            other => panic!("{other:?}"),
        }
    }
    remaining.sort_unstable();
    assert_eq!(remaining, (0..8).collect::<Vec<u64>>(), "each attempt spent once");
    assert_eq!(gone, 12);
    // Out of attempts: the right passcode gets nothing either.
    assert_eq!(ask(&url, json!({ "recipient": "A", "passcode": "4711" })).await.0, 404);
    let stored = server.db().await.column("SELECT coalesce(passcode_hash, '') FROM links").await;
    assert!(!stored.is_empty() && stored.iter().all(|h| !h.contains("4711")), "the passcode is not stored in clear");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_stopped_and_malformed_requests_get_nothing() {
    let server = TestServer::start_with(|c| c.link_location_ttl = Duration::from_secs(1)).await;
    let mut patient = sign_up(&server, "Refused Patient", Role::Patient).await;
    let expiring = make(&server, &mut patient, Flags::default(), now() + 3, None, &[b"{}"]).await.unwrap();
    let stopping = make(&server, &mut patient, Flags::default(), 0, None, &[b"{}"]).await.unwrap();

    // A location outlives its lifetime: refused.
    let (status, manifest) = ask(&stopping.url(&server), json!({ "recipient": "A", "embeddedLengthMax": 0 })).await;
    assert_eq!(status, 200);
    let location = manifest["files"][0]["location"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(reqwest::get(&location).await.unwrap().status(), 404, "a location lasts its lifetime only");

    // Expired: 404.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ask(&expiring.url(&server), json!({ "recipient": "A" })).await.0, 404);

    // Stopped: 404 at once.
    let m = LinkRevoke { patient: patient.keys.address(), link_id: stopping.manifest.link_id(), nonce: U256::zero() };
    let domain = access_domain(&server, &patient).await;
    let body = approved(&server, &mut patient, &domain, m).await;
    patient.client.api(fns::LinksRevoke { body }).await.unwrap();
    assert_eq!(ask(&stopping.url(&server), json!({ "recipient": "A" })).await.0, 404);

    // Malformed: no such link, or not a manifest request.
    let live = make(&server, &mut patient, Flags::default(), 0, None, &[b"{}"]).await.unwrap();
    for url in [format!("{}/shl/short", server.base), format!("{}/shl/{}", server.base, "A".repeat(43))] {
        assert_eq!(ask(&url, json!({ "recipient": "A" })).await.0, 404, "{url}");
    }
    for body in [json!({}), json!({ "recipient": "" }), json!({ "recipient": "x".repeat(300) }), json!([1])] {
        assert_eq!(ask(&live.url(&server), body.clone()).await.0, 400, "{body}");
    }
    assert_eq!(ask(&live.url(&server), json!({ "recipient": "A" })).await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_use_the_ledger_cannot_record_releases_nothing() {
    if !common::engines::on_embedded_ledger("the embedded ledger's paused miner") {
        return;
    }
    let server = TestServer::start().await;
    let mut patient = sign_up(&server, "Outage Patient", Role::Patient).await;
    let made = make(&server, &mut patient, Flags::default(), 0, None, &[b"{}"]).await.unwrap();
    let data = server.stop_keeping_data().await;
    let server = TestServer::start_with(|c| {
        c.data_dir = data.path().join("data");
        c.pause_mining = true;
        c.relay_wait = Duration::from_millis(500);
    })
    .await;
    let (status, answer) = ask(&made.url(&server), json!({ "recipient": "A" })).await;
    assert_eq!(status, 503);
    assert!(answer["error"].as_str().unwrap().contains("ledger could not record"), "{answer}");
    assert!(answer.get("files").is_none());
    server.stop().await;
    drop(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_made_by_their_patient_with_the_files_they_signed() {
    let server = TestServer::start().await;
    let mut patient = sign_up(&server, "Own Patient", Role::Patient).await;
    let mut clinician = sign_up(&server, "Dr Own", Role::Clinician).await;
    let key = LinkKey::generate(&mut OsRng);
    let relayer = host(&patient).await;
    let link_of = |who: &Account, files: &[fns::LinkFileUpload], flags: Flags| Link {
        patient: who.keys.address(),
        link_id: ManifestId::generate(&mut OsRng).link_id(),
        content_hash: hash_of(files),
        expires_at: 0,
        flags: flags.bits(),
        host: relayer,
    };
    let files = encrypt(&key, &[b"{}"]);

    let by_clinician = link_of(&clinician, &files, Flags::default());
    let body = signed_create(&server, &mut clinician, by_clinician, files.clone(), None, None).await;
    assert!(matches!(clinician.client.api(fns::LinksCreate { body }).await, Err(ApiError::Forbidden(_))));

    let refused = |answer: Result<fns::LinkView, ApiError>, what: &str| match answer {
        Err(ApiError::BadRequest(_)) => {}
        other => panic!("{what}: {other:?}"),
    };
    let mut other_files = files.clone();
    other_files[0].jwe = shl::encrypt_file(&key, shl::FHIR_JSON, b"[]", &mut OsRng);
    let link = link_of(&patient, &files, Flags::default());
    let body = signed_create(&server, &mut patient, link, other_files, None, None).await;
    refused(patient.client.api(fns::LinksCreate { body }).await, "files other than those signed");

    let passcode = Flags { passcode: true, ..Flags::default() };
    let link = link_of(&patient, &files, passcode);
    let body = signed_create(&server, &mut patient, link, files.clone(), None, None).await;
    refused(patient.client.api(fns::LinksCreate { body }).await, "a passcode link without its passcode");

    let two = encrypt(&key, &[b"{}", b"[]"]);
    let link = link_of(&patient, &two, Flags { direct: true, ..Flags::default() });
    let body = signed_create(&server, &mut patient, link, two, None, None).await;
    refused(patient.client.api(fns::LinksCreate { body }).await, "a direct link with two files");

    let link =
        Link { host: ethers_core::types::Address::repeat_byte(9), ..link_of(&patient, &files, Flags::default()) };
    let body = signed_create(&server, &mut patient, link, files.clone(), None, None).await;
    refused(patient.client.api(fns::LinksCreate { body }).await, "a link naming another host");

    let mut broken = files.clone();
    broken[0].jwe = "not.a.jwe".into();
    let link = link_of(&patient, &broken, Flags::default());
    let body = signed_create(&server, &mut patient, link, broken, None, None).await;
    refused(patient.client.api(fns::LinksCreate { body }).await, "a malformed JWE");

    // Approved for another message: refused; nothing stored.
    let link = link_of(&patient, &files, Flags::default());
    let mut body = signed_create(&server, &mut patient, link.clone(), files.clone(), None, None).await;
    body.link.expires_at = now() + 3_600;
    assert!(matches!(patient.client.api(fns::LinksCreate { body }).await, Err(ApiError::Forbidden(_))));
    assert_eq!(server.query_one("SELECT count(*) FROM links").await, "0");

    // Another patient cannot stop it.
    let made = make(&server, &mut patient, Flags::default(), 0, None, &[b"{}"]).await.unwrap();
    let mut other = sign_up(&server, "Other Patient", Role::Patient).await;
    let m = LinkRevoke { patient: other.keys.address(), link_id: made.manifest.link_id(), nonce: U256::zero() };
    let domain = access_domain(&server, &other).await;
    let body = approved(&server, &mut other, &domain, m).await;
    let stop = other.client.api(fns::LinksRevoke { body });
    assert!(matches!(stop.await, Err(ApiError::NotFound(_))));
    assert_eq!(ask(&made.url(&server), json!({ "recipient": "A" })).await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_links_files_count_against_the_storage_quota() {
    let server = TestServer::start_with(|c| c.storage_quota_bytes = 4_000).await;
    let mut patient = sign_up(&server, "Quota Patient", Role::Patient).await;
    make(&server, &mut patient, Flags::default(), 0, None, &[&[b'a'; 1_000]]).await.unwrap();
    let used: i64 = server.query_one("SELECT CAST(sum(size) AS BIGINT) FROM blob_uploads").await.parse().unwrap();
    assert!(used > 0, "{used}");
    let over = make(&server, &mut patient, Flags::default(), 0, None, &[&[b'b'; 3_000]]).await;
    assert!(matches!(over, Err(ApiError::OverQuota(_))), "{:?}", over.err());
    assert_eq!(server.query_one("SELECT count(*) FROM links").await, "1", "nothing made");
    server.stop().await;
}
