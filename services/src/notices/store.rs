//! The notices' store: a patient's notices, their unread count, and
//! marking them read.

use chartkey_api::{LinkNotice, NoticeKind, NoticeView};
use chartkey_core::envelope::RecordId;
use chartkey_core::value::{Address, Hash32};

use crate::db;
use crate::store::{Flag, Pool, StoreError, narrow};

/// A new notice for `account_id`, with `actor`'s address and name as the
/// page shows them.
pub struct NewNotice<'a> {
    pub account_id: &'a str,
    pub kind: NoticeKind,
    pub actor_id: &'a str,
    pub record: Option<(RecordId, u8)>,
    pub tx: Hash32,
    /// A link's use: the link and the recipient's label.
    pub link: Option<LinkNotice>,
    /// An emergency request: when it opens.
    pub opens_at: Option<i64>,
}

/// Stores `notice` on `conn` (its caller's transaction); the notice as its
/// reader sees it.
pub async fn insert(conn: &mut sqlx::AnyConnection, notice: NewNotice<'_>) -> Result<NoticeView, StoreError> {
    let at = db::now();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO notices (account_id, kind, actor_id, record_id, category, tx, at, link_id, recipient, opens_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(notice.account_id)
    .bind(kind_text(notice.kind))
    .bind(notice.actor_id)
    .bind(notice.record.map(|(id, _)| id))
    .bind(notice.record.map(|(_, category)| i16::from(category)))
    .bind(notice.tx)
    .bind(at)
    .bind(notice.link.as_ref().map(|l| l.link_id))
    .bind(notice.link.as_ref().map(|l| l.recipient.clone()))
    .bind(notice.opens_at)
    .fetch_one(&mut *conn)
    .await?;
    let (actor, actor_name): (Address, String) =
        sqlx::query_as("SELECT address, display_name FROM accounts WHERE id = $1")
            .bind(notice.actor_id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::Row("no such actor"))?;
    Ok(NoticeView {
        id,
        kind: notice.kind,
        actor,
        actor_name,
        record: notice.record.map(|(id, _)| id),
        category: notice.record.map(|(_, category)| category),
        tx: notice.tx,
        at,
        read: false,
        link: notice.link,
        opens_at: notice.opens_at,
    })
}

/// The newest `shown` notices of `account_id`, and how many are unread.
pub async fn inbox(pool: &Pool, account_id: &str, shown: i64) -> Result<(u32, Vec<NoticeView>), StoreError> {
    let unread: i64 = sqlx::query_scalar("SELECT count(*) FROM notices WHERE account_id = $1 AND read_at IS NULL")
        .bind(account_id)
        .fetch_one(pool)
        .await?;
    let rows: Vec<NoticeRow> = sqlx::query_as(
        "SELECT n.id, n.kind, a.address, a.display_name, n.record_id, n.category, n.tx, n.at,
                CASE WHEN n.read_at IS NULL THEN 0 ELSE 1 END, n.link_id, n.recipient, n.opens_at
         FROM notices n JOIN accounts a ON a.id = n.actor_id
         WHERE n.account_id = $1 ORDER BY n.id DESC LIMIT $2",
    )
    .bind(account_id)
    .bind(shown)
    .fetch_all(pool)
    .await?;
    let notices = rows.into_iter().map(notice_of).collect::<Result<Vec<_>, _>>()?;
    Ok((u32::try_from(unread).map_err(|_| StoreError::Row("unread count"))?, notices))
}

/// Marks `account_id`'s notices up to `up_to` as read.
pub async fn mark_read(pool: &Pool, account_id: &str, up_to: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("UPDATE notices SET read_at = $1 WHERE account_id = $2 AND id <= $3 AND read_at IS NULL")
        .bind(db::now())
        .bind(account_id)
        .bind(up_to)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// A notice as listed: id, kind, the actor's address and name, record and
/// category, transaction, time, read.
type NoticeRow = (
    i64,
    String,
    Address,
    String,
    Option<RecordId>,
    Option<i64>,
    Hash32,
    i64,
    Flag,
    Option<Hash32>,
    Option<String>,
    Option<i64>,
);

/// Each kind and its stored name.
const KINDS: [(NoticeKind, &str); 8] = [
    (NoticeKind::Access, "access"),
    (NoticeKind::WriteBack, "write_back"),
    (NoticeKind::LinkUse, "link_use"),
    (NoticeKind::EmergencyNamed, "emergency_named"),
    (NoticeKind::EmergencyRequested, "emergency_requested"),
    (NoticeKind::EmergencyRefused, "emergency_refused"),
    (NoticeKind::EmergencyAccessed, "emergency_accessed"),
    (NoticeKind::EmergencyRemoved, "emergency_removed"),
];

fn notice_of(
    (id, kind, actor, actor_name, record, category, tx, at, read, link_id, recipient, opens_at): NoticeRow,
) -> Result<NoticeView, StoreError> {
    let kind = KINDS.iter().find(|(_, name)| *name == kind).ok_or(StoreError::Row("notice kind"))?.0;
    let link = match (link_id, recipient) {
        (Some(link_id), Some(recipient)) => Some(LinkNotice { link_id, recipient }),
        (None, None) => None,
        _ => return Err(StoreError::Row("notice link")),
    };
    Ok(NoticeView {
        id,
        kind,
        link,
        actor,
        actor_name,
        record,
        category: category.map(narrow).transpose()?,
        tx,
        at,
        read: read.into(),
        opens_at,
    })
}

fn kind_text(kind: NoticeKind) -> &'static str {
    KINDS.iter().find(|(k, _)| *k == kind).map(|(_, name)| *name).expect("every kind is listed")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notice goes in, comes back as its reader sees it, and is read once.
    #[tokio::test]
    async fn notices_round_trip_through_the_store() {
        use crate::accounts::store::{self as accounts, tests as fixtures};
        let (_dir, pool) = fixtures::pool().await;
        let actor: Address = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".parse().unwrap();
        for (id, address) in [("patient", Address([1; 20])), ("doctor", actor)] {
            accounts::create(&pool, &fixtures::account(id, address), &fixtures::passkey(id, id)).await.unwrap();
        }
        let record = (RecordId([9; 32]), 7);
        let new = NewNotice {
            account_id: "patient",
            kind: NoticeKind::WriteBack,
            actor_id: "doctor",
            record: Some(record),
            tx: Hash32([4; 32]),
            link: None,
            opens_at: None,
        };
        let sent = insert(&mut pool.acquire().await.unwrap(), new).await.unwrap();
        assert_eq!((sent.actor, sent.actor_name.as_str(), sent.category), (actor, "doctor name", Some(7)));
        let (unread, listed) = inbox(&pool, "patient", 10).await.unwrap();
        assert_eq!((unread, listed.as_slice()), (1, std::slice::from_ref(&sent)));
        assert_eq!(mark_read(&pool, "patient", sent.id).await.unwrap(), 1);
        assert_eq!(mark_read(&pool, "patient", sent.id).await.unwrap(), 0, "read once");
        let (unread, listed) = inbox(&pool, "patient", 10).await.unwrap();
        assert_eq!((unread, listed[0].read), (0, true));
        let missing = NewNotice { actor_id: "nobody", ..new_like(&sent) };
        assert!(
            insert(&mut pool.acquire().await.unwrap(), missing).await.is_err(),
            "a notice names an account that exists"
        );
    }

    fn new_like(sent: &NoticeView) -> NewNotice<'static> {
        NewNotice {
            account_id: "patient",
            kind: sent.kind,
            actor_id: "doctor",
            record: None,
            tx: sent.tx,
            link: None,
            opens_at: None,
        }
    }
}
