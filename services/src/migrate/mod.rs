//! `chartkey migrate`: a single node's data directory, its SQLite file and
//! blobs directory, moved to PostgreSQL and an object store (S3), so that
//! replicas can share them.
//!
//! - Everything is read from one snapshot of the SQLite file (a read
//!   transaction), so a server still running cannot tear the copy; what it
//!   writes after the snapshot is not copied (stop it first).
//! - Every object in the blobs directory is hashed before it is sent (its
//!   name is its SHA-256), hashed again by the destination store as it is
//!   written, and every record's and link file's envelope is read back
//!   from the destination and hashed once more: a record whose envelope is
//!   missing or altered stops the migration before any row is written.
//! - The rows go in one PostgreSQL transaction, into a database that must
//!   hold none yet: a failure leaves it as empty as it was. Row counts are
//!   compared per table afterwards.
//! - The source stays (it is the backup; its schema is brought to the
//!   latest version first, as a server start would), and a marker file in
//!   the data directory makes a server started on it without `--database`
//!   refuse, so the portal does not go on from the old copy by mistake.
//!
//! The ledger stays where it is: the embedded chain (`ledger.sqlite3`) and
//! the keys remain in the data directory, which the migrated server keeps
//! using (`--data-dir`), as do the relayer's journal and the contracts
//! file of an external chain.

mod rows;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use axum::body::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::blobs::{BlobName, BlobStore};
use crate::store::Database;

/// The marker a migration leaves in the data directory.
pub const MARKER: &str = "migrated.json";

/// Blobs copied at once (an object store answers each in tens of ms).
const BLOB_CONCURRENCY: usize = 8;

/// What was moved.
#[derive(Debug, Default)]
pub struct Report {
    /// Each table's name and rows copied, in the order they were copied.
    pub tables: Vec<(String, u64)>,
    /// Objects copied, and their bytes.
    pub blobs: u64,
    pub bytes: u64,
    /// Record and link-file envelopes read back and hashed at the destination.
    pub envelopes_verified: u64,
}

/// What a migration left in the data directory, for the server to read.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    /// Where the database went (without credentials).
    pub database: String,
    pub blob_store: String,
    /// Unix seconds.
    pub at: i64,
}

/// Moves `data_dir`'s database and blobs to `database` (PostgreSQL, empty)
/// and `blobs` (any object store `--blob-store` takes), reporting each step
/// to `progress`. Stop the server first.
pub async fn migrate(
    data_dir: &Path,
    database: &Database,
    blobs: &url::Url,
    progress: &mut (dyn FnMut(String) + Send),
) -> anyhow::Result<Report> {
    let Database::Postgres(_) = database else {
        anyhow::bail!("chartkey migrate moves a data directory to PostgreSQL (--database postgres://…)")
    };
    let source_file = data_dir.join("chartkey.sqlite3");
    if !source_file.exists() {
        anyhow::bail!("no Chartkey database in {} (pass the server's --data-dir)", data_dir.display());
    }
    let source = crate::db::open_migrated(&Database::Sqlite(source_file)).await?;
    let target = crate::db::open_migrated(database).await?;
    let result = copy(data_dir, &source, &target, blobs, progress).await;
    source.close().await;
    target.close().await;
    let report = result?;
    let marker = Marker { database: database.describe(), blob_store: blobs.to_string(), at: crate::db::now() };
    write_marker(data_dir, &marker)?;
    Ok(report)
}

async fn copy(
    data_dir: &Path,
    source: &crate::store::Pool,
    target: &crate::store::Pool,
    blobs: &url::Url,
    progress: &mut (dyn FnMut(String) + Send),
) -> anyhow::Result<Report> {
    let plan = rows::Plan::of(source, target).await?;
    let mut snapshot = source.begin().await.context("reading the source database")?;
    // The snapshot starts at its first read: the row counts.
    let counts = plan.counts(&mut snapshot).await?;
    if let Some((table, n)) = plan.counts_in(target).await?.into_iter().find(|(_, n)| *n > 0) {
        anyhow::bail!("the destination database is not empty ({table} has {n} rows): migrate into a new database");
    }
    let envelopes = plan.envelopes(&mut snapshot).await?;

    // No size limit: what is stored was admitted under the server's.
    let from = BlobStore::local(data_dir.join("blobs"), u64::MAX)?;
    let to = BlobStore::from_url(blobs, u64::MAX)?;
    let mut report = Report::default();
    copy_blobs(&from, &to, &mut report, progress).await?;
    verify_envelopes(&to, &envelopes, &mut report, progress).await?;

    report.tables = plan.copy(&mut snapshot, target, progress).await?;
    drop(snapshot);
    for ((table, copied), (_, counted)) in report.tables.iter().zip(&counts) {
        if copied != counted {
            anyhow::bail!("{table}: {counted} rows in the source, {copied} copied");
        }
    }
    let after = plan.counts_in(target).await?;
    if after != counts {
        anyhow::bail!("the destination's row counts {after:?} are not the source's {counts:?}");
    }
    Ok(report)
}

/// Every object in `from`, each hashed against its name, written to `to`.
async fn copy_blobs(
    from: &BlobStore,
    to: &BlobStore,
    report: &mut Report,
    progress: &mut (dyn FnMut(String) + Send),
) -> anyhow::Result<()> {
    let mut names = Vec::new();
    for path in from.list().await? {
        match blob_name(&path) {
            Some(name) => names.push(name),
            // Not an envelope: the local store's leftovers of an upload
            // cut off (it stages them beside their final name).
            None => progress(format!("skipped {path}: not a stored envelope")),
        }
    }
    let total = names.len();
    progress(format!("copying {total} envelopes"));
    let mut copies = futures_util::stream::iter(names)
        .map(|name| async move {
            let bytes = from.get(&name).await.with_context(|| format!("reading envelope {}", name.hex()))?;
            check_hash(&name, &bytes, "in the source")?;
            let len = bytes.len() as u64;
            let body = futures_util::stream::iter([Ok::<Bytes, std::convert::Infallible>(bytes)]);
            to.put_stream(&name, Some(len), body).await.with_context(|| format!("writing envelope {}", name.hex()))?;
            anyhow::Ok(len)
        })
        .buffer_unordered(BLOB_CONCURRENCY);
    while let Some(copied) = copies.next().await {
        report.bytes += copied?;
        report.blobs += 1;
        if report.blobs.is_multiple_of(500) || report.blobs as usize == total {
            progress(format!("copied {} of {total} envelopes ({} bytes)", report.blobs, report.bytes));
        }
    }
    Ok(())
}

/// Reads each envelope the rows name back from the destination and hashes
/// it: the record (or link file) will find exactly the bytes it was made of.
async fn verify_envelopes(
    to: &BlobStore,
    envelopes: &[(String, BlobName)],
    report: &mut Report,
    progress: &mut (dyn FnMut(String) + Send),
) -> anyhow::Result<()> {
    let distinct: HashSet<BlobName> = envelopes.iter().map(|(_, name)| *name).collect();
    let mut checks = futures_util::stream::iter(distinct)
        .map(|name| async move {
            match to.get(&name).await {
                Ok(bytes) => check_hash(&name, &bytes, "at the destination").map(|()| Ok(name)),
                Err(crate::blobs::BlobError::NotFound) => Ok(Err(name)),
                Err(e) => Err(e).with_context(|| format!("reading back envelope {}", name.hex())),
            }
        })
        .buffer_unordered(BLOB_CONCURRENCY);
    let mut missing = HashSet::new();
    while let Some(checked) = checks.next().await {
        match checked? {
            Ok(_) => report.envelopes_verified += 1,
            Err(name) => {
                missing.insert(name);
            }
        }
    }
    if let Some((owner, name)) = envelopes.iter().find(|(_, name)| missing.contains(name)) {
        anyhow::bail!(
            "{owner}'s envelope {} is not in the source's blobs directory ({} envelopes missing): nothing was written \
             to the database",
            name.hash(),
            missing.len()
        );
    }
    progress(format!("verified {} envelopes at the destination", report.envelopes_verified));
    Ok(())
}

/// `ab/abcd…` (the store's fan-out path) as the blob it names.
fn blob_name(path: &str) -> Option<BlobName> {
    let (fan, hex) = path.split_once('/')?;
    let name = BlobName::parse(hex).ok()?;
    (fan == &hex[..2]).then_some(name)
}

fn check_hash(name: &BlobName, bytes: &[u8], place: &str) -> anyhow::Result<()> {
    let actual: [u8; 32] = Sha256::digest(bytes).into();
    if actual != name.0 {
        anyhow::bail!("envelope {} {place} hashes to {}: it was altered", name.hash(), hex::encode(actual));
    }
    Ok(())
}

fn marker_path(data_dir: &Path) -> PathBuf {
    data_dir.join(MARKER)
}

fn write_marker(data_dir: &Path, marker: &Marker) -> anyhow::Result<()> {
    let path = marker_path(data_dir);
    std::fs::write(&path, serde_json::to_vec_pretty(marker)?).with_context(|| format!("writing {}", path.display()))
}

/// Refuses to serve `data_dir`'s own SQLite file once it was migrated
/// elsewhere: a server started without `--database` would otherwise carry
/// on from the copy left behind (`Config::database` asks).
pub fn refuse_if_migrated(data_dir: &Path) -> anyhow::Result<()> {
    let path = marker_path(data_dir);
    let Ok(text) = std::fs::read(&path) else { return Ok(()) };
    let marker: Marker =
        serde_json::from_slice(&text).with_context(|| format!("{} is not a migration marker", path.display()))?;
    anyhow::bail!(
        "this data directory's database and blobs were moved to {} and {} (chartkey migrate): start with \
         --database and --blob-store naming them. (To serve the old SQLite copy instead, delete {}.)",
        marker.database,
        marker.blob_store,
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fanned_out_hashes_are_envelopes() {
        let hex = "ab".repeat(32);
        assert!(blob_name(&format!("ab/{hex}")).is_some());
        assert!(blob_name(&format!("cd/{hex}")).is_none(), "in the wrong fan-out directory");
        assert!(blob_name(&format!("ab/{hex}#1")).is_none(), "a staged part");
        assert!(blob_name(&hex).is_none());
        assert!(blob_name(&format!("ab/{}", "AB".repeat(32))).is_none(), "names are lowercase");
        assert!(blob_name("").is_none());
    }

    #[test]
    fn a_marker_names_where_the_data_went() {
        let dir = tempfile::tempdir().unwrap();
        refuse_if_migrated(dir.path()).unwrap();
        let marker = Marker { database: "postgres://db:5432/chartkey".into(), blob_store: "s3://b".into(), at: 1 };
        write_marker(dir.path(), &marker).unwrap();
        let refused = refuse_if_migrated(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("postgres://db:5432/chartkey") && refused.contains("s3://b"), "{refused}");
        std::fs::write(marker_path(dir.path()), "{not json").unwrap();
        assert!(refuse_if_migrated(dir.path()).is_err(), "a damaged marker refuses too");
    }
}
