//! `cargo xtask bench scale`: two release replicas of the server behind
//! nginx (Debian), sharing the PostgreSQL, moto S3 and anvil the xtask
//! started (CHARTKEY_TEST_POSTGRES, CHARTKEY_TEST_S3, CHARTKEY_TEST_CHAIN),
//! under 200 simulated clinicians for 60 s, one replica killed (SIGKILL) at
//! 30 s and started again on its port at 45 s.
//!
//! Each clinician opens a record shared with them, again and again, as the
//! browser does: an access signed with the core crate (EIP-712, their next
//! nonce), `records/open` through nginx, then the envelope. A request that
//! fails (the replica died under it) is followed, as in the portal, by
//! asking for the shared chart again (its `next_nonce`) and signing anew. Twenty patients meanwhile add a
//! record (upload, anchor) and share it with one of their clinicians
//! (passkey approval, grant), in a loop. Afterwards every acknowledged
//! access, grant and upload is looked for: its transaction mined with
//! success on anvil, its row in the database, its envelope in the bucket.
//!
//! Prints `scale.opens_per_s`, `scale.p99_ms` (open and envelope),
//! `scale.errors_outside_failover` (failed requests that ended more than
//! [`SETTLE`] after the kill and after the restart), `scale.failover_gap_ms`
//! (longest time without a successful open), `scale.lost_acknowledged`, and
//! counts.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chartkey_core::AccountKeys;
use chartkey_core::envelope::RecordId;
use chartkey_core::role::Role;
use chartkey_core::value::Hash32;
use chartkey_ledger::client::RemoteNode;
use chartkey_ledger::node::{Contracts, Wallet};
use common::chain::Chain;
use common::records::*;
use common::*;
use url::Url;

const CLINICIANS: usize = 200;
const PATIENTS: usize = 20;
const AUTHORITIES: usize = 8;
const RUN: Duration = Duration::from_secs(60);
const KILL_AT: Duration = Duration::from_secs(30);
const RESTART_AT: Duration = Duration::from_secs(45);
/// How long after the kill, and after the restarted replica answers,
/// failed requests count as the failover's.
const SETTLE: Duration = Duration::from_secs(3);
/// Requests at once while setting up.
const SETUP_CONCURRENCY: usize = 16;

/// A replica: the release `chartkey` binary on a fixed port, so nginx finds
/// it again after a restart.
struct Replica {
    name: &'static str,
    port: u16,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_chartkey"))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(&self.args)
            .env("CHARTKEY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the chartkey binary");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        assert!(
            first.starts_with("Chartkey is running at "),
            "replica {} did not start: {first:?} (see {})",
            self.name,
            self.log.display()
        );
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    /// SIGKILL, as a power cut: no shutdown, nothing flushed.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Until it answers (it prints its URL before its ledger is open).
    async fn wait(&self) {
        let started = Instant::now();
        while !self.answers().await {
            assert!(started.elapsed() < Duration::from_secs(60), "replica {} does not answer", self.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn answers(&self) -> bool {
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        reqwest::get(url).await.is_ok_and(|r| r.status().is_success())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Open,
    Upload,
    Grant,
}

/// One request's end: when (since the load started), how long it took,
/// and what was acknowledged (the transaction, and for an upload its record
/// and blob).
struct Event {
    kind: Kind,
    at: Duration,
    took: Duration,
    ok: Option<Acknowledged>,
    error: String,
}

struct Acknowledged {
    tx: String,
    record: Option<(String, String)>,
}

struct Load {
    started: Instant,
    events: Mutex<Vec<Event>>,
}

impl Load {
    fn record(&self, kind: Kind, began: Instant, outcome: Result<Acknowledged, String>) {
        let (ok, error) = match outcome {
            Ok(ack) => (Some(ack), String::new()),
            Err(e) => (None, e),
        };
        let event = Event { kind, at: self.started.elapsed(), took: began.elapsed(), ok, error };
        self.events.lock().unwrap().push(event);
    }

    fn running(&self) -> bool {
        self.started.elapsed() < RUN
    }
}

/// Server function `F` through nginx, as the browser calls it; any failure
/// (a 502 from nginx, an error answer) in words rather than a panic.
async fn try_api<F>(client: &Client, args: F) -> Result<F::Output, String>
where
    F: server_fn::ServerFn<Error = ApiError> + serde::Serialize,
    F::Output: serde::de::DeserializeOwned,
{
    let sent = client.http.post(format!("{}{}", client.base, F::PATH)).json(&args).send().await;
    let res = sent.map_err(|e| format!("{}: {e}", F::PATH))?;
    let status = res.status().as_u16();
    let text = res.text().await.map_err(|e| format!("{}: {e}", F::PATH))?;
    if status != 200 {
        return Err(format!("{}: {status} {}", F::PATH, text.chars().take(200).collect::<String>()));
    }
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", F::PATH))
}

fn hex_of(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// A transaction hash as text, whichever way it was written.
fn normal(tx: &str) -> String {
    tx.trim_start_matches("0x").to_ascii_lowercase()
}

/// A clinician opening `record` of `patient`'s chart until the run ends.
async fn clinician(load: Arc<Load>, me: Account, patient: AccountKeys, record: RecordId) {
    let domain = ledger_domain(&me.client).await;
    let Some(mut nonce) = next_nonce(&load, &me, &patient).await else { return };
    while load.running() {
        let began = Instant::now();
        let access = chartkey_core::eip712::Access {
            grantee: me.keys.address(),
            patient: patient.address(),
            record_id: record.0,
            nonce,
        };
        let body = access_body(&domain, &me.keys, &access);
        let outcome = async {
            let opened = try_api(&me.client, fns::RecordsOpen { body }).await?;
            let url = format!("{}/api/envelopes/{}", me.client.base, record.to_hex());
            let envelope = me.client.http.get(url).send().await.map_err(|e| format!("envelope: {e}"))?;
            if envelope.status() != 200 {
                return Err(format!("envelope: {}", envelope.status()));
            }
            envelope.bytes().await.map_err(|e| format!("envelope: {e}"))?;
            Ok(Acknowledged { tx: hex_of(&opened.access_tx.0), record: None })
        }
        .await;
        let failed = outcome.is_err();
        load.record(Kind::Open, began, outcome);
        if failed {
            // The request may have been journalled (and be mined later) or
            // not: the ledger says which nonce is next.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Some(next) = next_nonce(&load, &me, &patient).await else { return };
            nonce = next;
        } else {
            nonce += ethers_core::types::U256::one();
        }
    }
}

/// The clinician's next access nonce as the portal learns it: the shared
/// chart's `next_nonce` (the ledger's count), asked again until a replica
/// answers.
/// `None` when the run ended first.
async fn next_nonce(load: &Load, me: &Account, patient: &AccountKeys) -> Option<ethers_core::types::U256> {
    while load.running() {
        match try_api(&me.client, fns::SharesChart { patient: patient.address().into() }).await {
            Ok(chart) => return Some(chart.next_nonce.into()),
            Err(e) => {
                load.record(Kind::Open, Instant::now(), Err(format!("reading the nonce: {e}")));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    None
}

/// A patient adding a record and sharing it with one of their clinicians
/// (`grantees[theirs]`) after another, until the run ends.
async fn patient(
    load: Arc<Load>,
    front: Arc<Site>,
    mut me: Account,
    grantees: Arc<Vec<AccountKeys>>,
    theirs: std::ops::Range<usize>,
) {
    let domain = ledger_domain(&me.client).await;
    for round in 0.. {
        if !load.running() {
            break;
        }
        let sealed = seal_all(&me.keys, &floyd(1), None);
        let began = Instant::now();
        let added = async {
            let url = format!("{}/api/blobs/pack", me.client.base);
            let stored = me.client.http.post(url).body(sealed.pack.clone()).send().await;
            let status = stored.map_err(|e| format!("upload: {e}"))?.status();
            if status != 200 {
                return Err(format!("upload: {status}"));
            }
            let signature = sign_anchor(&domain, &me.keys, &sealed.anchored);
            let body = fns::AddRecordsBody { records: sealed.records.clone(), signature, patient: None };
            let receipt = try_api(&me.client, fns::RecordsAdd { body }).await?;
            let record = (sealed.anchored[0].id.to_hex(), hex_of(&sealed.anchored[0].ciphertext_hash));
            Ok(Acknowledged { tx: hex_of(&receipt.tx_hash.0), record: Some(record) })
        }
        .await;
        let failed = added.is_err();
        load.record(Kind::Upload, began, added);
        if failed {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let grantee = &grantees[theirs.start + round % theirs.len()];
        let began = Instant::now();
        let keys = vec![wrapped_for(&sealed.keys[0], sealed.anchored[0].id, grantee)];
        let granted = async {
            let nonce = try_api(&me.client, fns::SharesNonce { grantee: grantee.address().into() }).await?;
            let grant = everything(&me.keys, grantee, nonce);
            let start = try_api(&me.client, fns::ApprovalsStart { digest: Hash32(domain.digest(&grant)) }).await?;
            let credential = me.device.assert(&front.origin, webauthn_options(&start.options));
            let approval = fns::Approval { ceremony_id: start.ceremony_id, credential: webauthn_json(&credential) };
            let signature = domain.sign_typed(&me.keys, &grant);
            let body = fns::ShareBody { grant: grant.clone(), signature, keys, approval };
            let receipt = try_api(&me.client, fns::SharesGrant { body }).await?;
            Ok(Acknowledged { tx: hex_of(&receipt.tx_hash.0), record: None })
        }
        .await;
        load.record(Kind::Grant, began, granted);
    }
}

/// Runs `count` set-up steps, [`SETUP_CONCURRENCY`] at a time.
async fn in_parallel<T: Send + 'static, F>(count: usize, step: impl Fn(usize) -> F) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
{
    use futures_util::StreamExt;
    let mut done: Vec<(usize, T)> = futures_util::stream::iter(0..count)
        .map(|i| {
            let future = step(i);
            async move { (i, tokio::spawn(future).await.unwrap()) }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run());
}

#[allow(clippy::print_stdout)]
async fn run() {
    let chain_url = engines::external_chain().expect("run through `cargo xtask bench scale`, which starts the engines");
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let shared_dir = tmp.path().join("shared");
    let (database, bucket) = engines::for_data_dir(&shared_dir).await.expect("PostgreSQL and S3 (the xtask's)");
    let free_port = services::free_port;
    let (front_port, port_a, port_b) = (free_port(), free_port(), free_port());
    let origin: Url = format!("http://localhost:{front_port}").parse().unwrap();

    // Each replica relays with a key of its own, funded on anvil.
    let mut replicas = Vec::new();
    for (name, port, byte) in [("a", port_a, 0xa1u8), ("b", port_b, 0xb2)] {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("relayer.key"), hex::encode([byte; 32])).unwrap();
        let relayer = Wallet::from_secret(&[byte; 32]).unwrap().address();
        chartkey_ledger::anvil::fund_at(chain_url.as_str(), &[relayer], 1_000_000).await.unwrap();
        let mut args: Vec<String> = [
            "--data-dir",
            &dir.join("data").display().to_string(),
            "--relayer-key",
            &dir.join("relayer.key").display().to_string(),
            "--origin",
            origin.as_str(),
            "--database",
            database.as_str(),
            "--blob-store",
            bucket.as_str(),
            "--chain-rpc",
            chain_url.as_str(),
            "--trusted-proxy",
            "127.0.0.1",
            // One machine plays every client: lift the per-client and
            // per-account allowances.
            "--registration-per-minute",
            "1000000",
            "--login-per-minute",
            "1000000",
            "--relays-per-hour",
            "100000000",
        ]
        .map(String::from)
        .to_vec();
        if name == "b" {
            args.extend(["--contracts".into(), tmp.path().join("a/data/contracts.json").display().to_string()]);
        }
        let log = tmp.path().join(format!("{name}.log"));
        let mut replica = Replica { name, port, args, log, child: None };
        replica.start();
        replica.wait().await;
        replicas.push(replica);
        if name == "a" {
            let admin = wallet(&tmp.path().join("a/data"), "admin.key").address();
            chartkey_ledger::anvil::fund_at(chain_url.as_str(), &[admin], 1_000).await.unwrap();
        }
    }
    // As README's sample, and a replica that refuses connections is skipped
    // for two seconds; a request already sent is never sent twice.
    let proxy = services::Nginx::balancing(
        front_port,
        &[port_a, port_b],
        "max_fails=1 fail_timeout=2s",
        "proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_connect_timeout 1s; \
         proxy_next_upstream error timeout; client_max_body_size 200m;",
    );
    // What the clients see: nginx's origin. The data directory is replica
    // A's, whose administrator key owns the Directory.
    let front = Arc::new(Site {
        base: origin.as_str().trim_end_matches('/').to_owned(),
        origin: origin.clone(),
        pin: Some(([127, 0, 0, 1], front_port).into()),
        data_dir: tmp.path().join("a/data"),
        ledger_rpc: Some(chain_url.clone()),
    });
    assert!(front.answers(250).await, "nginx did not answer");

    // Set up: 200 verified clinicians (credentials from eight authorities,
    // each issuing in turn: an authority's messages carry consecutive
    // nonces), 20 patients with a record each, each shared with ten of the
    // clinicians.
    let setup = Instant::now();
    let authorities = in_parallel(AUTHORITIES, |i| {
        let front = Arc::clone(&front);
        async move { sign_up(&front, &format!("Scale Board {i}"), Role::CredentialingAuthority).await }
    })
    .await;
    let chain = Arc::new(Chain::of(&front, &authorities[0].client).await);
    for authority in &authorities {
        chain.set_authority(&front.data_dir, authority.keys.address()).await;
    }
    let clinicians = in_parallel(CLINICIANS, |i| {
        let front = Arc::clone(&front);
        async move { sign_up(&front, &format!("Dr Scale {i}"), Role::Clinician).await }
    })
    .await;
    let clinicians = Arc::new(clinicians);
    let authorities = Arc::new(authorities);
    in_parallel(AUTHORITIES, |a| {
        let (chain, clinicians, authorities) = (Arc::clone(&chain), Arc::clone(&clinicians), Arc::clone(&authorities));
        async move {
            for clinician in clinicians.iter().skip(a).step_by(AUTHORITIES) {
                chain.verify_clinician(&authorities[a], clinician, "cardiology", now() + 86_400).await;
            }
        }
    })
    .await;
    let clinicians = Arc::into_inner(clinicians).expect("set-up done");
    let grantees: Arc<Vec<AccountKeys>> = Arc::new(clinicians.iter().map(|c| c.secret.derive()).collect());
    let per_patient = CLINICIANS / PATIENTS;
    let patients = in_parallel(PATIENTS, |p| {
        let (front, grantees) = (Arc::clone(&front), Arc::clone(&grantees));
        async move {
            let mut patient = sign_up(&front, &format!("Scale Patient {p}"), Role::Patient).await;
            let sealed = seal_all(&patient.keys, &floyd(1), None);
            add(&patient, &ledger_domain(&patient.client).await, &sealed).await.expect("records/add");
            for grantee in &grantees[p * per_patient..(p + 1) * per_patient] {
                share_all(&front, &mut patient, grantee, &sealed).await.expect("shares/grant");
            }
            (patient, sealed.anchored[0].id)
        }
    })
    .await;
    eprintln!("set up in {:.1} s", setup.elapsed().as_secs_f64());

    // The load, and the failure.
    let load = Arc::new(Load { started: Instant::now(), events: Mutex::new(Vec::new()) });
    let mut tasks = tokio::task::JoinSet::new();
    for (i, me) in clinicians.into_iter().enumerate() {
        let (patient, record) = (patients[i / per_patient].0.secret.derive(), patients[i / per_patient].1);
        tasks.spawn(clinician(Arc::clone(&load), me, patient, record));
    }
    for (p, (me, _)) in patients.into_iter().enumerate() {
        let theirs = p * per_patient..(p + 1) * per_patient;
        let grantees = Arc::clone(&grantees);
        tasks.spawn(patient(Arc::clone(&load), Arc::clone(&front), me, grantees, theirs));
    }
    tokio::time::sleep_until((load.started + KILL_AT).into()).await;
    let mut a = replicas.remove(0);
    let killed_at = load.started.elapsed();
    a.kill();
    tokio::time::sleep_until((load.started + RESTART_AT).into()).await;
    let restarted = load.started.elapsed();
    let a = tokio::task::spawn_blocking(move || {
        a.start();
        a
    })
    .await
    .unwrap();
    a.wait().await;
    let answering = load.started.elapsed();
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let elapsed = load.started.elapsed();

    // What the clients saw.
    let events = std::mem::take(&mut *load.events.lock().unwrap());
    let in_failover =
        |at: Duration| (at >= killed_at && at <= killed_at + SETTLE) || (at >= restarted && at <= answering + SETTLE);
    let opens: Vec<&Event> = events.iter().filter(|e| e.kind == Kind::Open && e.ok.is_some()).collect();
    let mut took: Vec<Duration> = opens.iter().map(|e| e.took).collect();
    took.sort();
    let p99 = took.get((took.len() * 99).div_ceil(100).saturating_sub(1)).copied().unwrap_or_default();
    let mut ends: Vec<Duration> = opens.iter().map(|e| e.at).collect();
    ends.sort();
    let mut gap = ends.first().copied().unwrap_or(elapsed);
    for pair in ends.windows(2) {
        gap = gap.max(pair[1] - pair[0]);
    }
    let failed: Vec<&Event> = events.iter().filter(|e| e.ok.is_none()).collect();
    let outside: Vec<&&Event> = failed.iter().filter(|e| !in_failover(e.at)).collect();
    let mut kinds = std::collections::BTreeMap::<String, (usize, f64)>::new();
    for e in &outside {
        let what: String = e.error.lines().next().unwrap_or_default().chars().take(300).collect();
        kinds.entry(what).or_insert((0, e.at.as_secs_f64())).0 += 1;
    }
    for (what, (count, first)) in kinds {
        eprintln!("errors outside the failover: {count} × {what} (first at {first:.1} s)");
    }

    // What was acknowledged, looked for: on the ledger, in the database,
    // in the bucket.
    let node = RemoteNode::connect(chain_url.as_str(), Contracts::none()).await.unwrap();
    let db = engines::Db::open(&shared_dir).await;
    let access_rows: HashSet<String> = db.column("SELECT tx FROM accesses").await.iter().map(|t| normal(t)).collect();
    let grant_rows: HashSet<String> =
        db.column("SELECT grant_tx FROM grants").await.iter().map(|t| normal(t)).collect();
    let record_rows: HashSet<String> = db.column("SELECT id FROM records").await.iter().map(|t| normal(t)).collect();
    let blobs = engines::list(&engines::blob_store(&shared_dir).await).await.join("\n");
    let mut lost = 0usize;
    let acknowledged: Vec<(&Event, &Acknowledged)> =
        events.iter().filter_map(|e| e.ok.as_ref().map(|ack| (e, ack))).collect();
    for (event, ack) in &acknowledged {
        let hash: alloy_primitives::B256 = format!("0x{}", normal(&ack.tx)).parse().unwrap();
        let mut mined = node.outcome(hash).await.ok().flatten();
        for _ in 0..50 {
            if mined.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            mined = node.outcome(hash).await.ok().flatten();
        }
        let on_ledger = mined.is_some_and(|m| m.success);
        let stored = match event.kind {
            Kind::Open => access_rows.contains(&normal(&ack.tx)),
            Kind::Grant => grant_rows.contains(&normal(&ack.tx)),
            Kind::Upload => ack
                .record
                .as_ref()
                .is_some_and(|(id, blob)| record_rows.contains(&normal(id)) && blobs.contains(blob.as_str())),
        };
        if !(on_ledger && stored) {
            lost += 1;
            eprintln!("lost: {} (ledger: {on_ledger}, stored: {stored})", ack.tx);
        }
    }
    let count = |kind: Kind| acknowledged.iter().filter(|(e, _)| e.kind == kind).count();

    println!("scale.opens_per_s: {:.0}", opens.len() as f64 / elapsed.as_secs_f64());
    println!("scale.p99_ms: {}", p99.as_millis());
    println!("scale.errors_outside_failover: {}", outside.len());
    println!("scale.errors_during_failover: {}", failed.len() - outside.len());
    println!("scale.failover_gap_ms: {}", gap.as_millis());
    println!("scale.lost_acknowledged: {lost}");
    println!("scale.opens: {}", opens.len());
    println!("scale.uploads: {}", count(Kind::Upload));
    println!("scale.grants: {}", count(Kind::Grant));
    println!(
        "scale.timeline_s: killed {:.1}, restarted {:.1}, answering {:.1}, ended {:.1}",
        killed_at.as_secs_f64(),
        restarted.as_secs_f64(),
        answering.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    drop(a);
    drop(replicas);
    drop(proxy);
}
