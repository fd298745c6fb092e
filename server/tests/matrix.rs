//! The authorisation matrix (security review, acceptance 1): every route
//! and server function, called by every role, against one patient's
//! objects (or the authority's, or the caller's own where a route has no
//! other owner). Each cell asserts its status, and that nothing changed
//! unless the cell is the owner's (or the caller's own) permitted action:
//! every table of the server's database (sessions by count: each call
//! refreshes its own session), the ledger's head and the stored blobs.

mod common;

use chartkey_core::eip712::{Access, IssueCredential, LedgerMessage, Register, Revoke, RevokeCredential, bytes32_text};
use chartkey_core::envelope::RecordId;
use chartkey_core::role::Role;
use common::records::*;
use common::*;
use ethers_core::types::U256;
use serde_json::{Value, json};

/// The callers, in the order of each row's statuses.
const ROLES: [&str; 7] = [
    "signed out",
    "the patient (owner)",
    "another patient",
    "a clinician with a share",
    "a clinician without one",
    "an authority",
    "a verifier",
];
const OWNER: usize = 1;
const SHARED: usize = 3;
const AUTHORITY: usize = 5;

/// What a cell may change.
#[derive(Clone, Copy, PartialEq)]
enum May {
    /// Nothing, whoever calls.
    Nothing,
    /// Only the cell of this role, when it succeeds.
    Owner(usize),
    /// Any caller's own state, when the call succeeds (a request of one's
    /// own, one's own notices).
    Own,
}

enum Req {
    Fn(&'static str, Value),
    Http(reqwest::Method, String, Option<(Vec<u8>, &'static str)>),
}

/// A look at an answer's body: (role index, body).
type Check = Box<dyn Fn(usize, &str)>;

struct Row {
    what: &'static str,
    req: Req,
    expect: [u16; 7],
    may: May,
    /// A check of each answer's body: (role index, body).
    check: Option<Check>,
}

fn row(what: &'static str, req: Req, expect: [u16; 7], may: May) -> Row {
    Row { what, req, expect, may, check: None }
}

/// Signed out 401; `who` gets `yes`, every other role `no`.
fn only(who: usize, yes: u16, no: u16) -> [u16; 7] {
    let mut e = [401, no, no, no, no, no, no];
    e[who] = yes;
    e
}

/// An action of `role`'s alone: it succeeds, and changes something, only
/// for that role; every other is refused (403), signed out 401.
fn only_by(role: usize, what: &'static str, function: &'static str, body: Value) -> Row {
    row(what, Req::Fn(function, body), only(role, 200, 403), May::Owner(role))
}

/// `row` as a server on an external chain answers it.
fn on_an_external_chain(mut row: Row) -> Row {
    match row.what {
        "ledger/verify" | "ledger/checkpoint" => row.expect = [401, 400, 400, 400, 400, 400, 400],
        "/rpc without the token" => row.expect = [404; 7],
        _ => {}
    }
    row
}

/// Everything a call could change, as one comparable value: every table's
/// rows (sorted, so on either engine), and the stored blobs.
async fn snapshot(server: &TestServer, head: &str) -> String {
    let db = server.db().await;
    let mut out = format!("head {head}\n");
    for table in db.tables().await {
        // A ceremony in progress is scratch (single use, expiring): what
        // counts is what finishing one writes, which the other tables show.
        // So are the shared rate counts, which every limited call moves.
        if table == "ceremonies" || table == "rate_counts" {
            continue;
        }
        if table == "sessions" {
            out += &format!("sessions: {}\n", db.one("SELECT count(*) FROM sessions").await);
            continue;
        }
        let mut rows = db.rows(&format!("SELECT * FROM {table}")).await;
        rows.sort();
        out += &format!("{table}: {rows:?}\n");
    }
    out + &format!("blobs: {:?}\n", server.stored_blobs().await)
}

/// Sends `req` as `client`, from client address `from` (forwarded by the
/// test, which the server trusts as a proxy): each cell its own address, so
/// the per-address ceremony cap does not add up across the matrix.
async fn send(client: &Client, req: &Req, from: &str) -> (u16, String) {
    match req {
        Req::Fn(name, args) => {
            let response = client
                .http
                .post(format!("{}/api/{name}", client.base))
                .header("x-forwarded-for", from)
                .json(args)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
        Req::Http(method, path, body) => {
            let mut request =
                client.http.request(method.clone(), format!("{}{path}", client.base)).header("x-forwarded-for", from);
            if let Some((bytes, kind)) = body {
                request = request.header("content-type", *kind).body(bytes.clone());
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            // A stream answers at once; its body is not waited for.
            let text = if path.ends_with("/stream") { String::new() } else { response.text().await.unwrap() };
            (status, text)
        }
    }
}

fn signed(chain: &common::chain::Chain, keys: &chartkey_core::AccountKeys, message: LedgerMessage) -> Value {
    let signature = chain.sign(keys, &message);
    json!({ "body": { "message": message, "signature": signature } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_for_every_role() {
    let server = TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let Parties { patient: mut owner, clinician: shared, authority, chain, domain } =
        verified_parties(&server, "Matrix Owner", "Dr Matrix Shared").await;
    let other = sign_up(&server, "Matrix Other", Role::Patient).await;
    let unshared = sign_up(&server, "Dr Matrix Unshared", Role::Clinician).await;
    chain.verify_clinician(&authority, &unshared, "dermatology", now() + 86_400).await;
    let verifier = sign_up(&server, "Matrix Insurer", Role::Verifier).await;
    let anonymous = server.client();

    // The owner's chart: a record, shared with one clinician, opened once
    // (so there is an access and a notice).
    let sealed = seal_all(&owner.keys, &floyd(2), None);
    let job = add(&owner, &domain, &sealed).await.unwrap().job;
    // Both shared with the clinician; only the first opened.
    let (record, unopened) = (sealed.anchored[0].id, sealed.anchored[1].id);
    let blob = hex::encode(sealed.anchored[0].ciphertext_hash);
    let grant_tx = share_all(&server, &mut owner, &shared.keys, &sealed).await.unwrap().tx_hash.to_string();
    open(&chain, &shared, &owner.keys, record).await.unwrap();
    let notice = owner.client.api(fns::NoticesList {}).await.unwrap().notices[0].id;
    let other_sealed = seal_all(&other.keys, &floyd(1), None);
    add(&other, &domain, &other_sealed).await.unwrap();

    // Bodies for the writing routes, each valid for its owner.
    let owner_address = format!("{:#x}", owner.keys.address());
    let new_record = seal_all(&owner.keys, &floyd(1), None);
    assert_eq!(upload_pack(&owner.client, new_record.pack.clone()).await.0, 200);
    let add_body = json!({ "body": { "records": new_record.records,
        "signature": sign_anchor(&domain, &owner.keys, &new_record.anchored) } });
    // Another chart's content named by a record of this chart.
    let mut theirs = new_record.records.clone();
    theirs[0].id = RecordId([7; 32]);
    theirs[0].blob = chartkey_core::value::Hash32(other_sealed.anchored[0].ciphertext_hash);
    let mut claimed = new_record.anchored.clone();
    claimed[0].id = RecordId([7; 32]);
    claimed[0].ciphertext_hash = other_sealed.anchored[0].ciphertext_hash;
    let claim_body = json!({ "body": { "records": theirs, "signature": sign_anchor(&domain, &owner.keys, &claimed) } });
    let to_unshared = everything(&owner.keys, &unshared.keys, 0);
    let approval = approve(&server, &owner.client, &mut owner.device, domain.digest(&to_unshared)).await;
    let grant_body = json!({ "body": fns::ShareBody { grant: to_unshared.clone(), keys: vec![], approval,
        signature: domain.sign_typed(&owner.keys, &to_unshared) } });
    let stop = Revoke { patient: owner.keys.address(), grantee: shared.keys.address(), nonce: U256::one() };
    let stop_body = json!({ "body": approved(&server, &mut owner, &domain, stop.clone()).await });
    // The owner's links: one to change then stop, and a new one's body.
    let long_term = chartkey_core::shl::Flags { long_term: true, ..Default::default() };
    let owned_link = links::make(&server, &mut owner, long_term, 0, None, &[b"{}"]).await.unwrap();
    let link_id = owned_link.manifest.link_id();
    let access_domain = links::access_domain(&server, &owner).await;
    let new_files = links::encrypt(&owned_link.key, &[b"[]"]);
    let change = chartkey_core::eip712::LinkUpdate {
        patient: owner.keys.address(),
        link_id,
        content_hash: links::hash_of(&new_files),
        expires_at: 0,
        nonce: U256::zero(),
    };
    let fns::Approved { message, signature, approval } = approved(&server, &mut owner, &access_domain, change).await;
    let link_update_body = json!({ "body": fns::LinkUpdateBody { message, signature, approval, files: new_files } });
    let end = chartkey_core::eip712::LinkRevoke { patient: owner.keys.address(), link_id, nonce: U256::one() };
    let link_revoke_body = json!({ "body": approved(&server, &mut owner, &access_domain, end).await });
    let fresh_key = chartkey_core::shl::LinkKey::generate(&mut rand::rngs::OsRng);
    let fresh_files = links::encrypt(&fresh_key, &[b"{}"]);
    let fresh = chartkey_core::eip712::Link {
        patient: owner.keys.address(),
        link_id: chartkey_core::shl::ManifestId::generate(&mut rand::rngs::OsRng).link_id(),
        content_hash: links::hash_of(&fresh_files),
        expires_at: 0,
        flags: 0,
        host: links::host(&owner).await,
    };
    let link_create_body =
        json!({ "body": links::signed_create(&server, &mut owner, fresh, fresh_files, None, None).await });
    let link_text = hex::encode(link_id);
    let not_the_owners_link = move |who: usize, body: &str| {
        if who != OWNER {
            assert!(!body.contains(&link_text), "{}: lists the owner's link: {body}", ROLES[who]);
        }
    };
    // Emergency access: the other patient accepted the owner's invitation;
    // bodies to name them, for their request, the owner's refusal, their
    // open (refused by the ledger then) and the removal.
    let invitation =
        owner.client.api(fns::EmergencyInvite { body: fns::InviteBody { wait_seconds: 0 } }).await.unwrap();
    other.client.api(fns::EmergencyAccept { body: fns::AcceptBody { token: invitation.token } }).await.unwrap();
    let summary_id = RecordId([0x5a; 32]);
    let summary_key = chartkey_core::envelope::DataKey::generate(&mut rand::rngs::OsRng);
    let summary_envelope = chartkey_core::envelope::seal(&summary_key, summary_id, b"{}", &mut rand::rngs::OsRng);
    let summary_blob = chartkey_core::envelope::ciphertext_hash(&summary_envelope);
    put_blob(&owner.client, &hex::encode(summary_blob), summary_envelope).await;
    let wrapped_key = chartkey_core::envelope::wrap_key(
        &summary_key,
        summary_id,
        other.keys.address(),
        &other.keys.encryption_public(),
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    let summary =
        fns::SummaryForContact { id: summary_id, blob: chartkey_core::value::Hash32(summary_blob), wrapped_key };
    let naming = chartkey_core::eip712::EmergencyContact {
        patient: owner.keys.address(),
        contact: other.keys.address(),
        wait_seconds: 0,
        nonce: U256::zero(),
    };
    let fns::Approved { message, signature, approval } = approved(&server, &mut owner, &access_domain, naming).await;
    let name_body = json!({ "body": fns::NameContactBody { message, signature, approval, summary } });
    let asking = chartkey_core::eip712::EmergencyRequest {
        contact: other.keys.address(),
        patient: owner.keys.address(),
        nonce: U256::zero(),
    };
    let emergency_request_body =
        json!({ "body": fns::Signed { signature: access_domain.sign_typed(&other.keys, &asking), message: asking } });
    let refusal = chartkey_core::eip712::EmergencyRefusal {
        patient: owner.keys.address(),
        contact: other.keys.address(),
        nonce: U256::one(),
    };
    let refuse_body = json!({ "body": approved(&server, &mut owner, &access_domain, refusal).await });
    let opening = chartkey_core::eip712::EmergencyAccess {
        contact: other.keys.address(),
        patient: owner.keys.address(),
        nonce: U256::one(),
    };
    let emergency_open_body =
        json!({ "body": fns::Signed { signature: access_domain.sign_typed(&other.keys, &opening), message: opening } });
    let removal = chartkey_core::eip712::EmergencyContactRemove {
        patient: owner.keys.address(),
        contact: other.keys.address(),
        nonce: U256::from(2),
    };
    let emergency_remove_body = json!({ "body": approved(&server, &mut owner, &access_domain, removal).await });
    const OTHER: usize = 2;
    let access = next_access(&chain, &shared.keys, &owner.keys, record).await;
    let open_body = json!({ "body": access_body(&domain, &shared.keys, &access) });
    let applicant = sign_up(&server, "Dr Matrix Applicant", Role::Clinician).await;
    let issue_body =
        json!({ "body": chain.credential_request_answered(&authority, &applicant, "oncology", now() + 86_400).await });
    let declined = sign_up(&server, "Dr Matrix Declined", Role::Clinician).await;
    let declined_request =
        chain.credential_request_answered(&authority, &declined, "oncology", now() + 86_400).await.request;
    let desk = authority.client.api(fns::CredentialsDesk {}).await.unwrap();
    let revocation = RevokeCredential {
        authority: authority.keys.address(),
        clinician: unshared.keys.address(),
        // After the credential the issue row gives.
        nonce: U256::from(desk.next_nonce + 1),
    };
    let revoke_body = json!({ "body": { "message": revocation,
        "signature": chain.sign(&authority.keys, &LedgerMessage::RevokeCredential(revocation.clone())) } });
    let request_body = json!({ "body": { "authority": format!("{:#x}", authority.keys.address()),
        "license_number": "MD-1", "specialty": "cardiology", "jurisdiction": "Massachusetts, US",
        "organisation": "Riverside Clinic" } });
    let owner_passkey = owner.client.api(fns::ListPasskeys {}).await.unwrap()[0].credential_id.clone();
    let removal = owner.client.api(fns::RemovePasskeyStart { credential_id: owner_passkey.clone() }).await.unwrap();
    let removal_message =
        chartkey_core::proof::remove_passkey_message(&owner.keys.address(), &removal.challenge, &owner_passkey);
    let remove_body = json!(fns::RemovePasskey {
        ceremony_id: removal.ceremony_id,
        credential_id: owner_passkey.clone(),
        signature: chartkey_core::proof::sign_message(&owner.keys, &removal_message)
    });
    // The generic relay, with every kind of message, each signed by the
    // owner (the only kind it takes is a registration; this one is stale).
    let relayed = |message: LedgerMessage| Req::Fn("ledger/relay", signed(&chain, &owner.keys, message));
    let register = LedgerMessage::Register(Register {
        account: owner.keys.address(),
        role: Role::Patient.code(),
        encryption_key: owner.keys.encryption_public(),
        nonce: U256::zero(),
    });
    let issue_message = LedgerMessage::IssueCredential(IssueCredential {
        authority: owner.keys.address(),
        clinician: unshared.keys.address(),
        license_id_hash: [1; 32],
        specialty: bytes32_text("cardiology").unwrap(),
        expires_at: now() + 86_400,
        nonce: U256::zero(),
    });
    let wrong_blob = |body: &[u8]| {
        Req::Http(reqwest::Method::PUT, format!("/api/blobs/{blob}"), Some((body.to_vec(), "application/octet-stream")))
    };
    let mut wrong_pack = Vec::new();
    chartkey_core::records::pack_frame(&mut wrong_pack, &sealed.anchored[0].ciphertext_hash, b"not the envelope");

    let all = |status: u16| [401, status, status, status, status, status, status];
    let json_post = |path: &str, body: Value| {
        Req::Http(reqwest::Method::POST, path.to_owned(), Some((body.to_string().into_bytes(), "application/json")))
    };
    let get = |path: String| Req::Http(reqwest::Method::GET, path, None);
    let blob_name = blob.clone();
    let no_keys = move |who: usize, body: &str| {
        assert!(!body.contains("wrapped_key") && !body.contains(&blob_name), "{}: key material: {body}", ROLES[who]);
    };
    let not_the_owners = move |who: usize, body: &str| {
        if who != OWNER && who != SHARED {
            assert!(!body.contains(&record.to_hex()), "{}: names the owner's record: {body}", ROLES[who]);
        }
    };

    let rows = vec![
        // Signed out or in, the same for all: ceremonies start in memory.
        row(
            "signup/start",
            Req::Fn("signup/start", json!({ "display_name": "Someone New", "role": Role::Patient })),
            [200; 7],
            May::Nothing,
        ),
        row("login/start", Req::Fn("login/start", json!({})), [200; 7], May::Nothing),
        row(
            "login/finish (a made-up ceremony)",
            Req::Fn("login/finish", json!({ "finish": { "ceremony_id": "x", "credential": {} } })),
            [400; 7],
            May::Nothing,
        ),
        row(
            "signup/finish (a made-up ceremony)",
            Req::Fn(
                "signup/finish",
                json!({ "finish": { "ceremony_id": "x", "credential": {}, "passkey_label": "p",
                "sealed_keystore": some_keystore(), "uses_passphrase": false } }),
            ),
            [400; 7],
            May::Nothing,
        ),
        // The same challenge whether or not the address has an account.
        row("restore/start", Req::Fn("restore/start", json!({ "address": owner_address })), [200; 7], May::Nothing),
        row(
            "restore/options (a made-up ceremony)",
            Req::Fn("restore/options", json!({ "proof": { "ceremony_id": "x", "signature": "0x00" } })),
            [400; 7],
            May::Nothing,
        ),
        row(
            "restore/finish (a made-up ceremony)",
            Req::Fn(
                "restore/finish",
                json!({ "finish": { "ceremony_id": "x", "credential": {}, "passkey_label": "p",
                "sealed_keystore": some_keystore(), "uses_passphrase": false } }),
            ),
            [400; 7],
            May::Nothing,
        ),
        row(
            "passkeys/add/finish (a made-up ceremony)",
            Req::Fn(
                "passkeys/add/finish",
                json!({ "finish": { "ceremony_id": "x", "credential": {},
                "passkey_label": "p", "sealed_keystore": some_keystore(), "uses_passphrase": false, "signature": chartkey_core::value::Signature([0; 65]) } }),
            ),
            all(400),
            May::Nothing,
        ),
        row("me", Req::Fn("me", json!({})), all(200), May::Nothing),
        row("passkeys/list", Req::Fn("passkeys/list", json!({})), all(200), May::Nothing),
        row("passkeys/add/start", Req::Fn("passkeys/add/start", json!({})), all(200), May::Nothing),
        row(
            "passkeys/remove/start (the owner's passkey)",
            Req::Fn("passkeys/remove/start", json!({ "credential_id": owner_passkey })),
            only(OWNER, 200, 404),
            May::Nothing,
        ),
        row(
            "passkeys/remove (the owner's only passkey, the owner's ceremony)",
            Req::Fn("passkeys/remove", remove_body),
            only(OWNER, 409, 400),
            May::Nothing,
        ),
        row(
            "directory/lookup (the owner)",
            Req::Fn("directory/lookup", json!({ "address": owner_address })),
            [401, 200, 404, 200, 404, 404, 404],
            May::Nothing,
        ),
        // Public: what a browser needs to sign its first registration.
        row("ledger/info", Req::Fn("ledger/info", json!({})), [200; 7], May::Nothing),
        row(
            "ledger/job (the owner's)",
            Req::Fn("ledger/job", json!({ "job": job })),
            only(OWNER, 200, 404),
            May::Nothing,
        ),
        row("ledger/overview", Req::Fn("ledger/overview", json!({})), all(200), May::Nothing),
        Row {
            check: Some(Box::new(|who, body: &str| {
                let parties = who == OWNER || who == SHARED;
                assert_eq!(body.contains("Granted"), parties, "{}: {body}", ROLES[who]);
            })),
            ..row(
                "ledger/transaction (the owner's grant)",
                Req::Fn("ledger/transaction", json!({ "hash": grant_tx })),
                all(200),
                May::Nothing,
            )
        },
        row("ledger/verify", Req::Fn("ledger/verify", json!({})), all(200), May::Nothing),
        row("ledger/checkpoint", Req::Fn("ledger/checkpoint", json!({})), all(200), May::Nothing),
        row("GET /api/chain/heads (public)", get("/api/chain/heads?from=0".into()), [200; 7], May::Nothing),
        Row {
            check: Some(Box::new(not_the_owners)),
            ..row("records/list", Req::Fn("records/list", json!({})), all(200), May::Nothing)
        },
        row("records/limits", Req::Fn("records/limits", json!({})), all(200), May::Nothing),
        row(
            "credentials/mine",
            Req::Fn("credentials/mine", json!({})),
            [401, 403, 403, 200, 200, 403, 403],
            May::Nothing,
        ),
        row("credentials/desk", Req::Fn("credentials/desk", json!({})), only(AUTHORITY, 200, 403), May::Nothing),
        row("clinicians/search", Req::Fn("clinicians/search", json!({ "query": "Dr" })), all(200), May::Nothing),
        Row {
            check: Some(Box::new(move |who, body: &str| {
                if who != OWNER && who != SHARED {
                    assert!(!body.contains("Matrix Owner"), "{}: {body}", ROLES[who]);
                }
            })),
            ..row("shares/list", Req::Fn("shares/list", json!({})), all(200), May::Nothing)
        },
        Row {
            check: Some(Box::new(not_the_owners)),
            ..row("accesses/list", Req::Fn("accesses/list", json!({})), all(200), May::Nothing)
        },
        row(
            "shares/nonce",
            Req::Fn("shares/nonce", json!({ "grantee": format!("{:#x}", shared.keys.address()) })),
            all(200),
            May::Nothing,
        ),
        Row {
            check: Some(Box::new(no_keys)),
            ..row(
                "shares/chart (the owner's, no key material)",
                Req::Fn("shares/chart", json!({ "patient": owner_address })),
                [401, 403, 403, 200, 404, 403, 403],
                May::Nothing,
            )
        },
        Row {
            check: Some(Box::new(not_the_owners)),
            ..row("notices/list", Req::Fn("notices/list", json!({})), all(200), May::Nothing)
        },
        row(
            "notices/read (up to the owner's notice; no one else has notices)",
            Req::Fn("notices/read", json!({ "up_to": notice })),
            all(200),
            May::Owner(OWNER),
        ),
        row(
            "approvals/start",
            Req::Fn("approvals/start", json!({ "digest": format!("0x{}", "11".repeat(32)) })),
            all(200),
            May::Nothing,
        ),
        // Content: by record id, for the owner only without an open.
        row(
            "GET /api/envelopes/{a shared record never opened}",
            get(format!("/api/envelopes/{}", unopened.to_hex())),
            only(OWNER, 200, 404),
            May::Nothing,
        ),
        row(
            "POST /api/envelopes (a shared record never opened)",
            json_post("/api/envelopes", json!({ "records": [unopened] })),
            only(OWNER, 200, 404),
            May::Nothing,
        ),
        row(
            "GET /api/envelopes/{the record the clinician opened a moment ago}",
            get(format!("/api/envelopes/{}", record.to_hex())),
            [401, 200, 404, 200, 404, 404, 404],
            May::Nothing,
        ),
        row(
            "POST /api/envelopes (the record opened a moment ago: the patient's own reads only)",
            json_post("/api/envelopes", json!({ "records": [record] })),
            only(OWNER, 200, 404),
            May::Nothing,
        ),
        row(
            "GET /api/blobs/{name} (no such route: content goes by record id)",
            get(format!("/api/blobs/{blob}")),
            [405; 7],
            May::Nothing,
        ),
        row("PUT an existing blob, empty body", wrong_blob(b""), all(422), May::Nothing),
        row("PUT an existing blob, wrong body", wrong_blob(b"someone else's bytes"), all(422), May::Nothing),
        row(
            "POST /api/blobs/pack (a frame named by an existing blob, wrong bytes)",
            Req::Http(reqwest::Method::POST, "/api/blobs/pack".into(), Some((wrong_pack, "application/octet-stream"))),
            all(422),
            May::Nothing,
        ),
        row("GET /api/notices/stream", get("/api/notices/stream".into()), all(200), May::Nothing),
        row(
            "/rpc without the token",
            json_post("/rpc", json!({ "jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber" })),
            [401; 7],
            May::Nothing,
        ),
        row("/healthz", get("/healthz".into()), [200; 7], May::Nothing),
        // The generic relay: registrations only.
        row("ledger/relay Register (stale)", relayed(register), [401, 422, 403, 403, 403, 403, 403], May::Nothing),
        row(
            "ledger/relay Grant",
            relayed(LedgerMessage::Grant(everything(&owner.keys, &unshared.keys, 1))),
            all(403),
            May::Nothing,
        ),
        row("ledger/relay Revoke", relayed(LedgerMessage::Revoke(stop.clone())), all(403), May::Nothing),
        row(
            "ledger/relay Access",
            relayed(LedgerMessage::Access(Access { grantee: owner.keys.address(), ..access.clone() })),
            all(403),
            May::Nothing,
        ),
        row("ledger/relay IssueCredential", relayed(issue_message), all(403), May::Nothing),
        row(
            "ledger/relay RevokeCredential",
            relayed(LedgerMessage::RevokeCredential(RevokeCredential {
                authority: owner.keys.address(),
                clinician: unshared.keys.address(),
                nonce: U256::zero(),
            })),
            all(403),
            May::Nothing,
        ),
        row(
            "ledger/relay Anchor",
            relayed(
                chartkey_core::records::anchor_message(
                    owner.keys.address(),
                    owner.keys.address(),
                    &new_record.anchored,
                )
                .unwrap(),
            ),
            all(403),
            May::Nothing,
        ),
        // Writes, each valid for its owner, who goes last.
        row(
            "records/add naming another chart's content",
            Req::Fn("records/add", claim_body),
            [401, 400, 409, 400, 400, 403, 403],
            May::Nothing,
        ),
        row(
            "records/add (the owner's new record)",
            Req::Fn("records/add", add_body),
            [401, 200, 400, 400, 400, 403, 403],
            May::Owner(OWNER),
        ),
        only_by(OWNER, "shares/grant (the owner's)", "shares/grant", grant_body),
        only_by(SHARED, "records/open (signed by the shared clinician)", "records/open", open_body),
        row(
            "credentials/request",
            Req::Fn("credentials/request", request_body),
            [401, 403, 403, 200, 200, 403, 403],
            May::Own,
        ),
        only_by(AUTHORITY, "credentials/issue (a request to the authority)", "credentials/issue", issue_body),
        only_by(
            AUTHORITY,
            "credentials/decline (a request to the authority)",
            "credentials/decline",
            json!({ "request": declined_request }),
        ),
        only_by(AUTHORITY, "credentials/revoke (the authority's credential)", "credentials/revoke", revoke_body),
        row("recovery/confirmed", Req::Fn("recovery/confirmed", json!({})), all(200), May::Own),
        only_by(OWNER, "shares/stop (the owner's share)", "shares/stop", stop_body),
        Row {
            check: Some(Box::new(not_the_owners_link)),
            ..row("links/list", Req::Fn("links/list", json!({})), all(200), May::Nothing)
        },
        row(
            "POST /shl/{id} (no such link)",
            json_post(&format!("/shl/{}", "A".repeat(43)), json!({ "recipient": "Anyone" })),
            [404; 7],
            May::Nothing,
        ),
        only_by(OWNER, "links/create (the owner's new link)", "links/create", link_create_body),
        only_by(OWNER, "links/update (the owner's long-term link)", "links/update", link_update_body),
        only_by(OWNER, "links/revoke (the owner's link)", "links/revoke", link_revoke_body),
        row("emergency/overview", Req::Fn("emergency/overview", json!({})), all(200), May::Nothing),
        row(
            "emergency/invite",
            Req::Fn("emergency/invite", json!({ "body": { "wait_seconds": 3600 } })),
            [401, 200, 200, 403, 403, 403, 403],
            May::Own,
        ),
        row(
            "emergency/accept (a made-up invitation)",
            Req::Fn("emergency/accept", json!({ "body": { "token": format!("0x{}", "ab".repeat(32)) } })),
            [401, 404, 404, 404, 404, 404, 404],
            May::Nothing,
        ),
        only_by(OWNER, "emergency/name (the owner names the contact who accepted)", "emergency/name", name_body),
        row(
            "emergency/request (signed by the named contact)",
            Req::Fn("emergency/request", emergency_request_body),
            [401, 404, 200, 404, 404, 404, 404],
            May::Owner(OTHER),
        ),
        only_by(OWNER, "emergency/refuse (the owner's)", "emergency/refuse", refuse_body),
        row(
            "emergency/open (signed by the contact, after the refusal)",
            Req::Fn("emergency/open", emergency_open_body),
            [401, 404, 422, 404, 404, 404, 404],
            May::Nothing,
        ),
        only_by(OWNER, "emergency/remove (the owner's)", "emergency/remove", emergency_remove_body),
        row("logout", Req::Fn("logout", json!({})), [200; 7], May::Own),
    ];
    // On an external chain the embedded ledger's own routes say they are
    // not here (after the same sign-in check).
    let rows: Vec<Row> = if common::engines::external_chain().is_some() {
        rows.into_iter().map(on_an_external_chain).collect()
    } else {
        rows
    };

    // Every server function the app declares has a row.
    let declared: Vec<&str> = include_str!("../../app/src/api.rs")
        .split("endpoint = \"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    assert!(declared.len() >= 41, "{declared:?}");
    for endpoint in declared {
        assert!(rows.iter().any(|r| matches!(r.req, Req::Fn(name, _) if name == endpoint)), "no row calls {endpoint}");
    }

    let clients: [&Client; 7] = [
        &anonymous,
        &owner.client,
        &other.client,
        &shared.client,
        &unshared.client,
        &authority.client,
        &verifier.client,
    ];
    let rpc = server.rpc();
    let mut wrong = Vec::new();
    for (n, row) in rows.iter().enumerate() {
        // The owner's cell last: the others see the fixture as it was.
        let mut order: Vec<usize> = (0..7).collect();
        if let May::Owner(owner) = row.may {
            order.retain(|&r| r != owner);
            order.push(owner);
        }
        for who in order {
            let head = rpc.result("eth_blockNumber", json!([])).await.to_string();
            let before = snapshot(&server, &head).await;
            let (status, body) = send(clients[who], &row.req, &format!("10.0.{n}.{who}")).await;
            if status != row.expect[who] {
                wrong.push(format!(
                    "{} as {}: {status} (expected {}) {body:.200}",
                    row.what, ROLES[who], row.expect[who]
                ));
                continue;
            }
            if let Some(check) = &row.check {
                check(who, &body);
            }
            let may_change = match row.may {
                May::Nothing => false,
                May::Owner(owner) => who == owner,
                May::Own => true,
            } && (200..300).contains(&status);
            if matches!(row.may, May::Owner(o) if o == who) {
                // The snapshot sees what a permitted write does.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let head = rpc.result("eth_blockNumber", json!([])).await.to_string();
                assert_ne!(snapshot(&server, &head).await, before, "{} as {}: the write shows", row.what, ROLES[who]);
            }
            if !may_change {
                // A relayed write may still be on its way to a block.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let head = rpc.result("eth_blockNumber", json!([])).await.to_string();
                let after = snapshot(&server, &head).await;
                if after != before {
                    wrong.push(format!("{} as {}: {status}, but something changed", row.what, ROLES[who]));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{} cells differ:\n{}", wrong.len(), wrong.join("\n"));
    server.stop().await;
}
