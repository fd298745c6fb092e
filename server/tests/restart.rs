//! A server killed (SIGKILL, no shutdown) between journalling a request and
//! seeing it mined: after a restart every acknowledged request is mined
//! exactly once, and what the patient sees (Sharing, "Who viewed", notices,
//! the authority's desk) agrees with the ledger.
//!
//! Needs the `test-controls` feature (a paused miner, a short relay wait),
//! which `cargo xtask test` turns on and release builds never have.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chartkey_core::role::Role;
use chartkey_core::value::Hash32;
use chartkey_ledger::artifacts::{directory, records};
use common::records::*;
use common::*;
use ethers_core::types::{Address, H256};
use serde_json::{Value, json};
use server_fn::ServerFn;

/// Every event `name` of the contract at `address` whose indexed topics
/// start with `topics`, over the whole chain, read over JSON-RPC.
async fn events(portal: &Site, address: Address, name: &str, topics: &[H256]) -> Vec<Value> {
    let (records, directory) = (&records().abi, &directory().abi);
    let event = records.event(name).or_else(|_| directory.event(name)).unwrap();
    let mut filter = vec![json!(format!("{:#x}", event.signature()))];
    filter.extend(topics.iter().map(|t| json!(format!("{t:#x}"))));
    let query = json!([{ "fromBlock": "0x0", "toBlock": "latest", "address": address, "topics": filter }]);
    portal.rpc().result("eth_getLogs", query).await.as_array().unwrap().clone()
}

async fn chain_of(portal: &Site, account: &Account) -> common::chain::Chain {
    common::chain::Chain::of(portal, &account.client).await
}

fn topic(address: Address) -> H256 {
    H256::from(address)
}

/// The accounts' sessions (kept in the database) on the restarted server.
fn move_to(server: &ServerProcess, accounts: &mut [&mut Account]) {
    for account in accounts {
        account.client.base = server.base.clone();
    }
}

async fn pending_rows(data_dir: &std::path::Path) -> i64 {
    pending_in(&engines::Db::open(data_dir).await).await
}

async fn pending_in(db: &engines::Db) -> i64 {
    db.one("SELECT count(*) FROM pending_relays").await.parse().unwrap()
}

/// Waits (at most 30 s) until no bookkeeping is pending; `what` names
/// what did not settle otherwise.
async fn until_settled(data_dir: &std::path::Path, what: &str) {
    let started = std::time::Instant::now();
    let db = engines::Db::open(data_dir).await;
    while pending_in(&db).await > 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Finding 5: a grant, a stop, an access and a credential, each
/// acknowledged while the miner is paused, then SIGKILL. Before the fix a
/// grant mined after the restart had no row: a live consent the patient
/// could neither see nor stop; an access had no "who viewed" entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_journal_and_block_loses_no_bookkeeping() {
    if !engines::on_embedded_ledger("the embedded ledger's paused miner") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut server = ServerProcess::spawn(&data_dir, &["--registration-per-minute", "1000"]).await;
    let Parties { patient: mut granting, clinician: dr_grant, authority: mut board, chain, .. } =
        verified_parties(&server, "Grace Granting", "Dr Grant").await;
    let mut stopping = sign_up(&server, "Stella Stopping", Role::Patient).await;
    let mut viewed = sign_up(&server, "Vera Viewed", Role::Patient).await;
    let mut dr_stop = sign_up(&server, "Dr Stop", Role::Clinician).await;
    let mut dr_view = sign_up(&server, "Dr View", Role::Clinician).await;
    let mut dr_new = sign_up(&server, "Dr New", Role::Clinician).await;
    for clinician in [&dr_stop, &dr_view] {
        chain.verify_clinician(&board, clinician, "cardiology", now() + 86_400).await;
    }
    // A record each for the grant and the access, and the shares that are
    // stopped and used during the pause.
    let (granted_record, added) = add_shared(&granting, &[]).await;
    added.unwrap();
    let (viewed_record, added) = add_shared(&viewed, &[]).await;
    added.unwrap();
    let view_id = viewed_record.anchored[0].id;
    let key = wrapped_for(&viewed_record.keys[0], view_id, &dr_view.keys);
    let grant = everything(&viewed.keys, &dr_view.keys, 0);
    let shared = share_approved(&server, &mut viewed, &grant, vec![key]).await.unwrap();
    assert!(shared.mined, "{shared:?}");
    let grant = everything(&stopping.keys, &dr_stop.keys, 0);
    let shared = share_approved(&server, &mut stopping, &grant, vec![]).await.unwrap();
    assert!(shared.mined, "{shared:?}");

    // Restarted with the miner paused and no wait for blocks: each request
    // below is journalled and acknowledged, and none is mined.
    server.kill();
    let mut server = ServerProcess::spawn(&data_dir, &["--test-pause-mining", "--test-relay-wait-ms", "0"]).await;
    move_to(
        &server,
        &mut [&mut granting, &mut stopping, &mut viewed, &mut board, &mut dr_stop, &mut dr_view, &mut dr_new],
    );
    let chain = common::chain::Chain { rpc: server.rpc(), ..chain };
    let head_before = server.rpc().result("eth_blockNumber", json!([])).await;

    let grant_id = granting_record_id(&granted_record);
    let key = wrapped_for(&granted_record.keys[0], grant_id, &dr_grant.keys);
    let grant = everything(&granting.keys, &dr_grant.keys, 0);
    let granted = share_approved(&server, &mut granting, &grant, vec![key]).await.unwrap();
    assert!(!granted.mined, "{granted:?}");
    let stopped = stop_approved(&server, &chain, &mut stopping, &dr_stop.keys).await.unwrap();
    assert!(!stopped.mined, "{stopped:?}");
    let opened = open(&chain, &dr_view, &viewed.keys, view_id).await;
    assert!(matches!(opened, Err(ApiError::Conflict(_))), "not mined, so nothing is released: {opened:?}");
    assert_eq!(get_envelope(&dr_view.client, view_id).await.0, 404);
    let issued = chain.issue_credential(&board, &dr_new, "oncology", now() + 86_400).await.unwrap();
    assert!(!issued.mined, "{issued:?}");
    assert_eq!(server.rpc().result("eth_blockNumber", json!([])).await, head_before, "nothing was mined");
    assert_eq!(pending_rows(&data_dir).await, 3, "a grant, an access and a credential wait for their blocks");
    let acknowledged: Vec<String> = [&granted, &stopped, &issued].iter().map(|a| a.tx_hash.to_string()).collect();

    server.kill();
    let server = ServerProcess::spawn(&data_dir, &[]).await;
    move_to(&server, &mut [&mut granting, &mut stopping, &mut viewed, &mut board, &mut dr_view, &mut dr_new]);
    let mut dr_grant = dr_grant;
    move_to(&server, &mut [&mut dr_grant]);

    // Every acknowledged request is mined once, and its bookkeeping done.
    until_settled(&data_dir, "the recovered requests are not settled").await;
    let rpc = server.rpc();
    for tx in &acknowledged {
        let receipt = rpc.result("eth_getTransactionReceipt", json!([tx])).await;
        assert_eq!(receipt["status"], "0x1", "acknowledged {tx} is mined: {receipt}");
    }
    let chain = chain_of(&server, &granting).await;
    let granted_events =
        events(&server, chain.records, "Granted", &[topic(granting.keys.address()), topic(dr_grant.keys.address())])
            .await;
    assert_eq!(granted_events.len(), 1, "the grant, once");
    let revoked =
        events(&server, chain.records, "Revoked", &[topic(stopping.keys.address()), topic(dr_stop.keys.address())])
            .await;
    assert_eq!(revoked.len(), 1, "the stop, once");
    let accessed = events(
        &server,
        chain.records,
        "Accessed",
        &[topic(viewed.keys.address()), topic(dr_view.keys.address()), H256(view_id.0)],
    )
    .await;
    assert_eq!(accessed.len(), 1, "the access, once");
    let credentialed = events(&server, chain.directory, "CredentialIssued", &[topic(dr_new.keys.address())]).await;
    assert_eq!(credentialed.len(), 1, "the credential, once");

    // Sharing: the grant is listed (with its key) and can be stopped; the
    // stopped share shows stopped.
    let shares = granting.client.api(fns::SharesList {}).await.unwrap();
    assert_eq!(shares.len(), 1, "{shares:?}");
    let share = &shares[0];
    assert_eq!((share.state, share.keys), (fns::ShareState::Active, 1), "{share:?}");
    assert_eq!(json!(share.grant_tx), granted_events[0]["transactionHash"]);
    let chart = dr_grant.client.api(fns::SharesChart { patient: granting.keys.address().into() }).await.unwrap();
    assert_eq!(chart.records[0].id, grant_id, "{chart:?}");
    let stop = stop_approved(&server, &chain, &mut granting, &dr_grant.keys).await.expect("the patient can stop it");
    assert!(stop.mined, "the patient can stop it: {stop:?}");
    let shares = stopping.client.api(fns::SharesList {}).await.unwrap();
    assert_eq!(shares[0].state, fns::ShareState::Stopped, "{shares:?}");

    // Who viewed: the access the ledger recorded, with its notice.
    let viewed_list = viewed.client.api(fns::AccessesList {}).await.unwrap();
    assert_eq!(viewed_list.len(), 1, "{viewed_list:?}");
    assert_eq!(json!(viewed_list[0].tx), accessed[0]["transactionHash"]);
    assert_eq!(viewed_list[0].grantee_name, "Dr View");
    let inbox = viewed.client.api(fns::NoticesList {}).await.unwrap();
    let notices = &inbox.notices;
    assert_eq!(notices.len(), 1, "{inbox:?}");
    assert_eq!(
        (notices[0].kind, json!(notices[0].tx)),
        (fns::NoticeKind::Access, accessed[0]["transactionHash"].clone())
    );

    // The authority's desk: the request is issued, by the mined transaction.
    let desk = board.client.api(fns::CredentialsDesk {}).await.unwrap();
    let request = desk.decided.iter().find(|r| r.clinician.display_name == "Dr New").expect("decided");
    assert_eq!(
        (request.state, json!(request.decision_tx)),
        (fns::RequestState::Issued, credentialed[0]["transactionHash"].clone())
    );
    assert!(desk.pending.is_empty(), "{desk:?}");
    let mine = dr_new.client.api(fns::CredentialsMine {}).await.unwrap();
    assert!(mine.me.credential.is_verified(), "{mine:?}");
    drop(server);
}

fn granting_record_id(sealed: &Sealed) -> chartkey_core::envelope::RecordId {
    sealed.anchored[0].id
}

/// Grants from ten patients at once, each answered as soon as it is
/// journalled (no wait for its block), and a SIGKILL at an arbitrary
/// moment: every acknowledged grant is mined after the restart, each
/// signed message once. Any failure before the kill fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_relaying_loses_no_acknowledged_grant() {
    if !engines::on_embedded_ledger("the embedded ledger's block delay and its blocks on disk") {
        return;
    }
    const PATIENTS: usize = 10;
    const GRANTS_EACH: u64 = 10;
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    // Answers as soon as a grant is journalled, and a block at most every
    // 100 ms: at the kill, acknowledged grants wait in the pool.
    let flags = ["--registration-per-minute", "1000", "--test-relay-wait-ms", "0", "--test-block-delay-ms", "100"];
    let mut server = ServerProcess::spawn(&data_dir, &flags).await;

    let clinician = sign_up(&server, "Dr Chen", Role::Clinician).await;
    let authority = sign_up(&server, "Medical Board", Role::CredentialingAuthority).await;
    let chain = chain_of(&server, &clinician).await;
    chain.set_authority(&data_dir, authority.keys.address()).await;
    chain.issue_credential(&authority, &clinician, "psychiatry", now() + 365 * 86_400).await.unwrap();
    let domain = ledger_domain(&clinician.client).await;
    let mut patients = Vec::new();
    for i in 0..PATIENTS {
        patients.push(sign_up(&server, &format!("Patient {i}"), Role::Patient).await);
    }
    // The credential is mined before the first grant needs it.
    let started = std::time::Instant::now();
    while !clinician.client.api(fns::CredentialsMine {}).await.unwrap().me.credential.is_verified() {
        assert!(started.elapsed() < Duration::from_secs(30), "the credential is not mined");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 100 grants: ten patients, each granting ten times in a row.
    let addresses: Vec<Address> = patients.iter().map(|p| p.keys.address()).collect();
    let clinician_address = clinician.keys.address();
    let clinician = Arc::new(clinician);
    let acknowledged: Arc<Mutex<Vec<(usize, u64, String)>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let killing = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    let origin = server.origin.clone();
    for (i, mut patient) in patients.into_iter().enumerate() {
        let (clinician, acknowledged, failures, killing, domain, origin) = (
            Arc::clone(&clinician),
            Arc::clone(&acknowledged),
            Arc::clone(&failures),
            Arc::clone(&killing),
            domain.clone(),
            origin.clone(),
        );
        tasks.spawn(async move {
            for nonce in 0..GRANTS_EACH {
                // Each share approved with the patient's passkey, as the
                // portal does, then sent. Only the kill may end a run early.
                // The typed bodies go over `http` directly: `Client::api`
                // panics when the connection drops, and the kill drops it.
                let grant = everything(&patient.keys, &clinician.keys, nonce);
                let result = async {
                    let start = patient
                        .client
                        .http
                        .post(format!("{}{}", patient.client.base, fns::ApprovalsStart::PATH))
                        .json(&fns::ApprovalsStart { digest: Hash32(domain.digest(&grant)) })
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let start = start.json::<fns::ApprovalStart>().await.map_err(|e| e.to_string())?;
                    let credential = patient.device.assert(&origin, webauthn_options(&start.options));
                    let approval =
                        fns::Approval { ceremony_id: start.ceremony_id, credential: webauthn_json(&credential) };
                    let signature = domain.sign_typed(&patient.keys, &grant);
                    let body = fns::SharesGrant { body: fns::ShareBody { grant, signature, keys: vec![], approval } };
                    let response = patient
                        .client
                        .http
                        .post(format!("{}{}", patient.client.base, fns::SharesGrant::PATH))
                        .json(&body)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = response.status();
                    let answer = response.text().await.map_err(|e| e.to_string())?;
                    if status != 200 {
                        return Err(format!("{status}: {answer}"));
                    }
                    let receipt: fns::RelayReceipt = serde_json::from_str(&answer).map_err(|e| e.to_string())?;
                    Ok(receipt.tx_hash.to_string())
                }
                .await;
                match result {
                    Ok(tx) => acknowledged.lock().unwrap().push((i, nonce, tx)),
                    Err(e) => {
                        if !killing.load(Ordering::SeqCst) {
                            failures.lock().unwrap().push(format!("patient {i}, grant {nonce}: {e}"));
                        }
                        return;
                    }
                }
            }
        });
    }
    // Kill once a third are acknowledged.
    let started = std::time::Instant::now();
    while acknowledged.lock().unwrap().len() < 30 {
        assert!(started.elapsed() < Duration::from_secs(60), "grants are not being relayed: {failures:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    killing.store(true, Ordering::SeqCst);
    server.kill();
    while tasks.join_next().await.is_some() {}
    assert_eq!(failures.lock().unwrap().as_slice(), &[] as &[String], "nothing failed before the kill");
    let acknowledged = acknowledged.lock().unwrap().clone();
    let total = PATIENTS as u64 * GRANTS_EACH;
    assert!(acknowledged.len() < total as usize, "the kill landed after everything was relayed");
    // The blocks on disk at the kill: grants acknowledged but not in them
    // had only the journal to survive by.
    let durable_head: i64 = rusqlite::Connection::open(data_dir.join("ledger.sqlite3"))
        .unwrap()
        .query_row("SELECT max(number) FROM blocks", [], |r| r.get(0))
        .unwrap();

    // Restart: the chain is replayed, the journal resent; every acknowledged
    // grant is mined, and nothing twice.
    let server = ServerProcess::spawn(&data_dir, &[]).await;
    let rpc = server.rpc();
    let mut unmined_at_kill = 0;
    for (_, _, tx_hash) in &acknowledged {
        let receipt = rpc.result("eth_getTransactionReceipt", json!([tx_hash])).await;
        assert_eq!(receipt["status"], "0x1", "acknowledged grant {tx_hash} is mined: {receipt}");
        let block = i64::from_str_radix(receipt["blockNumber"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
        unmined_at_kill += usize::from(block > durable_head);
    }
    let chain = common::chain::Chain { rpc, ..chain };
    let mut consumed = 0u64;
    for (i, address) in addresses.iter().enumerate() {
        let nonce = chain.consent_nonce(*address, clinician_address).await;
        if let Some(highest) = acknowledged.iter().filter(|(p, _, _)| *p == i).map(|(_, n, _)| *n).max() {
            assert!(nonce > highest, "patient {i}: grant {highest} was acknowledged, the ledger is at {nonce}");
        }
        consumed += nonce;
        let granted = events(&server, chain.records, "Granted", &[topic(*address), topic(clinician_address)]).await;
        assert_eq!(granted.len() as u64, nonce, "patient {i}: one grant per signed message, none twice");
    }
    assert!(consumed >= acknowledged.len() as u64 && consumed <= total);
    assert!(unmined_at_kill > 0, "the kill landed between acknowledgement and block for some grant");
    eprintln!(
        "{} of {total} grants acknowledged before SIGKILL ({unmined_at_kill} of them not yet in a block on disk); \
         {consumed} on the ledger after restart",
        acknowledged.len()
    );
    until_settled(&data_dir, "the recovered grants' rows are not written").await;
    let rows: i64 = engines::Db::open(&data_dir).await.one("SELECT count(*) FROM grants").await.parse().unwrap();
    assert_eq!(rows as u64, consumed, "a row for every grant on the ledger");
    drop(server);

    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_chartkey"))
        .args(["ledger", "verify", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

/// A new batch's anchor journalled and the server killed before it noted
/// the job: the rows were written before the anchor was journalled, and
/// after the restart the records are in the chart, anchored once. (Before,
/// the rows were written after the journal, so this kill left an anchor on
/// the ledger and no records in the chart.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_after_an_anchor_is_journalled_keeps_its_records() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut server = ServerProcess::spawn(&data_dir, &["--test-stall-after-journal"]).await;
    let mut patient = sign_up(&server, "Nora Journal", Role::Patient).await;
    let domain = ledger_domain(&patient.client).await;
    let sealed = seal_all(&patient.keys, &floyd(3), None);
    let (status, body) = upload_pack(&patient.client, sealed.pack.clone()).await;
    assert_eq!(status, 200, "{body:?}");
    let signature = sign_anchor(&domain, &patient.keys, &sealed.anchored);
    let request = patient
        .client
        .http
        .post(format!("{}{}", patient.client.base, fns::RecordsAdd::PATH))
        .json(&fns::RecordsAdd {
            body: fns::AddRecordsBody { records: sealed.records.clone(), signature, patient: None },
        })
        .send();
    let stalled = tokio::spawn(request);
    let journal = rusqlite::Connection::open(data_dir.join("relayer.sqlite3")).unwrap();
    let started = std::time::Instant::now();
    while journal
        .query_row("SELECT count(*) FROM jobs WHERE function = 'anchorBatch'", [], |r| r.get::<_, i64>(0))
        .unwrap()
        == 0
    {
        assert!(started.elapsed() < Duration::from_secs(30), "the anchor is not journalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill();
    assert!(stalled.await.unwrap().is_err(), "the request was cut off by the kill");
    drop(journal);

    let server = ServerProcess::spawn(&data_dir, &[]).await;
    move_to(&server, &mut [&mut patient]);
    until_settled(&data_dir, "not picked up after the restart").await;
    let started = std::time::Instant::now();
    let metas = loop {
        let metas = patient.client.api(fns::RecordsList {}).await.unwrap();
        assert_eq!(metas.len(), 3, "the records are in the chart: {metas:?}");
        if metas.iter().all(|m| m.anchor_block.is_some()) {
            break metas;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the anchor is not mined: {metas:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(metas.iter().all(|m| m.ledger == fns::LedgerAnchor::Batch { count: 3 }), "{metas:?}");
    let chain = chain_of(&server, &patient).await;
    let batches = events(&server, chain.records, "BatchAnchored", &[topic(patient.keys.address())]).await;
    assert_eq!(batches.len(), 1, "anchored once");
    assert_eq!(json!(metas[0].anchor_tx), batches[0]["transactionHash"]);
    for (meta, envelope) in metas.iter().zip(&sealed.envelopes) {
        assert_eq!(&get_envelope(&patient.client, meta.id).await.1, envelope, "its envelope reads back");
    }
}

/// A clinician's write-back acknowledged but not mined when the server is
/// killed: after the restart the record is anchored in the patient's chart
/// and the patient gets the write-back notice (before, the notice was sent
/// only when the anchor was mined within the request's wait).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_back_mined_after_a_restart_still_tells_the_patient() {
    if !engines::on_embedded_ledger("the embedded ledger's paused miner") {
        return;
    }
    use chartkey_core::eip712::LedgerMessage;
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut server = ServerProcess::spawn(&data_dir, &["--registration-per-minute", "1000"]).await;
    let Parties { mut patient, clinician: mut writer, domain, .. } =
        verified_parties(&server, "Wren Patient", "Dr Wren").await;
    let read_write = chartkey_core::eip712::Grant { write: true, ..everything(&patient.keys, &writer.keys, 0) };
    let shared = share_approved(&server, &mut patient, &read_write, vec![]).await.unwrap();
    assert!(shared.mined, "{shared:?}");

    server.kill();
    let mut server = ServerProcess::spawn(&data_dir, &["--test-pause-mining", "--test-relay-wait-ms", "0"]).await;
    move_to(&server, &mut [&mut patient, &mut writer]);
    let sealed = seal_all(&writer.keys, &floyd(1), None);
    let (status, body) = upload_pack(&writer.client, sealed.pack.clone()).await;
    assert_eq!(status, 200, "{body:?}");
    let id = sealed.anchored[0].id;
    let for_patient = wrapped_for(&sealed.keys[0], id, &patient.keys).wrapped_key;
    let signature =
        match chartkey_core::records::anchor_message(writer.keys.address(), patient.keys.address(), &sealed.anchored)
            .unwrap()
        {
            LedgerMessage::Anchor(m) => domain.sign_typed(&writer.keys, &m),
            other => panic!("not one anchor: {other:?}"),
        };
    let record = fns::NewRecord { patient_wrapped_key: Some(for_patient), ..sealed.records[0].clone() };
    let body = fns::AddRecordsBody { records: vec![record], signature, patient: Some(patient.keys.address().into()) };
    let written = writer.client.api(fns::RecordsAdd { body }).await.unwrap();
    assert!(!written.mined, "{written:?}");
    assert_eq!(pending_rows(&data_dir).await, 1, "the anchor waits for its block");
    let anchor_tx = written.tx_hash;

    server.kill();
    let server = ServerProcess::spawn(&data_dir, &[]).await;
    move_to(&server, &mut [&mut patient, &mut writer]);
    until_settled(&data_dir, "the write-back is not settled").await;
    let inbox = patient.client.api(fns::NoticesList {}).await.unwrap();
    let notices = &inbox.notices;
    assert_eq!(notices.len(), 1, "{inbox:?}");
    assert_eq!((notices[0].kind, notices[0].tx), (fns::NoticeKind::WriteBack, anchor_tx));
    assert_eq!(notices[0].actor_name, "Dr Wren");
    let metas = patient.client.api(fns::RecordsList {}).await.unwrap();
    let meta = metas.iter().find(|m| m.id == id).expect("the record is in the chart");
    assert!(meta.anchor_block.is_some(), "{meta:?}");
    assert_eq!(meta.anchor_tx, Some(anchor_tx));
}
