//! Shared server state.

use std::sync::Arc;

use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::blobs::BlobStore;
use crate::ceremonies::Ceremonies;
use crate::config::Config;
use crate::ledger::Ledger;
use crate::limits::{Limiter, RateLimits, per_hour, per_minute};

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The store layer's pool over the database (docs/store-layer.md).
    pub pool: crate::store::Pool,
    pub webauthn: Arc<Webauthn>,
    pub ceremonies: Arc<Ceremonies>,
    pub limits: Arc<RateLimits>,
    pub ledger: Arc<Ledger>,
    pub blobs: BlobStore,
    pub notifier: Arc<crate::notifier::Notifier>,
    /// Becomes true when the server starts shutting down, so long-lived
    /// responses (notice streams) end and graceful shutdown can finish.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// `/rpc`'s bearer token, with `--rpc-access token`.
    pub rpc_token: Option<Arc<str>>,
    /// The key of links' passcode hashes (keys/link-passcode.key).
    pub link_key: Arc<str>,
}

impl AppState {
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)?;
        let database = config.database()?;
        let pool = crate::db::open_migrated(&database).await?;
        let ledger = Ledger::open(&config).await?;
        let blobs = match &config.blob_store {
            Some(url) => BlobStore::from_url(url, config.max_record_bytes)?,
            None => BlobStore::local(config.data_dir.join("blobs"), config.max_record_bytes)?,
        };
        let rp_id = config.rp_id()?;
        let webauthn =
            WebauthnBuilder::new(&rp_id, &config.origin)?.rp_name("Chartkey").timeout(config.ceremony_ttl).build()?;
        let rpc_token = match config.rpc_access {
            crate::config::RpcAccess::Token => Some(crate::ledger::secret_file(&config.rpc_token_path())?.into()),
            _ => None,
        };
        // Replicas sharing PostgreSQL share the counts; one SQLite process
        // counts in memory.
        let shared = matches!(database, crate::store::Database::Postgres(_)).then_some(&pool);
        let limits = RateLimits {
            registration: Limiter::new("registration", per_minute(config.registration_per_minute), shared),
            login: Limiter::new("login", per_minute(config.login_per_minute), shared),
            relays: Limiter::new("relays", per_hour(config.relays_per_hour), shared),
            streams: Default::default(),
            heads: Limiter::new("heads", per_minute(config.heads_per_minute), shared),
            manifests: Limiter::new("manifests", per_minute(config.manifests_per_minute), shared),
            link_requests: Limiter::new("link-requests", per_minute(config.link_requests_per_minute), shared),
        };
        let link_key = crate::ledger::secret_file(&config.link_key_path())?.into();
        let stopping = Arc::new(tokio::sync::watch::Sender::new(false));
        let notifier = crate::notifier::Notifier::for_database(&database, &pool, stopping.subscribe()).await?;
        Ok(Self {
            ceremonies: Arc::new(Ceremonies::new(pool.clone(), config.ceremony_ttl)),
            config: Arc::new(config),
            pool,
            webauthn: Arc::new(webauthn),
            limits: Arc::new(limits),
            ledger: Arc::new(ledger),
            blobs,
            notifier,
            stopping,
            rpc_token,
            link_key,
        })
    }

    /// The address this server relays with: its journal's, and the owner
    /// of the pending rows it writes (replicas each have their own).
    pub fn relayer_address(&self) -> chartkey_core::value::Address {
        chartkey_ledger::convert::address(self.ledger.relayer.address())
    }
}
