//! Acceptance: registration and sign-in ceremonies against the real server
//! on a real port, and every refusal leaves the database unchanged.

mod common;

use chartkey_core::keystore::SealedKeystore;
use chartkey_core::role::Role;
use common::records::{Parties, everything, share_approved, verified_parties};
use common::*;
use serde_json::json;

#[tokio::test]
async fn sign_up_sign_out_sign_in_unlocks_the_same_keys() {
    let server = TestServer::start().await;
    let mut account = sign_up(&server, "Ada Patient", Role::Patient).await;

    let me = account.client.call("me", json!({})).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["display_name"], "Ada Patient");
    assert_eq!(me.body["role"], "patient");
    assert_eq!(me.body["recovery_confirmed"], false);
    assert_eq!(me.body["idle_lock_secs"], serde_json::Value::Null);

    let out = account.client.call("logout", json!({})).await;
    assert_eq!(out.status, 200);
    assert!(out.set_cookie[0].contains("Max-Age=0"));
    assert_eq!(account.client.call("me", json!({})).await.status, 401);

    let login = sign_in(&server, &account.client, &mut account.device).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let sealed = SealedKeystore::from_json(login.body["sealed_keystore"].as_str().unwrap()).unwrap();
    let secret = sealed.unseal_with_prf(&account.device.prf).unwrap();
    let directory: chartkey_core::directory::DirectoryEntry =
        serde_json::from_value(login.body["account"]["directory"].clone()).unwrap();
    assert_eq!(directory.verify().unwrap().address, secret.derive().address());
    assert_eq!(secret.derive().address(), account.keys.address());
    assert_eq!(account.client.call("me", json!({})).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn session_cookie_is_strict_http_only_and_new_at_each_login() {
    let server = TestServer::start().await;
    let mut account = sign_up(&server, "Bo", Role::Patient).await;
    let first = sign_in(&server, &account.client, &mut account.device).await;
    let second = sign_in(&server, &account.client, &mut account.device).await;
    let (a, b) = (&first.set_cookie[0], &second.set_cookie[0]);
    for cookie in [a, b] {
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Strict"), "{cookie}");
        assert!(cookie.contains("Path=/"), "{cookie}");
        assert!(!cookie.contains("Secure"), "plain http on localhost: {cookie}");
    }
    assert_ne!(a.split(';').next(), b.split(';').next(), "a new session id at each login");
    // The replaced session no longer exists: one for sign-up was replaced twice.
    assert_eq!(server.counts().2, 1);
    server.stop().await;
}

#[tokio::test]
async fn protected_functions_answer_401_without_a_session() {
    let server = TestServer::start().await;
    let client = server.client();
    for (name, args) in [
        ("me", json!({})),
        ("recovery/confirmed", json!({})),
        ("passkeys/list", json!({})),
        ("passkeys/add/start", json!({})),
        (
            "passkeys/add/finish",
            json!({"finish": {"ceremony_id": "x", "credential": {}, "passkey_label": "p",
            "sealed_keystore": "x", "uses_passphrase": false, "signature": chartkey_core::value::Signature([0; 65])}}),
        ),
        ("passkeys/remove/start", json!({"credential_id": "x"})),
        (
            "passkeys/remove",
            json!({"ceremony_id": "x", "credential_id": "x", "signature": chartkey_core::value::Signature([0; 65])}),
        ),
        ("directory/lookup", json!({"address": "0x0000000000000000000000000000000000000001"})),
    ] {
        let answer = client.call(name, args).await;
        assert_eq!(answer.status, 401, "{name}: {:?}", answer.body);
        assert_eq!(answer.body, json!("Unauthorized"), "{name}");
    }
    server.stop().await;
}

#[tokio::test]
async fn replayed_assertion_is_refused_without_state_change() {
    let server = TestServer::start().await;
    let mut account = sign_up(&server, "Cy", Role::Patient).await;
    let start = account.client.call("login/start", json!({})).await;
    let assertion = account.device.assert(&server.origin, start.body["options"].clone());
    let body = json!({"finish": {"ceremony_id": start.body["ceremony_id"], "credential": assertion}});
    assert_eq!(account.client.call("login/finish", body.clone()).await.status, 200);
    let before = server.counts();

    // Same ceremony again: already used.
    let again = account.client.call("login/finish", body).await;
    assert_eq!(again.status, 400, "{:?}", again.body);
    assert!(again.body["BadRequest"].as_str().unwrap().contains("already used"));

    // The old answer against a fresh challenge: signature over the wrong challenge.
    let fresh = account.client.call("login/start", json!({})).await;
    let replay = account
        .client
        .call("login/finish", json!({"finish": {"ceremony_id": fresh.body["ceremony_id"], "credential": assertion}}))
        .await;
    assert_eq!(replay.status, 403, "{:?}", replay.body);
    assert_eq!(server.counts(), before);
    server.stop().await;
}

#[tokio::test]
async fn forged_assertion_is_refused_without_state_change() {
    let server = TestServer::start().await;
    let mut account = sign_up(&server, "Di", Role::Patient).await;
    account.client.call("logout", json!({})).await;
    let before = server.counts();
    let last_used = server.query_one("SELECT last_used_at FROM passkeys");

    let start = account.client.call("login/start", json!({})).await;
    let mut assertion = account.device.assert(&server.origin, start.body["options"].clone());
    let sig = &mut assertion.response.signature;
    let mid = sig.len() / 2;
    sig[mid] ^= 0x01;
    let forged = account
        .client
        .call("login/finish", json!({"finish": {"ceremony_id": start.body["ceremony_id"], "credential": assertion}}))
        .await;
    assert_eq!(forged.status, 403, "{:?}", forged.body);
    assert!(forged.body["Forbidden"].as_str().unwrap().contains("could not be verified"));
    assert!(forged.set_cookie.is_empty());
    assert_eq!(server.counts(), before);
    assert_eq!(server.query_one("SELECT last_used_at FROM passkeys"), last_used);
    assert_eq!(account.client.call("me", json!({})).await.status, 401);
    server.stop().await;
}

#[tokio::test]
async fn expired_challenge_is_refused() {
    let server = TestServer::start_with(|c| c.ceremony_ttl = std::time::Duration::from_millis(300)).await;
    let client = server.client();
    let start = client.call("signup/start", json!({"display_name": "Ed", "role": "patient"})).await;
    let mut device = Device::new();
    let credential = device.register(&server.origin, start.body["options"].clone());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let secret = chartkey_core::AccountSecret::generate(&mut rand::rngs::OsRng);
    let finish = client
        .call(
            "signup/finish",
            json!({"finish": {
                "ceremony_id": start.body["ceremony_id"], "credential": credential,
                "passkey_label": "p", "sealed_keystore": device.seal(&secret), "uses_passphrase": false,
                "directory": chartkey_core::directory::DirectoryEntry::sign(&secret.derive(), Role::Patient),
            }}),
        )
        .await;
    assert_eq!(finish.status, 400, "{:?}", finish.body);
    assert!(finish.body["BadRequest"].as_str().unwrap().contains("expired"));
    assert_eq!(server.counts(), (0, 0, 0));
    server.stop().await;
}

#[tokio::test]
async fn unknown_credential_is_refused() {
    let server = TestServer::start().await;
    let _someone = sign_up(&server, "Fay", Role::Patient).await;
    // A passkey created for this site but never registered (its sign-up was
    // never finished).
    let stranger = server.client();
    let start = stranger.call("signup/start", json!({"display_name": "Gus", "role": "patient"})).await;
    let mut device = Device::new();
    device.register(&server.origin, start.body["options"].clone());
    let before = server.counts();
    let answer = sign_in(&server, &stranger, &mut device).await;
    assert_eq!(answer.status, 403, "{:?}", answer.body);
    assert!(answer.body["Forbidden"].as_str().unwrap().contains("not registered"));
    assert_eq!(server.counts(), before);
    server.stop().await;
}

#[tokio::test]
async fn oversized_body_is_refused() {
    let server = TestServer::start().await;
    let client = server.client();
    let huge = "x".repeat(200 * 1024);
    let answer = client.call("signup/start", json!({"display_name": huge, "role": "patient"})).await;
    assert_eq!(answer.status, 413);
    assert_eq!(server.counts(), (0, 0, 0));
    // Within the limit but too long a name: a clear 400.
    let answer = client.call("signup/start", json!({"display_name": "x".repeat(81), "role": "patient"})).await;
    assert_eq!(answer.status, 400);
    assert!(answer.body["BadRequest"].as_str().unwrap().contains("at most 80 characters"));
    server.stop().await;
}

#[tokio::test]
async fn malformed_arguments_get_a_clear_400() {
    let server = TestServer::start().await;
    let client = server.client();
    for body in [json!({}), json!({"display_name": 5, "role": "patient"}), json!({"display_name": "a", "role": "king"})]
    {
        let answer = client.call("signup/start", body).await;
        assert_eq!(answer.status, 400, "{:?}", answer.body);
    }
    // A credential that is JSON but not a WebAuthn credential.
    let start = client.call("login/start", json!({})).await;
    let answer = client
        .call("login/finish", json!({"finish": {"ceremony_id": start.body["ceremony_id"], "credential": {"nope": 1}}}))
        .await;
    assert_eq!(answer.status, 400, "{:?}", answer.body);
    assert!(answer.body["BadRequest"].as_str().unwrap().contains("malformed"));
    let raw = client
        .http
        .post(format!("{}/api/login/finish", server.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    assert_eq!(server.counts(), (0, 0, 0));
    server.stop().await;
}

#[tokio::test]
async fn registration_and_login_starts_are_rate_limited_per_ip() {
    let server = TestServer::start_with(|c| {
        c.registration_per_minute = 3;
        c.login_per_minute = 2;
    })
    .await;
    let client = server.client();
    for _ in 0..3 {
        assert_eq!(client.call("signup/start", json!({"display_name": "K", "role": "patient"})).await.status, 200);
    }
    let limited = client.call("signup/start", json!({"display_name": "K", "role": "patient"})).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body, json!("RateLimited"));
    for _ in 0..2 {
        assert_eq!(client.call("login/start", json!({})).await.status, 200);
    }
    assert_eq!(client.call("login/start", json!({})).await.status, 429);
    server.stop().await;
}

#[tokio::test]
async fn sign_up_refuses_bad_keys_and_keeps_nothing() {
    let server = TestServer::start().await;
    let client = server.client();
    let secret = chartkey_core::AccountSecret::generate(&mut rand::rngs::OsRng);
    let other = chartkey_core::AccountSecret::generate(&mut rand::rngs::OsRng).derive();
    let mut device = Device::new();

    // A directory entry whose encryption key was swapped after signing.
    let mut entry = chartkey_core::directory::DirectoryEntry::sign(&secret.derive(), Role::Patient);
    entry.encryption_key = other.encryption_public().into();
    let start = client.call("signup/start", json!({"display_name": "Lu", "role": "patient"})).await;
    let credential = device.register(&server.origin, start.body["options"].clone());
    let answer = client
        .call(
            "signup/finish",
            json!({"finish": {"ceremony_id": start.body["ceremony_id"], "credential": credential,
            "passkey_label": "p", "sealed_keystore": device.seal(&secret), "uses_passphrase": false, "directory": entry}}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert!(answer.body["BadRequest"].as_str().unwrap().contains("public keys were refused"));

    // A role other than the one chosen at the start.
    let start = client.call("signup/start", json!({"display_name": "Lu", "role": "patient"})).await;
    let credential = device.register(&server.origin, start.body["options"].clone());
    let entry = chartkey_core::directory::DirectoryEntry::sign(&secret.derive(), Role::CredentialingAuthority);
    let answer = client
        .call(
            "signup/finish",
            json!({"finish": {"ceremony_id": start.body["ceremony_id"], "credential": credential,
            "passkey_label": "p", "sealed_keystore": device.seal(&secret), "uses_passphrase": false, "directory": entry}}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert!(answer.body["BadRequest"].as_str().unwrap().contains("different role"), "{:?}", answer.body);

    // A key store that is not one.
    let start = client.call("signup/start", json!({"display_name": "Lu", "role": "patient"})).await;
    let credential = device.register(&server.origin, start.body["options"].clone());
    let entry = chartkey_core::directory::DirectoryEntry::sign(&secret.derive(), Role::Patient);
    let answer = client
        .call(
            "signup/finish",
            json!({"finish": {"ceremony_id": start.body["ceremony_id"], "credential": credential,
            "passkey_label": "p", "sealed_keystore": "my secret in the clear", "uses_passphrase": false, "directory": entry}}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(server.counts(), (0, 0, 0));
    server.stop().await;
}

#[tokio::test]
async fn directory_lookup_returns_entries_that_verify() {
    let server = TestServer::start().await;
    let patient = sign_up(&server, "Ned", Role::Patient).await;
    let clinician = sign_up(&server, "Dr Ola", Role::Clinician).await;
    let address = ethers_core::utils::to_checksum(&clinician.keys.address(), None);
    let answer = patient.client.call("directory/lookup", json!({"address": address.to_lowercase()})).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["display_name"], "Dr Ola");
    let entry: chartkey_core::directory::DirectoryEntry = serde_json::from_value(answer.body["entry"].clone()).unwrap();
    let verified = entry.verify().unwrap();
    assert_eq!(verified.encryption_key, clinician.keys.encryption_public());
    assert_eq!(verified.role, Role::Clinician);

    // The ledger is the source of truth: an entry it does not confirm is not served.
    let db = rusqlite::Connection::open(server.data_dir.join("chartkey.sqlite3")).unwrap();
    let other = other_keys();
    db.execute(
        "UPDATE accounts SET encryption_key = ?1 WHERE address = ?2",
        rusqlite::params![format!("0x{}", hex::encode(other.encryption_public())), address],
    )
    .unwrap();
    let answer = patient.client.call("directory/lookup", json!({"address": address})).await;
    assert_eq!(answer.status, 409, "a key the ledger does not know: {:?}", answer.body);
    let unregistered = chartkey_core::directory::DirectoryEntry::sign(&other, Role::Clinician);
    db.execute(
        "INSERT INTO accounts (id, display_name, role, address, encryption_key, directory_signature, created_at)
         VALUES ('x', 'Nobody', 'clinician', ?1, ?2, ?3, 0)",
        rusqlite::params![unregistered.address, unregistered.encryption_key, unregistered.signature],
    )
    .unwrap();
    let answer = patient.client.call("directory/lookup", json!({"address": unregistered.address})).await;
    assert_eq!(answer.status, 404, "not on the ledger: {:?}", answer.body);
    assert!(answer.body["NotFound"].as_str().unwrap().contains("not registered on the ledger"));
    server.stop().await;
}

#[tokio::test]
async fn recovery_confirmation_is_recorded() {
    let server = TestServer::start().await;
    let account = sign_up(&server, "Pia", Role::Verifier).await;
    let answer = account.client.call("recovery/confirmed", json!({})).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["recovery_confirmed"], true);
    server.stop().await;
}

#[tokio::test]
async fn cross_origin_calls_are_refused() {
    let server = TestServer::start().await;
    let client = server.client();
    let res = client
        .http
        .post(format!("{}/api/login/start", server.base))
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let res = client
        .http
        .post(format!("{}/api/login/start", server.base))
        .header("origin", server.origin.as_str().trim_end_matches('/'))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    server.stop().await;
}

/// Finding 6 of the security review: a ledger address must not map to a
/// patient's name for just anyone signed in. Clinicians stay findable.
#[tokio::test]
async fn a_patients_name_goes_only_to_their_counterparties() {
    let server = TestServer::start().await;
    let Parties { mut patient, clinician, authority, .. } =
        verified_parties(&server, &server.data_dir, "Priya Private", "Dr Counterpart").await;
    let stranger_clinician = sign_up(&server, "Dr Stranger", Role::Clinician).await;
    let other_patient = sign_up(&server, "Curious Neighbour", Role::Patient).await;
    let verifier = sign_up(&server, "Nosy Insurer", Role::Verifier).await;
    let lookup = |address: ethers_core::types::Address| json!({ "address": format!("{address:#x}") });
    let of_patient = lookup(patient.keys.address());

    for outsider in [&clinician, &stranger_clinician, &other_patient, &verifier, &authority] {
        let answer = outsider.client.call("directory/lookup", of_patient.clone()).await;
        assert_eq!(answer.status, 404, "{:?}", answer.body);
        assert!(!answer.body.to_string().contains("Priya"), "{:?}", answer.body);
    }
    let own = patient.client.call("directory/lookup", of_patient.clone()).await;
    assert_eq!((own.status, &own.body["display_name"]), (200, &json!("Priya Private")));
    // Clinicians, authorities and verifiers are public.
    for public in [&clinician, &authority, &verifier] {
        let answer = other_patient.client.call("directory/lookup", lookup(public.keys.address())).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }

    // Once the patient shares with a clinician, that clinician knows whose
    // chart it is; the others still do not.
    let grant = everything(&patient.keys, &clinician.keys, 0);
    assert_eq!(share_approved(&server, &mut patient, &grant, vec![]).await.status, 200);
    let counterpart = clinician.client.call("directory/lookup", of_patient.clone()).await;
    assert_eq!((counterpart.status, &counterpart.body["display_name"]), (200, &json!("Priya Private")));
    assert_eq!(stranger_clinician.client.call("directory/lookup", of_patient.clone()).await.status, 404);
    assert_eq!(other_patient.client.call("directory/lookup", of_patient).await.status, 404);
    server.stop().await;
}
