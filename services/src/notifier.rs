//! Fans new notices out to the live streams of the accounts they are for.
//! On one process (SQLite) a broadcast channel does it. Replicas sharing
//! PostgreSQL each send a new notice through `pg_notify` and each listens
//! (`LISTEN`), so a notice published on one replica reaches the account's
//! pages on every replica. The database holds every notice: a stream that
//! may have missed some (a slow page, a listener that lost its connection)
//! is told so, and its page reloads the inbox.

use chartkey_api::NoticeView;
use tokio::sync::broadcast;

use crate::store::{Database, Pool};

/// Notices kept waiting for a slow stream before it skips ahead (it then
/// says so, and the page reloads its inbox).
const BACKLOG: usize = 256;

/// PostgreSQL's channel for new notices.
const CHANNEL: &str = "chartkey_notices";

/// What the fan-out carries.
#[derive(Debug, Clone)]
pub enum Fanout {
    /// A new notice for an account.
    Notice(String, Box<NoticeView>),
    /// Some notices may not have come through: every page reloads its inbox.
    Missed,
}

/// A notice as it crosses replicas (NOTIFY's payload, JSON).
#[derive(serde::Serialize, serde::Deserialize)]
struct Crossing {
    to: String,
    notice: NoticeView,
}

/// The fan-out: one broadcast channel, fed directly (one process) or by
/// the PostgreSQL listener (replicas).
pub struct Notifier {
    tx: broadcast::Sender<Fanout>,
    /// The pool new notices are announced through, on PostgreSQL.
    shared: Option<Pool>,
}

impl Notifier {
    /// The fan-out of one process.
    pub fn local() -> Self {
        Self { tx: broadcast::channel(BACKLOG).0, shared: None }
    }

    /// The fan-out for `database`: across replicas on PostgreSQL, whose
    /// listener ([`Self::listen`]) is connected before this returns, so no
    /// notice published after the server starts is missed.
    pub async fn for_database(
        database: &Database,
        pool: &Pool,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<std::sync::Arc<Self>> {
        let Database::Postgres(url) = database else { return Ok(std::sync::Arc::new(Self::local())) };
        let notifier = std::sync::Arc::new(Self { tx: broadcast::channel(BACKLOG).0, shared: Some(pool.clone()) });
        let mut listener = sqlx::postgres::PgListener::connect(url.as_str()).await?;
        listener.listen(CHANNEL).await?;
        tokio::spawn(listen(listener, notifier.tx.clone(), stopping));
        Ok(notifier)
    }

    /// Sends `view` to `account_id`'s open pages, on every replica (none
    /// listening is fine: the inbox has it).
    pub async fn send(&self, account_id: &str, view: NoticeView) {
        let Some(pool) = &self.shared else {
            let _ = self.tx.send(Fanout::Notice(account_id.to_owned(), Box::new(view)));
            return;
        };
        let payload = serde_json::to_string(&Crossing { to: account_id.to_owned(), notice: view });
        let sent = match payload {
            Ok(payload) => {
                sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(pool).await.map(drop)
            }
            Err(e) => Err(sqlx::Error::Encode(e.into())),
        };
        if let Err(e) = sent {
            // Kept in the inbox; the live pages learn they missed one.
            tracing::warn!(error = %e, "a notice was not announced to the replicas");
            let _ = self.tx.send(Fanout::Missed);
        }
    }

    /// A receiver of everything sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Fanout> {
        self.tx.subscribe()
    }
}

/// Hands what PostgreSQL announces to this process's streams, until the
/// server stops. A lost connection is re-made; the pages are told they may
/// have missed notices meanwhile.
async fn listen(
    mut listener: sqlx::postgres::PgListener,
    tx: broadcast::Sender<Fanout>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let received = tokio::select! {
            received = listener.try_recv() => received,
            _ = stopping.wait_for(|s| *s) => return,
        };
        match received {
            Ok(Some(notification)) => match serde_json::from_str::<Crossing>(notification.payload()) {
                Ok(Crossing { to, notice }) => {
                    let _ = tx.send(Fanout::Notice(to, Box::new(notice)));
                }
                Err(e) => tracing::warn!(error = %e, "an announced notice did not parse"),
            },
            Ok(None) => {
                tracing::warn!("the notice listener lost its connection; reconnecting");
                let _ = tx.send(Fanout::Missed);
            }
            Err(e) => {
                tracing::warn!(error = %e, "the notice listener failed; retrying in a second");
                let _ = tx.send(Fanout::Missed);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
