//! Emergency contacts through the server (issue 17, acceptance 5): an
//! invitation by link, the contact named on the ledger with the summary
//! wrapped to them in advance; a request the patient refuses during the
//! wait releases nothing; a request whose wait passes (the ledger's clock
//! moved by the test) lets the contact read the summary. Each step is a
//! ledger event and a notice to the other side.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chartkey_core::eip712::{
    EmergencyAccess, EmergencyContact, EmergencyContactRemove, EmergencyRefusal, EmergencyRequest,
};
use chartkey_core::envelope::{self, DataKey, RecordId};
use chartkey_core::role::Role;
use chartkey_core::value::Hash32;
use common::links::access_domain;
use common::records::{approved, put_blob};
use common::*;
use ethers_core::types::U256;
use rand::rngs::OsRng;
use serde_json::json;

const DAY: u64 = 86_400;

async fn advance(server: &TestServer, seconds: u64) {
    let answer = reqwest::Client::new()
        .post(format!("{}/test/ledger/advance", server.base))
        .json(&json!({ "seconds": seconds }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
}

async fn overview(account: &Account) -> fns::EmergencyOverview {
    account.client.api(fns::EmergencyPage {}).await.unwrap()
}

async fn ask(contact: &Account, patient: &Account) -> Result<fns::RelayReceipt, ApiError> {
    let (message, signature) =
        contact_signs(contact, patient, |contact, patient, nonce| EmergencyRequest { contact, patient, nonce }).await;
    contact.client.api(fns::EmergencyRequest { body: fns::EmergencyRequestBody { message, signature } }).await
}

async fn open(contact: &Account, patient: &Account) -> Result<fns::EmergencyOpened, ApiError> {
    let (message, signature) =
        contact_signs(contact, patient, |contact, patient, nonce| EmergencyAccess { contact, patient, nonce }).await;
    contact.client.api(fns::EmergencyOpen { body: fns::EmergencyOpenBody { message, signature } }).await
}

/// A message `contact` signs about `patient` with the contact's next nonce.
async fn contact_signs<M: chartkey_core::eip712::TypedMessage>(
    contact: &Account,
    patient: &Account,
    message: impl FnOnce(ethers_core::types::Address, ethers_core::types::Address, U256) -> M,
) -> (M, chartkey_core::value::Signature) {
    let domain = access_domain_of(contact).await;
    let nonce = overview(contact).await.next_nonce;
    let message = message(contact.keys.address(), patient.keys.address(), U256::from(nonce));
    let signature = domain.sign_typed(&contact.keys, &message);
    (message, signature)
}

async fn access_domain_of(account: &Account) -> chartkey_core::eip712::Domain {
    let info = account.client.api(fns::LedgerInfo {}).await.unwrap();
    chartkey_core::eip712::Domain::access(info.chain_id, info.access.into())
}

fn refused_with(answer: Result<impl std::fmt::Debug, ApiError>, code: &str) {
    match answer {
        Err(ApiError::Refused { code: c, .. }) if c == code => {}
        other => panic!("expected the ledger's {code}, got {other:?}"),
    }
}

async fn accept(account: &Account, token: Hash32) -> Result<fns::Accepted, ApiError> {
    account.client.api(fns::EmergencyAccept { body: fns::AcceptBody { token } }).await
}

/// The kinds of `account`'s notices, newest first.
async fn notices(account: &Account) -> Vec<fns::NoticeView> {
    account.client.api(fns::NoticesList {}).await.unwrap().notices
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_releases_nothing_and_a_request_whose_wait_passed_does() {
    if !common::engines::on_embedded_ledger("the embedded ledger's clock, moved on by days") {
        return;
    }
    let server = TestServer::start().await;
    let mut patient = sign_up(&server, "Pat Emergency", Role::Patient).await;
    let contact = sign_up(&server, "Casey Family", Role::Patient).await;
    let stranger = sign_up(&server, "Sam Stranger", Role::Patient).await;

    // The invitation, by link: accepted once, never by the patient.
    let invitation = patient
        .client
        .api(fns::EmergencyInvite { body: fns::InviteBody { wait_seconds: 2 * DAY as u32 } })
        .await
        .unwrap();
    assert!(matches!(accept(&patient, invitation.token).await, Err(ApiError::NotFound(_))));
    // A patient's keys are private: the patient cannot look the contact up
    // before they accept, and can after (to wrap the summary's key to them).
    let lookup = |who: &Account| fns::DirectoryLookup { address: who.keys.address().into() };
    assert!(matches!(patient.client.api(lookup(&contact)).await, Err(ApiError::NotFound(_))));
    let accepted = accept(&contact, invitation.token).await.unwrap();
    let found = patient.client.api(lookup(&contact)).await.unwrap();
    assert_eq!(
        found.entry.verify_for(&contact.keys.address()).unwrap().encryption_key,
        contact.keys.encryption_public()
    );
    assert!(matches!(patient.client.api(lookup(&stranger)).await, Err(ApiError::NotFound(_))), "nor anyone else");
    assert_eq!(accepted.patient_name, "Pat Emergency");
    assert!(matches!(accept(&stranger, invitation.token).await, Err(ApiError::NotFound(_))), "used once");
    let listed = overview(&patient).await;
    assert_eq!(listed.invitations[0].contact_name.as_deref(), Some("Casey Family"));

    // The summary, sealed in the patient's browser, its key wrapped to the contact.
    let summary = br#"{"resourceType":"Bundle","type":"document","entry":[]}"#;
    let (id, key) = (RecordId(rand::random()), DataKey::generate(&mut OsRng));
    let sealed = envelope::seal(&key, id, summary, &mut OsRng);
    let blob = envelope::ciphertext_hash(&sealed);
    assert!(matches!(put_blob(&patient.client, &hex::encode(blob), sealed.clone()).await.0, 200 | 201));
    let wrapped_key =
        envelope::wrap_key(&key, id, contact.keys.address(), &contact.keys.encryption_public(), &mut OsRng).unwrap();
    let summary_for = fns::SummaryForContact { id, blob: Hash32(blob), wrapped_key };
    let domain = access_domain(&server, &patient).await;
    let me = patient.keys.address();
    let name = |who: &Account, serial: u64| EmergencyContact {
        patient: me,
        contact: who.keys.address(),
        wait_seconds: 2 * DAY as u32,
        nonce: U256::from(serial),
    };

    // Only someone who accepted can be named.
    let fns::Approved { message, signature, approval } =
        approved(&server, &mut patient, &domain, name(&stranger, 0)).await;
    let body = fns::NameContactBody { message, signature, approval, summary: summary_for.clone() };
    assert!(matches!(patient.client.api(fns::EmergencyName { body }).await, Err(ApiError::Forbidden(_))));

    let fns::Approved { message, signature, approval } =
        approved(&server, &mut patient, &domain, name(&contact, 0)).await;
    let body = fns::NameContactBody { message, signature, approval, summary: summary_for };
    assert!(patient.client.api(fns::EmergencyName { body }).await.unwrap().mined);
    assert_eq!(notices(&contact).await[0].kind, fns::NoticeKind::EmergencyNamed);
    assert_eq!(overview(&contact).await.named_me[0].state, fns::EmergencyState::Named);

    // Request → refused during the wait → nothing released.
    assert!(ask(&contact, &patient).await.unwrap().mined);
    let told = &notices(&patient).await[0];
    assert_eq!((told.kind, told.actor_name.as_str()), (fns::NoticeKind::EmergencyRequested, "Casey Family"));
    let opens_at = told.opens_at.expect("when it opens");
    assert!(opens_at >= chartkey_server::db::now() + 2 * DAY as i64 - 60);
    refused_with(open(&contact, &patient).await, "StillWaiting");
    let refusal =
        EmergencyRefusal { patient: patient.keys.address(), contact: contact.keys.address(), nonce: U256::one() };
    let body = approved(&server, &mut patient, &domain, refusal).await;
    assert!(patient.client.api(fns::EmergencyRefuse { body }).await.unwrap().mined);
    assert_eq!(notices(&contact).await[0].kind, fns::NoticeKind::EmergencyRefused);
    advance(&server, 3 * DAY).await;
    refused_with(open(&contact, &patient).await, "NoRequest");

    // Request → the wait passes → the contact reads the summary.
    assert!(ask(&contact, &patient).await.unwrap().mined);
    advance(&server, DAY).await;
    refused_with(open(&contact, &patient).await, "StillWaiting");
    advance(&server, DAY + 1).await;
    let opened = open(&contact, &patient).await.unwrap();
    let bytes = URL_SAFE_NO_PAD.decode(&opened.envelope).unwrap();
    let key =
        envelope::unwrap_key(&opened.summary.wrapped_key, id, contact.keys.address(), contact.keys.encryption_secret())
            .unwrap();
    assert_eq!(envelope::open(&key, id, &bytes).unwrap().as_slice(), summary);
    let told = &notices(&patient).await[0];
    assert_eq!((told.kind, told.tx), (fns::NoticeKind::EmergencyAccessed, opened.access_tx));

    // Every step is on the ledger, and in the pair's history.
    let steps: Vec<fns::EmergencyStep> = overview(&patient).await.contacts[0].events.iter().map(|e| e.step).collect();
    use fns::EmergencyStep::*;
    assert_eq!(steps, vec![Accessed, Requested, Refused, Requested, Named]);
    let chain = common::chain::Chain::of(&server, &patient.client).await;
    let logs = server.rpc().result("eth_getLogs", json!([{ "fromBlock": "0x0", "address": chain.access }])).await;
    let abi = &chartkey_ledger::artifacts::access().abi;
    let names: Vec<String> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|log| {
            let topic: ethers_core::types::H256 = log["topics"][0].as_str().unwrap().parse().unwrap();
            abi.events().find(|e| e.signature() == topic).unwrap().name.clone()
        })
        .collect();
    assert_eq!(
        names,
        ["EmergencyContactSet", "EmergencyRequested", "EmergencyRefused", "EmergencyRequested", "EmergencyAccessed"]
    );

    // Someone not named gets nothing; a removed contact neither.
    assert!(matches!(open(&stranger, &patient).await, Err(ApiError::NotFound(_))));
    let removal = EmergencyContactRemove {
        patient: patient.keys.address(),
        contact: contact.keys.address(),
        nonce: U256::from(2),
    };
    let body = approved(&server, &mut patient, &domain, removal).await;
    assert!(patient.client.api(fns::EmergencyRemove { body }).await.unwrap().mined);
    assert!(matches!(open(&contact, &patient).await, Err(ApiError::NotFound(_))));
    assert_eq!(overview(&patient).await.contacts[0].state, fns::EmergencyState::Removed);
    server.stop().await;
}
