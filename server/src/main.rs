//! `chartkey`: the server binary.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(name = "chartkey", version, about = "Chartkey: patient-held health records, served.")]
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
    /// Log as JSON lines instead of text.
    #[arg(long, env = "CHARTKEY_LOG_JSON")]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = EnvFilter::try_from_env("CHARTKEY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if args.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }

    let listener = tokio::net::TcpListener::bind(SocketAddr::new(args.bind, args.port)).await?;
    let port = listener.local_addr()?.port();
    let origin = match args.origin {
        Some(origin) => origin,
        None => format!("http://localhost:{port}").parse()?,
    };
    let mut config = chartkey_server::Config::new(args.data_dir, origin.clone());
    config.dist_dir = args.dist;
    config.clinician_idle_lock = Duration::from_secs(args.clinician_idle_lock_secs);
    config.ceremony_ttl = Duration::from_secs(args.ceremony_ttl_secs);
    config.registration_per_minute = args.registration_per_minute;
    config.login_per_minute = args.login_per_minute;

    tracing::info!(data_dir = %config.data_dir.display(), "starting");
    #[allow(clippy::print_stdout)]
    {
        println!("Chartkey is running at {origin}");
    }
    chartkey_server::launch(listener, config, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
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
