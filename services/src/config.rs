//! Server configuration: flags and environment (see `main.rs`), with
//! defaults suitable for one clinic on one machine.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

#[derive(Debug, Clone)]
pub struct Config {
    /// Directory for the database (and, later, blobs and the ledger).
    pub data_dir: PathBuf,
    /// The built web app (Trunk's output). `None` serves the API only.
    pub dist_dir: Option<PathBuf>,
    /// The origin users' browsers load the portal from. Passkeys are bound
    /// to its host (the WebAuthn relying party id).
    pub origin: Url,
    /// How long a WebAuthn challenge stays valid.
    pub ceremony_ttl: Duration,
    /// Absolute lifetime of a session.
    pub session_ttl: Duration,
    /// Clinicians' keys lock after this much inactivity in the browser.
    pub clinician_idle_lock: Duration,
    /// Per-IP allowance for starting a registration (sign-up, restore, add passkey).
    pub registration_per_minute: u32,
    /// Chain-head requests (`GET /api/chain/heads`, public) per client per
    /// minute.
    pub heads_per_minute: u32,
    /// Per-IP allowance for starting a sign-in.
    pub login_per_minute: u32,
    /// Largest request body accepted by `/api`.
    pub api_body_limit: usize,
    /// Chain id of the embedded ledger (fixed when it is first created).
    pub chain_id: u64,
    /// An external Ethereum node (JSON-RPC) to use instead of the embedded
    /// ledger.
    pub chain_rpc: Option<Url>,
    /// The relayer's key file (hex secret); default `keys/relayer.key` in
    /// the data directory. On an external chain it must hold funds.
    pub relayer_key: Option<PathBuf>,
    /// Where the contracts are on the external chain; default
    /// `contracts.json` in the data directory, written when the server
    /// deploys them (first start with `chain_rpc` and no file).
    pub contracts_file: Option<PathBuf>,
    /// Who may use the ledger's JSON-RPC at /rpc.
    pub rpc_access: RpcAccess,
    /// Reverse proxies whose `X-Forwarded-For` names the client. From any
    /// other peer the header is ignored: the peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long a relay request waits for its block before answering
    /// "accepted, not mined yet".
    pub relay_wait: Duration,
    /// Start with the embedded ledger's miner paused (a test control).
    #[cfg(feature = "test-controls")]
    pub pause_mining: bool,
    /// New records' requests stop answering once their anchor is
    /// journalled (a test control: the server is killed there).
    #[cfg(feature = "test-controls")]
    pub stall_after_journal: bool,
    /// The embedded miner's wait before each block (a test control).
    #[cfg(feature = "test-controls")]
    pub block_delay: Duration,
    /// Where record envelopes are kept: an object store URL (`file:///…`,
    /// `s3://bucket`); default the `blobs` directory in the data directory.
    pub blob_store: Option<Url>,
    /// The database: `postgres://…` (replicas share it) or
    /// `sqlite:///path`; default `chartkey.sqlite3` in the data directory.
    pub database: Option<Url>,
    /// Largest record (encrypted file) accepted, in bytes.
    pub max_record_bytes: u64,
    /// Encrypted content one account may upload in all, in bytes.
    pub storage_quota_bytes: u64,
    /// Ledger messages one account may have relayed (paid by the relayer)
    /// per hour.
    pub relays_per_hour: u32,
    /// Live notice streams (open pages) one account may hold at once.
    pub streams_per_account: usize,
    /// Wrong passcodes a link takes in its whole life before it stops.
    pub link_passcode_attempts: u32,
    /// Manifest and link-file requests per client per minute (public).
    pub manifests_per_minute: u32,
    /// Manifest requests per link per minute, from everyone together.
    pub link_requests_per_minute: u32,
    /// How long a manifest's `location` addresses last.
    pub link_location_ttl: Duration,
    /// Other hosts whose links the viewer at /view may open (origins added
    /// to its CSP's connect-src); links kept elsewhere get a clear message.
    pub viewer_hosts: Vec<Url>,
}

/// Chartkey's default chain id for the embedded ledger ("chk").
pub const DEFAULT_CHAIN_ID: u64 = 0x0063_686b;

/// Who may use /rpc. The ledger holds no health data, but its events tell
/// which pseudonymous accounts share with which, so it is off unless the
/// operator opens it. "Only from this machine" is no rule: behind a reverse
/// proxy on the same host every request comes from the loopback address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RpcAccess {
    /// No JSON-RPC.
    #[default]
    Off,
    /// Clients that send `Authorization: Bearer <token>`, the token in
    /// `keys/rpc.token` in the data directory (created on first start).
    Token,
    /// Anyone who can reach the server.
    Open,
}

impl Config {
    /// Defaults for `origin`, with data under `data_dir`.
    pub fn new(data_dir: PathBuf, origin: Url) -> Self {
        Self {
            data_dir,
            dist_dir: None,
            origin,
            ceremony_ttl: Duration::from_secs(5 * 60),
            session_ttl: Duration::from_secs(12 * 60 * 60),
            clinician_idle_lock: Duration::from_secs(15 * 60),
            registration_per_minute: 10,
            heads_per_minute: 120,
            login_per_minute: 30,
            api_body_limit: 64 * 1024,
            chain_id: DEFAULT_CHAIN_ID,
            chain_rpc: None,
            relayer_key: None,
            contracts_file: None,
            rpc_access: RpcAccess::default(),
            trusted_proxies: Vec::new(),
            relay_wait: Duration::from_secs(20),
            #[cfg(feature = "test-controls")]
            pause_mining: false,
            #[cfg(feature = "test-controls")]
            stall_after_journal: false,
            #[cfg(feature = "test-controls")]
            block_delay: Duration::ZERO,
            blob_store: None,
            database: None,
            max_record_bytes: 100_000_000,
            storage_quota_bytes: 10_000_000_000,
            relays_per_hour: 600,
            streams_per_account: 8,
            link_passcode_attempts: 10,
            manifests_per_minute: 120,
            link_requests_per_minute: 60,
            link_location_ttl: Duration::from_secs(5 * 60),
            viewer_hosts: Vec::new(),
        }
    }

    /// The WebAuthn relying party id: the origin's host.
    pub fn rp_id(&self) -> anyhow::Result<String> {
        self.origin.host_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("origin {} has no host", self.origin))
    }

    /// Cookies get `Secure` (and the `__Host-` prefix) when served over https.
    pub fn secure_cookies(&self) -> bool {
        self.origin.scheme() == "https"
    }

    /// The default database: a SQLite file in the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("chartkey.sqlite3")
    }

    /// The database the server uses: `--database`, or the default file,
    /// unless `chartkey migrate` moved that file's data elsewhere (then
    /// serving the old copy is refused).
    pub fn database(&self) -> anyhow::Result<crate::store::Database> {
        match &self.database {
            Some(url) => crate::store::Database::parse(url),
            None => {
                crate::migrate::refuse_if_migrated(&self.data_dir)?;
                Ok(crate::store::Database::Sqlite(self.database_path()))
            }
        }
    }

    /// The bearer token of `/rpc` with `--rpc-access token`.
    pub fn rpc_token_path(&self) -> PathBuf {
        self.data_dir.join("keys").join("rpc.token")
    }

    /// The key of links' passcode hashes (HMAC-SHA256).
    pub fn link_key_path(&self) -> PathBuf {
        self.data_dir.join("keys").join("link-passcode.key")
    }

    /// `host[:port]` as browsers send it in `Host` for the origin (no port
    /// when it is the scheme's default).
    pub fn origin_authority(&self) -> String {
        let host = self.origin.host_str().unwrap_or_default();
        match self.origin.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }
}
