//! Passkey management and restore: a session alone cannot add or remove a
//! passkey, restore reveals nothing before the proof, and a removed
//! passkey's sessions end.

mod common;

use chartkey_core::keystore::SealedKeystore;
use chartkey_core::role::Role;
use common::*;
use serde_json::{Value, json};

fn credential_ids(list: &Answer) -> Vec<String> {
    list.body.as_array().unwrap().iter().map(|k| k["credential_id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn adding_a_passkey_needs_the_account_key_not_just_a_session() {
    let server = TestServer::start().await;
    let account = sign_up(&server, "Hal", Role::Clinician).await;
    let (forged, _) = add_passkey(&server, &account, &other_keys()).await;
    assert_eq!(forged.status, 403, "{:?}", forged.body);
    assert_eq!(server.counts().1, 1);

    let (added, second) = add_passkey(&server, &account, &account.keys).await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    assert_eq!(server.counts().1, 2);

    // The second passkey signs in and unseals the same secret.
    let mut second = second;
    let login = sign_in(&server, &account.client, &mut second).await;
    assert_eq!(login.status, 200);
    let sealed = SealedKeystore::from_json(login.body["sealed_keystore"].as_str().unwrap()).unwrap();
    assert_eq!(sealed.unseal_with_prf(&second.prf).unwrap(), account.secret);
    assert_eq!(login.body["account"]["idle_lock_secs"], 900);
    server.stop().await;
}

#[tokio::test]
async fn removing_needs_the_key_and_spares_the_last_and_current_passkey() {
    let server = TestServer::start().await;
    let account = sign_up(&server, "Ivy", Role::Patient).await;
    let list = account.client.call("passkeys/list", json!({})).await;
    let first = credential_ids(&list)[0].clone();
    assert_eq!(list.body[0]["in_use"], true);

    // Only one passkey: refused, even with the right key.
    let answer = remove_passkey(&account, &first, &account.keys).await;
    assert_eq!(answer.status, 409, "{:?}", answer.body);

    let (added, mut second) = add_passkey(&server, &account, &account.keys).await;
    let second_id = added.body["credential_id"].as_str().unwrap().to_owned();
    assert_eq!(added.body["in_use"], false);

    // The passkey this session signed in with cannot be removed from it.
    let answer = remove_passkey(&account, &first, &account.keys).await;
    assert_eq!(answer.status, 409);
    assert!(answer.body["Conflict"].as_str().unwrap().contains("signed in with this passkey"));

    // A signature by another key is refused.
    let answer = remove_passkey(&account, &second_id, &other_keys()).await;
    assert_eq!(answer.status, 403);
    assert_eq!(server.counts().1, 2);

    // Sign in with the second passkey on another browser, then remove it
    // from the first: that other session ends at once.
    let elsewhere = server.client();
    assert_eq!(sign_in(&server, &elsewhere, &mut second).await.status, 200);
    assert_eq!(elsewhere.call("me", json!({})).await.status, 200);
    assert_eq!(remove_passkey(&account, &second_id, &account.keys).await.status, 200);
    assert_eq!(elsewhere.call("me", json!({})).await.status, 401);
    assert_eq!(account.client.call("me", json!({})).await.status, 200);
    assert_eq!(server.counts().1, 1);
    server.stop().await;
}

/// Finding 12 of the security review: a removal signature is bound to a
/// single-use server challenge, so a captured one cannot be sent again.
#[tokio::test]
async fn a_removal_signature_works_once_for_its_own_challenge() {
    let server = TestServer::start().await;
    let account = sign_up(&server, "Una", Role::Patient).await;
    let (added, _) = add_passkey(&server, &account, &account.keys).await;
    let second = added.body["credential_id"].as_str().unwrap().to_owned();
    let start = |id: String| {
        let client = &account.client;
        async move { client.call("passkeys/remove/start", json!({ "credential_id": id })).await.body }
    };
    let signed = |challenge: &Value, id: &str| {
        let message =
            chartkey_core::proof::remove_passkey_message(&account.keys.address(), challenge.as_str().unwrap(), id);
        chartkey_core::proof::sign_message(&account.keys, &message)
    };
    let send = |ceremony: &Value, id: &str, signature: &chartkey_core::value::Signature| {
        let body = json!({ "ceremony_id": ceremony, "credential_id": id, "signature": signature });
        account.client.call("passkeys/remove", body)
    };

    // A signature over one challenge, sent with another ceremony: refused.
    let first = start(second.clone()).await;
    let signature = signed(&first["challenge"], &second);
    let other = start(second.clone()).await;
    assert_eq!(send(&other["ceremony_id"], &second, &signature).await.status, 403);
    // The ceremony is spent by that attempt; the right signature is then too late.
    let again = send(&other["ceremony_id"], &second, &signed(&other["challenge"], &second)).await;
    assert_eq!(again.status, 400, "{:?}", again.body);
    // A ceremony started for one passkey removes no other.
    let ids = credential_ids(&account.client.call("passkeys/list", json!({})).await);
    let first_id = ids.into_iter().find(|id| *id != second).unwrap();
    let wrong = send(&first["ceremony_id"], &first_id, &signed(&first["challenge"], &first_id)).await;
    assert_eq!(wrong.status, 400, "{:?}", wrong.body);
    assert_eq!(server.counts().1, 2, "nothing removed");
    // Fresh and matching: removed, once.
    let fresh = start(second.clone()).await;
    let signature = signed(&fresh["challenge"], &second);
    assert_eq!(send(&fresh["ceremony_id"], &second, &signature).await.status, 200);
    assert_eq!(send(&fresh["ceremony_id"], &second, &signature).await.status, 400);
    assert_eq!(server.counts().1, 1);

    // Another account cannot finish this account's removal ceremony.
    let (added, _) = add_passkey(&server, &account, &account.keys).await;
    let third = added.body["credential_id"].as_str().unwrap().to_owned();
    let started = start(third.clone()).await;
    let other = sign_up(&server, "Vic", Role::Patient).await;
    let body = json!({ "ceremony_id": started["ceremony_id"], "credential_id": third,
        "signature": signed(&started["challenge"], &third) });
    assert_eq!(other.client.call("passkeys/remove", body).await.status, 403);
    assert_eq!(server.counts().1, 3, "both of Una's passkeys and Vic's stay");
    server.stop().await;
}

#[tokio::test]
async fn removing_someone_elses_passkey_is_refused() {
    let server = TestServer::start().await;
    let a = sign_up(&server, "Ida", Role::Patient).await;
    let b = sign_up(&server, "Jo", Role::Patient).await;
    let b_key = credential_ids(&b.client.call("passkeys/list", json!({})).await)[0].clone();
    // Refused when the removal starts: no ceremony for a passkey not one's own.
    let start = a.client.call("passkeys/remove/start", json!({ "credential_id": b_key })).await;
    assert_eq!(start.status, 404, "{:?}", start.body);
    assert_eq!(server.counts().1, 2);
    server.stop().await;
}

#[tokio::test]
async fn another_accounts_add_ceremony_cannot_be_finished() {
    let server = TestServer::start().await;
    let a = sign_up(&server, "Kai", Role::Patient).await;
    let b = sign_up(&server, "Lee", Role::Patient).await;
    let start = a.client.call("passkeys/add/start", json!({})).await;
    let mut device = Device::new();
    let credential = device.register(&server.origin, start.body["options"].clone());
    let answer = b
        .client
        .call(
            "passkeys/add/finish",
            json!({"finish": {"ceremony_id": start.body["ceremony_id"], "credential": credential,
                "passkey_label": "x", "sealed_keystore": device.seal(&b.secret), "uses_passphrase": false,
                "signature": chartkey_core::value::Signature([0; 65])}}),
        )
        .await;
    assert_eq!(answer.status, 403, "{:?}", answer.body);
    assert!(answer.body["Forbidden"].as_str().unwrap().contains("another account"));
    assert_eq!(server.counts().1, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_login_ceremony_cannot_finish_a_sign_up() {
    let server = TestServer::start().await;
    let client = server.client();
    let login = client.call("login/start", json!({})).await;
    let signup = client.call("signup/start", json!({"display_name": "Mo", "role": "patient"})).await;
    let mut device = Device::new();
    let credential = device.register(&server.origin, signup.body["options"].clone());
    let secret = chartkey_core::AccountSecret::generate(&mut rand::rngs::OsRng);
    let answer = client
        .call(
            "signup/finish",
            json!({"finish": {"ceremony_id": login.body["ceremony_id"], "credential": credential,
                "passkey_label": "p", "sealed_keystore": device.seal(&secret), "uses_passphrase": false,
                "directory": chartkey_core::directory::DirectoryEntry::sign(&secret.derive(), Role::Patient)}}),
        )
        .await;
    assert_eq!(answer.status, 400, "{:?}", answer.body);
    assert!(answer.body["BadRequest"].as_str().unwrap().contains("does not belong to a sign-up"));
    assert_eq!(server.counts(), (0, 0, 0));
    server.stop().await;
}

#[tokio::test]
async fn a_user_handle_that_does_not_own_the_credential_is_refused() {
    let server = TestServer::start().await;
    let mut a = sign_up(&server, "Ned", Role::Patient).await;
    let b = sign_up(&server, "Oli", Role::Patient).await;
    // A's passkey, claiming to be B's account.
    let b_handle = server.query_one(&format!("SELECT id FROM accounts WHERE id = '{}'", b.account_id));
    assert!(b_handle.contains(&b.account_id));
    a.device.user_handle = Some(uuid::Uuid::parse_str(&b.account_id).unwrap().as_bytes().to_vec());
    let client = server.client();
    let answer = sign_in(&server, &client, &mut a.device).await;
    assert_eq!(answer.status, 403, "{:?}", answer.body);
    assert_eq!(client.call("me", json!({})).await.status, 401);
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
    let start = client.call("restore/start", json!({"address": address})).await;
    assert_eq!(start.status, 200, "{:?}", start.body);
    let fields: Vec<&String> = start.body.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["ceremony_id", "challenge"]);
    assert!(!start.body.to_string().contains("Max"));
    let nobody = ethers_core::utils::to_checksum(&other_keys().address(), None);
    let unknown = client.call("restore/start", json!({"address": nobody})).await;
    assert_eq!(unknown.status, 200);
    assert_eq!(client.call("restore/start", json!({"address": "not an address"})).await.status, 400);

    // A wrong key gets no options.
    let message = chartkey_core::proof::restore_message(&keys.address(), start.body["challenge"].as_str().unwrap());
    let forged = chartkey_core::proof::sign_message(&other_keys(), &message);
    let answer = client
        .call("restore/options", json!({"proof": {"ceremony_id": start.body["ceremony_id"], "signature": forged}}))
        .await;
    assert_eq!(answer.status, 403, "{:?}", answer.body);
    // The ceremony was used up by the failed attempt.
    let genuine = chartkey_core::proof::sign_message(&keys, &message);
    let answer = client
        .call("restore/options", json!({"proof": {"ceremony_id": start.body["ceremony_id"], "signature": genuine}}))
        .await;
    assert_eq!(answer.status, 400);

    // An address with no account: refused in the same words as a bad proof.
    let message =
        chartkey_core::proof::restore_message(&nobody.parse().unwrap(), unknown.body["challenge"].as_str().unwrap());
    let answer = client
        .call(
            "restore/options",
            json!({"proof": {"ceremony_id": unknown.body["ceremony_id"], "signature": chartkey_core::proof::sign_message(&keys, &message)}}),
        )
        .await;
    assert_eq!(answer.status, 403);

    // The genuine path.
    let start = client.call("restore/start", json!({"address": address})).await;
    let message = chartkey_core::proof::restore_message(&keys.address(), start.body["challenge"].as_str().unwrap());
    let options = client
        .call(
            "restore/options",
            json!({"proof": {"ceremony_id": start.body["ceremony_id"], "signature": chartkey_core::proof::sign_message(&keys, &message)}}),
        )
        .await;
    assert_eq!(options.status, 200, "{:?}", options.body);
    let mut device = Device::new();
    let credential = device.register(&server.origin, options.body["options"].clone());
    let restored = client
        .call(
            "restore/finish",
            json!({"finish": {"ceremony_id": options.body["ceremony_id"], "credential": credential,
            "passkey_label": "New phone", "sealed_keystore": device.seal(&secret), "uses_passphrase": false}}),
        )
        .await;
    assert_eq!(restored.status, 200, "{:?}", restored.body);
    assert_eq!(restored.body["account_id"], original.account_id.as_str());
    assert_eq!(server.counts().1, 2);

    client.call("logout", json!({})).await;
    let login = sign_in(&server, &client, &mut device).await;
    assert_eq!(login.status, 200);
    assert_eq!(login.body["account"]["directory"]["address"], address.to_lowercase(), "one stored form");
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
    assert_eq!(clinician.client.call("me", json!({})).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;
    assert_eq!(clinician.client.call("me", json!({})).await.status, 401);
    assert_eq!(patient.client.call("me", json!({})).await.status, 200);
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
        verified_parties(&server, &server.data_dir, "Approving Patient", "Dr Approved").await;
    let grant = everything(&patient.keys, &clinician.keys, 0);
    let digest = domain.digest(&grant);
    let start = patient.client.call("approvals/start", json!({ "digest": format!("0x{}", hex::encode(digest)) })).await;
    assert_eq!(start.status, 200, "{:?}", start.body);
    let nonce: [u8; 32] =
        hex::decode(start.body["nonce"].as_str().unwrap().trim_start_matches("0x")).unwrap().try_into().unwrap();
    let challenge = chartkey_core::proof::approval_challenge(&digest, &nonce);
    assert_eq!(start.body["options"]["publicKey"]["challenge"], URL_SAFE_NO_PAD.encode(challenge));
    let credential = patient.device.assert(&server.origin, start.body["options"].clone());
    let approval = json!({ "ceremony_id": start.body["ceremony_id"], "credential": credential });
    let shared = share(&patient.client, &domain, &patient.keys, &grant, vec![], approval).await;
    assert_eq!(shared.status, 200, "{:?}", shared.body);

    // What is kept: the assertion whose signed client data names the challenge.
    let conn = rusqlite::Connection::open(server.data_dir.join("chartkey.sqlite3")).unwrap();
    let (kept_nonce, kept_assertion): (String, String) = conn
        .query_row(
            "SELECT nonce, assertion FROM approvals WHERE digest = ?1",
            [format!("0x{}", hex::encode(digest))],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(kept_nonce, start.body["nonce"].as_str().unwrap());
    let assertion: Value = serde_json::from_str(&kept_assertion).unwrap();
    let client_data = URL_SAFE_NO_PAD.decode(assertion["response"]["clientDataJSON"].as_str().unwrap()).unwrap();
    let client_data: Value = serde_json::from_slice(&client_data).unwrap();
    assert_eq!(client_data["challenge"], URL_SAFE_NO_PAD.encode(challenge));
    assert_eq!(client_data["type"], "webauthn.get");

    // An assertion over another challenge (a forged or replayed one) is refused.
    let other = everything(&patient.keys, &clinician.keys, 1);
    let start = patient
        .client
        .call("approvals/start", json!({ "digest": format!("0x{}", hex::encode(domain.digest(&other))) }))
        .await;
    let mut options = start.body["options"].clone();
    options["publicKey"]["challenge"] = json!(URL_SAFE_NO_PAD.encode([9u8; 32]));
    let credential = patient.device.assert(&server.origin, options);
    let approval = json!({ "ceremony_id": start.body["ceremony_id"], "credential": credential });
    let refused = share(&patient.client, &domain, &patient.keys, &other, vec![], approval).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    server.stop().await;
}
