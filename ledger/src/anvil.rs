//! Anvil (Foundry's development node, from npm `@foundry-rs/anvil`, installed
//! under contracts/node_modules by the xtask) as an external node for tests
//! and benchmarks: started on 127.0.0.1 with a free port, stopped by its
//! process id.

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
    /// Anvil runs `--silent` (logging every request costs it throughput) on
    /// a port picked here, and is waited for until it accepts connections.
    pub fn start_with(workspace: &Path, chain_id: u64, options: &[&str]) -> std::io::Result<Self> {
        let binary = binary(workspace);
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--chain-id", &chain_id.to_string(), "--silent"])
            .args(options)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("{}: {e} (run the xtask to install it)", binary.display()))
            })?;
        let mut anvil = Self { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = anvil.child.try_wait()? {
                return Err(std::io::Error::other(format!("anvil exited at start ({status})")));
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(anvil);
            }
            std::thread::sleep(Duration::from_millis(20));
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
