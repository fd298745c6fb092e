//! `chartkey`: the server binary.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "chartkey",
    version,
    about = "Chartkey: patient-held health records, served.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Args,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ledger maintenance.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Credentialing authorities: name one (it can then verify clinicians),
    /// or stop naming one. Applied by the running server within a second, or
    /// when it next starts.
    #[command(subcommand)]
    Authority(AuthorityCommand),
    /// Moves a data directory's database and blobs to PostgreSQL and an
    /// object store (S3), verifying every envelope's hash, so replicas can
    /// share them. Stop the server first. The ledger, its keys and the
    /// relayer's journal stay in the data directory: serve on from it with
    /// the same --data-dir and the --database and --blob-store given here.
    Migrate {
        /// The data directory to move.
        #[arg(long, env = "CHARTKEY_DATA_DIR", default_value = "chartkey-data")]
        data_dir: PathBuf,
        /// The PostgreSQL database to move to: postgres://user:password@host/name
        /// (it must hold no Chartkey data yet; its tables are created).
        #[arg(long, env = "CHARTKEY_DATABASE")]
        database: url::Url,
        /// The object store to move the blobs to: s3://bucket[/prefix], with
        /// the endpoint and credentials from the usual AWS_* variables.
        #[arg(long, env = "CHARTKEY_BLOB_STORE")]
        blob_store: url::Url,
    },
}

#[derive(Subcommand, Debug)]
enum AuthorityCommand {
    /// Names the account at ADDRESS (signed up as a credentialing authority;
    /// its address is shown on its Credentials page) an authority.
    Add {
        address: String,
        /// The server's data directory.
        #[arg(long, env = "CHARTKEY_DATA_DIR", default_value = "chartkey-data")]
        data_dir: PathBuf,
        /// The server's database, when it is not the data directory's file.
        #[arg(long, env = "CHARTKEY_DATABASE")]
        database: Option<url::Url>,
    },
    /// Stops naming ADDRESS an authority: the credentials it issued stop
    /// counting at once.
    Remove {
        address: String,
        /// The server's data directory.
        #[arg(long, env = "CHARTKEY_DATA_DIR", default_value = "chartkey-data")]
        data_dir: PathBuf,
        /// The server's database, when it is not the data directory's file.
        #[arg(long, env = "CHARTKEY_DATABASE")]
        database: Option<url::Url>,
    },
}

#[derive(Subcommand, Debug)]
enum LedgerCommand {
    /// Re-executes the stored chain from genesis and checks every block hash,
    /// transaction and receipt; names the first bad block.
    Verify {
        /// The server's data directory.
        #[arg(long, env = "CHARTKEY_DATA_DIR", default_value = "chartkey-data")]
        data_dir: PathBuf,
        /// A checkpoint downloaded from the Ledger page: the chain must
        /// hold that block at that height, vouched for by this ledger's
        /// administrator key.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
}

/// Serving the portal (the default command).
#[derive(clap::Args, Debug)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "CHARTKEY_PORT", default_value_t = 8080)]
    port: u16,
    /// Address to bind.
    #[arg(long, env = "CHARTKEY_BIND", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Where the database lives; created on first run.
    #[arg(long, env = "CHARTKEY_DATA_DIR", default_value = "chartkey-data")]
    data_dir: PathBuf,
    /// The built web app (Trunk's dist directory).
    #[arg(long, env = "CHARTKEY_DIST")]
    dist: Option<PathBuf>,
    /// Public origin of the portal; passkeys are bound to its host.
    /// Defaults to http://localhost:<port>.
    #[arg(long, env = "CHARTKEY_ORIGIN")]
    origin: Option<url::Url>,
    /// Seconds of inactivity after which a clinician's browser locks.
    #[arg(long, env = "CHARTKEY_CLINICIAN_IDLE_LOCK_SECS", default_value_t = 15 * 60)]
    clinician_idle_lock_secs: u64,
    /// Seconds a passkey challenge stays valid.
    #[arg(long, env = "CHARTKEY_CEREMONY_TTL_SECS", default_value_t = 300)]
    ceremony_ttl_secs: u64,
    /// Sign-up, restore and add-passkey starts allowed per client per minute.
    #[arg(long, env = "CHARTKEY_REGISTRATION_PER_MINUTE", default_value_t = 10)]
    registration_per_minute: u32,
    /// Sign-in starts allowed per client per minute.
    #[arg(long, env = "CHARTKEY_LOGIN_PER_MINUTE", default_value_t = 30)]
    login_per_minute: u32,
    /// Chain id of the embedded ledger, used when it is first created.
    #[arg(long, env = "CHARTKEY_CHAIN_ID", default_value_t = chartkey_server::ledger::DEFAULT_CHAIN_ID)]
    chain_id: u64,
    /// Use the Ethereum node at this JSON-RPC URL as the ledger instead of the
    /// embedded one (the contracts are deployed on first start, or named by
    /// --contracts).
    #[arg(long, env = "CHARTKEY_CHAIN_RPC")]
    chain_rpc: Option<url::Url>,
    /// The relayer's key file (hex secret key; created if missing). Default:
    /// keys/relayer.key in the data directory. With --chain-rpc it pays for
    /// every relayed message, so it must hold funds on that chain.
    #[arg(long, env = "CHARTKEY_RELAYER_KEY")]
    relayer_key: Option<PathBuf>,
    /// With --chain-rpc: a JSON file naming the contracts ({"chainId",
    /// "directory", "records"}). Default: contracts.json in the data
    /// directory, written when the server deploys them.
    #[arg(long, env = "CHARTKEY_CONTRACTS", requires = "chain_rpc")]
    contracts: Option<PathBuf>,
    /// Where encrypted records are kept: an object store URL, file:///… or
    /// s3://bucket[/prefix] (endpoint, region and credentials from the usual
    /// AWS_* environment variables). Default: the blobs directory in the
    /// data directory.
    #[arg(long, env = "CHARTKEY_BLOB_STORE")]
    blob_store: Option<url::Url>,
    /// The database: postgres://user:password@host/name (several replicas
    /// may share it), or sqlite:///path. Default: chartkey.sqlite3 in the
    /// data directory.
    #[arg(long, env = "CHARTKEY_DATABASE")]
    database: Option<url::Url>,
    /// Largest record accepted (an encrypted file), in megabytes.
    #[arg(long, env = "CHARTKEY_MAX_RECORD_MB", default_value_t = 100)]
    max_record_mb: u64,
    /// Encrypted content one account may store in all, in megabytes.
    #[arg(long, env = "CHARTKEY_STORAGE_QUOTA_MB", default_value_t = 10_000)]
    storage_quota_mb: u64,
    /// Ledger messages (anchors, shares, opens, credentials) one account may
    /// have relayed per hour; the relayer pays for each.
    #[arg(long, env = "CHARTKEY_RELAYS_PER_HOUR", default_value_t = 600)]
    relays_per_hour: u32,
    /// Pages one account may have receiving live notices at once.
    #[arg(long, env = "CHARTKEY_STREAMS_PER_ACCOUNT", default_value_t = 8)]
    streams_per_account: usize,
    /// Test control: the embedded ledger accepts transactions but mines
    /// none (builds with the `test-controls` feature only).
    #[cfg(feature = "test-controls")]
    #[arg(long, hide = true)]
    test_pause_mining: bool,
    /// Test control: how long a request waits for its block before
    /// answering "accepted, not mined yet" (builds with the `test-controls`
    /// feature only).
    #[cfg(feature = "test-controls")]
    #[arg(long, hide = true)]
    test_relay_wait_ms: Option<u64>,
    /// Test control: a new record's request never answers once its anchor
    /// is journalled (the test kills the server there).
    #[cfg(feature = "test-controls")]
    #[arg(long, hide = true)]
    test_stall_after_journal: bool,
    /// Test control: the embedded miner waits this long before each block.
    #[cfg(feature = "test-controls")]
    #[arg(long, hide = true, default_value_t = 0)]
    test_block_delay_ms: u64,
    /// Who may use the ledger's Ethereum JSON-RPC at /rpc: nobody (off),
    /// clients with the bearer token in keys/rpc.token (token), or anyone
    /// (open).
    #[arg(long, env = "CHARTKEY_RPC_ACCESS", value_enum, default_value_t = chartkey_server::config::RpcAccess::Off)]
    rpc_access: chartkey_server::config::RpcAccess,
    /// A reverse proxy (address or CIDR) whose X-Forwarded-For names the
    /// client, for per-client limits; repeat the flag or separate with
    /// commas. From any other peer the header is ignored.
    #[arg(long = "trusted-proxy", env = "CHARTKEY_TRUSTED_PROXY", value_delimiter = ',', value_parser = parse_proxy)]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Requests for chain heads (GET /api/chain/heads, public, for outside
    /// witnesses) per client address per minute.
    #[arg(long, env = "CHARTKEY_HEADS_PER_MINUTE", default_value_t = 120)]
    heads_per_minute: u32,
    /// Wrong passcodes a SMART Health Link takes in its whole life before
    /// it stops answering.
    #[arg(long, env = "CHARTKEY_LINK_PASSCODE_ATTEMPTS", default_value_t = 10)]
    link_passcode_attempts: u32,
    /// Manifest and link-file requests (public, /shl/…) per client address
    /// per minute.
    #[arg(long, env = "CHARTKEY_MANIFESTS_PER_MINUTE", default_value_t = 120)]
    manifests_per_minute: u32,
    /// Manifest requests per link per minute, from all clients together.
    #[arg(long, env = "CHARTKEY_LINK_REQUESTS_PER_MINUTE", default_value_t = 60)]
    link_requests_per_minute: u32,
    /// Another host whose SMART Health Links the viewer at /view may open
    /// (an origin, e.g. https://links.example.org; repeat for more). Links
    /// kept on hosts not named here get a message saying so.
    #[arg(long = "viewer-host", env = "CHARTKEY_VIEWER_HOSTS", value_delimiter = ',')]
    viewer_hosts: Vec<url::Url>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "CHARTKEY_LOG_JSON")]
    log_json: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Ledger(LedgerCommand::Verify { data_dir, checkpoint })) => {
            verify_ledger(&data_dir, checkpoint.as_deref())
        }
        Some(Command::Authority(AuthorityCommand::Add { address, data_dir, database })) => {
            name_authority(&data_dir, database, &address, true)
        }
        Some(Command::Authority(AuthorityCommand::Remove { address, data_dir, database })) => {
            name_authority(&data_dir, database, &address, false)
        }
        Some(Command::Migrate { data_dir, database, blob_store }) => migrate(&data_dir, &database, &blob_store),
        None => tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve(cli.serve)),
    }
}

/// `chartkey ledger verify`: progress on stderr, the verdict on stdout, exit
/// status 1 when a block is bad.
#[allow(clippy::print_stdout, clippy::print_stderr)]
fn verify_ledger(data_dir: &std::path::Path, checkpoint: Option<&std::path::Path>) -> anyhow::Result<()> {
    let path = chartkey_server::ledger::ledger_path(data_dir);
    let started = std::time::Instant::now();
    let mut last_report = started;
    let result = chartkey_ledger::node::verify(&path, &mut |block, head| {
        if last_report.elapsed() >= Duration::from_secs(1) {
            eprintln!("verified block {block} of {head}");
            last_report = std::time::Instant::now();
        }
    });
    match result {
        Ok(report) => {
            println!(
                "ledger verified: {} blocks, {} transactions, head {} ({:.1} s)",
                report.blocks,
                report.transactions,
                report.head_hash,
                started.elapsed().as_secs_f64()
            );
            let Some(file) = checkpoint else { return Ok(()) };
            match check_checkpoint(&path, file) {
                Ok(held) => {
                    println!("{held}");
                    Ok(())
                }
                Err(why) => {
                    println!("checkpoint FAILED: {why}");
                    std::process::exit(1);
                }
            }
        }
        Err(e) => {
            println!("ledger verification FAILED: {e}");
            std::process::exit(1);
        }
    }
}

/// Holds the verified chain at `path` to the checkpoint in `file`: its text
/// is the checkpoint message of its fields, signed by this chain's
/// administrator, for this chain id, and the chain has that block at that
/// height.
fn check_checkpoint(path: &std::path::Path, file: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    let checkpoint: chartkey_api::SignedCheckpoint =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a checkpoint: {e}", file.display()))?;
    let message = chartkey_core::proof::checkpoint_message(checkpoint.chain_id, checkpoint.number, &checkpoint.hash);
    if message != checkpoint.message {
        return Err("its text does not match its block, hash and chain".into());
    }
    let (genesis, hash) = chartkey_ledger::node::checkpoint_view(path, checkpoint.number).map_err(|e| e.to_string())?;
    let signer =
        chartkey_core::proof::recover_signer(&message, &checkpoint.signature).ok_or("its signature is malformed")?;
    let admin = chartkey_ledger::convert::to_ethers(genesis.admin);
    if signer != admin {
        return Err(format!("it is signed by {signer:#x}, not by this ledger's administrator {admin:#x}"));
    }
    if checkpoint.chain_id != genesis.chain_id {
        return Err(format!("it is for chain {}, this ledger is chain {}", checkpoint.chain_id, genesis.chain_id));
    }
    let stored = hash.ok_or_else(|| format!("this chain does not reach block {}", checkpoint.number))?;
    if chartkey_ledger::convert::hash(stored) != checkpoint.hash {
        return Err(format!(
            "block {} is {stored:#x} here, not {} as the checkpoint says: the chain was rewritten",
            checkpoint.number, checkpoint.hash
        ));
    }
    Ok(format!(
        "checkpoint holds: block {} is {} on chain {}, as the administrator {admin:#x} signed",
        checkpoint.number, checkpoint.hash, checkpoint.chain_id
    ))
}

/// `chartkey authority add|remove`: records the change, then waits a few
/// seconds for a running server to apply it and says what happened.
#[allow(clippy::print_stdout)]
fn name_authority(
    data_dir: &std::path::Path,
    database: Option<url::Url>,
    address: &str,
    enabled: bool,
) -> anyhow::Result<()> {
    use chartkey_server::authorities::{self, Applied};
    let mut config = chartkey_server::Config::new(data_dir.to_owned(), "http://localhost".parse()?);
    config.database = database;
    let database = config.database()?;
    if let chartkey_server::store::Database::Sqlite(path) = &database
        && !path.exists()
    {
        anyhow::bail!("no Chartkey data in {} (start the server once, or pass --data-dir)", data_dir.display());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let pool = chartkey_server::db::open_migrated(&database).await?;
        let id = authorities::request(&pool, address, enabled).await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            match authorities::applied(&pool, id).await? {
                Applied::Sent { tx } => {
                    let done = if enabled { "named a credentialing authority" } else { "no longer an authority" };
                    println!("{address} is {done} (ledger transaction {tx}).");
                    return Ok(());
                }
                Applied::Failed { error } => anyhow::bail!("the ledger refused the change: {error}"),
                Applied::Waiting if std::time::Instant::now() >= deadline => {
                    println!("Recorded. The server is not running: the change is applied when it next starts.");
                    return Ok(());
                }
                Applied::Waiting => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    })
}

/// `chartkey migrate`: progress on stderr, the summary on stdout.
#[allow(clippy::print_stdout, clippy::print_stderr)]
fn migrate(data_dir: &std::path::Path, database: &url::Url, blob_store: &url::Url) -> anyhow::Result<()> {
    let database = chartkey_server::store::Database::parse(database)?;
    let started = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(chartkey_server::migrate::migrate(data_dir, &database, blob_store, &mut |step| {
        eprintln!("{step}")
    }))?;
    let rows: u64 = report.tables.iter().map(|(_, n)| n).sum();
    println!(
        "Moved {rows} rows in {} tables to {} and {} envelopes ({} bytes) to {blob_store}; {} envelopes verified \
         there ({:.1} s). Serve on with: chartkey --data-dir {} --database <the same URL> --blob-store {blob_store}",
        report.tables.len(),
        database.describe(),
        report.blobs,
        report.bytes,
        report.envelopes_verified,
        started.elapsed().as_secs_f64(),
        data_dir.display(),
    );
    Ok(())
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("CHARTKEY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if args.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }

    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind, args.port)).await?;
    let port = listener.local_addr()?.port();
    let origin = match args.origin.clone() {
        Some(origin) => origin,
        None => format!("http://localhost:{port}").parse()?,
    };
    let config = config_of(args, origin.clone());
    tracing::info!(data_dir = %config.data_dir.display(), "starting");
    #[allow(clippy::print_stdout)]
    {
        println!("Chartkey is running at {origin}");
    }
    chartkey_server::launch(listener, config, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The server's configuration from its flags (and environment), serving at
/// `origin`.
fn config_of(args: Args, origin: url::Url) -> chartkey_server::Config {
    let mut config = chartkey_server::Config::new(args.data_dir, origin);
    config.dist_dir = args.dist;
    config.clinician_idle_lock = Duration::from_secs(args.clinician_idle_lock_secs);
    config.ceremony_ttl = Duration::from_secs(args.ceremony_ttl_secs);
    config.registration_per_minute = args.registration_per_minute;
    config.heads_per_minute = args.heads_per_minute;
    config.login_per_minute = args.login_per_minute;
    config.chain_id = args.chain_id;
    config.rpc_access = args.rpc_access;
    config.trusted_proxies = args.trusted_proxies;
    config.chain_rpc = args.chain_rpc;
    config.relayer_key = args.relayer_key;
    config.contracts_file = args.contracts;
    config.blob_store = args.blob_store;
    config.database = args.database;
    config.max_record_bytes = args.max_record_mb.saturating_mul(1_000_000);
    config.storage_quota_bytes = args.storage_quota_mb.saturating_mul(1_000_000);
    config.relays_per_hour = args.relays_per_hour;
    config.streams_per_account = args.streams_per_account;
    config.link_passcode_attempts = args.link_passcode_attempts;
    config.manifests_per_minute = args.manifests_per_minute;
    config.link_requests_per_minute = args.link_requests_per_minute;
    config.viewer_hosts = args.viewer_hosts;
    #[cfg(feature = "test-controls")]
    {
        config.pause_mining = args.test_pause_mining;
        config.block_delay = Duration::from_millis(args.test_block_delay_ms);
        config.stall_after_journal = args.test_stall_after_journal;
        if let Some(ms) = args.test_relay_wait_ms {
            config.relay_wait = Duration::from_millis(ms);
        }
    }
    config
}

/// A trusted proxy: a CIDR, or one address.
fn parse_proxy(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or a CIDR range (e.g. 127.0.0.1 or 10.0.0.0/8)"))
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// A flag's default and `Config::new`'s are written in two places: they
    /// must agree, or the portal would behave differently when started
    /// from the command line than in the tests.
    #[test]
    fn the_flags_defaults_are_the_configs() {
        let cli = Cli::try_parse_from(["chartkey"]).expect("no flags");
        let origin: url::Url = "http://localhost:8080".parse().unwrap();
        let from_flags = config_of(cli.serve, origin.clone());
        let default = chartkey_server::Config::new("chartkey-data".into(), origin);
        assert_eq!(format!("{from_flags:?}"), format!("{default:?}"));
    }
}
