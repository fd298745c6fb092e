//! The accounts' store: accounts, their passkeys (with each passkey's
//! sealed key store), and the one visibility rule of the directory.

use crate::store::{Flag, Pool, StoreError, begin_write};
use chartkey_api::ApiError;
use chartkey_core::value::{Address, PublicKey, Signature};

/// What a caller acts on when a write is refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("an account with this address exists")]
    AddressTaken,
    #[error("this passkey is registered already")]
    PasskeyTaken,
    #[error("no such passkey on this account")]
    NoSuchPasskey,
    #[error("the account's only passkey")]
    LastPasskey,
}

impl From<sqlx::Error> for AccountError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(e) => e.into(),
            AccountError::AddressTaken => {
                ApiError::Conflict("An account with these keys already exists. Sign in instead.".into())
            }
            AccountError::PasskeyTaken => crate::webauthn::passkey_taken(),
            AccountError::NoSuchPasskey => ApiError::NotFound("That passkey is not on your account.".into()),
            AccountError::LastPasskey => ApiError::Conflict(
                "This is your only passkey, so it can't be removed. Add another passkey first.".into(),
            ),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: String,
    pub display_name: String,
    pub role: String,
    pub address: Address,
    pub encryption_key: PublicKey,
    pub directory_signature: Signature,
    #[sqlx(try_from = "Flag")]
    pub recovery_confirmed: bool,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyRow {
    pub credential_id: String,
    pub account_id: String,
    pub label: String,
    pub passkey_json: String,
    pub sealed_keystore: String,
    #[sqlx(try_from = "Flag")]
    pub uses_passphrase: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The columns of an [`AccountRow`], of `accounts a`.
const ACCOUNT_COLUMNS: &str = "a.id, a.display_name, a.role, a.address, a.encryption_key, a.directory_signature, \
    CASE WHEN a.recovery_confirmed_at IS NULL THEN 0 ELSE 1 END AS recovery_confirmed";

const PASSKEY_COLUMNS: &str =
    "credential_id, account_id, label, passkey_json, sealed_keystore, uses_passphrase, created_at, last_used_at";

/// The accounts whose `column` (`id` or `address`) is `key`: at most one.
async fn account_where<'q, E>(executor: E, column: &str, key: &str) -> Result<Option<AccountRow>, sqlx::Error>
where
    E: sqlx::Executor<'q, Database = sqlx::Any>,
{
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.{column} = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(key.to_owned()).fetch_optional(executor).await
}

pub async fn by_id(pool: &Pool, id: &str) -> Result<Option<AccountRow>, StoreError> {
    Ok(account_where(pool, "id", id).await?)
}

pub async fn by_address(pool: &Pool, address: &Address) -> Result<Option<AccountRow>, StoreError> {
    Ok(account_where(pool, "address", &address.to_string()).await?)
}

/// The account at `address` as `viewer_id` may see it: anyone's but a
/// patient's, and a patient's only by that patient, by clinicians the
/// patient has shared with, and by a patient whose emergency invitation
/// the account accepted (to anyone else the address is unknown).
pub async fn visible_by_address(
    pool: &Pool,
    address: &Address,
    viewer_id: &str,
) -> Result<Option<AccountRow>, StoreError> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.address = $1 AND (a.role != 'patient' OR a.id = $2
            OR EXISTS (SELECT 1 FROM grants g WHERE g.patient_id = a.id AND g.grantee_id = $2)
            OR EXISTS (SELECT 1 FROM emergency_invitations i WHERE i.contact_id = a.id AND i.patient_id = $2))"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(address).bind(viewer_id).fetch_optional(pool).await?)
}

/// The accounts of `role` whose name (or, for clinicians, latest requested
/// specialty or organisation) contains `query`, by name; all of them for an
/// empty query.
pub async fn search(pool: &Pool, role: &str, query: &str, limit: i64) -> Result<Vec<AccountRow>, StoreError> {
    let pattern = format!("%{}%", query.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
    let like = crate::store::like_ignoring_case(pool);
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a
         LEFT JOIN credential_requests r ON r.id = (
             SELECT id FROM credential_requests WHERE clinician_id = a.id ORDER BY id DESC LIMIT 1)
         WHERE a.role = $1 AND (a.display_name {like} $2 ESCAPE '\\' OR r.specialty {like} $2 ESCAPE '\\'
             OR r.organisation {like} $2 ESCAPE '\\')
         ORDER BY lower(a.display_name), a.id LIMIT $3"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(role).bind(pattern).bind(limit).fetch_all(pool).await?)
}

async fn insert_passkey<'q, E>(executor: E, p: &PasskeyRow) -> Result<bool, sqlx::Error>
where
    E: sqlx::Executor<'q, Database = sqlx::Any>,
{
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO passkeys ({PASSKEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (credential_id) DO NOTHING"
    )))
    .bind(p.credential_id.clone())
    .bind(p.account_id.clone())
    .bind(p.label.clone())
    .bind(p.passkey_json.clone())
    .bind(p.sealed_keystore.clone())
    .bind(i64::from(p.uses_passphrase))
    .bind(p.created_at)
    .bind(p.last_used_at)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A new account with its first passkey, both or neither.
pub async fn create(pool: &Pool, a: &AccountRow, passkey: &PasskeyRow) -> Result<(), AccountError> {
    let mut tx = begin_write(pool).await?;
    if account_where(&mut *tx, "address", &a.address.to_string()).await?.is_some() {
        return Err(AccountError::AddressTaken);
    }
    sqlx::query(
        "INSERT INTO accounts (id, display_name, role, address, encryption_key, directory_signature, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(a.id.clone())
    .bind(a.display_name.clone())
    .bind(a.role.clone())
    .bind(a.address)
    .bind(a.encryption_key)
    .bind(a.directory_signature)
    .bind(crate::db::now())
    .execute(&mut *tx)
    .await?;
    if !insert_passkey(&mut *tx, passkey).await? {
        return Err(AccountError::PasskeyTaken);
    }
    tx.commit().await?;
    Ok(())
}

/// Another passkey on an existing account.
pub async fn add_passkey(pool: &Pool, passkey: &PasskeyRow) -> Result<(), AccountError> {
    if insert_passkey(pool, passkey).await? { Ok(()) } else { Err(AccountError::PasskeyTaken) }
}

pub async fn passkey(pool: &Pool, credential_id: &str) -> Result<Option<PasskeyRow>, StoreError> {
    let sql = format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(credential_id).fetch_optional(pool).await?)
}

pub async fn passkeys_of(pool: &Pool, account_id: &str) -> Result<Vec<PasskeyRow>, StoreError> {
    let sql =
        format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE account_id = $1 ORDER BY created_at, credential_id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(account_id).fetch_all(pool).await?)
}

/// Stores a passkey's state after a sign-in (its signature counter moves);
/// `false` when the passkey was removed meanwhile.
pub async fn passkey_used(pool: &Pool, p: &PasskeyRow, passkey_json: String) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE passkeys SET passkey_json = $1, last_used_at = $2 WHERE credential_id = $3 AND account_id = $4",
    )
    .bind(passkey_json)
    .bind(crate::db::now())
    .bind(p.credential_id.clone())
    .bind(p.account_id.clone())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes one of `account_id`'s passkeys, never the last, and ends the
/// sessions that signed in with it.
pub async fn remove_passkey(pool: &Pool, account_id: &str, credential_id: &str) -> Result<(), AccountError> {
    let mut tx = begin_write(pool).await?;
    let keys: Vec<String> = sqlx::query_scalar("SELECT credential_id FROM passkeys WHERE account_id = $1")
        .bind(account_id)
        .fetch_all(&mut *tx)
        .await?;
    if !keys.iter().any(|k| k == credential_id) {
        return Err(AccountError::NoSuchPasskey);
    }
    if keys.len() <= 1 {
        return Err(AccountError::LastPasskey);
    }
    sqlx::query("DELETE FROM passkeys WHERE credential_id = $1 AND account_id = $2")
        .bind(credential_id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE credential_id = $1").bind(credential_id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Records that the account's owner wrote down the recovery phrase.
pub async fn confirm_recovery(pool: &Pool, account_id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE accounts SET recovery_confirmed_at = $1 WHERE id = $2 AND recovery_confirmed_at IS NULL")
        .bind(crate::db::now())
        .bind(account_id)
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A migrated database in a temporary directory, and a pool over it.
    pub(crate) async fn pool() -> (tempfile::TempDir, Pool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chartkey.sqlite3");
        crate::db::migrate(&path).unwrap();
        let pool = crate::store::open(&crate::store::Database::Sqlite(path.clone())).await.unwrap();
        (dir, pool)
    }

    pub(crate) fn account(id: &str, address: Address) -> AccountRow {
        AccountRow {
            id: id.into(),
            display_name: format!("{id} name"),
            role: "patient".into(),
            address,
            encryption_key: [2; 32].into(),
            directory_signature: Signature([3; 65]),
            recovery_confirmed: false,
        }
    }

    pub(crate) fn passkey(account_id: &str, credential_id: &str) -> PasskeyRow {
        PasskeyRow {
            credential_id: credential_id.into(),
            account_id: account_id.into(),
            label: "key".into(),
            passkey_json: "{}".into(),
            sealed_keystore: "{}".into(),
            uses_passphrase: true,
            created_at: 1,
            last_used_at: None,
        }
    }

    /// Sign-ups at once: each distinct address gets its account, one
    /// address gets one, and none fails for a busy database (a deferred
    /// transaction that reads before it writes would).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_signups_get_one_account_per_address() {
        let (_dir, pool) = pool().await;
        // Thirty tries at each of eight addresses, all under way at once.
        let attempts: Vec<_> = (0u8..240)
            .map(|i| {
                let pool = pool.clone();
                let (id, address) = (format!("acct{i}"), Address([i % 8; 20]));
                tokio::spawn(async move { create(&pool, &account(&id, address), &passkey(&id, &id)).await })
            })
            .collect();
        let mut created = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(()) => created += 1,
                Err(AccountError::AddressTaken) => {}
                Err(e) => panic!("a sign-up failed: {e}"),
            }
        }
        assert_eq!(created, 8);
        let found = by_address(&pool, &Address([3; 20])).await.unwrap().expect("one account");
        assert_eq!((found.recovery_confirmed, passkeys_of(&pool, &found.id).await.unwrap().len()), (false, 1));
    }

    /// A passkey is registered once; the last one stays; removing one ends
    /// its sessions.
    #[tokio::test]
    async fn passkeys_are_unique_and_the_last_one_stays() {
        let (_dir, pool) = pool().await;
        create(&pool, &account("a", Address([1; 20])), &passkey("a", "k1")).await.unwrap();
        let taken = create(&pool, &account("b", Address([2; 20])), &passkey("b", "k1")).await;
        assert!(matches!(taken, Err(AccountError::PasskeyTaken)));
        assert!(by_id(&pool, "b").await.unwrap().is_none(), "no account without its passkey");
        assert!(matches!(remove_passkey(&pool, "a", "k1").await, Err(AccountError::LastPasskey)));
        add_passkey(&pool, &passkey("a", "k2")).await.unwrap();
        assert!(matches!(add_passkey(&pool, &passkey("a", "k2")).await, Err(AccountError::PasskeyTaken)));
        let session = crate::sessions::store::LiveSession { account_id: "a".into(), credential_id: "k2".into() };
        crate::sessions::store::start(&pool, "hash", None, &session, i64::MAX).await.unwrap();
        assert!(crate::sessions::store::live(&pool, "hash", 60, true).await.unwrap().is_some());
        assert!(matches!(remove_passkey(&pool, "a", "nope").await, Err(AccountError::NoSuchPasskey)));
        remove_passkey(&pool, "a", "k2").await.unwrap();
        assert!(crate::sessions::store::live(&pool, "hash", 60, true).await.unwrap().is_none(), "its session ended");
        let keys = passkeys_of(&pool, "a").await.unwrap();
        assert_eq!(keys.iter().map(|k| k.credential_id.as_str()).collect::<Vec<_>>(), ["k1"]);
        confirm_recovery(&pool, "a").await.unwrap();
        assert!(by_id(&pool, "a").await.unwrap().unwrap().recovery_confirmed);
    }
}
