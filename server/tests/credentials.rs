//! Credentials through the server: the operator names an authority (the
//! `chartkey authority` path: a database row the running server applies), a
//! clinician asks to be verified, the authority issues, declines or
//! revokes, and everyone sees the ledger's word in search results.

mod common;

use std::time::Duration;

use chartkey_api::license_id_hash;
use chartkey_core::AccountKeys;
use chartkey_core::eip712::{IssueCredential, LedgerMessage, RevokeCredential, bytes32_text};
use chartkey_core::role::Role;
use chartkey_server::authorities::{self, Applied};
use common::chain::Chain;
use common::*;
use ethers_core::types::U256;
use fns::{CredentialStatus, RequestState};
use serde_json::json;

/// What the `chartkey authority` command does: a row, then the running
/// server's transaction.
async fn name_authority(server: &TestServer, address: &str, enabled: bool) -> Result<String, String> {
    let db = server.db().await;
    let pool = db.pool();
    let id = authorities::request(pool, address, enabled).await.map_err(|e| e.to_string())?;
    for _ in 0..100 {
        match authorities::applied(pool, id).await.unwrap() {
            Applied::Sent { tx } => return Ok(tx),
            Applied::Failed { error } => return Err(error),
            Applied::Waiting => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("the server did not apply the change");
}

fn request_body(authority: &AccountKeys, specialty: &str) -> fns::CredentialsRequest {
    fns::CredentialsRequest {
        body: fns::CredentialRequestBody {
            authority: authority.address().into(),
            license: license(" MD-12345 ", specialty),
        },
    }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn issue(
    chain: &Chain,
    account: &Account,
    signer: &AccountKeys,
    request: i64,
    m: IssueCredential,
) -> Result<fns::RelayReceipt, ApiError> {
    let signature = chain.sign(signer, &LedgerMessage::IssueCredential(m.clone()));
    account
        .client
        .api(fns::CredentialsIssue { body: fns::IssueCredentialBody { request, message: m, signature } })
        .await
}

async fn send(chain: &Chain, by: &Account, m: RevokeCredential) -> Result<fns::RelayReceipt, ApiError> {
    let signature = chain.sign(&by.keys, &LedgerMessage::RevokeCredential(m.clone()));
    by.client.api(fns::CredentialsRevoke { body: fns::RevokeCredentialBody { message: m, signature } }).await
}

async fn badge(client: &Client, query: &str) -> CredentialStatus {
    let found = client.api(fns::CliniciansSearch { query: query.into() }).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].credential.clone()
}

/// A credential's status as its tag names it.
fn status(credential: &CredentialStatus) -> &'static str {
    match credential {
        CredentialStatus::NotVerified => "not_verified",
        CredentialStatus::Verified { .. } => "verified",
        CredentialStatus::Expired { .. } => "expired",
        CredentialStatus::Revoked { .. } => "revoked",
        CredentialStatus::AuthorityRemoved { .. } => "authority_removed",
    }
}

fn bad_request<T: std::fmt::Debug>(answer: &Result<T, ApiError>) -> bool {
    matches!(answer, Err(ApiError::BadRequest(_)))
}

#[tokio::test]
async fn a_clinician_is_verified_by_a_named_authority_and_everyone_sees_the_ledgers_word() {
    let server = TestServer::start().await;
    let authority = sign_up(&server, "State Medical Board", Role::CredentialingAuthority).await;
    let other_authority = sign_up(&server, "Other Board", Role::CredentialingAuthority).await;
    let clinician = sign_up(&server, "Dr Ada Okafor", Role::Clinician).await;
    let patient = sign_up(&server, "Pat Patient", Role::Patient).await;
    let chain = Chain::of(&server, &patient.client).await;

    // Before the operator names it, the authority cannot be asked.
    let desk = authority.client.api(fns::CredentialsDesk {}).await.unwrap();
    assert!(!desk.named);
    let authority_address = format!("{:#x}", authority.keys.address());
    assert_eq!(desk.operator_command, format!("chartkey authority add {authority_address}"));
    let early = clinician.client.api(request_body(&authority.keys, "Psychiatry")).await;
    assert!(bad_request(&early), "{early:?}");

    // The operator's command: only an authority's account can be named.
    let patient_address = format!("{:#x}", patient.keys.address());
    let refused = name_authority(&server, &patient_address, true).await.unwrap_err();
    assert!(refused.contains("not as a credentialing authority"), "{refused}");
    assert!(name_authority(&server, "0x12", true).await.is_err());
    let unknown = format!("{:#x}", other_keys().address());
    assert!(name_authority(&server, &unknown, true).await.unwrap_err().contains("no account"));
    let tx = name_authority(&server, &authority_address.to_uppercase().replace("0X", "0x"), true).await.unwrap();
    let receipt = chain.rpc.result("eth_getTransactionReceipt", json!([tx])).await;
    assert_eq!(receipt["status"], "0x1");
    assert!(authority.client.api(fns::CredentialsDesk {}).await.unwrap().named);

    // Only clinicians ask; every field is checked.
    let mine = clinician.client.api(fns::CredentialsMine {}).await.unwrap();
    assert_eq!(mine.me.credential, CredentialStatus::NotVerified);
    assert_eq!(mine.authorities[0].address.to_string(), authority_address);
    assert_eq!(mine.authorities.len(), 1, "only named authorities are offered");
    let asked = patient.client.api(request_body(&authority.keys, "GP")).await;
    assert!(matches!(asked, Err(ApiError::Forbidden(_))), "{asked:?}");
    let theirs = patient.client.api(fns::CredentialsMine {}).await;
    assert!(matches!(theirs, Err(ApiError::Forbidden(_))), "{theirs:?}");
    let too_long = "Child and adolescent psychiatry (subspecialty)";
    assert!(bad_request(&clinician.client.api(request_body(&authority.keys, too_long)).await));
    assert!(bad_request(&clinician.client.api(request_body(&authority.keys, " ")).await));
    assert!(bad_request(&clinician.client.api(request_body(&authority.keys, "GP\u{7}")).await));
    assert!(
        bad_request(&clinician.client.api(request_body(&other_authority.keys, "Psychiatry")).await),
        "an authority not named cannot be asked"
    );
    assert_eq!(server.client().api(fns::CliniciansSearch { query: "".into() }).await, Err(ApiError::Unauthorized));

    let asked = clinician.client.api(request_body(&authority.keys, "Psychiatry")).await.unwrap();
    let asked = asked.request.expect("the request");
    assert_eq!(asked.state, RequestState::Pending);
    assert_eq!(asked.license.license_number, "MD-12345");
    let again = clinician.client.api(request_body(&authority.keys, "Psychiatry")).await;
    assert!(matches!(again, Err(ApiError::Conflict(_))), "{again:?}");

    // The authority's desk lists it; no one else's does.
    let desk = authority.client.api(fns::CredentialsDesk {}).await.unwrap();
    let pending = &desk.pending;
    assert_eq!(pending.len(), 1, "{desk:?}");
    let request = pending[0].id;
    assert_eq!(pending[0].clinician.display_name, "Dr Ada Okafor");
    assert!(other_authority.client.api(fns::CredentialsDesk {}).await.unwrap().pending.is_empty());
    let nonce = desk.next_nonce;
    let message = IssueCredential {
        authority: authority.keys.address(),
        clinician: clinician.keys.address(),
        license_id_hash: license_id_hash("MD-12345"),
        specialty: bytes32_text("Psychiatry").unwrap(),
        expires_at: now() + 365 * 86_400,
        nonce: U256::from(nonce),
    };

    // Refused: another authority's session; a message that differs from
    // the request; an expiry in the past or too far; someone else's key.
    let theirs = IssueCredential { authority: other_authority.keys.address(), ..message.clone() };
    let theirs = issue(&chain, &other_authority, &other_authority.keys, request, theirs).await;
    assert!(matches!(theirs, Err(ApiError::NotFound(_))), "{theirs:?}");
    let wrong = |m: IssueCredential| m;
    for bad in [
        wrong(IssueCredential { clinician: patient.keys.address(), ..message.clone() }),
        wrong(IssueCredential { license_id_hash: license_id_hash("MD-99999"), ..message.clone() }),
        wrong(IssueCredential { specialty: bytes32_text("Surgery").unwrap(), ..message.clone() }),
        wrong(IssueCredential { expires_at: now() - 1, ..message.clone() }),
        wrong(IssueCredential { expires_at: now() + 6 * 366 * 86_400, ..message.clone() }),
    ] {
        let answer = issue(&chain, &authority, &authority.keys, request, bad).await;
        assert!(bad_request(&answer), "{answer:?}");
    }
    let forged = issue(&chain, &authority, &other_keys(), request, message.clone()).await;
    assert!(matches!(&forged, Err(ApiError::Refused { code, .. }) if code == "WrongSigner"), "{forged:?}");
    assert_eq!(status(&badge(&patient.client, "okafor").await), "not_verified");

    let issued = issue(&chain, &authority, &authority.keys, request, message.clone()).await.unwrap();
    assert!(issued.mined);
    let shown = badge(&patient.client, "okafor").await;
    match &shown {
        CredentialStatus::Verified { authority_name, specialty, expires_at, .. } => {
            assert_eq!(authority_name, "State Medical Board");
            assert_eq!(specialty, "Psychiatry");
            assert_eq!(*expires_at, message.expires_at);
        }
        other => panic!("expected verified: {other:?}"),
    }
    // Found by specialty and organisation too, not by a wildcard.
    assert_eq!(status(&badge(&patient.client, "psychiat").await), "verified");
    assert_eq!(status(&badge(&patient.client, "riverside").await), "verified");
    let wildcard = patient.client.api(fns::CliniciansSearch { query: "%".into() }).await.unwrap();
    assert!(wildcard.is_empty(), "{wildcard:?}");
    let mine = clinician.client.api(fns::CredentialsMine {}).await.unwrap();
    assert_eq!(mine.request.as_ref().unwrap().state, RequestState::Issued);
    assert_eq!(status(&mine.me.credential), "verified");
    let desk = authority.client.api(fns::CredentialsDesk {}).await.unwrap();
    assert!(desk.pending.is_empty(), "{desk:?}");
    assert_eq!(desk.decided[0].state, RequestState::Issued);
    // Issued once: the request is no longer pending.
    let twice = issue(&chain, &authority, &authority.keys, request, message.clone()).await;
    assert!(matches!(twice, Err(ApiError::NotFound(_))), "{twice:?}");

    // Revoked by its issuer only.
    let revoke = |by: &Account, nonce: u64| RevokeCredential {
        authority: by.keys.address(),
        clinician: clinician.keys.address(),
        nonce: U256::from(nonce),
    };
    let not_issuer = send(&chain, &other_authority, revoke(&other_authority, 1)).await;
    assert!(matches!(&not_issuer, Err(ApiError::Refused { code, .. }) if code == "NotIssuer"), "{not_issuer:?}");
    let by_clinician = send(&chain, &clinician, revoke(&clinician, 1)).await;
    assert!(matches!(by_clinician, Err(ApiError::Forbidden(_))), "{by_clinician:?}");
    send(&chain, &authority, revoke(&authority, nonce + 1)).await.unwrap();
    assert_eq!(status(&badge(&patient.client, "okafor").await), "revoked");

    // Declined requests, and a credential that expires.
    let second = sign_up(&server, "Dr Short Term", Role::Clinician).await;
    let asked = second.client.api(request_body(&authority.keys, "Cardiology")).await.unwrap();
    let first_request = asked.request.unwrap().id;
    let declined = other_authority.client.api(fns::CredentialsDecline { request: first_request }).await;
    assert!(matches!(declined, Err(ApiError::NotFound(_))), "{declined:?}");
    authority.client.api(fns::CredentialsDecline { request: first_request }).await.unwrap();
    let mine = second.client.api(fns::CredentialsMine {}).await.unwrap();
    assert_eq!(mine.request.unwrap().state, RequestState::Declined);
    let asked = second
        .client
        .api(request_body(&authority.keys, "Cardiology"))
        .await
        .expect("a declined request can be followed by a new one");
    let short_until = now() + 5;
    let short = IssueCredential {
        clinician: second.keys.address(),
        specialty: bytes32_text("Cardiology").unwrap(),
        expires_at: short_until,
        nonce: U256::from(nonce + 2),
        ..message.clone()
    };
    issue(&chain, &authority, &authority.keys, asked.request.unwrap().id, short).await.unwrap();
    assert_eq!(status(&badge(&patient.client, "short term").await), "verified");
    common::records::sleep_past(short_until).await;
    assert_eq!(status(&badge(&patient.client, "short term").await), "expired");

    // The operator stops naming the authority: its credentials lapse.
    let third = sign_up(&server, "Dr Lapsing", Role::Clinician).await;
    let asked = third.client.api(request_body(&authority.keys, "Oncology")).await.unwrap();
    let long = IssueCredential {
        clinician: third.keys.address(),
        specialty: bytes32_text("Oncology").unwrap(),
        nonce: U256::from(nonce + 3),
        ..message.clone()
    };
    issue(&chain, &authority, &authority.keys, asked.request.unwrap().id, long).await.unwrap();
    assert_eq!(status(&badge(&patient.client, "lapsing").await), "verified");
    name_authority(&server, &authority_address, false).await.unwrap();
    assert_eq!(status(&badge(&patient.client, "lapsing").await), "authority_removed");
    server.stop().await;
}

/// `chartkey authority add|remove` against a running server, and its
/// refusals.
#[tokio::test]
async fn the_operator_names_an_authority_from_the_command_line() {
    let server = TestServer::start().await;
    let authority = sign_up(&server, "County Board", Role::CredentialingAuthority).await;
    let clinician = sign_up(&server, "Dr Cli", Role::Clinician).await;
    // The server's database, when it is not in its data directory.
    let database = match engines::for_data_dir(&server.data_dir).await {
        Some((url, _)) => vec!["--database".to_owned(), url.into()],
        None => vec![],
    };
    let run = |args: Vec<String>, data_dir: std::path::PathBuf| {
        let database = database.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_chartkey"))
                .args(args)
                .arg("--data-dir")
                .arg(data_dir)
                .args(database)
                .output()
                .unwrap()
        })
    };
    let address = format!("{:#x}", authority.keys.address());
    let named = run(vec!["authority".into(), "add".into(), address.clone()], server.data_dir.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&named.stdout);
    assert!(named.status.success(), "{stdout}{}", String::from_utf8_lossy(&named.stderr));
    assert!(stdout.contains("is named a credentialing authority (ledger transaction 0x"), "{stdout}");
    assert!(authority.client.api(fns::CredentialsDesk {}).await.unwrap().named);

    let wrong_role = format!("{:#x}", clinician.keys.address());
    let refused = run(vec!["authority".into(), "add".into(), wrong_role], server.data_dir.clone()).await.unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("signed up as a Clinician"));
    if !engines::shared() {
        // A data directory without its database (SQLite's file).
        let nowhere = tempfile::tempdir().unwrap();
        let missing =
            run(vec!["authority".into(), "add".into(), address.clone()], nowhere.path().into()).await.unwrap();
        assert!(!missing.status.success());
        assert!(String::from_utf8_lossy(&missing.stderr).contains("no Chartkey data"));
    }

    let removed = run(vec!["authority".into(), "remove".into(), address], server.data_dir.clone()).await.unwrap();
    assert!(removed.status.success(), "{}", String::from_utf8_lossy(&removed.stderr));
    assert!(!authority.client.api(fns::CredentialsDesk {}).await.unwrap().named);
    server.stop().await;
}
