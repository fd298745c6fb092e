//! The engines a test server keeps its data in. By default the data
//! directory's SQLite file and blobs directory, as a single clinic runs.
//! `cargo xtask test` runs the suite a second time with PostgreSQL and an
//! S3 store (moto) it started (`CHARTKEY_TEST_POSTGRES`, an administrator
//! URL, and `CHARTKEY_TEST_S3`, the endpoint, with the `AWS_*` variables
//! set): then each data directory gets a database and a bucket of its own,
//! named after it, so a server restarted on the same directory finds its
//! data again. That run also relays to an external chain (anvil, started
//! by the xtask: `CHARTKEY_TEST_CHAIN`), where each data directory's keys
//! are funded and its server deploys contracts of its own. The helpers
//! below read and list what was stored on either.

use std::path::Path;

use chartkey_server::blobs::BlobStore;
use chartkey_server::store::Database;
use sha2::Digest;
use sqlx::{Column, Row};
use url::Url;

/// The administrator URL of the PostgreSQL server the suite runs on, when
/// it runs on the shared engines.
fn postgres_admin() -> Option<Url> {
    let url = std::env::var("CHARTKEY_TEST_POSTGRES").ok()?;
    Some(url.parse().expect("CHARTKEY_TEST_POSTGRES is a URL"))
}

/// Whether this run keeps data in PostgreSQL and S3 (not SQLite and files).
pub fn shared() -> bool {
    postgres_admin().is_some()
}

/// Whether this run keeps data in PostgreSQL and S3. When not, says that
/// the calling test, which needs them (`what` for), is skipped.
pub fn on_shared_engines(what: &str) -> bool {
    let on = shared();
    if !on {
        eprintln!("skipped on SQLite and files: {what} needs PostgreSQL and S3 (cargo xtask test's second run)");
    }
    on
}

/// The database and blob store of the server whose data directory is
/// `data_dir`, created on first use when the suite runs on the shared
/// engines; `None` for the data directory's own.
pub async fn for_data_dir(data_dir: &Path) -> Option<(Url, Url)> {
    static MADE: std::sync::Mutex<Vec<(std::path::PathBuf, Url, Url)>> = std::sync::Mutex::new(Vec::new());
    let admin = postgres_admin()?;
    if let Some((_, database, bucket)) = MADE.lock().unwrap().iter().find(|(dir, ..)| dir == data_dir) {
        return Some((database.clone(), bucket.clone()));
    }
    let digest = hex::encode(sha2::Sha256::digest(data_dir.to_string_lossy().as_bytes()));
    let name = format!("t{}", &digest[..24]);
    let pool = chartkey_server::store::open(&Database::Postgres(admin.clone())).await.unwrap();
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&pool)
        .await
        .unwrap();
    if exists.is_none() {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let endpoint = std::env::var("CHARTKEY_TEST_S3").expect("CHARTKEY_TEST_S3 beside CHARTKEY_TEST_POSTGRES");
    let bucket = format!("chartkey-{name}");
    let created = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.unwrap();
    assert!(created.status().is_success() || created.status() == 409, "creating bucket {bucket}: {created:?}");
    let mut database = admin;
    database.set_path(&name);
    let bucket: Url = format!("s3://{bucket}").parse().unwrap();
    MADE.lock().unwrap().push((data_dir.to_owned(), database.clone(), bucket.clone()));
    Some((database, bucket))
}

/// The external chain the suite relays to, when not each server's
/// embedded ledger.
pub fn external_chain() -> Option<Url> {
    let url = std::env::var("CHARTKEY_TEST_CHAIN").ok()?;
    Some(url.parse().expect("CHARTKEY_TEST_CHAIN is a URL"))
}

/// Whether servers run their embedded ledger. When not, says that the
/// calling test, which only makes sense there (`what` it needs), is skipped.
pub fn on_embedded_ledger(what: &str) -> bool {
    let embedded = external_chain().is_none();
    if !embedded {
        eprintln!("skipped on the external chain: this test needs {what}");
    }
    embedded
}

/// The external chain for the server whose data directory is `data_dir`,
/// with its relayer and administrator keys (`keys/` in it, created on
/// first use) funded there; `None` for the embedded ledger.
pub async fn chain_for(data_dir: &Path) -> Option<Url> {
    let url = external_chain()?;
    let keys = data_dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    for name in ["relayer.key", "admin.key"] {
        let path = keys.join(name);
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).unwrap();
            let secret = chartkey_ledger::node::Wallet::random().secret();
            std::io::Write::write_all(&mut file, hex::encode(secret).as_bytes()).unwrap();
        }
        let address = super::wallet(data_dir, name).address();
        chartkey_ledger::anvil::fund_at(url.as_str(), &[address], 1_000).await.expect("funding the keys on anvil");
    }
    Some(url)
}

/// The flags that point the `chartkey` binary at the same engines and
/// chain as [`for_data_dir`] and [`chain_for`].
pub async fn flags_for(data_dir: &Path) -> Vec<String> {
    let mut flags: Vec<String> = match for_data_dir(data_dir).await {
        Some((database, blobs)) => vec!["--database".into(), database.into(), "--blob-store".into(), blobs.into()],
        None => vec![],
    };
    if let Some(chain) = chain_for(data_dir).await {
        flags.extend(["--chain-rpc".into(), chain.into()]);
    }
    flags
}

/// The database of a server (SQLite file or PostgreSQL), for checks on
/// what it stored.
pub struct Db {
    pool: chartkey_server::store::Pool,
    sqlite: bool,
}

impl Db {
    pub async fn open(data_dir: &Path) -> Self {
        let database = match for_data_dir(data_dir).await {
            Some((url, _)) => Database::Postgres(url),
            None => Database::Sqlite(data_dir.join("chartkey.sqlite3")),
        };
        let sqlite = matches!(database, Database::Sqlite(_));
        Self { pool: chartkey_server::store::open(&database).await.unwrap(), sqlite }
    }

    /// The SQLite file at `path`, whichever engines the suite runs on.
    pub async fn sqlite(path: &Path) -> Self {
        let database = Database::Sqlite(path.to_owned());
        Self { pool: chartkey_server::store::open(&database).await.unwrap(), sqlite: true }
    }

    pub fn pool(&self) -> &chartkey_server::store::Pool {
        &self.pool
    }

    /// Every row of `sql`, each cell as text (`NULL` for none), on either
    /// engine: integers in decimal, bytes in hex.
    pub async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(&self.pool).await.unwrap();
        rows.iter().map(|row| (0..row.columns().len()).map(|i| cell(row, i)).collect()).collect()
    }

    /// The first column of the first row of `sql`.
    pub async fn one(&self, sql: &str) -> String {
        self.rows(sql).await.into_iter().next().and_then(|r| r.into_iter().next()).expect("a row")
    }

    /// `sql`'s first column, one value per row.
    pub async fn column(&self, sql: &str) -> Vec<String> {
        self.rows(sql).await.into_iter().map(|r| r.into_iter().next().unwrap()).collect()
    }

    /// Runs a statement (`$N` placeholders) with text arguments.
    pub async fn execute(&self, sql: &str, args: &[&str]) -> u64 {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
        for arg in args {
            query = query.bind(arg.to_string());
        }
        query.execute(&self.pool).await.unwrap().rows_affected()
    }

    /// The tables of the server's schema.
    pub async fn tables(&self) -> Vec<String> {
        let sql = if self.sqlite {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        } else {
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' ORDER BY table_name"
        };
        self.column(sql).await
    }

    pub fn is_sqlite(&self) -> bool {
        self.sqlite
    }
}

fn cell(row: &sqlx::any::AnyRow, i: usize) -> String {
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return v.map_or("NULL".into(), |v| v.to_string());
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return v.unwrap_or_else(|| "NULL".into());
    }
    if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
        return v.map_or("NULL".into(), hex::encode);
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
        return v.map_or("NULL".into(), |v| v.to_string());
    }
    panic!("column {i} ({}) has a type the tests do not read", row.columns()[i].name())
}

pub async fn blob_store(data_dir: &Path) -> BlobStore {
    match for_data_dir(data_dir).await {
        Some((_, url)) => BlobStore::from_url(&url, u64::MAX).unwrap(),
        None => BlobStore::local(data_dir.join("blobs"), u64::MAX).unwrap(),
    }
}

/// The paths of `store`'s objects (the server's directory or bucket),
/// sorted.
pub async fn list(store: &BlobStore) -> Vec<String> {
    let mut names = store.list().await.unwrap();
    names.sort();
    names
}

/// Every stored envelope with its bytes.
pub async fn blob_contents(data_dir: &Path) -> Vec<(String, bytes::Bytes)> {
    let store = blob_store(data_dir).await;
    let mut out = Vec::new();
    for path in store.list().await.unwrap() {
        let name = chartkey_server::blobs::BlobName::parse(path.rsplit('/').next().unwrap()).unwrap();
        out.push((path, store.get(&name).await.unwrap()));
    }
    out
}

/// Changes a stored envelope behind the server's back, as a failing disk
/// or an intruder in the bucket would.
pub async fn tamper_with_blob(data_dir: &Path, name: &str, change: impl FnOnce(&mut Vec<u8>)) {
    let path = format!("{}/{name}", &name[..2]);
    match for_data_dir(data_dir).await {
        Some((_, url)) => {
            use object_store::ObjectStoreExt;
            let bucket = object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str()).build().unwrap();
            let location = object_store::path::Path::from(path);
            let mut bytes = bucket.get(&location).await.unwrap().bytes().await.unwrap().to_vec();
            change(&mut bytes);
            bucket.put(&location, bytes.into()).await.unwrap();
        }
        None => {
            let file = data_dir.join("blobs").join(path);
            let mut bytes = std::fs::read(&file).unwrap();
            change(&mut bytes);
            std::fs::write(&file, &bytes).unwrap();
        }
    }
}

/// Every row of every table, as text (SQLite or PostgreSQL).
pub async fn database_dump(data_dir: &Path) -> String {
    let db = Db::open(data_dir).await;
    let mut out = String::new();
    for table in db.tables().await {
        out += &format!("{table}: {:?}\n", db.rows(&format!("SELECT * FROM {table}")).await);
    }
    out
}
