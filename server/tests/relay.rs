//! The relayer through the portal's API: a signed-in account relays the
//! messages it signed, refusals come back in words. (A server killed with
//! SIGKILL while relaying: tests/restart.rs.)

mod common;

use chartkey_core::eip712::{Access, IssueCredential, LedgerMessage, Register, Revoke, RevokeCredential, bytes32_text};
use chartkey_core::envelope::RecordId;
use chartkey_core::records::AnchoredRecord;
use chartkey_core::role::Role;
use chartkey_ledger::abi::ChartkeyDirectory;
use chartkey_ledger::convert::to_alloy;
use common::chain::Chain;
use common::records::{everything, now, share_approved};
use common::*;
use ethers_core::types::U256;
use serde_json::json;

fn register(account: &Account, role: Role) -> LedgerMessage {
    LedgerMessage::Register(Register {
        account: account.keys.address(),
        role: role.code(),
        encryption_key: account.keys.encryption_public(),
        nonce: U256::zero(),
    })
}

fn credential(authority: &Account, clinician: &Account) -> LedgerMessage {
    LedgerMessage::IssueCredential(IssueCredential {
        authority: authority.keys.address(),
        clinician: clinician.keys.address(),
        license_id_hash: ethers_core::utils::keccak256(b"GMC-7654321"),
        specialty: bytes32_text("psychiatry").unwrap(),
        expires_at: now() + 365 * 86_400,
        nonce: U256::one(),
    })
}

fn revoke_credential(authority: &Account, clinician: &Account) -> LedgerMessage {
    LedgerMessage::RevokeCredential(RevokeCredential {
        authority: authority.keys.address(),
        clinician: clinician.keys.address(),
        nonce: U256::one(),
    })
}

fn grant(patient: &Account, grantee: &Account, nonce: u64) -> LedgerMessage {
    LedgerMessage::Grant(everything(&patient.keys, &grantee.keys, nonce))
}

fn anchor(patient: &Account) -> LedgerMessage {
    let record = AnchoredRecord { id: RecordId([1; 32]), ciphertext_hash: [2; 32], category: 0, amends: None };
    chartkey_core::records::anchor_message(patient.keys.address(), patient.keys.address(), &[record]).unwrap()
}

fn access(grantee: &Account, patient: &Account) -> LedgerMessage {
    LedgerMessage::Access(Access {
        grantee: grantee.keys.address(),
        patient: patient.keys.address(),
        record_id: [1; 32],
        nonce: U256::zero(),
    })
}

fn mined(answer: &Answer) -> (i64, String) {
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["mined"], true, "{:?}", answer.body);
    (answer.body["job"].as_i64().unwrap(), answer.body["tx_hash"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn relays_what_the_signed_in_account_signed() {
    let server = TestServer::start().await;
    let mut patient = sign_up(&server, "Pat", Role::Patient).await;
    let clinician = sign_up(&server, "Dr Chen", Role::Clinician).await;
    let authority = sign_up(&server, "Medical Board", Role::CredentialingAuthority).await;
    let unverified = sign_up(&server, "Dr Nobody", Role::Clinician).await;
    let chain = Chain::of(&server, &patient.client).await;

    // Only a session relays, and only what its own account signed.
    let anonymous = chain.relay(&server.client(), &patient.keys, register(&patient, Role::Patient)).await;
    assert_eq!(anonymous.status, 401);
    let for_someone_else = chain.relay(&patient.client, &clinician.keys, register(&clinician, Role::Clinician)).await;
    assert_eq!(for_someone_else.status, 403, "{:?}", for_someone_else.body);
    let wrong_role = chain.relay(&patient.client, &patient.keys, register(&patient, Role::Clinician)).await;
    assert_eq!(wrong_role.status, 400, "{:?}", wrong_role.body);
    let mut other_key = register(&patient, Role::Patient);
    if let LedgerMessage::Register(r) = &mut other_key {
        r.encryption_key = [7; 32];
    }
    assert_eq!(chain.relay(&patient.client, &patient.keys, other_key).await.status, 400);
    let message = register(&patient, Role::Patient);
    for signature in ["0x12", "zz", ""] {
        let answer = patient
            .client
            .call("ledger/relay", json!({ "body": { "message": message, "signature": signature } }))
            .await;
        assert_eq!(answer.status, 400, "{signature}: {:?}", answer.body);
    }
    let unknown = patient
        .client
        .call("ledger/relay", json!({ "body": { "message": { "kind": "mint", "message": {} }, "signature": "0x" } }))
        .await;
    assert_eq!(unknown.status, 400);

    // Sign-up registered everyone in the Directory (a second registration
    // with the same nonce is a replay); the administrator names the
    // authority; it verifies the clinician.
    let again = chain.relay(&patient.client, &patient.keys, register(&patient, Role::Patient)).await;
    assert_eq!(again.body["Refused"]["code"], "InvalidAccountNonce", "{:?}", again.body);
    chain.set_authority(&server.data_dir, authority.keys.address()).await;

    // Every other kind of message has its own endpoint (passkey approval,
    // per-object checks, the server's records of it): the generic relay
    // refuses each, whoever signed it, and nothing reaches the ledger.
    let head = chain.rpc.result("eth_blockNumber", json!([])).await;
    let others = [
        (&authority, credential(&authority, &clinician)),
        (&authority, revoke_credential(&authority, &clinician)),
        (&patient, grant(&patient, &clinician, 0)),
        (
            &patient,
            LedgerMessage::Revoke(Revoke {
                patient: patient.keys.address(),
                grantee: clinician.keys.address(),
                nonce: U256::zero(),
            }),
        ),
        (&patient, anchor(&patient)),
        (&clinician, access(&clinician, &patient)),
    ];
    for (signer, message) in others {
        let refused = chain.relay(&signer.client, &signer.keys, message.clone()).await;
        assert_eq!(refused.status, 403, "{message:?}: {:?}", refused.body);
    }
    assert_eq!(chain.rpc.result("eth_blockNumber", json!([])).await, head, "nothing was relayed");
    chain.verify_clinician(&authority, &clinician, "psychiatry", now() + 365 * 86_400).await;

    // Refusals in words, with the contract's error as a code (a share, here
    // through its own endpoint).
    let to_unverified = everything(&patient.keys, &unverified.keys, 0);
    let refused = share_approved(&server, &mut patient, &to_unverified, vec![]).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.body["Refused"]["code"], "UnverifiedGrantee");
    assert!(refused.body["Refused"]["message"].as_str().unwrap().contains("not verified"));
    let to_clinician = everything(&patient.keys, &clinician.keys, 0);
    let (job, tx_hash) = mined(&share_approved(&server, &mut patient, &to_clinician, vec![]).await);
    let replayed = share_approved(&server, &mut patient, &to_clinician, vec![]).await;
    assert_eq!(replayed.body["Refused"]["code"], "InvalidAccountNonce", "{:?}", replayed.body);
    assert_eq!(chain.consent_nonce(patient.keys.address(), clinician.keys.address()).await, 1);

    // A relayed message's state, for its signer only.
    let status = patient.client.call("ledger/job", json!({ "job": job })).await;
    assert_eq!(status.status, 200, "{:?}", status.body);
    assert_eq!(status.body["tx_hash"], tx_hash);
    assert_eq!(status.body["mined"], true);
    assert_eq!(clinician.client.call("ledger/job", json!({ "job": job })).await.status, 404);
    assert_eq!(patient.client.call("ledger/job", json!({ "job": 999_999 })).await.status, 404);
    let receipt = chain.rpc.result("eth_getTransactionReceipt", json!([tx_hash])).await;
    assert_eq!(receipt["status"], "0x1");

    // The ledger page: blocks, the events naming the caller, a transaction's
    // events for its parties only, and verification.
    let page = patient.client.call("ledger/overview", json!({})).await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    assert_eq!(page.body["external"], false);
    assert!(page.body["blocks"].as_array().unwrap().len() > 3);
    let names: Vec<&str> =
        page.body["activity"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Granted", "AccountRegistered"], "newest first, only the patient's");
    // Looked at again, only the blocks since are read: the same activity,
    // and what happened since on top.
    let again = patient.client.call("ledger/overview", json!({})).await;
    assert_eq!(again.body["activity"], page.body["activity"]);
    let renewed = everything(&patient.keys, &clinician.keys, 1);
    mined(&share_approved(&server, &mut patient, &renewed, vec![]).await);
    let later = patient.client.call("ledger/overview", json!({})).await;
    let names: Vec<&str> =
        later.body["activity"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Granted", "Granted", "AccountRegistered"]);
    assert_eq!(later.body["activity"][1], page.body["activity"][0]);
    let granted = patient.client.call("ledger/transaction", json!({ "hash": tx_hash })).await;
    assert_eq!(granted.status, 200, "{:?}", granted.body);
    assert_eq!(granted.body["events"][0]["name"], "Granted");
    let fields = granted.body["events"][0]["fields"].as_array().unwrap();
    assert!(fields.contains(&json!(["grantee", ethers_core::utils::to_checksum(&clinician.keys.address(), None)])));
    let stranger_view = unverified.client.call("ledger/transaction", json!({ "hash": tx_hash })).await;
    assert_eq!(stranger_view.body["events"], json!([]), "someone else's events are not shown");
    assert_eq!(stranger_view.body["others"], 1);
    let bad = patient.client.call("ledger/transaction", json!({ "hash": "0x12" })).await;
    assert_eq!(bad.status, 400);
    let missing = patient.client.call("ledger/transaction", json!({ "hash": format!("0x{}", "ab".repeat(32)) })).await;
    assert_eq!(missing.status, 404);
    assert_eq!(server.client().call("ledger/overview", json!({})).await.status, 401);
    let verified = patient.client.call("ledger/verify", json!({})).await;
    assert_eq!(verified.status, 200, "{:?}", verified.body);
    assert_eq!(verified.body["ok"], true);
    assert!(verified.body["blocks"].as_u64().unwrap() > 3);
    // Within 30 s the same result comes back rather than a second re-execution.
    let again = unverified.client.call("ledger/verify", json!({})).await;
    assert_eq!(again.body, verified.body);
    server.stop().await;
}

#[tokio::test]
async fn sign_up_registers_the_account_on_the_ledger_or_refuses() {
    let server = TestServer::start().await;
    let patient = sign_up(&server, "Pat", Role::Patient).await;
    let chain = Chain::of(&server, &patient.client).await;
    let call = ChartkeyDirectory::accountOfCall { account: to_alloy(patient.keys.address()) };
    let account = chain.rpc.view(to_alloy(chain.directory), call).await;
    assert_eq!(account.role, Role::Patient.code(), "registered as a patient");

    // A registration signed by another key: refused by the contract, nothing created.
    let client = server.client();
    let secret = chartkey_core::AccountSecret::generate(&mut rand::rngs::OsRng);
    let mut device = Device::new();
    let start = client.call("signup/start", json!({"display_name": "Mallory", "role": "patient"})).await;
    let credential = device.register(&server.origin, start.body["options"].clone());
    let (_, forged) =
        chartkey_core::eip712::first_registration(&other_keys(), Role::Patient.code(), chain.chain_id, chain.directory);
    let finish = client
        .call(
            "signup/finish",
            json!({"finish": {
                "ceremony_id": start.body["ceremony_id"], "credential": credential, "passkey_label": "p",
                "sealed_keystore": device.seal(&secret), "uses_passphrase": false,
                "directory": chartkey_core::directory::DirectoryEntry::sign(&secret.derive(), Role::Patient),
                "ledger_registration": forged,
            }}),
        )
        .await;
    assert_eq!(finish.status, 422, "{:?}", finish.body);
    assert_eq!(finish.body["Refused"]["code"], "WrongSigner");
    assert_eq!(server.counts().0, 1, "only Pat's account exists");
    server.stop().await;
}
