//! Notices: a row per event an account is told of (an access to one of a
//! patient's records, a clinician's write-back), and a live stream of new
//! ones to the account's open pages (server-sent events on
//! `GET /api/notices/stream`). A notice names who, which record (id and
//! category) and the ledger transaction: never anything of the record.

pub mod store;

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chartkey_api::{ApiError, Inbox};
use tokio::sync::broadcast;

use crate::notifier::Fanout;
use crate::sessions::ResolvedCaller;
use crate::state::AppState;

/// Notices an inbox lists.
const SHOWN: i64 = 200;
/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The signed-in account's notices, newest first, and the unread count.
pub async fn list(state: &AppState, c: &crate::caller::Caller) -> Result<Inbox, ApiError> {
    inbox(state, &c.require_session()?.account_id).await
}

/// Marks the signed-in account's notices up to `up_to` as read.
pub async fn read(state: &AppState, c: &crate::caller::Caller, up_to: i64) -> Result<Inbox, ApiError> {
    let account_id = c.require_session()?.account_id.clone();
    store::mark_read(&state.pool, &account_id, up_to).await?;
    inbox(state, &account_id).await
}

pub async fn inbox(state: &AppState, account_id: &str) -> Result<Inbox, ApiError> {
    let (unread, notices) = store::inbox(&state.pool, account_id, SHOWN).await?;
    Ok(Inbox { unread, notices })
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
                Ok(Fanout::Notice(to, view)) if to == watch.account_id => {
                    Event::default().event("notice").json_data(&view).unwrap_or_else(|_| Event::default())
                }
                Ok(Fanout::Notice(..)) => continue,
                Ok(Fanout::Missed) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    Event::default().event("lagged").data("reload")
                }
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
    receiver: broadcast::Receiver<Fanout>,
    stopping: tokio::sync::watch::Receiver<bool>,
    check: tokio::time::Interval,
    account_id: String,
    token_hash: String,
    state: AppState,
}

impl Watch {
    /// Whether the stream's session is still live (a failed look ends it too).
    async fn session_live(&self) -> bool {
        let idle = self.state.config.clinician_idle_lock.as_secs() as i64;
        matches!(
            crate::sessions::store::live(&self.state.pool, &self.token_hash, idle, false).await,
            Ok(Some(live)) if live.account_id == self.account_id
        )
    }
}
