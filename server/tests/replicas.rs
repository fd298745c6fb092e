//! Two replicas of the server, as a hospital runs them behind one proxy:
//! one origin, one PostgreSQL database, one S3 bucket and one external
//! chain (anvil), each replica with its own data directory and relayer
//! key. What one replica does, the other sees: an account made on one signs
//! in on the other, and a clinician's open on one reaches the patient's
//! live page on the other. Runs on the shared engines only (`cargo xtask
//! test`'s second run of the server tests).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use chartkey_core::role::Role;
use chartkey_ledger::anvil::Anvil;
use chartkey_ledger::node::Wallet;
use chartkey_server::authorities::{self, Applied};
use common::chain::Chain;
use common::records::*;
use common::*;

/// A replica's configuration: the shared engines and chain, its own data
/// directory and relayer key.
fn replica(config: &mut chartkey_server::Config, dir: &Path, anvil: &Anvil, engines: &(url::Url, url::Url)) {
    config.origin = "http://localhost".parse().unwrap();
    config.data_dir = dir.join("data");
    config.database = Some(engines.0.clone());
    config.blob_store = Some(engines.1.clone());
    config.chain_rpc = Some(anvil.url.parse().unwrap());
    config.relayer_key = Some(dir.join("relayer.key"));
}

/// A relayer key in `dir`, funded on anvil.
async fn funded_key(anvil: &Anvil, dir: &Path, byte: u8) {
    std::fs::create_dir_all(dir).unwrap();
    anvil.fund(&[Wallet::from_secret(&[byte; 32]).unwrap().address()], 1_000).await.unwrap();
    std::fs::write(dir.join("relayer.key"), hex::encode([byte; 32])).unwrap();
}

/// The next notice on a live stream, within `limit`.
async fn next_notice(stream: &mut reqwest::Response, limit: Duration) -> serde_json::Value {
    let started = Instant::now();
    let mut text = String::new();
    loop {
        let left = limit.checked_sub(started.elapsed()).expect("no notice in time");
        let chunk = tokio::time::timeout(left, stream.chunk()).await.expect("no notice in time").unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk.expect("the stream ended")));
        if let Some(at) = text.find("event: notice\ndata: ") {
            let data = &text[at + "event: notice\ndata: ".len()..];
            if let Some(end) = data.find('\n') {
                return serde_json::from_str(&data[..end]).unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_accounts_sessions_and_live_notices() {
    if !engines::on_shared_engines("sharing them between replicas") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let anvil = Anvil::start(&workspace(), 31_337).expect("anvil (npm @foundry-rs/anvil in contracts/)");
    let shared = engines::for_data_dir(&tmp.path().join("shared")).await.unwrap();
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));
    funded_key(&anvil, &dir_a, 0xa1).await;
    funded_key(&anvil, &dir_b, 0xb2).await;

    // Replica A deploys the contracts; B joins them.
    let a = TestServer::start_with(|c| replica(c, &dir_a, &anvil, &shared)).await;
    let contracts = a.data_dir.join("contracts.json");
    let b = TestServer::start_with(|c| {
        replica(c, &dir_b, &anvil, &shared);
        c.contracts_file = Some(contracts.clone());
    })
    .await;
    let admin = wallet(&a.data_dir, "admin.key").address();
    anvil.fund(&[admin], 1_000).await.unwrap();

    // An account made through A signs in through B.
    let mut patient = sign_up(&a, "Replica Patient", Role::Patient).await;
    let on_b = b.client();
    sign_in(&b, &on_b, &mut patient.device).await.expect("signs in on B");
    let me = on_b.api(fns::Me {}).await.expect("B knows the session it made");
    assert_eq!(me.display_name, "Replica Patient");

    // A verified clinician, a record and a share, all through A.
    let authority = sign_up(&a, "Replica Board", Role::CredentialingAuthority).await;
    let clinician = sign_up(&a, "Dr Replica", Role::Clinician).await;
    let mut chain = Chain::of(&a, &patient.client).await;
    chain.rpc = Rpc { http: reqwest::Client::new(), url: anvil.url.clone(), token: None };
    chain.set_authority(&a.data_dir, authority.keys.address()).await;
    chain.verify_clinician(&authority, &clinician, "cardiology", now() + 86_400).await;
    let domain = ledger_domain(&patient.client).await;
    let sealed = seal_all(&patient.keys, &floyd(2), None);
    add(&patient, &domain, &sealed).await.unwrap();
    share_all(&a, &mut patient, &clinician.keys, &sealed).await.unwrap();

    // The patient's page is open on B; the clinician opens a record on A.
    let mut stream = on_b.http.get(format!("{}/api/notices/stream", on_b.base)).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let record = sealed.anchored[0].id;
    let opened_at = Instant::now();
    open(&chain, &clinician, &patient.keys, record).await.expect("opened on A");
    let notice = next_notice(&mut stream, Duration::from_secs(2)).await;
    eprintln!("replicas.notice_crossed_ms {}", opened_at.elapsed().as_millis());
    assert_eq!(notice["kind"], "access", "{notice}");
    assert_eq!(notice["record"], record.to_hex(), "{notice}");

    // Its envelope is in the shared bucket: B releases it to the clinician
    // after the access A recorded.
    let on_b_clinician = b.client();
    let mut device = clinician.device;
    sign_in(&b, &on_b_clinician, &mut device).await.expect("the clinician signs in on B");
    assert_eq!(get_envelope(&on_b_clinician, record).await.0, 200);

    // `chartkey authority add` writes a row any replica sees; only the one
    // holding the Directory's administrator key applies it. With A down,
    // B (whose own administrator key owns nothing) leaves it waiting
    // rather than failing it; A applies it once it is back.
    let board = sign_up(&b, "Second Board", Role::CredentialingAuthority).await;
    a.stop().await;
    let shared_db = chartkey_server::store::Database::Postgres(shared.0.clone());
    let pool = &chartkey_server::store::open(&shared_db).await.unwrap();
    let id = authorities::request(pool, &format!("{:#x}", board.keys.address()), true).await.unwrap();
    tokio::time::sleep(authorities::POLL * 3).await;
    let meanwhile = authorities::applied(pool, id).await.unwrap();
    assert!(matches!(meanwhile, Applied::Waiting), "left for A: {meanwhile:?}");
    let a = TestServer::start_with(|c| replica(c, &dir_a, &anvil, &shared)).await;
    let started = Instant::now();
    loop {
        match authorities::applied(pool, id).await.unwrap() {
            Applied::Sent { .. } => break,
            Applied::Failed { error } => panic!("{error}"),
            Applied::Waiting => assert!(started.elapsed() < Duration::from_secs(15), "A did not apply it"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.stop().await;
    a.stop().await;
}

/// A client's allowance is counted in the shared database: three sign-in
/// starts a minute, spent across two replicas, leave none on either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_has_one_allowance_whichever_replica_it_reaches() {
    if !engines::on_shared_engines("a count shared by replicas") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let shared = engines::for_data_dir(&tmp.path().join("shared")).await.unwrap();
    let on = |name: &str| {
        let (dir, shared) = (tmp.path().join(name), shared.clone());
        TestServer::start_with(move |c| {
            c.data_dir = dir;
            c.database = Some(shared.0);
            c.blob_store = Some(shared.1);
            c.login_per_minute = 3;
        })
    };
    let (a, b) = (on("a").await, on("b").await);
    let (on_a, on_b) = (a.client(), b.client());
    for client in [&on_a, &on_b, &on_a] {
        client.api(fns::LoginStart {}).await.expect("within the allowance");
    }
    assert_eq!(on_b.api(fns::LoginStart {}).await.err(), Some(ApiError::RateLimited), "spent on A and B together");
    assert_eq!(on_a.api(fns::LoginStart {}).await.err(), Some(ApiError::RateLimited));
    b.stop().await;
    a.stop().await;
}
