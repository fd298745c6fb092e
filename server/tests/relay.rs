//! The relayer through the portal's API: a signed-in account relays the
//! messages it signed, refusals come back in words. (A server killed with
//! SIGKILL while relaying: tests/restart.rs.)

mod common;

use chartkey_core::eip712::{Access, IssueCredential, LedgerMessage, Register, Revoke, RevokeCredential, bytes32_text};
use chartkey_core::envelope::RecordId;
use chartkey_core::records::AnchoredRecord;
use chartkey_core::role::Role;
use chartkey_core::value::Hash32;
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

fn mined(answer: Result<fns::RelayReceipt, ApiError>) -> (i64, Hash32) {
    let receipt = answer.unwrap();
    assert!(receipt.mined, "{receipt:?}");
    (receipt.job, receipt.tx_hash)
}

fn refused_with(answer: &Result<fns::RelayReceipt, ApiError>, expected: &str) -> bool {
    matches!(answer, Err(ApiError::Refused { code, .. }) if code == expected)
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
    assert_eq!(anonymous, Err(ApiError::Unauthorized));
    let for_someone_else = chain.relay(&patient.client, &clinician.keys, register(&clinician, Role::Clinician)).await;
    assert!(matches!(for_someone_else, Err(ApiError::Forbidden(_))), "{for_someone_else:?}");
    let wrong_role = chain.relay(&patient.client, &patient.keys, register(&patient, Role::Clinician)).await;
    assert!(matches!(wrong_role, Err(ApiError::BadRequest(_))), "{wrong_role:?}");
    let mut other_key = register(&patient, Role::Patient);
    if let LedgerMessage::Register(r) = &mut other_key {
        r.encryption_key = [7; 32];
    }
    let other_key = chain.relay(&patient.client, &patient.keys, other_key).await;
    assert!(matches!(other_key, Err(ApiError::BadRequest(_))), "{other_key:?}");
    // Raw: signatures that are no `Signature`, and a message of no kind.
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
    assert!(refused_with(&again, "InvalidAccountNonce"), "{again:?}");
    chain.set_authority(&server.data_dir, authority.keys.address()).await;

    // Every other kind of message has its own endpoint (passkey approval,
    // per-object checks, the server's records of it): the generic relay
    // refuses each, whoever signed it, and nothing reaches the ledger: the
    // relayer sends nothing (the head may move on an external chain other
    // tests also write to).
    let relayer = common::wallet(&server.data_dir, "relayer.key").address();
    let sent = || chain.rpc.result("eth_getTransactionCount", json!([relayer, "latest"]));
    let before = sent().await;
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
        assert!(matches!(refused, Err(ApiError::Forbidden(_))), "{message:?}: {refused:?}");
    }
    assert_eq!(sent().await, before, "nothing was relayed");
    chain.verify_clinician(&authority, &clinician, "psychiatry", now() + 365 * 86_400).await;

    // Refusals in words, with the contract's error as a code (a share, here
    // through its own endpoint).
    let to_unverified = everything(&patient.keys, &unverified.keys, 0);
    let refused = share_approved(&server, &mut patient, &to_unverified, vec![]).await;
    match &refused {
        Err(ApiError::Refused { code, message }) => {
            assert_eq!(code, "UnverifiedGrantee");
            assert!(message.contains("not verified"), "{message}");
        }
        other => panic!("expected Refused: {other:?}"),
    }
    let to_clinician = everything(&patient.keys, &clinician.keys, 0);
    let (job, tx_hash) = mined(share_approved(&server, &mut patient, &to_clinician, vec![]).await);
    let replayed = share_approved(&server, &mut patient, &to_clinician, vec![]).await;
    assert!(refused_with(&replayed, "InvalidAccountNonce"), "{replayed:?}");
    assert_eq!(chain.consent_nonce(patient.keys.address(), clinician.keys.address()).await, 1);

    // A relayed message's state, for its signer only.
    let status = patient.client.api(fns::LedgerJob { job }).await.unwrap();
    assert_eq!(status.tx_hash, tx_hash);
    assert!(status.mined);
    let theirs = clinician.client.api(fns::LedgerJob { job }).await;
    assert!(matches!(theirs, Err(ApiError::NotFound(_))), "{theirs:?}");
    let unknown = patient.client.api(fns::LedgerJob { job: 999_999 }).await;
    assert!(matches!(unknown, Err(ApiError::NotFound(_))), "{unknown:?}");
    let receipt = chain.rpc.result("eth_getTransactionReceipt", json!([tx_hash])).await;
    assert_eq!(receipt["status"], "0x1");

    // The ledger page: blocks, the events naming the caller, a transaction's
    // events for its parties only, and verification.
    let page = patient.client.api(fns::LedgerOverview {}).await.unwrap();
    assert_eq!(page.external, common::engines::external_chain().is_some());
    assert!(page.blocks.len() > 3);
    let names: Vec<&str> = page.activity.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["Granted", "AccountRegistered"], "newest first, only the patient's");
    // Looked at again, only the blocks since are read: the same activity,
    // and what happened since on top.
    let again = patient.client.api(fns::LedgerOverview {}).await.unwrap();
    assert_eq!(again.activity, page.activity);
    let renewed = everything(&patient.keys, &clinician.keys, 1);
    mined(share_approved(&server, &mut patient, &renewed, vec![]).await);
    let later = patient.client.api(fns::LedgerOverview {}).await.unwrap();
    let names: Vec<&str> = later.activity.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["Granted", "Granted", "AccountRegistered"]);
    assert_eq!(later.activity[1], page.activity[0]);
    let granted = patient.client.api(fns::LedgerTransaction { hash: tx_hash }).await.unwrap();
    assert_eq!(granted.events[0].name, "Granted");
    let fields = &granted.events[0].fields;
    let grantee = ("grantee".to_owned(), chartkey_core::value::FieldValue::Address(clinician.keys.address().into()));
    assert!(fields.contains(&grantee), "{fields:?}");
    let stranger_view = unverified.client.api(fns::LedgerTransaction { hash: tx_hash }).await.unwrap();
    assert!(stranger_view.events.is_empty(), "someone else's events are not shown: {:?}", stranger_view.events);
    assert_eq!(stranger_view.others, 1);
    // Raw: a hash that is no `Hash32`.
    let bad = patient.client.call("ledger/transaction", json!({ "hash": "0x12" })).await;
    assert_eq!(bad.status, 400);
    let missing = patient.client.api(fns::LedgerTransaction { hash: Hash32([0xab; 32]) }).await;
    assert!(matches!(missing, Err(ApiError::NotFound(_))), "{missing:?}");
    assert_eq!(server.client().api(fns::LedgerOverview {}).await, Err(ApiError::Unauthorized));
    // Re-execution is the embedded ledger's (an external one's own nodes
    // verify it).
    if !common::engines::on_embedded_ledger("the embedded ledger's re-execution") {
        return server.stop().await;
    }
    let verified = patient.client.api(fns::LedgerVerify {}).await.unwrap();
    assert!(verified.ok);
    assert!(verified.blocks > 3);
    // Within 30 s the same result comes back rather than a second re-execution.
    let again = unverified.client.api(fns::LedgerVerify {}).await;
    assert_eq!(again, Ok(verified));
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
    let start = client.api(fns::SignupStart { display_name: "Mallory".into(), role: Role::Patient }).await.unwrap();
    let credential = device.register(&server.origin, webauthn_options(&start.options));
    let (_, forged) =
        chartkey_core::eip712::first_registration(&other_keys(), Role::Patient.code(), chain.chain_id, chain.directory);
    let finish = fns::SignupFinishBody {
        ledger_registration: Some(forged),
        ..patient_signup(start.ceremony_id, &device, &credential, &secret)
    };
    let finish = client.api(fns::SignupFinish { finish }).await;
    assert!(matches!(&finish, Err(ApiError::Refused { code, .. }) if code == "WrongSigner"), "{finish:?}");
    assert_eq!(server.counts().await.0, 1, "only Pat's account exists");
    server.stop().await;
}
