//! Passkey management and restore: a session alone cannot add or remove a
//! passkey, restore reveals nothing before the proof, and a removed
//! passkey's sessions end.

mod common;

use chartkey_core::role::Role;
use chartkey_core::value::{Hash32, Signature};
use common::*;
use serde_json::{Value, json};

fn credential_ids(list: &[fns::PasskeyInfo]) -> Vec<String> {
    list.iter().map(|k| k.credential_id.clone()).collect()
}

fn forbidden<T: std::fmt::Debug>(answer: &Result<T, ApiError>) -> bool {
    matches!(answer, Err(ApiError::Forbidden(_)))
}

fn bad_request<T: std::fmt::Debug>(answer: &Result<T, ApiError>) -> bool {
    matches!(answer, Err(ApiError::BadRequest(_)))
}

#[tokio::test]
async fn adding_a_passkey_needs_the_account_key_not_just_a_session() {
    let server = TestServer::start().await;
    let account = sign_up(&server, "Hal", Role::Clinician).await;
    let (forged, _) = add_passkey(&server, &account, &other_keys()).await;
    assert!(forbidden(&forged), "{forged:?}");
    assert_eq!(server.counts().await.1, 1);

    let (added, second) = add_passkey(&server, &account, &account.keys).await;
    added.unwrap();
    assert_eq!(server.counts().await.1, 2);

    // The second passkey signs in and unseals the same secret.
    let mut second = second;
    let login = sign_in(&server, &account.client, &mut second).await.unwrap();
    let sealed = login.sealed_keystore;
    assert_eq!(sealed.unseal_with_prf(&second.prf).unwrap(), account.secret);
    assert_eq!(login.account.idle_lock_secs, Some(900));
    server.stop().await;
}

#[tokio::test]
async fn removing_needs_the_key_and_spares_the_last_and_current_passkey() {
    let server = TestServer::start().await;
    let account = sign_up(&server, "Ivy", Role::Patient).await;
    let list = account.client.api(fns::ListPasskeys {}).await.unwrap();
    let first = credential_ids(&list)[0].clone();
    assert!(list[0].in_use);

    // Only one passkey: refused, even with the right key.
    let answer = remove_passkey(&account, &first, &account.keys).await;
    assert!(matches!(answer, Err(ApiError::Conflict(_))), "{answer:?}");

    let (added, mut second) = add_passkey(&server, &account, &account.keys).await;
    let added = added.unwrap();
    let second_id = added.credential_id.clone();
    assert!(!added.in_use);

    // The passkey this session signed in with cannot be removed from it.
    let answer = remove_passkey(&account, &first, &account.keys).await;
    match &answer {
        Err(ApiError::Conflict(message)) => assert!(message.contains("signed in with this passkey"), "{message}"),
        other => panic!("expected Conflict: {other:?}"),
    }

    // A signature by another key is refused.
    let answer = remove_passkey(&account, &second_id, &other_keys()).await;
    assert!(forbidden(&answer), "{answer:?}");
    assert_eq!(server.counts().await.1, 2);

    // Sign in with the second passkey on another browser, then remove it
    // from the first: that other session ends at once.
    let elsewhere = server.client();
    sign_in(&server, &elsewhere, &mut second).await.unwrap();
    elsewhere.api(fns::Me {}).await.unwrap();
    remove_passkey(&account, &second_id, &account.keys).await.unwrap();
    assert_eq!(elsewhere.api(fns::Me {}).await, Err(ApiError::Unauthorized));
    account.client.api(fns::Me {}).await.unwrap();
    assert_eq!(server.counts().await.1, 1);
    server.stop().await;
}

/// Finding 12 of the security review: a removal signature is bound to a
/// single-use server challenge, so a captured one cannot be sent again.
#[tokio::test]
async fn a_removal_signature_works_once_for_its_own_challenge() {
    let server = TestServer::start().await;
    let account = sign_up(&server, "Una", Role::Patient).await;
    let (added, _) = add_passkey(&server, &account, &account.keys).await;
    let second = added.unwrap().credential_id;
    let start = |id: String| {
        let client = &account.client;
        async move { client.api(fns::RemovePasskeyStart { credential_id: id }).await.unwrap() }
    };
    let signed = |challenge: &str, id: &str| {
        let message = chartkey_core::proof::remove_passkey_message(&account.keys.address(), challenge, id);
        chartkey_core::proof::sign_message(&account.keys, &message)
    };
    let send = |ceremony: &str, id: &str, signature: &Signature| {
        let body = fns::RemovePasskey { ceremony_id: ceremony.into(), credential_id: id.into(), signature: *signature };
        account.client.api(body)
    };

    // A signature over one challenge, sent with another ceremony: refused.
    let first = start(second.clone()).await;
    let signature = signed(&first.challenge, &second);
    let other = start(second.clone()).await;
    assert!(forbidden(&send(&other.ceremony_id, &second, &signature).await));
    // The ceremony is spent by that attempt; the right signature is then too late.
    let again = send(&other.ceremony_id, &second, &signed(&other.challenge, &second)).await;
    assert!(bad_request(&again), "{again:?}");
    // A ceremony started for one passkey removes no other.
    let ids = credential_ids(&account.client.api(fns::ListPasskeys {}).await.unwrap());
    let first_id = ids.into_iter().find(|id| *id != second).unwrap();
    let wrong = send(&first.ceremony_id, &first_id, &signed(&first.challenge, &first_id)).await;
    assert!(bad_request(&wrong), "{wrong:?}");
    assert_eq!(server.counts().await.1, 2, "nothing removed");
    // Fresh and matching: removed, once.
    let fresh = start(second.clone()).await;
    let signature = signed(&fresh.challenge, &second);
    send(&fresh.ceremony_id, &second, &signature).await.unwrap();
    assert!(bad_request(&send(&fresh.ceremony_id, &second, &signature).await));
    assert_eq!(server.counts().await.1, 1);

    // Another account cannot finish this account's removal ceremony.
    let (added, _) = add_passkey(&server, &account, &account.keys).await;
    let third = added.unwrap().credential_id;
    let started = start(third.clone()).await;
    let other = sign_up(&server, "Vic", Role::Patient).await;
    let body = fns::RemovePasskey {
        ceremony_id: started.ceremony_id.clone(),
        credential_id: third.clone(),
        signature: signed(&started.challenge, &third),
    };
    assert!(forbidden(&other.client.api(body).await));
    assert_eq!(server.counts().await.1, 3, "both of Una's passkeys and Vic's stay");
    server.stop().await;
}

#[tokio::test]
async fn removing_someone_elses_passkey_is_refused() {
    let server = TestServer::start().await;
    let a = sign_up(&server, "Ida", Role::Patient).await;
    let b = sign_up(&server, "Jo", Role::Patient).await;
    let b_key = credential_ids(&b.client.api(fns::ListPasskeys {}).await.unwrap())[0].clone();
    // Refused when the removal starts: no ceremony for a passkey not one's own.
    let start = a.client.api(fns::RemovePasskeyStart { credential_id: b_key }).await;
    assert!(matches!(start, Err(ApiError::NotFound(_))), "{start:?}");
    assert_eq!(server.counts().await.1, 2);
    server.stop().await;
}

#[tokio::test]
async fn another_accounts_add_ceremony_cannot_be_finished() {
    let server = TestServer::start().await;
    let a = sign_up(&server, "Kai", Role::Patient).await;
    let b = sign_up(&server, "Lee", Role::Patient).await;
    let start = a.client.api(fns::AddPasskeyStart {}).await.unwrap();
    let mut device = Device::new();
    let credential = device.register(&server.origin, webauthn_options(&start.options));
    let finish = fns::AddPasskeyFinishBody {
        ceremony_id: start.ceremony_id,
        credential: webauthn_json(&credential),
        passkey_label: "x".into(),
        sealed_keystore: device.seal(&b.secret),
        uses_passphrase: false,
        signature: Signature([0; 65]),
    };
    let answer = b.client.api(fns::AddPasskeyFinish { finish }).await;
    match &answer {
        Err(ApiError::Forbidden(message)) => assert!(message.contains("another account"), "{message}"),
        other => panic!("expected Forbidden: {other:?}"),
    }
    assert_eq!(server.counts().await.1, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_login_ceremony_cannot_finish_a_sign_up() {
    let server = TestServer::start().await;
    let client = server.client();
    let login = client.api(fns::LoginStart {}).await.unwrap();
    let signup = client.api(fns::SignupStart { display_name: "Mo".into(), role: Role::Patient }).await.unwrap();
    let mut device = Device::new();
    let credential = device.register(&server.origin, webauthn_options(&signup.options));
    let secret = chartkey_core::AccountSecret::generate(&mut rand::rngs::OsRng);
    let finish = patient_signup(login.ceremony_id, &device, &credential, &secret);
    let answer = client.api(fns::SignupFinish { finish }).await;
    match &answer {
        Err(ApiError::BadRequest(message)) => assert!(message.contains("does not belong to a sign-up"), "{message}"),
        other => panic!("expected BadRequest: {other:?}"),
    }
    assert_eq!(server.counts().await, (0, 0, 0));
    server.stop().await;
}

#[tokio::test]
async fn a_user_handle_that_does_not_own_the_credential_is_refused() {
    let server = TestServer::start().await;
    let mut a = sign_up(&server, "Ned", Role::Patient).await;
    let b = sign_up(&server, "Oli", Role::Patient).await;
    // A's passkey, claiming to be B's account.
    let b_handle = server.query_one(&format!("SELECT id FROM accounts WHERE id = '{}'", b.account_id)).await;
    assert!(b_handle.contains(&b.account_id));
    a.device.user_handle = Some(uuid::Uuid::parse_str(&b.account_id).unwrap().as_bytes().to_vec());
    let client = server.client();
    let answer = sign_in(&server, &client, &mut a.device).await;
    assert!(forbidden(&answer), "{answer:?}");
    assert_eq!(client.api(fns::Me {}).await, Err(ApiError::Unauthorized));
    server.stop().await;
}

#[tokio::test]
async fn restore_reveals_nothing_before_the_proof_and_adds_a_passkey_after() {
    let server = TestServer::start().await;
    let original = sign_up(&server, "Max", Role::Patient).await;
    let phrase = chartkey_core::recovery::phrase_for(&original.secret);
    let secret = chartkey_core::recovery::secret_from_phrase(&phrase).unwrap();
    let keys = secret.derive();
    let address = ethers_core::utils::to_checksum(&keys.address(), None);
    let client = server.client();

    // Step 1 answers the same for an account that exists and one that does not.
    // Raw: the check is on every field the answer carries, beyond the type.
    let start = client.call("restore/start", json!({"address": address})).await;
    assert_eq!(start.status, 200, "{:?}", start.body);
    let fields: Vec<&String> = start.body.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["ceremony_id", "challenge"]);
    assert!(!start.body.to_string().contains("Max"));
    let nobody = ethers_core::utils::to_checksum(&other_keys().address(), None);
    let unknown = client.api(fns::RestoreStart { address: nobody.parse().unwrap() }).await.unwrap();
    // Raw: not an address.
    assert_eq!(client.call("restore/start", json!({"address": "not an address"})).await.status, 400);

    // A wrong key gets no options.
    let ceremony_id = start.body["ceremony_id"].as_str().unwrap().to_owned();
    let message = chartkey_core::proof::restore_message(&keys.address(), start.body["challenge"].as_str().unwrap());
    let forged = chartkey_core::proof::sign_message(&other_keys(), &message);
    let proof = fns::RestoreProofBody { ceremony_id: ceremony_id.clone(), signature: forged };
    let answer = client.api(fns::RestoreOptions { proof }).await;
    assert!(forbidden(&answer), "{answer:?}");
    // The ceremony was used up by the failed attempt.
    let genuine = chartkey_core::proof::sign_message(&keys, &message);
    let answer =
        client.api(fns::RestoreOptions { proof: fns::RestoreProofBody { ceremony_id, signature: genuine } }).await;
    assert!(bad_request(&answer), "{answer:?}");

    // An address with no account: refused in the same words as a bad proof.
    let message = chartkey_core::proof::restore_message(&nobody.parse().unwrap(), &unknown.challenge);
    let proof = fns::RestoreProofBody {
        ceremony_id: unknown.ceremony_id,
        signature: chartkey_core::proof::sign_message(&keys, &message),
    };
    let answer = client.api(fns::RestoreOptions { proof }).await;
    assert!(forbidden(&answer), "{answer:?}");

    // The genuine path.
    let start = client.api(fns::RestoreStart { address: address.parse().unwrap() }).await.unwrap();
    let message = chartkey_core::proof::restore_message(&keys.address(), &start.challenge);
    let proof = fns::RestoreProofBody {
        ceremony_id: start.ceremony_id,
        signature: chartkey_core::proof::sign_message(&keys, &message),
    };
    let options = client.api(fns::RestoreOptions { proof }).await.unwrap();
    let mut device = Device::new();
    let credential = device.register(&server.origin, webauthn_options(&options.options));
    let finish = fns::RestoreFinishBody {
        ceremony_id: options.ceremony_id,
        credential: webauthn_json(&credential),
        passkey_label: "New phone".into(),
        sealed_keystore: device.seal(&secret),
        uses_passphrase: false,
    };
    let restored = client.api(fns::RestoreFinish { finish }).await.unwrap();
    assert_eq!(restored.account_id, original.account_id);
    assert_eq!(server.counts().await.1, 2);

    client.api(fns::Logout {}).await.unwrap();
    let login = sign_in(&server, &client, &mut device).await.unwrap();
    assert_eq!(login.account.directory.address.to_string(), address.to_lowercase(), "one stored form");
    server.stop().await;
}

#[tokio::test]
async fn clinician_sessions_expire_when_idle_on_the_server_too() {
    // The patient signs up first: on a loaded machine a sign-up can take
    // longer than the clinician's idle lock, which must not run out before
    // the first check.
    let server = TestServer::start_with(|c| c.clinician_idle_lock = std::time::Duration::from_secs(2)).await;
    let patient = sign_up(&server, "Quinn", Role::Patient).await;
    let clinician = sign_up(&server, "Dr Pi", Role::Clinician).await;
    clinician.client.api(fns::Me {}).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    assert_eq!(clinician.client.api(fns::Me {}).await, Err(ApiError::Unauthorized));
    patient.client.api(fns::Me {}).await.unwrap();
    server.stop().await;
}

/// Finding 11: an approval was bound to its message only in the server's
/// memory. Its WebAuthn challenge is now SHA-256(label ‖ EIP-712 digest ‖
/// nonce): the browser checks it before asking for the passkey, and the
/// assertion, kept with the digest, proves by itself what was approved.
#[tokio::test]
async fn an_approval_names_its_message_in_the_assertion() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use common::records::*;
    let server = TestServer::start().await;
    let Parties { mut patient, clinician, domain, .. } =
        verified_parties(&server, "Approving Patient", "Dr Approved").await;
    let grant = everything(&patient.keys, &clinician.keys, 0);
    let digest = domain.digest(&grant);
    let start = patient.client.api(fns::ApprovalsStart { digest: Hash32(digest) }).await.unwrap();
    let nonce: [u8; 32] = start.nonce.0;
    let challenge = chartkey_core::proof::approval_challenge(&digest, &nonce);
    let options = webauthn_options(&start.options);
    assert_eq!(options["publicKey"]["challenge"], URL_SAFE_NO_PAD.encode(challenge));
    let credential = patient.device.assert(&server.origin, options);
    let approval = fns::Approval { ceremony_id: start.ceremony_id.clone(), credential: webauthn_json(&credential) };
    share(&patient.client, &domain, &patient.keys, &grant, vec![], approval).await.unwrap();

    // What is kept: the assertion whose signed client data names the challenge.
    let kept = server
        .db()
        .await
        .rows(&format!("SELECT nonce, assertion FROM approvals WHERE digest = '0x{}'", hex::encode(digest)))
        .await;
    let [kept_nonce, kept_assertion] = <[String; 2]>::try_from(kept[0].clone()).unwrap();
    assert_eq!(kept_nonce, start.nonce.to_string());
    let assertion: Value = serde_json::from_str(&kept_assertion).unwrap();
    let client_data = URL_SAFE_NO_PAD.decode(assertion["response"]["clientDataJSON"].as_str().unwrap()).unwrap();
    let client_data: Value = serde_json::from_slice(&client_data).unwrap();
    assert_eq!(client_data["challenge"], URL_SAFE_NO_PAD.encode(challenge));
    assert_eq!(client_data["type"], "webauthn.get");

    // An assertion over another challenge (a forged or replayed one) is refused.
    let other = everything(&patient.keys, &clinician.keys, 1);
    let start = patient.client.api(fns::ApprovalsStart { digest: Hash32(domain.digest(&other)) }).await.unwrap();
    let mut options = webauthn_options(&start.options);
    options["publicKey"]["challenge"] = json!(URL_SAFE_NO_PAD.encode([9u8; 32]));
    let credential = patient.device.assert(&server.origin, options);
    let approval = fns::Approval { ceremony_id: start.ceremony_id, credential: webauthn_json(&credential) };
    let refused = share(&patient.client, &domain, &patient.keys, &other, vec![], approval).await;
    assert!(forbidden(&refused), "{refused:?}");
    server.stop().await;
}
