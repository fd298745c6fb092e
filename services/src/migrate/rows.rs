//! The rows of a migration: which tables, in which order (each after the
//! tables its foreign keys name), with which columns, read from the SQLite
//! snapshot and written to PostgreSQL in one transaction.

use std::collections::{BTreeSet, HashMap};

use anyhow::Context;
use futures_util::TryStreamExt;
use sqlx::Row;

use crate::blobs::BlobName;
use crate::store::Pool;

/// A transaction: the source's snapshot, or the destination's writing.
type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Rows sent in one INSERT (PostgreSQL takes 65,535 parameters at most).
const ROWS_PER_INSERT: usize = 500;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Int,
    Text,
    Bytes,
}

enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

struct Table {
    name: String,
    columns: Vec<(String, Kind)>,
    /// Its identity column (a counter), whose sequence must continue after
    /// the rows copied.
    identity: Option<String>,
}

/// The tables both databases have, in an order that inserts each row after
/// the rows it refers to.
pub struct Plan {
    tables: Vec<Table>,
}

impl Plan {
    /// The destination's schema, checked against the source's: the same
    /// tables with the same columns (both are migrated to the latest
    /// version first, so a difference is a bug worth stopping for).
    pub async fn of(source: &Pool, target: &Pool) -> anyhow::Result<Self> {
        let sources: BTreeSet<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(source)
        .await?
        .into_iter()
        .collect();
        let targets: BTreeSet<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
        )
        .fetch_all(target)
        .await?
        .into_iter()
        .collect();
        if sources != targets {
            anyhow::bail!(
                "the two schemas differ: only in SQLite {:?}, only in PostgreSQL {:?}",
                sources.difference(&targets).collect::<Vec<_>>(),
                targets.difference(&sources).collect::<Vec<_>>()
            );
        }
        let references: Vec<(String, String)> = sqlx::query(
            "SELECT child.relname::text, parent.relname::text FROM pg_constraint c
             JOIN pg_class child ON child.oid = c.conrelid
             JOIN pg_class parent ON parent.oid = c.confrelid
             JOIN pg_namespace n ON n.oid = child.relnamespace
             WHERE c.contype = 'f' AND n.nspname = 'public'",
        )
        .fetch_all(target)
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;
        let mut tables = Vec::new();
        for name in order(&targets, &references)? {
            tables.push(Table::of(&name, source, target).await?);
        }
        Ok(Self { tables })
    }

    /// Each table's rows in the snapshot.
    pub async fn counts(&self, snapshot: &mut Tx) -> anyhow::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for table in &self.tables {
            let sql = format!("SELECT count(*) FROM {}", table.name);
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut **snapshot).await?;
            out.push((table.name.clone(), n as u64));
        }
        Ok(out)
    }

    /// Each table's rows in `pool`'s database.
    pub async fn counts_in(&self, pool: &Pool) -> anyhow::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for table in &self.tables {
            let sql = format!("SELECT count(*) FROM {}", table.name);
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await?;
            out.push((table.name.clone(), n as u64));
        }
        Ok(out)
    }

    /// The envelopes the rows name: each record's and each link file's,
    /// with what names it (for the message when one is missing).
    pub async fn envelopes(&self, snapshot: &mut Tx) -> anyhow::Result<Vec<(String, BlobName)>> {
        let mut out = Vec::new();
        let named = sqlx::query(
            "SELECT 'record ' || id, blob FROM records
             UNION ALL SELECT 'link ' || link_id || ' file ' || position, blob FROM link_files",
        )
        .fetch_all(&mut **snapshot)
        .await?;
        for row in named {
            let (owner, blob): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            let hash: chartkey_core::value::Hash32 =
                blob.parse().map_err(|e| anyhow::anyhow!("{owner} names envelope {blob:?}: {e}"))?;
            out.push((owner, hash.into()));
        }
        Ok(out)
    }

    /// Copies every table's rows from the snapshot, in one transaction on
    /// `target`; each table's name and rows copied.
    pub async fn copy(
        &self,
        snapshot: &mut Tx,
        target: &Pool,
        progress: &mut (dyn FnMut(String) + Send),
    ) -> anyhow::Result<Vec<(String, u64)>> {
        let mut writing = target.begin().await?;
        let mut copied = Vec::new();
        for table in &self.tables {
            let n = table.copy(snapshot, &mut writing).await.with_context(|| format!("copying {}", table.name))?;
            progress(format!("copied {n} rows of {}", table.name));
            copied.push((table.name.clone(), n));
        }
        writing.commit().await.context("committing the rows")?;
        Ok(copied)
    }
}

impl Table {
    async fn of(name: &str, source: &Pool, target: &Pool) -> anyhow::Result<Self> {
        let described = sqlx::query(
            "SELECT column_name::text, data_type::text, is_identity::text FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(name)
        .fetch_all(target)
        .await?;
        let mut columns = Vec::new();
        let mut identity = None;
        for row in described {
            let (column, kind, is_identity): (String, String, String) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let kind = match kind.as_str() {
                "bigint" | "integer" | "smallint" => Kind::Int,
                "text" | "character varying" => Kind::Text,
                "bytea" => Kind::Bytes,
                other => anyhow::bail!("{name}.{column} is {other} on PostgreSQL, which migrate does not copy"),
            };
            if is_identity == "YES" {
                identity = Some(column.clone());
            }
            columns.push((column, kind));
        }
        let sql = format!("SELECT name FROM pragma_table_info('{name}')");
        let in_source: BTreeSet<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(source).await?.into_iter().collect();
        let in_target: BTreeSet<String> = columns.iter().map(|(c, _)| c.clone()).collect();
        if in_source != in_target {
            anyhow::bail!("{name} has columns {in_source:?} in SQLite but {in_target:?} in PostgreSQL");
        }
        Ok(Self { name: name.to_owned(), columns, identity })
    }

    /// Streams the rows in the order they were written (a row a table's
    /// own foreign key names, as an amended record, comes first).
    async fn copy(&self, snapshot: &mut Tx, writing: &mut Tx) -> anyhow::Result<u64> {
        let names: Vec<&str> = self.columns.iter().map(|(c, _)| c.as_str()).collect();
        let select = format!("SELECT {} FROM {} ORDER BY rowid", names.join(", "), self.name);
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&mut **snapshot);
        let mut batch: Vec<Vec<Value>> = Vec::with_capacity(ROWS_PER_INSERT);
        let mut copied = 0;
        while let Some(row) = rows.try_next().await? {
            batch.push(self.values(&row)?);
            if batch.len() == ROWS_PER_INSERT {
                copied += self.insert(&mut batch, writing).await?;
            }
        }
        drop(rows);
        copied += self.insert(&mut batch, writing).await?;
        if let Some(column) = &self.identity {
            // The next counter value follows the largest copied.
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                    COALESCE((SELECT max({column}) FROM {table}), 0) + 1, false)",
                table = self.name
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut **writing).await?;
        }
        Ok(copied)
    }

    fn values(&self, row: &sqlx::any::AnyRow) -> anyhow::Result<Vec<Value>> {
        let mut values = Vec::with_capacity(self.columns.len());
        for (i, (column, kind)) in self.columns.iter().enumerate() {
            let value = match kind {
                Kind::Int => row.try_get(i).map(Value::Int),
                Kind::Text => row.try_get(i).map(Value::Text),
                Kind::Bytes => row.try_get(i).map(Value::Bytes),
            };
            values.push(value.with_context(|| format!("reading {}.{column} as {kind:?}", self.name))?);
        }
        Ok(values)
    }

    /// Inserts the batch's rows (and empties it); how many.
    async fn insert(&self, batch: &mut Vec<Vec<Value>>, writing: &mut Tx) -> anyhow::Result<u64> {
        if batch.is_empty() {
            return Ok(0);
        }
        let width = self.columns.len();
        let tuples: Vec<String> = (0..batch.len())
            .map(|r| {
                let params: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
                format!("({})", params.join(", "))
            })
            .collect();
        let names: Vec<&str> = self.columns.iter().map(|(c, _)| c.as_str()).collect();
        let sql = format!("INSERT INTO {} ({}) VALUES {}", self.name, names.join(", "), tuples.join(", "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in batch.drain(..).flatten() {
            query = match value {
                Value::Int(v) => query.bind(v),
                Value::Text(v) => query.bind(v),
                Value::Bytes(v) => query.bind(v),
            };
        }
        Ok(query.execute(&mut **writing).await?.rows_affected())
    }
}

/// `tables` ordered so that each comes after every table it refers to
/// (`references`: child, parent); a table referring to itself is ordered
/// by its rows instead.
fn order(tables: &BTreeSet<String>, references: &[(String, String)]) -> anyhow::Result<Vec<String>> {
    let mut parents: HashMap<&str, BTreeSet<&str>> = tables.iter().map(|t| (t.as_str(), BTreeSet::new())).collect();
    for (child, parent) in references {
        if child != parent
            && let Some(set) = parents.get_mut(child.as_str())
        {
            set.insert(parent.as_str());
        }
    }
    let mut ordered: Vec<String> = Vec::new();
    while ordered.len() < tables.len() {
        let ready = tables
            .iter()
            .find(|t| !ordered.contains(t) && parents[t.as_str()].iter().all(|p| ordered.iter().any(|o| o == p)));
        match ready {
            Some(table) => ordered.push(table.clone()),
            None => anyhow::bail!("the tables' foreign keys form a cycle"),
        }
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn refs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn parents_come_first() {
        let tables = set(&["accesses", "accounts", "record_keys", "records"]);
        let references = refs(&[
            ("records", "accounts"),
            ("records", "records"),
            ("record_keys", "records"),
            ("accesses", "records"),
            ("accesses", "accounts"),
        ]);
        let ordered = order(&tables, &references).unwrap();
        let at = |t: &str| ordered.iter().position(|o| o == t).unwrap();
        assert!(at("accounts") < at("records"));
        assert!(at("records") < at("record_keys") && at("records") < at("accesses"));
        assert_eq!(ordered.len(), 4);
    }

    #[test]
    fn a_cycle_is_refused() {
        let tables = set(&["a", "b"]);
        assert!(order(&tables, &refs(&[("a", "b"), ("b", "a")])).is_err());
    }
}
