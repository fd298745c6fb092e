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
use serde_json::{Value, json};

/// What the `chartkey authority` command does: a row, then the running
/// server's transaction.
async fn name_authority(server: &TestServer, address: &str, enabled: bool) -> Result<String, String> {
    let conn = chartkey_server::db::open_connection(&server.data_dir.join("chartkey.sqlite3")).unwrap();
    let id = authorities::request(&conn, address, enabled).map_err(|e| e.to_string())?;
    for _ in 0..100 {
        match authorities::applied(&conn, id).unwrap() {
            Applied::Sent { tx } => return Ok(tx),
            Applied::Failed { error } => return Err(error),
            Applied::Waiting => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("the server did not apply the change");
}

fn request_body(authority: &AccountKeys, specialty: &str) -> Value {
    json!({ "body": {
        "authority": format!("{:#x}", authority.address()),
        "license_number": " MD-12345 ",
        "specialty": specialty,
        "jurisdiction": "Massachusetts, US",
        "organisation": "Riverside Clinic",
    }})
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn issue(chain: &Chain, account: &Account, signer: &AccountKeys, request: &Value, m: IssueCredential) -> Answer {
    let signature = chain.sign(signer, &LedgerMessage::IssueCredential(m.clone()));
    account
        .client
        .call("credentials/issue", json!({ "body": { "request": request, "message": m, "signature": signature } }))
        .await
}

async fn send(chain: &Chain, by: &Account, m: RevokeCredential) -> Answer {
    let signature = chain.sign(&by.keys, &LedgerMessage::RevokeCredential(m.clone()));
    by.client.call("credentials/revoke", json!({ "body": { "message": m, "signature": signature } })).await
}

async fn badge(client: &Client, query: &str) -> Value {
    let found = client.call("clinicians/search", json!({ "query": query })).await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    assert_eq!(found.body.as_array().unwrap().len(), 1, "{:?}", found.body);
    found.body[0]["credential"].clone()
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
    let desk = authority.client.call("credentials/desk", json!({})).await;
    assert_eq!(desk.status, 200, "{:?}", desk.body);
    assert_eq!(desk.body["named"], false);
    let authority_address = format!("{:#x}", authority.keys.address());
    assert_eq!(desk.body["operator_command"], format!("chartkey authority add {authority_address}"));
    let early = clinician.client.call("credentials/request", request_body(&authority.keys, "Psychiatry")).await;
    assert_eq!(early.status, 400, "{:?}", early.body);

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
    assert_eq!(authority.client.call("credentials/desk", json!({})).await.body["named"], true);

    // Only clinicians ask; every field is checked.
    let mine = clinician.client.call("credentials/mine", json!({})).await;
    assert_eq!(mine.status, 200, "{:?}", mine.body);
    assert_eq!(mine.body["me"]["credential"]["status"], "not_verified");
    assert_eq!(mine.body["authorities"][0]["address"], authority_address);
    assert_eq!(mine.body["authorities"].as_array().unwrap().len(), 1, "only named authorities are offered");
    assert_eq!(patient.client.call("credentials/request", request_body(&authority.keys, "GP")).await.status, 403);
    assert_eq!(patient.client.call("credentials/mine", json!({})).await.status, 403);
    let too_long = "Child and adolescent psychiatry (subspecialty)";
    assert_eq!(clinician.client.call("credentials/request", request_body(&authority.keys, too_long)).await.status, 400);
    assert_eq!(clinician.client.call("credentials/request", request_body(&authority.keys, " ")).await.status, 400);
    assert_eq!(
        clinician.client.call("credentials/request", request_body(&authority.keys, "GP\u{7}")).await.status,
        400
    );
    assert_eq!(
        clinician.client.call("credentials/request", request_body(&other_authority.keys, "Psychiatry")).await.status,
        400,
        "an authority not named cannot be asked"
    );
    assert_eq!(server.client().call("clinicians/search", json!({ "query": "" })).await.status, 401);

    let asked = clinician.client.call("credentials/request", request_body(&authority.keys, "Psychiatry")).await;
    assert_eq!(asked.status, 200, "{:?}", asked.body);
    assert_eq!(asked.body["request"]["state"], "pending");
    assert_eq!(asked.body["request"]["license_number"], "MD-12345");
    let again = clinician.client.call("credentials/request", request_body(&authority.keys, "Psychiatry")).await;
    assert_eq!(again.status, 409);

    // The authority's desk lists it; no one else's does.
    let desk = authority.client.call("credentials/desk", json!({})).await;
    let pending = &desk.body["pending"];
    assert_eq!(pending.as_array().unwrap().len(), 1, "{:?}", desk.body);
    let request = pending[0]["id"].clone();
    assert_eq!(pending[0]["clinician"]["display_name"], "Dr Ada Okafor");
    assert_eq!(other_authority.client.call("credentials/desk", json!({})).await.body["pending"], json!([]));
    let nonce = desk.body["next_nonce"].as_u64().unwrap();
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
    assert_eq!(issue(&chain, &other_authority, &other_authority.keys, &request, theirs).await.status, 404);
    let wrong = |m: IssueCredential| m;
    for bad in [
        wrong(IssueCredential { clinician: patient.keys.address(), ..message.clone() }),
        wrong(IssueCredential { license_id_hash: license_id_hash("MD-99999"), ..message.clone() }),
        wrong(IssueCredential { specialty: bytes32_text("Surgery").unwrap(), ..message.clone() }),
        wrong(IssueCredential { expires_at: now() - 1, ..message.clone() }),
        wrong(IssueCredential { expires_at: now() + 6 * 366 * 86_400, ..message.clone() }),
    ] {
        let answer = issue(&chain, &authority, &authority.keys, &request, bad).await;
        assert_eq!(answer.status, 400, "{:?}", answer.body);
    }
    let forged = issue(&chain, &authority, &other_keys(), &request, message.clone()).await;
    assert_eq!((forged.status, &forged.body["Refused"]["code"]), (422, &json!("WrongSigner")), "{:?}", forged.body);
    assert_eq!(badge(&patient.client, "okafor").await["status"], "not_verified");

    let issued = issue(&chain, &authority, &authority.keys, &request, message.clone()).await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    assert_eq!(issued.body["mined"], true);
    let shown = badge(&patient.client, "okafor").await;
    assert_eq!(shown["status"], "verified", "{shown}");
    assert_eq!(shown["authority_name"], "State Medical Board");
    assert_eq!(shown["specialty"], "Psychiatry");
    assert_eq!(shown["expires_at"], message.expires_at);
    // Found by specialty and organisation too, not by a wildcard.
    assert_eq!(badge(&patient.client, "psychiat").await["status"], "verified");
    assert_eq!(badge(&patient.client, "riverside").await["status"], "verified");
    let wildcard = patient.client.call("clinicians/search", json!({ "query": "%" })).await;
    assert_eq!(wildcard.body, json!([]));
    let mine = clinician.client.call("credentials/mine", json!({})).await;
    assert_eq!(mine.body["request"]["state"], "issued");
    assert_eq!(mine.body["me"]["credential"]["status"], "verified");
    let desk = authority.client.call("credentials/desk", json!({})).await;
    assert_eq!(desk.body["pending"], json!([]));
    assert_eq!(desk.body["decided"][0]["state"], "issued");
    // Issued once: the request is no longer pending.
    let twice = issue(&chain, &authority, &authority.keys, &request, message.clone()).await;
    assert_eq!(twice.status, 404);

    // Revoked by its issuer only.
    let revoke = |by: &Account, nonce: u64| RevokeCredential {
        authority: by.keys.address(),
        clinician: clinician.keys.address(),
        nonce: U256::from(nonce),
    };
    let not_issuer = send(&chain, &other_authority, revoke(&other_authority, 1)).await;
    assert_eq!(not_issuer.body["Refused"]["code"], "NotIssuer", "{:?}", not_issuer.body);
    assert_eq!(send(&chain, &clinician, revoke(&clinician, 1)).await.status, 403);
    let revoked = send(&chain, &authority, revoke(&authority, nonce + 1)).await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    assert_eq!(badge(&patient.client, "okafor").await["status"], "revoked");

    // Declined requests, and a credential that expires.
    let second = sign_up(&server, "Dr Short Term", Role::Clinician).await;
    let asked = second.client.call("credentials/request", request_body(&authority.keys, "Cardiology")).await;
    let first_request = asked.body["request"]["id"].clone();
    assert_eq!(
        other_authority.client.call("credentials/decline", json!({ "request": first_request })).await.status,
        404
    );
    assert_eq!(authority.client.call("credentials/decline", json!({ "request": first_request })).await.status, 200);
    assert_eq!(second.client.call("credentials/mine", json!({})).await.body["request"]["state"], "declined");
    let asked = second.client.call("credentials/request", request_body(&authority.keys, "Cardiology")).await;
    assert_eq!(asked.status, 200, "a declined request can be followed by a new one");
    let short_until = now() + 5;
    let short = IssueCredential {
        clinician: second.keys.address(),
        specialty: bytes32_text("Cardiology").unwrap(),
        expires_at: short_until,
        nonce: U256::from(nonce + 2),
        ..message.clone()
    };
    let issued = issue(&chain, &authority, &authority.keys, &asked.body["request"]["id"], short).await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    assert_eq!(badge(&patient.client, "short term").await["status"], "verified");
    common::records::sleep_past(short_until).await;
    assert_eq!(badge(&patient.client, "short term").await["status"], "expired");

    // The operator stops naming the authority: its credentials lapse.
    let third = sign_up(&server, "Dr Lapsing", Role::Clinician).await;
    let asked = third.client.call("credentials/request", request_body(&authority.keys, "Oncology")).await;
    let long = IssueCredential {
        clinician: third.keys.address(),
        specialty: bytes32_text("Oncology").unwrap(),
        nonce: U256::from(nonce + 3),
        ..message.clone()
    };
    assert_eq!(issue(&chain, &authority, &authority.keys, &asked.body["request"]["id"], long).await.status, 200);
    assert_eq!(badge(&patient.client, "lapsing").await["status"], "verified");
    name_authority(&server, &authority_address, false).await.unwrap();
    assert_eq!(badge(&patient.client, "lapsing").await["status"], "authority_removed");
    server.stop().await;
}

/// `chartkey authority add|remove` against a running server, and its
/// refusals.
#[tokio::test]
async fn the_operator_names_an_authority_from_the_command_line() {
    let server = TestServer::start().await;
    let authority = sign_up(&server, "County Board", Role::CredentialingAuthority).await;
    let clinician = sign_up(&server, "Dr Cli", Role::Clinician).await;
    let run = |args: Vec<String>, data_dir: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_chartkey"))
                .args(args)
                .arg("--data-dir")
                .arg(data_dir)
                .output()
                .unwrap()
        })
    };
    let address = format!("{:#x}", authority.keys.address());
    let named = run(vec!["authority".into(), "add".into(), address.clone()], server.data_dir.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&named.stdout);
    assert!(named.status.success(), "{stdout}{}", String::from_utf8_lossy(&named.stderr));
    assert!(stdout.contains("is named a credentialing authority (ledger transaction 0x"), "{stdout}");
    assert_eq!(authority.client.call("credentials/desk", json!({})).await.body["named"], true);

    let wrong_role = format!("{:#x}", clinician.keys.address());
    let refused = run(vec!["authority".into(), "add".into(), wrong_role], server.data_dir.clone()).await.unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("signed up as a Clinician"));
    let nowhere = tempfile::tempdir().unwrap();
    let missing = run(vec!["authority".into(), "add".into(), address.clone()], nowhere.path().into()).await.unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no Chartkey data"));

    let removed = run(vec!["authority".into(), "remove".into(), address], server.data_dir.clone()).await.unwrap();
    assert!(removed.status.success(), "{}", String::from_utf8_lossy(&removed.stderr));
    assert_eq!(authority.client.call("credentials/desk", json!({})).await.body["named"], false);
    server.stop().await;
}
