//! Acceptance: registration and sign-in ceremonies against the real server
//! on a real port, and every refusal leaves the database unchanged.

mod common;

use chartkey_core::keystore::SealedKeystore;
use chartkey_core::role::Role;
use common::records::{Parties, everything, share_approved, verified_parties};
use common::*;
use serde_json::json;

fn unauthorized<T: std::fmt::Debug>(name: &str, answer: Result<T, ApiError>) {
    assert!(matches!(answer, Err(ApiError::Unauthorized)), "{name}: {answer:?}");
}

/// The message of a `BadRequest`, or a panic naming what came instead.
fn bad_request<T: std::fmt::Debug>(answer: Result<T, ApiError>) -> String {
    match answer {
        Err(ApiError::BadRequest(message)) => message,
        other => panic!("expected BadRequest: {other:?}"),
    }
}

fn forbidden<T: std::fmt::Debug>(answer: Result<T, ApiError>) -> String {
    match answer {
        Err(ApiError::Forbidden(message)) => message,
        other => panic!("expected Forbidden: {other:?}"),
    }
}

fn not_found<T: std::fmt::Debug>(answer: Result<T, ApiError>) -> String {
    match answer {
        Err(ApiError::NotFound(message)) => message,
        other => panic!("expected NotFound: {other:?}"),
    }
}

fn lookup(address: ethers_core::types::Address) -> fns::DirectoryLookup {
    fns::DirectoryLookup { address: address.into() }
}

#[tokio::test]
async fn sign_up_sign_out_sign_in_unlocks_the_same_keys() {
    let server = TestServer::start().await;
    let mut account = sign_up(&server, "Ada Patient", Role::Patient).await;

    let me = account.client.api(fns::Me {}).await.unwrap();
    assert_eq!(me.display_name, "Ada Patient");
    assert_eq!(me.role, Role::Patient);
    assert!(!me.recovery_confirmed);
    assert_eq!(me.idle_lock_secs, None);

    // Raw: the cookie that ends the session is in the headers.
    let out = account.client.call("logout", json!({})).await;
    assert_eq!(out.status, 200);
    assert!(out.set_cookie[0].contains("Max-Age=0"));
    assert_eq!(account.client.api(fns::Me {}).await, Err(ApiError::Unauthorized));

    let login = sign_in(&server, &account.client, &mut account.device).await.unwrap();
    let sealed = login.sealed_keystore;
    let secret = sealed.unseal_with_prf(&account.device.prf).unwrap();
    let directory = login.account.directory;
    assert_eq!(directory.verify().unwrap().address, secret.derive().address());
    assert_eq!(secret.derive().address(), account.keys.address());
    account.client.api(fns::Me {}).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn session_cookie_is_strict_http_only_and_new_at_each_login() {
    let server = TestServer::start().await;
    let mut account = sign_up(&server, "Bo", Role::Patient).await;
    let first = sign_in_raw(&server, &account.client, &mut account.device).await;
    let second = sign_in_raw(&server, &account.client, &mut account.device).await;
    let (a, b) = (&first.set_cookie[0], &second.set_cookie[0]);
    for cookie in [a, b] {
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Strict"), "{cookie}");
        assert!(cookie.contains("Path=/"), "{cookie}");
        assert!(!cookie.contains("Secure"), "plain http on localhost: {cookie}");
    }
    assert_ne!(a.split(';').next(), b.split(';').next(), "a new session id at each login");
    // The replaced session no longer exists: one for sign-up was replaced twice.
    assert_eq!(server.counts().await.2, 1);
    server.stop().await;
}

#[tokio::test]
async fn protected_functions_answer_401_without_a_session() {
    let server = TestServer::start().await;
    let client = server.client();
    let none = chartkey_core::value::Signature([0; 65]);
    unauthorized("me", client.api(fns::Me {}).await);
    unauthorized("recovery/confirmed", client.api(fns::ConfirmRecovery {}).await);
    unauthorized("passkeys/list", client.api(fns::ListPasskeys {}).await);
    unauthorized("passkeys/add/start", client.api(fns::AddPasskeyStart {}).await);
    let finish = fns::AddPasskeyFinishBody {
        ceremony_id: "x".into(),
        credential: webauthn_json(&json!({})),
        passkey_label: "p".into(),
        sealed_keystore: some_keystore(),
        uses_passphrase: false,
        signature: none,
    };
    unauthorized("passkeys/add/finish", client.api(fns::AddPasskeyFinish { finish }).await);
    unauthorized("passkeys/remove/start", client.api(fns::RemovePasskeyStart { credential_id: "x".into() }).await);
    let remove = fns::RemovePasskey { ceremony_id: "x".into(), credential_id: "x".into(), signature: none };
    unauthorized("passkeys/remove", client.api(remove).await);
    let address = "0x0000000000000000000000000000000000000001".parse().unwrap();
    unauthorized("directory/lookup", client.api(fns::DirectoryLookup { address }).await);
    server.stop().await;
}

#[tokio::test]
async fn replayed_assertion_is_refused_without_state_change() {
    let server = TestServer::start().await;
    let mut account = sign_up(&server, "Cy", Role::Patient).await;
    let start = account.client.api(fns::LoginStart {}).await.unwrap();
    let assertion = account.device.assert(&server.origin, webauthn_options(&start.options));
    let finish = fns::LoginFinishBody { ceremony_id: start.ceremony_id, credential: webauthn_json(&assertion) };
    account.client.api(fns::LoginFinish { finish: finish.clone() }).await.unwrap();
    let before = server.counts().await;

    // Same ceremony again: already used.
    let again = account.client.api(fns::LoginFinish { finish }).await;
    assert!(bad_request(again).contains("already used"));

    // The old answer against a fresh challenge: signature over the wrong challenge.
    let fresh = account.client.api(fns::LoginStart {}).await.unwrap();
    let finish = fns::LoginFinishBody { ceremony_id: fresh.ceremony_id, credential: webauthn_json(&assertion) };
    forbidden(account.client.api(fns::LoginFinish { finish }).await);
    assert_eq!(server.counts().await, before);
    server.stop().await;
}

#[tokio::test]
async fn forged_assertion_is_refused_without_state_change() {
    let server = TestServer::start().await;
    let mut account = sign_up(&server, "Di", Role::Patient).await;
    account.client.api(fns::Logout {}).await.unwrap();
    let before = server.counts().await;
    let last_used = server.query_one("SELECT last_used_at FROM passkeys").await;

    let start = account.client.api(fns::LoginStart {}).await.unwrap();
    let mut assertion = account.device.assert(&server.origin, webauthn_options(&start.options));
    let sig = &mut assertion.response.signature;
    let mid = sig.len() / 2;
    sig[mid] ^= 0x01;
    let finish = fns::LoginFinishBody { ceremony_id: start.ceremony_id, credential: webauthn_json(&assertion) };
    // Raw: no session cookie may be set, which only the headers show.
    let forged = account.client.call("login/finish", json!({ "finish": finish })).await;
    assert_eq!(forged.status, 403, "{:?}", forged.body);
    assert!(forged.body["Forbidden"].as_str().unwrap().contains("could not be verified"));
    assert!(forged.set_cookie.is_empty());
    assert_eq!(server.counts().await, before);
    assert_eq!(server.query_one("SELECT last_used_at FROM passkeys").await, last_used);
    assert_eq!(account.client.api(fns::Me {}).await, Err(ApiError::Unauthorized));
    server.stop().await;
}

#[tokio::test]
async fn expired_challenge_is_refused() {
    let server = TestServer::start_with(|c| c.ceremony_ttl = std::time::Duration::from_millis(300)).await;
    let client = server.client();
    let start = client.api(fns::SignupStart { display_name: "Ed".into(), role: Role::Patient }).await.unwrap();
    let mut device = Device::new();
    let credential = device.register(&server.origin, webauthn_options(&start.options));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let secret = chartkey_core::AccountSecret::generate(&mut rand::rngs::OsRng);
    let finish = patient_signup(start.ceremony_id, &device, &credential, &secret);
    let finish = client.api(fns::SignupFinish { finish }).await;
    assert!(bad_request(finish).contains("expired"));
    assert_eq!(server.counts().await, (0, 0, 0));
    server.stop().await;
}

#[tokio::test]
async fn unknown_credential_is_refused() {
    let server = TestServer::start().await;
    let _someone = sign_up(&server, "Fay", Role::Patient).await;
    // A passkey created for this site but never registered (its sign-up was
    // never finished).
    let stranger = server.client();
    let start = stranger.api(fns::SignupStart { display_name: "Gus".into(), role: Role::Patient }).await.unwrap();
    let mut device = Device::new();
    device.register(&server.origin, webauthn_options(&start.options));
    let before = server.counts().await;
    let answer = sign_in(&server, &stranger, &mut device).await;
    assert!(forbidden(answer).contains("not registered"));
    assert_eq!(server.counts().await, before);
    server.stop().await;
}

#[tokio::test]
async fn oversized_body_is_refused() {
    let server = TestServer::start().await;
    let client = server.client();
    let huge = "x".repeat(200 * 1024);
    // Raw: the body limit answers 413 before the server function, with no
    // `ApiError` to read.
    let answer = client.call("signup/start", json!({"display_name": huge, "role": "patient"})).await;
    assert_eq!(answer.status, 413);
    assert_eq!(server.counts().await, (0, 0, 0));
    // Within the limit but too long a name: a clear 400.
    let answer = client.api(fns::SignupStart { display_name: "x".repeat(81), role: Role::Patient }).await;
    assert!(bad_request(answer).contains("at most 80 characters"));
    server.stop().await;
}

#[tokio::test]
async fn malformed_arguments_get_a_clear_400() {
    let server = TestServer::start().await;
    let client = server.client();
    // Raw: a missing field, a number for a name, a role that is none.
    for body in [json!({}), json!({"display_name": 5, "role": "patient"}), json!({"display_name": "a", "role": "king"})]
    {
        let answer = client.call("signup/start", body).await;
        assert_eq!(answer.status, 400, "{:?}", answer.body);
    }
    // A credential that is JSON but not a WebAuthn credential.
    let start = client.api(fns::LoginStart {}).await.unwrap();
    let finish =
        fns::LoginFinishBody { ceremony_id: start.ceremony_id, credential: webauthn_json(&json!({"nope": 1})) };
    let answer = client.api(fns::LoginFinish { finish }).await;
    assert!(bad_request(answer).contains("malformed"));
    let raw = client
        .http
        .post(format!("{}/api/login/finish", server.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    assert_eq!(server.counts().await, (0, 0, 0));
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
    let start = || fns::SignupStart { display_name: "K".into(), role: Role::Patient };
    for _ in 0..3 {
        client.api(start()).await.unwrap();
    }
    let limited = client.api(start()).await;
    assert!(matches!(limited, Err(ApiError::RateLimited)), "{limited:?}");
    for _ in 0..2 {
        client.api(fns::LoginStart {}).await.unwrap();
    }
    let limited = client.api(fns::LoginStart {}).await;
    assert!(matches!(limited, Err(ApiError::RateLimited)), "{limited:?}");
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
    let mut finish = async |entry: chartkey_core::directory::DirectoryEntry, keystore: Option<SealedKeystore>| {
        let start = client.api(fns::SignupStart { display_name: "Lu".into(), role: Role::Patient }).await.unwrap();
        let credential = device.register(&server.origin, webauthn_options(&start.options));
        let finish = fns::SignupFinishBody {
            ceremony_id: start.ceremony_id,
            credential: webauthn_json(&credential),
            passkey_label: "p".into(),
            sealed_keystore: keystore.unwrap_or_else(|| device.seal(&secret)),
            uses_passphrase: false,
            directory: entry,
            ledger_registration: None,
        };
        client.api(fns::SignupFinish { finish }).await
    };
    let answer = finish(entry, None).await;
    assert!(bad_request(answer).contains("public keys were refused"));

    // A role other than the one chosen at the start.
    let entry = chartkey_core::directory::DirectoryEntry::sign(&secret.derive(), Role::CredentialingAuthority);
    let answer = finish(entry, None).await;
    let message = bad_request(answer);
    assert!(message.contains("different role"), "{message}");

    // A key store that is not one: 32 bytes "sealed" without a tag (a
    // secret in the clear), and text where a key store goes.
    let entry = chartkey_core::directory::DirectoryEntry::sign(&secret.derive(), Role::Patient);
    let mut clear = some_keystore();
    clear.ciphertext = vec![7; 32];
    let message = bad_request(finish(entry, Some(clear)).await);
    assert!(message.contains("key store is malformed"), "{message}");
    let start = client.api(fns::SignupStart { display_name: "Lu".into(), role: Role::Patient }).await.unwrap();
    // Raw: a string where the browser always sends a key store.
    let text = client
        .call(
            "signup/finish",
            json!({ "finish": { "ceremony_id": start.ceremony_id, "credential": {},
            "passkey_label": "p", "sealed_keystore": "my secret in the clear", "uses_passphrase": false,
            "directory": chartkey_core::directory::DirectoryEntry::sign(&secret.derive(), Role::Patient) } }),
        )
        .await;
    assert_eq!(text.status, 400, "{:?}", text.body);
    assert_eq!(server.counts().await, (0, 0, 0));
    server.stop().await;
}

#[tokio::test]
async fn directory_lookup_returns_entries_that_verify() {
    let server = TestServer::start().await;
    let patient = sign_up(&server, "Ned", Role::Patient).await;
    let clinician = sign_up(&server, "Dr Ola", Role::Clinician).await;
    let address = ethers_core::utils::to_checksum(&clinician.keys.address(), None);
    let answer = patient.client.api(lookup(clinician.keys.address())).await.unwrap();
    assert_eq!(answer.display_name, "Dr Ola");
    let verified = answer.entry.verify().unwrap();
    assert_eq!(verified.encryption_key, clinician.keys.encryption_public());
    assert_eq!(verified.role, Role::Clinician);

    // The ledger is the source of truth: an entry it does not confirm is not served.
    let db = server.db().await;
    let other = other_keys();
    let other_key = format!("0x{}", hex::encode(other.encryption_public()));
    let stored = format!("{:#x}", clinician.keys.address());
    assert_eq!(
        db.execute("UPDATE accounts SET encryption_key = $1 WHERE address = $2", &[&other_key, &stored]).await,
        1
    );
    let answer = patient.client.api(fns::DirectoryLookup { address: address.parse().unwrap() }).await;
    assert!(matches!(answer, Err(ApiError::Conflict(_))), "a key the ledger does not know: {answer:?}");
    let unregistered = chartkey_core::directory::DirectoryEntry::sign(&other, Role::Clinician);
    let row =
        [unregistered.address.to_string(), unregistered.encryption_key.to_string(), unregistered.signature.to_string()];
    db.execute(
        "INSERT INTO accounts (id, display_name, role, address, encryption_key, directory_signature, created_at)
         VALUES ('x', 'Nobody', 'clinician', $1, $2, $3, 0)",
        &[&row[0], &row[1], &row[2]],
    )
    .await;
    let answer = patient.client.api(fns::DirectoryLookup { address: unregistered.address }).await;
    assert!(not_found(answer).contains("not registered on the ledger"), "not on the ledger");
    server.stop().await;
}

#[tokio::test]
async fn recovery_confirmation_is_recorded() {
    let server = TestServer::start().await;
    let account = sign_up(&server, "Pia", Role::Verifier).await;
    let answer = account.client.api(fns::ConfirmRecovery {}).await.unwrap();
    assert!(answer.recovery_confirmed);
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
        verified_parties(&server, "Priya Private", "Dr Counterpart").await;
    let stranger_clinician = sign_up(&server, "Dr Stranger", Role::Clinician).await;
    let other_patient = sign_up(&server, "Curious Neighbour", Role::Patient).await;
    let verifier = sign_up(&server, "Nosy Insurer", Role::Verifier).await;
    let patient_address = patient.keys.address();
    let of_patient = || lookup(patient_address);

    for outsider in [&clinician, &stranger_clinician, &other_patient, &verifier, &authority] {
        let message = not_found(outsider.client.api(of_patient()).await);
        assert!(!message.contains("Priya"), "{message}");
    }
    let own = patient.client.api(of_patient()).await.unwrap();
    assert_eq!(own.display_name, "Priya Private");
    // Clinicians, authorities and verifiers are public.
    for public in [&clinician, &authority, &verifier] {
        other_patient.client.api(lookup(public.keys.address())).await.unwrap();
    }

    // Once the patient shares with a clinician, that clinician knows whose
    // chart it is; the others still do not.
    let grant = everything(&patient.keys, &clinician.keys, 0);
    share_approved(&server, &mut patient, &grant, vec![]).await.unwrap();
    let counterpart = clinician.client.api(of_patient()).await.unwrap();
    assert_eq!(counterpart.display_name, "Priya Private");
    not_found(stranger_clinician.client.api(of_patient()).await);
    not_found(other_patient.client.api(of_patient()).await);
    server.stop().await;
}
