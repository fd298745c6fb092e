//! Fans new notices out to the live streams of the accounts they are for
//! (this process's streams; the database holds every notice).

use chartkey_api::NoticeView;
use tokio::sync::broadcast;

/// Notices kept waiting for a slow stream before it skips ahead (it then
/// says so, and the page reloads its inbox).
const BACKLOG: usize = 256;

/// The fan-out: one broadcast channel of (account id, notice).
pub struct Notifier {
    tx: broadcast::Sender<(String, NoticeView)>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self { tx: broadcast::channel(BACKLOG).0 }
    }
}

impl Notifier {
    /// Sends `view` to `account_id`'s open streams (none listening is fine).
    pub fn send(&self, account_id: &str, view: NoticeView) {
        let _ = self.tx.send((account_id.to_owned(), view));
    }

    /// A receiver of every notice sent from now on, with its account id.
    pub fn subscribe(&self) -> broadcast::Receiver<(String, NoticeView)> {
        self.tx.subscribe()
    }
}
