//! The shared engines a hospital runs Chartkey on, started for the tests:
//! PostgreSQL (Debian's package; a new cluster in a temporary directory,
//! run as the `postgres` user since it refuses root) and an S3 store
//! (moto's server, from PyPI), and an external EVM node (anvil, from the
//! contracts' npm packages). Each listens on 127.0.0.1 on a free port and
//! is stopped by its pid, its directory removed, when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, run_cmd, step};

/// A free port on 127.0.0.1 (free when asked; the service binds it next).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// A directory of its own under the system's temporary directory.
fn scratch_dir(what: &str) -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let dir = std::env::temp_dir().join(format!("chartkey-{what}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) -> Result {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() > limit {
            return Err(format!("{what} did not become ready within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// PostgreSQL's programs (Debian installs them per major version).
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The uid and gid of the `postgres` user (made by Debian's package).
fn postgres_user() -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("reading /etc/passwd: {e}"))?;
    let line = passwd.lines().find(|l| l.starts_with("postgres:")).ok_or("no postgres user")?;
    let fields: Vec<&str> = line.split(':').collect();
    let id = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).ok_or("a malformed postgres entry");
    Ok((id(2)?, id(3)?))
}

/// Installs Debian's PostgreSQL unless it is there.
pub fn ensure_postgres() -> Result {
    if postgres_bin().is_some() {
        return Ok(());
    }
    crate::tools::ensure_debian_package("PostgreSQL", "postgresql", "/usr/lib/postgresql")?;
    postgres_bin().map(drop).ok_or_else(|| "PostgreSQL installed, but no initdb under /usr/lib/postgresql".into())
}

/// Installs moto's S3 server from PyPI unless it imports.
pub fn ensure_moto() -> Result {
    let imports = || {
        Command::new("python3")
            .args(["-c", "import moto.server, flask"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if imports() {
        return Ok(());
    }
    step("install moto[server] (PyPI, first run only)", || {
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "pip", "install", "--quiet", "moto[server]==5.2.1"]);
        run_cmd(cmd)
    })?;
    if imports() { Ok(()) } else { Err("moto[server] installed but does not import".into()) }
}

/// A PostgreSQL cluster of its own.
pub struct Postgres {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl Postgres {
    pub fn start() -> Result<Self> {
        let bin = postgres_bin().ok_or("PostgreSQL is not installed")?;
        let (uid, gid) = postgres_user()?;
        let dir = scratch_dir("postgres")?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| format!("chown {}: {e}", dir.display()))?;
        let data = dir.join("data");
        let as_postgres = |program: &str| {
            let mut cmd = Command::new(bin.join(program));
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, gid);
            cmd.current_dir(&dir);
            cmd
        };
        let mut initdb = as_postgres("initdb");
        initdb.arg("-D").arg(&data).args(["-A", "trust", "-U", "postgres", "--no-sync"]).stdout(Stdio::null());
        run_cmd(initdb)?;
        let port = free_port()?;
        let child = as_postgres("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(&dir)
            // Each test server's pool holds up to 16; a few run at once.
            .args(["-c", "max_connections=300"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("postgres.log")).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("starting postgres: {e}"))?;
        let postgres = Self { port, child, dir };
        wait_for("PostgreSQL", Duration::from_secs(30), || {
            Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        })?;
        Ok(postgres)
    }

    /// The administrator's URL (creates the tests' databases).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown (ends sessions, then exits).
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A program serving on 127.0.0.1 on a port of its own (its stderr in a
/// log), killed when dropped.
pub struct Listening {
    pub port: u16,
    child: Child,
}

impl Listening {
    /// Starts `program` with the arguments `args` gives for its port, and
    /// waits until the port takes connections.
    fn start(what: &str, program: &Path, args: impl FnOnce(&str) -> Vec<String>, log: &Path) -> Result<Self> {
        let port = free_port()?;
        let child = Command::new(program)
            .args(args(&port.to_string()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("starting {what} ({}): {e}", program.display()))?;
        let started = Self { port, child };
        wait_for(what, Duration::from_secs(30), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())?;
        Ok(started)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto's S3 server (kept in memory).
pub struct Moto(Listening);

impl Moto {
    pub fn start(log: &Path) -> Result<Self> {
        let args = |port: &str| ["-m", "moto.server", "-H", "127.0.0.1", "-p", port].map(String::from).to_vec();
        Listening::start("moto", Path::new("python3"), args, log).map(Self)
    }

    pub fn endpoint(&self) -> String {
        self.0.url()
    }

    /// The environment a client of this store needs (object_store reads the
    /// usual AWS variables; moto takes any credentials).
    pub fn client_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "chartkey-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "chartkey-test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

/// Anvil (Foundry's node, installed with the contracts' npm packages) as
/// the external chain the servers relay to, chain id 31337, mining each
/// transaction as it arrives.
pub struct Anvil(Listening);

impl Anvil {
    pub fn start(root: &Path, log: &Path) -> Result<Self> {
        Self::start_with(root, log, &[])
    }

    /// [`Self::start`] with more of anvil's options (`--block-time 0.1`).
    pub fn start_with(root: &Path, log: &Path, options: &[&str]) -> Result<Self> {
        let platform = if std::env::consts::ARCH == "aarch64" { "linux-arm64" } else { "linux-amd64" };
        let binary = root.join(format!("contracts/node_modules/@foundry-rs/anvil-{platform}/bin/anvil"));
        let args = |port: &str| {
            let mut args: Vec<String> =
                ["--host", "127.0.0.1", "--port", port, "--chain-id", "31337", "--silent"].map(String::from).to_vec();
            args.extend(options.iter().map(|o| o.to_string()));
            args
        };
        Listening::start("anvil", &binary, args, log).map(Self)
    }

    pub fn url(&self) -> String {
        self.0.url()
    }
}
