//! `chartkey migrate`: a single node's data directory (SQLite and blob
//! files) moved to PostgreSQL and S3, every envelope's hash checked on the
//! way; the server then serves on from the moved data. Runs on the
//! suite's second run, where PostgreSQL and moto are started.

mod common;

use std::path::Path;

use common::records::*;
use common::*;
use url::Url;

/// Runs `chartkey migrate`; its exit status and what it printed.
fn migrate(data_dir: &Path, database: &Url, bucket: &Url) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chartkey"))
        .args(["migrate", "--data-dir"])
        .arg(data_dir)
        .args(["--database", database.as_str(), "--blob-store", bucket.as_str()])
        .output()
        .expect("run chartkey migrate");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// Every table's rows, each as text, sorted: what a migration must carry
/// over unchanged.
async fn contents(db: &engines::Db) -> Vec<(String, Vec<Vec<String>>)> {
    let mut out = Vec::new();
    for table in db.tables().await {
        let mut rows = db.rows(&format!("SELECT * FROM {table}")).await;
        rows.sort();
        out.push((table, rows));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_moves_to_postgres_and_s3_and_serves_on() {
    if !engines::on_shared_engines("moving a data directory to them") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let file: Url = format!("sqlite://{}", data_dir.join("chartkey.sqlite3").display()).parse().unwrap();

    // A single node: SQLite and files, with a chart, a share and an access.
    let single = TestServer::start_with(|c| {
        c.data_dir = data_dir.clone();
        c.database = Some(file.clone());
    })
    .await;
    let Parties { mut patient, mut clinician, chain, domain, .. } =
        verified_parties(&single, "Mira Moved", "Dr Mover").await;
    let sealed = seal_all(&patient.keys, &floyd(3), None);
    add(&patient, &domain, &sealed).await.unwrap();
    share_all(&single, &mut patient, &clinician.keys, &sealed).await.unwrap();
    let first = sealed.anchored[0].id;
    open(&chain, &clinician, &patient.keys, first).await.unwrap();
    single.stop().await;
    let before = contents(&engines::Db::sqlite(&data_dir.join("chartkey.sqlite3")).await).await;
    let envelopes = files_under(&data_dir.join("blobs"));
    assert_eq!(envelopes.len(), 3, "{envelopes:?}");

    // An envelope altered on disk stops the migration before a row is written.
    let (database, bucket) = engines::for_data_dir(&tmp.path().join("moved")).await.unwrap();
    let original = std::fs::read(&envelopes[0]).unwrap();
    let mut altered = original.clone();
    altered[40] ^= 1;
    std::fs::write(&envelopes[0], &altered).unwrap();
    let (moved, said) = migrate(&data_dir, &database, &bucket);
    assert!(!moved && said.contains("altered"), "{said}");
    let target = engines::Db::open(&tmp.path().join("moved")).await;
    assert_eq!(target.one("SELECT count(*) FROM accounts").await, "0", "nothing was written");
    assert!(!data_dir.join("migrated.json").exists());
    std::fs::write(&envelopes[0], &original).unwrap();

    let (moved, said) = migrate(&data_dir, &database, &bucket);
    assert!(moved, "{said}");
    assert!(said.contains("3 envelopes verified"), "{said}");
    assert_eq!(contents(&target).await, before, "every row, unchanged");
    let objects = engines::list(&engines::blob_store(&tmp.path().join("moved")).await).await;
    assert_eq!(objects.len(), 3, "{objects:?}");
    // Once is enough: the destination now holds data.
    let (again, said) = migrate(&data_dir, &database, &bucket);
    assert!(!again && said.contains("not empty"), "{said}");

    // The old copy is not served by mistake…
    let config = chartkey_server::Config::new(data_dir.clone(), "http://localhost".parse().unwrap());
    let refused = chartkey_server::state::AppState::new(config).await.err().expect("refused").to_string();
    assert!(refused.contains("chartkey migrate") && refused.contains("--database"), "{refused}");

    // …and the moved data serves on: the patient's session and chart, the
    // clinician's passkey, the share and its logged access.
    let server = TestServer::start_with(|c| {
        c.data_dir = data_dir.clone();
        c.database = Some(database.clone());
        c.blob_store = Some(bucket.clone());
    })
    .await;
    patient.client.base = server.base.clone();
    let chart = patient.client.api(fns::RecordsList {}).await.unwrap();
    assert_eq!(chart.len(), 3);
    let (status, bytes) = get_envelope(&patient.client, first).await;
    assert_eq!(status, 200);
    read(&patient.keys, &domain, chart.iter().find(|r| r.id == first).unwrap(), &bytes).unwrap();
    clinician.client = server.client();
    sign_in(&server, &clinician.client, &mut clinician.device).await.unwrap();
    let second = sealed.anchored[1].id;
    let opened = open(&chain, &clinician, &patient.keys, second).await.unwrap();
    let (status, bytes) = get_envelope(&clinician.client, second).await;
    assert_eq!(status, 200);
    read_as(&patient.keys, &clinician.keys, &domain, &opened.record, &bytes).unwrap();
    let accesses = patient.client.api(fns::AccessesList {}).await.unwrap();
    assert_eq!(accesses.len(), 2, "the access before the move and the one after: {accesses:?}");
    server.stop().await;
}
