//! `cargo xtask run | test | bench bundle`: everything a new machine needs,
//! installed on first use into a cache outside the clone, so repeat runs
//! (and CI on the same machine) start warm.

#![allow(clippy::print_stdout)]

mod bench;
mod circles;
mod contracts;
mod modules;
mod precompress;
mod services;
mod sizes;
mod sweep;
mod tools;
mod viewer;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

pub type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "\
usage:
  cargo xtask run [server flags…]   build the app and start Chartkey (http://localhost:8080)
                                    e.g. --port 9000 --data-dir ./mydata
  cargo xtask test                  format, module circles, file sizes, lints (native and wasm32), unit, integration and browser tests
  cargo xtask bench bundle          first-load size and time to an interactive sign-in page
  cargo xtask bench ledger          gas per contract call, durable grants per second (embedded node)
  cargo xtask bench records         record encryption (wasm vs WebCrypto AES-GCM), a 1,111-resource import
  cargo xtask bench share           a clinician opening a shared 1 MB record (p50, p95), access-to-notice time
  cargo xtask bench links           making a summary link; a 1 MB summary opened in the viewer (p50, p95)
  cargo xtask bench scale           two replicas behind nginx under 200 clinicians, one killed and restarted (failover)
  cargo xtask contracts             recompile contracts/src with the pinned solc into contracts/artifacts
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(),
        Some("bench") => match args.get(1).map(String::as_str) {
            Some("bundle") => bench::bundle(),
            Some("ledger") => bench::ledger(),
            Some(name @ ("records" | "share" | "links")) => bench::in_browser(name),
            Some("scale") => bench::scale(),
            _ => Err(format!("unknown benchmark\n{USAGE}")),
        },
        Some("build-app") => Env::new().and_then(|env| env.build_app()),
        Some("contracts") => Env::new().and_then(|env| contracts::build(&env)),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Paths and environment shared by every command.
pub struct Env {
    pub root: PathBuf,
    pub cache: PathBuf,
    pub target: PathBuf,
}

impl Env {
    pub fn new() -> Result<Self> {
        // Read at run time (cargo sets it for `cargo run`): the compile-time value
        // names wherever the cached binary was first built, maybe another clone.
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").ok_or("run through `cargo xtask`")?;
        let root = Path::new(&manifest_dir).parent().ok_or("no workspace root")?.to_owned();
        let cache = match std::env::var_os("CHARTKEY_CACHE") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let base = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                    .ok_or("set HOME or CHARTKEY_CACHE")?;
                base.join("chartkey")
            }
        };
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| cache.join("target"));
        std::fs::create_dir_all(&cache).map_err(|e| format!("creating {}: {e}", cache.display()))?;
        sweep::sweep(&target);
        Ok(Self { root, cache, target })
    }

    /// A command run from the workspace root, with the shared target
    /// directory and the installed tools first on PATH.
    pub fn cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.root);
        cmd.env("CARGO_TARGET_DIR", &self.target);
        let mut paths = vec![self.cache.join("tools/bin"), self.cache.join("npm-tools/node_modules/.bin")];
        if let Some(existing) = std::env::var_os("PATH") {
            paths.extend(std::env::split_paths(&existing));
        }
        cmd.env("PATH", std::env::join_paths(paths).expect("valid PATH"));
        cmd
    }

    pub fn dist(&self) -> PathBuf {
        self.root.join("dist")
    }

    /// Builds the browser app in release with Trunk, unless nothing it is
    /// built from changed since the last build.
    pub fn build_app(&self) -> Result {
        tools::ensure_wasm_toolchain(self)?;
        let stamp_path = self.dist().join(".build-stamp");
        let stamp = tools::app_inputs_stamp(&self.root)?;
        if self.dist().join("index.html").exists()
            && std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(&stamp)
        {
            println!("app: up to date ({})", self.dist().display());
            return Ok(());
        }
        step("build the app (trunk build --release)", || {
            let mut cmd = self.cmd("trunk");
            cmd.args(["build", "--release"]).env("TRUNK_SKIP_VERSION_CHECK", "true");
            run_cmd(cmd)
        })?;
        step("version the app's workers, write the viewer's page and name the build", || {
            let addresses = modules::version_all(&self.dist())?;
            for address in &addresses {
                println!("  {address}");
            }
            let viewer = addresses
                .iter()
                .find(|a| a.contains(&format!("/{}-", viewer::MODULE)))
                .ok_or("the viewer was not built")?;
            viewer::write_page(&self.dist(), &self.root.join("viewer/view.html"), viewer)?;
            modules::name_build(&self.dist(), stamp.trim())
        })?;
        step("compress the app (brotli, gzip)", || {
            let w = precompress::precompress(&self.dist())?;
            println!("  {} files, {} bytes: {} brotli, {} gzip", w.files, w.raw, w.brotli, w.gzip);
            Ok(())
        })?;
        std::fs::write(&stamp_path, stamp).map_err(|e| e.to_string())
    }

    pub fn server_binary(&self, profile: &str) -> PathBuf {
        self.target.join(profile).join("chartkey")
    }
}

fn run(server_args: &[String]) -> Result {
    let env = Env::new()?;
    env.build_app()?;
    step("build the server (release)", || {
        let mut cmd = env.cmd("cargo");
        cmd.args(["build", "--release", "--locked", "-p", "chartkey-server"]);
        run_cmd(cmd)
    })?;
    let mut cmd = Command::new(env.server_binary("release"));
    cmd.current_dir(&env.root).arg("--dist").arg(env.dist()).args(server_args);
    println!("starting Chartkey (Ctrl-C to stop)…");
    let status = cmd.status().map_err(|e| format!("starting the server: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("the server exited with {status}")) }
}

/// The cargo feature with the controls only tests use (a paused miner, the
/// ledger's clock, a short relay wait); never in `cargo xtask run`'s build.
const TEST_CONTROLS: &str = "chartkey-server/test-controls";

fn test() -> Result {
    let env = Env::new()?;
    let started = Instant::now();
    step("cargo fmt --check", || {
        let mut cmd = env.cmd("cargo");
        cmd.args(["fmt", "--all", "--", "--check"]);
        run_cmd(cmd)
    })?;
    step("module circles", || circles::check(&env.root))?;
    step("file sizes", || sizes::check(&env.root))?;
    step("clippy (native)", || {
        let mut cmd = env.cmd("cargo");
        // With the test-only controls, so that the tests that use them are
        // checked too (the release build, without them, is built for the
        // browser tests below).
        cmd.args(["clippy", "--locked", "--workspace", "--all-targets", "--features", TEST_CONTROLS]);
        cmd.args(["--", "-D", "warnings"]);
        run_cmd(cmd)
    })?;
    tools::ensure_wasm_target(&env)?;
    step("clippy (wasm32)", || {
        let mut cmd = env.cmd("cargo");
        cmd.args([
            "clippy",
            "--locked",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "chartkey-core",
            "-p",
            "chartkey-api",
            "-p",
            "chartkey-app",
            "-p",
            "chartkey-kdf-worker",
            "-p",
            "chartkey-viewer",
            "--features",
            "chartkey-app/csr",
            "--lib",
            "--bins",
            "--",
            "-D",
            "warnings",
        ]);
        run_cmd(cmd)
    })?;
    contracts::check(&env)?;
    tools::ensure_nginx()?;
    step("unit and integration tests", || {
        let mut cmd = env.cmd("cargo");
        cmd.args(["test", "--locked", "--workspace", "--features", TEST_CONTROLS]);
        run_cmd(cmd)
    })?;
    services::ensure_postgres()?;
    services::ensure_moto()?;
    step("server tests again, on PostgreSQL, S3 (moto) and an external chain (anvil)", || {
        let postgres = services::Postgres::start()?;
        let moto = services::Moto::start(&postgres.log().with_file_name("moto.log"))?;
        let anvil = services::Anvil::start(&env.root, &postgres.log().with_file_name("anvil.log"))?;
        let mut cmd = env.cmd("cargo");
        cmd.args(["test", "--locked", "-p", "chartkey-server", "--tests", "--features", TEST_CONTROLS])
            .env("CHARTKEY_TEST_POSTGRES", postgres.admin_url())
            .env("CHARTKEY_TEST_S3", moto.endpoint())
            .env("CHARTKEY_TEST_CHAIN", anvil.url())
            .envs(moto.client_env());
        let result = run_cmd(cmd);
        if result.is_err() {
            let log = std::fs::read_to_string(postgres.log()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("PostgreSQL's log, last lines:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        result
    })?;
    env.build_app()?;
    step("build the server for browser tests", || {
        let mut cmd = env.cmd("cargo");
        cmd.args(["build", "--locked", "-p", "chartkey-server"]);
        run_cmd(cmd)
    })?;
    tools::ensure_chromium()?;
    tools::ensure_zbar()?;
    tools::ensure_npm_packages(&env, "e2e")?;
    step("browser tests (Playwright, Chromium)", || {
        // The replica and migration tests run on the shared engines.
        let postgres = services::Postgres::start()?;
        let moto = services::Moto::start(&postgres.log().with_file_name("moto.log"))?;
        let anvil = services::Anvil::start(&env.root, &postgres.log().with_file_name("anvil.log"))?;
        let mut cmd = env.cmd("npx");
        cmd.current_dir(env.root.join("e2e"))
            .args(["playwright", "test"])
            .env("CHARTKEY_BIN", env.server_binary("debug"))
            .env("CHARTKEY_DIST", env.dist())
            .env("CHARTKEY_TEST_POSTGRES", postgres.admin_url())
            .env("CHARTKEY_TEST_S3", moto.endpoint())
            .env("CHARTKEY_TEST_CHAIN", anvil.url())
            .envs(moto.client_env());
        run_cmd(cmd)
    })?;
    println!("\nall checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Runs one named step, printing its duration.
pub fn step(name: &str, f: impl FnOnce() -> Result) -> Result {
    println!("\n==> {name}");
    let started = Instant::now();
    let result = f();
    match &result {
        Ok(()) => println!("<== {name}: ok ({:.1?})", started.elapsed()),
        Err(_) => println!("<== {name}: FAILED ({:.1?})", started.elapsed()),
    }
    result.map_err(|e| format!("{name}: {e}"))
}

pub fn run_cmd(mut cmd: Command) -> Result {
    let shown = format!("{cmd:?}");
    let status = cmd.status().map_err(|e| format!("could not start {shown}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{} exited with {status}", cmd.get_program().to_string_lossy())) }
}
