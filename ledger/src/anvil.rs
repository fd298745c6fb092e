//! Anvil (Foundry's development node, from npm `@foundry-rs/anvil`, installed
//! under contracts/node_modules by the xtask) as an external node for tests
//! and benchmarks: started on 127.0.0.1 with a free port, stopped by its
//! process id.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};

use crate::client::{ClientError, RemoteNode};
use crate::node::Contracts;

/// The anvil binary the npm package installed for this platform.
pub fn binary(workspace: &Path) -> PathBuf {
    let platform = match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "aarch64") => "linux-arm64",
        ("macos", "aarch64") => "darwin-arm64",
        ("macos", _) => "darwin-amd64",
        _ => "linux-amd64",
    };
    workspace.join(format!("contracts/node_modules/@foundry-rs/anvil-{platform}/bin/anvil"))
}

/// A running anvil; killed (SIGKILL) when dropped.
pub struct Anvil {
    child: Child,
    pub url: String,
}

impl Anvil {
    /// Starts anvil with `chain_id`, waiting until it listens.
    pub fn start(workspace: &Path, chain_id: u64) -> std::io::Result<Self> {
        Self::start_with(workspace, chain_id, &[])
    }

    /// [`Self::start`] with more of anvil's options (`--block-time 1`…).
    pub fn start_with(workspace: &Path, chain_id: u64, options: &[&str]) -> std::io::Result<Self> {
        let binary = binary(workspace);
        let mut child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", "0", "--chain-id", &chain_id.to_string()])
            .args(options)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("{}: {e} (run the xtask to install it)", binary.display()))
            })?;
        let stdout = child.stdout.take().expect("piped");
        let mut anvil = Self { child, url: String::new() };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut lines = BufReader::new(stdout).lines();
        while Instant::now() < deadline {
            let Some(line) = lines.next() else { break };
            if let Some(address) = line?.strip_prefix("Listening on ") {
                anvil.url = format!("http://{}", address.trim());
                // Keep draining its output so it never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines {});
                return Ok(anvil);
            }
        }
        Err(std::io::Error::other("anvil did not start listening"))
    }
}

impl Anvil {
    /// Gives each of `accounts` a balance of `ether` ether.
    pub async fn fund(&self, accounts: &[Address], ether: u64) -> Result<(), ClientError> {
        fund_at(&self.url, accounts, ether).await
    }
}

/// Gives each of `accounts` a balance of `ether` ether on the anvil at
/// `url`, one this process may not have started (anvil_setBalance).
pub async fn fund_at(url: &str, accounts: &[Address], ether: u64) -> Result<(), ClientError> {
    let node = RemoteNode::connect(url, Contracts::none()).await?;
    let wei = U256::from(ether) * U256::from(10u64).pow(U256::from(18));
    for account in accounts {
        let _: serde_json::Value = node.request("anvil_setBalance", serde_json::json!([account, wei])).await?;
    }
    Ok(())
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
