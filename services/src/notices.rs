//! Notices: a row per event an account is told of (an access to one of a
//! patient's records, a clinician's write-back), and a live stream of new
//! ones to the account's open pages (server-sent events on
//! `GET /api/notices/stream`). A notice names who, which record (id and
//! category) and the ledger transaction: never anything of the record.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chartkey_api::{ApiError, Inbox, NoticeKind, NoticeView};
use chartkey_core::envelope::RecordId;
use chartkey_core::value::{Address, Hash32};
use rusqlite::params;
use tokio::sync::broadcast;

use crate::db;
use crate::sessions::ResolvedCaller;
use crate::state::AppState;

/// Notices an inbox lists.
const SHOWN: i64 = 200;
/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Records a notice for `account_id` and sends it to their open pages.
pub async fn publish(
    state: &AppState,
    account_id: &str,
    kind: NoticeKind,
    actor_id: &str,
    record: Option<(RecordId, u8)>,
    tx: Hash32,
) -> Result<(), ApiError> {
    let (account, actor) = (account_id.to_owned(), actor_id.to_owned());
    let kind_text = kind_text(kind);
    let (record_id, category) = (record.map(|(id, _)| id), record.map(|(_, c)| c));
    let at = db::now();
    let (id, actor_row) = state
        .db
        .call(move |conn| {
            conn.execute(
                "INSERT INTO notices (account_id, kind, actor_id, record_id, category, tx, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![account, kind_text, actor, record_id, category, tx, at],
            )?;
            Ok((conn.last_insert_rowid(), db::account_by_id(conn, &actor)?))
        })
        .await?;
    let actor = actor_row.ok_or(ApiError::Internal)?;
    let view = NoticeView {
        id,
        kind,
        actor: actor.address,
        actor_name: actor.display_name,
        record: record.map(|(id, _)| id),
        category: record.map(|(_, c)| c),
        tx,
        at,
        read: false,
    };
    // No open page is not an error: the inbox has it.
    state.notifier.send(account_id, view);
    Ok(())
}

fn kind_text(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Access => "access",
        NoticeKind::WriteBack => "write_back",
    }
}

/// The signed-in account's notices, newest first, and the unread count.
pub async fn list(state: &AppState, c: &crate::caller::Caller) -> Result<Inbox, ApiError> {
    inbox(state, &c.require_session()?.account_id).await
}

/// Marks the signed-in account's notices up to `up_to` as read.
pub async fn read(state: &AppState, c: &crate::caller::Caller, up_to: i64) -> Result<Inbox, ApiError> {
    let account_id = c.require_session()?.account_id.clone();
    mark_read(state, &account_id, up_to).await?;
    inbox(state, &account_id).await
}

pub async fn inbox(state: &AppState, account_id: &str) -> Result<Inbox, ApiError> {
    let id = account_id.to_owned();
    let (unread, rows) = state
        .db
        .call(move |conn| {
            let unread: u32 = conn.query_row(
                "SELECT count(*) FROM notices WHERE account_id = ?1 AND read_at IS NULL",
                [&id],
                |r| r.get(0),
            )?;
            let mut statement = conn.prepare(
                "SELECT n.id, n.kind, a.address, a.display_name, n.record_id, n.category, n.tx, n.at, n.read_at IS NOT NULL
                 FROM notices n JOIN accounts a ON a.id = n.actor_id
                 WHERE n.account_id = ?1 ORDER BY n.id DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(params![id, SHOWN], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Address>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<RecordId>>(4)?,
                    r.get::<_, Option<u8>>(5)?,
                    r.get::<_, Hash32>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, bool>(8)?,
                ))
            })?;
            Ok((unread, rows.collect::<rusqlite::Result<Vec<_>>>()?))
        })
        .await?;
    let notices = rows
        .into_iter()
        .map(|(id, kind, actor, actor_name, record, category, tx, at, read)| NoticeView {
            id,
            kind: if kind == "write_back" { NoticeKind::WriteBack } else { NoticeKind::Access },
            actor,
            actor_name,
            record,
            category,
            tx,
            at,
            read,
        })
        .collect();
    Ok(Inbox { unread, notices })
}

pub async fn mark_read(state: &AppState, account_id: &str, up_to: i64) -> Result<(), ApiError> {
    let sql = "UPDATE notices SET read_at = ?1 WHERE account_id = ?2 AND id <= ?3 AND read_at IS NULL";
    state.db.execute(sql, (db::now(), account_id.to_owned(), up_to)).await?;
    Ok(())
}

/// `GET /api/notices/stream`: the signed-in account's new notices as
/// server-sent events (`event: notice`, the notice as JSON; `event: lagged`
/// when some were skipped). Ends when the server shuts down, and within
/// [`SESSION_CHECK`] of its session ending (sign-out, expiry, the
/// clinician's idle lock, the passkey's removal).
pub async fn stream(State(state): State<AppState>, ResolvedCaller(caller): ResolvedCaller) -> Response {
    let Some(session) = caller.session else {
        return (StatusCode::UNAUTHORIZED, "Sign in to receive notices.").into_response();
    };
    let Some(slot) = StreamSlot::take(&state, &session.account_id) else {
        let error = ApiError::OverQuota(format!(
            "This account already has {} pages receiving notices. Close one, then reload this page.",
            state.config.streams_per_account
        ));
        return (StatusCode::TOO_MANY_REQUESTS, axum::Json(error)).into_response();
    };
    let watch = Watch {
        _slot: slot,
        receiver: state.notifier.subscribe(),
        stopping: state.stopping.subscribe(),
        check: tokio::time::interval_at(tokio::time::Instant::now() + SESSION_CHECK, SESSION_CHECK),
        account_id: session.account_id,
        token_hash: session.token_hash,
        state,
    };
    let events = futures_util::stream::unfold(watch, |mut watch| async move {
        loop {
            let next = tokio::select! {
                next = watch.receiver.recv() => Some(next),
                _ = watch.stopping.wait_for(|s| *s) => return None,
                _ = watch.check.tick() => None,
            };
            let Some(next) = next else {
                if watch.session_live().await {
                    continue;
                }
                return None;
            };
            let event = match next {
                Ok((to, view)) if to == watch.account_id => {
                    Event::default().event("notice").json_data(&view).unwrap_or_else(|_| Event::default())
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => Event::default().event("lagged").data("reload"),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some((Ok::<_, Infallible>(event), watch));
        }
    });
    let mut response = Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// How often an open stream checks that its session is still live.
pub const SESSION_CHECK: Duration = Duration::from_secs(2);

/// One of an account's open streams, given back when the stream ends (its
/// page closed, its session ended, the server stopping).
struct StreamSlot {
    state: AppState,
    account_id: String,
}

impl StreamSlot {
    fn take(state: &AppState, account_id: &str) -> Option<Self> {
        let mut open = state.limits.streams.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(account_id.to_owned()).or_default();
        if *count >= state.config.streams_per_account {
            tracing::warn!(account = %account_id, "too many notice streams");
            return None;
        }
        *count += 1;
        Some(Self { state: state.clone(), account_id: account_id.to_owned() })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.state.limits.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.account_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.account_id);
            }
        }
    }
}

/// One open stream: what it listens to and whose session it serves.
struct Watch {
    _slot: StreamSlot,
    receiver: broadcast::Receiver<(String, NoticeView)>,
    stopping: tokio::sync::watch::Receiver<bool>,
    check: tokio::time::Interval,
    account_id: String,
    token_hash: String,
    state: AppState,
}

impl Watch {
    /// Whether the stream's session is still live (a failed look ends it too).
    async fn session_live(&self) -> bool {
        let (hash, idle) = (self.token_hash.clone(), self.state.config.clinician_idle_lock.as_secs() as i64);
        matches!(
            self.state.db.call(move |c| db::session_if_live(c, &hash, idle)).await,
            Ok(Some((account, _))) if account == self.account_id
        )
    }
}
