//! `cargo xtask bench bundle`: what a first visit costs.
//! `cargo xtask bench records`: encryption speed and a whole import.
//!
//! - `app.first_load_gzip_bytes`: what headless Chromium actually receives
//!   for the sign-in page on a cold load from the release server on
//!   127.0.0.1 (CDP network events: compressed bodies and headers);
//!   `app.first_load_decoded_bytes`, the same bodies decoded.
//! - `app.first_load_files_{brotli,gzip}_bytes`: the entry page's wasm, js
//!   and css in the precompressed forms the build wrote, summed (the
//!   bodies a browser that takes brotli or gzip receives).
//! - `app.login_page_interactive_ms`: from navigation to the sign-in button
//!   being enabled, with an empty cache; median of 5.
//! - `app.signin_to_records_ms`: a patient with the 145-resource sample,
//!   empty cache, from the click on "Sign in with a passkey" at
//!   /signin?next=/records to the Records heading and timeline drawn;
//!   median of 5 (e2e/bench/signin-records.mjs).
//!
//! `cargo xtask bench links`: `shl.create_ms` and `shl.resolve_p50_ms` /
//! `shl.resolve_p95_ms` (e2e/bench/links.mjs says what each measures).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::{Env, Result, run_cmd, services, step, tools};

/// `cargo xtask bench ledger`: gas of each contract call, and grants per
/// second on the embedded node and on anvil (npm, in contracts/), relayed by
/// the same relayer (ledger/benches/ledger.rs, release build).
pub fn ledger() -> Result {
    let env = Env::new()?;
    tools::ensure_npm_packages(&env, "contracts")?;
    step("ledger benchmark (release)", || {
        let mut cmd = env.cmd("cargo");
        cmd.args(["bench", "--locked", "-p", "chartkey-ledger", "--bench", "ledger"]);
        run_cmd(cmd)
    })
}

/// `cargo xtask bench scale`: two release replicas behind nginx on the
/// shared engines (PostgreSQL, moto's S3 and anvil, started here and
/// stopped by their process ids), 200 simulated clinicians for 60 s, one
/// replica killed at 30 s and restarted at 45 s (server/benches/scale.rs).
/// Anvil mines every 100 ms, as a hospital's chain mines on an interval:
/// mining a block per transaction (the tests' setting) has anvil spend its
/// time on blocks (~40 opens/s, p99 ~7 s, measured).
pub fn scale() -> Result {
    let env = Env::new()?;
    tools::ensure_npm_packages(&env, "contracts")?;
    tools::ensure_nginx()?;
    services::ensure_postgres()?;
    services::ensure_moto()?;
    step("scale benchmark (release)", || {
        let postgres = services::Postgres::start()?;
        let moto = services::Moto::start(&postgres.log().with_file_name("moto.log"))?;
        let log = postgres.log().with_file_name("anvil.log");
        let anvil = services::Anvil::start_with(&env.root, &log, &["--block-time", "0.1"])?;
        let mut cmd = env.cmd("cargo");
        cmd.args(["bench", "--locked", "-p", "chartkey-server", "--bench", "scale"])
            .env("CHARTKEY_TEST_POSTGRES", postgres.admin_url())
            .env("CHARTKEY_TEST_S3", moto.endpoint())
            .env("CHARTKEY_TEST_CHAIN", anvil.url())
            .envs(moto.client_env());
        run_cmd(cmd)
    })
}

pub fn bundle() -> Result {
    let env = Env::new()?;
    env.build_app()?;
    let index = std::fs::read_to_string(env.dist().join("index.html")).map_err(|e| e.to_string())?;
    let (mut brotli, mut gzip) = (0, 0);
    for entry in std::fs::read_dir(env.dist()).map_err(|e| e.to_string())?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let first_page =
            [".wasm", ".js", ".css"].iter().any(|ext| name.ends_with(ext)) && index.contains(&format!("/{name}"));
        if first_page {
            let size = |ext: &str| {
                let mut path = entry.path().into_os_string();
                path.push(ext);
                std::fs::metadata(&path).map(|m| m.len()).map_err(|e| format!("{}: {e}", path.display()))
            };
            let (raw, br, gz) = (size("")?, size(".br")?, size(".gz")?);
            println!("  {name}: {raw} bytes, {br} brotli, {gz} gzip");
            brotli += br;
            gzip += gz;
        }
    }

    let measured = browser_bench(&env, "bench/login-interactive.mjs", &[])?;
    let signin = browser_bench(&env, "bench/signin-records.mjs", &[])?;
    println!("app.first_load_files_brotli_bytes: {brotli}");
    println!("app.first_load_files_gzip_bytes: {gzip}");
    print!("{measured}{signin}");
    Ok(())
}

/// `cargo xtask bench records|share|links`: e2e/bench/<name>.mjs in the
/// browser against the release server.
/// - records: record encryption in the browser (wasm) beside the browser's
///   own AES-GCM, and a whole import of the largest sample bundle;
/// - share: a clinician opening a shared 1 MB record (50 opens, p50 and
///   p95) and the access-to-notice delay on the patient's page;
/// - links: a summary link made for the largest sample patient, and a 1 MB
///   summary opened 50 times in the viewer (p50, p95). The public limits
///   are raised: the benchmark is one client asking one link again and
///   again.
pub fn in_browser(name: &str) -> Result {
    let server_args: &[&str] = match name {
        "links" => {
            &["--link-requests-per-minute", "10000", "--manifests-per-minute", "10000", "--relays-per-hour", "100000"]
        }
        _ => &[],
    };
    let env = Env::new()?;
    env.build_app()?;
    let measured = browser_bench(&env, &format!("bench/{name}.mjs"), server_args)?;
    print!("{measured}");
    Ok(())
}

/// Runs a Node script (in e2e/) against the release server on 127.0.0.1
/// with a fresh data directory, and returns what it printed. The server
/// is stopped by its process id.
fn browser_bench(env: &Env, script: &str, server_args: &[&str]) -> Result<String> {
    step("build the server (release)", || {
        let mut cmd = env.cmd("cargo");
        cmd.args(["build", "--release", "--locked", "-p", "chartkey-server"]);
        run_cmd(cmd)
    })?;
    tools::ensure_chromium()?;
    tools::ensure_npm_packages(env, "e2e")?;

    let data = env.target.join("bench-data");
    let _ = std::fs::remove_dir_all(&data);
    let mut server = Command::new(env.server_binary("release"))
        .args(["--port", "0", "--data-dir"])
        .arg(&data)
        .arg("--dist")
        .arg(env.dist())
        .args(["--registration-per-minute", "1000", "--login-per-minute", "1000"])
        .args(server_args)
        .env("CHARTKEY_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the server: {e}"))?;
    let mut url = String::new();
    if let Some(out) = server.stdout.take() {
        BufReader::new(out).read_line(&mut url).map_err(|e| e.to_string())?;
    }
    let url = url.trim().rsplit(' ').next().unwrap_or_default().trim_end_matches('/').to_owned();
    let measured = env
        .cmd("node")
        .current_dir(env.root.join("e2e"))
        .arg(script)
        .env("CHARTKEY_URL", &url)
        .env("CHARTKEY_FIXTURES", env.root.join("fixtures"))
        .env("CHARTKEY_BIN", env.server_binary("release"))
        .env("CHARTKEY_DATA_DIR", &data)
        .stderr(Stdio::inherit())
        .output();
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&data);
    let measured = measured.map_err(|e| format!("running the browser benchmark: {e}"))?;
    if !measured.status.success() {
        return Err(format!("browser benchmark {script} failed"));
    }
    Ok(String::from_utf8_lossy(&measured.stdout).into_owned())
}
