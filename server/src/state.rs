//! Shared server state.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::blobs::BlobStore;
use crate::ceremonies::Ceremonies;
use crate::config::Config;
use crate::db::Db;
use crate::ledger::Ledger;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub webauthn: Arc<Webauthn>,
    pub ceremonies: Arc<Ceremonies>,
    pub limits: Arc<RateLimits>,
    pub ledger: Arc<Ledger>,
    pub blobs: BlobStore,
    pub notifier: Arc<crate::notices::Notifier>,
    /// Becomes true when the server starts shutting down, so long-lived
    /// responses (notice streams) end and graceful shutdown can finish.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Per-IP limits on the unauthenticated entry points.
pub struct RateLimits {
    pub registration: DefaultKeyedRateLimiter<IpAddr>,
    pub login: DefaultKeyedRateLimiter<IpAddr>,
}

fn per_minute(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).expect("at least one");
    Quota::per_minute(n).allow_burst(n)
}

impl AppState {
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)?;
        let db = Db::open(&config.database_path())?;
        let ledger = Ledger::open(&config).await?;
        let blobs = match &config.blob_store {
            Some(url) => BlobStore::from_url(url, config.max_record_bytes)?,
            None => BlobStore::local(config.data_dir.join("blobs"), config.max_record_bytes)?,
        };
        let rp_id = config.rp_id()?;
        let webauthn =
            WebauthnBuilder::new(&rp_id, &config.origin)?.rp_name("Chartkey").timeout(config.ceremony_ttl).build()?;
        let limits = RateLimits {
            registration: RateLimiter::keyed(per_minute(config.registration_per_minute)),
            login: RateLimiter::keyed(per_minute(config.login_per_minute)),
        };
        Ok(Self {
            ceremonies: Arc::new(Ceremonies::new(config.ceremony_ttl)),
            config: Arc::new(config),
            db,
            webauthn: Arc::new(webauthn),
            limits: Arc::new(limits),
            ledger: Arc::new(ledger),
            blobs,
            notifier: Arc::new(crate::notices::Notifier::default()),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
        })
    }
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64
/// (one subscriber usually holds a whole /64).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
    }
}
