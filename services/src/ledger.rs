//! The server's side of the ledger: the embedded node opened from the data
//! directory, or (with `--chain-rpc`) an external Ethereum node holding the
//! same contracts; the keys the operator holds (relayer, administrator); and
//! the relayer with its journal.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::U256;
use anyhow::Context;
use chartkey_ledger::client::{LedgerClient, RemoteNode};
use chartkey_ledger::node::{Contracts, Genesis, Node, Wallet};
use chartkey_ledger::relayer::Relayer;
use serde::{Deserialize, Serialize};

use crate::config::Config;

pub use crate::config::DEFAULT_CHAIN_ID;

/// The ledger and the keys that act on it.
pub struct Ledger {
    /// How the server reaches the ledger.
    pub client: LedgerClient,
    /// The embedded node; `None` when the ledger is external.
    pub node: Option<Arc<Node>>,
    /// Relays the signed messages of the portal's users, paying their gas
    /// with the relayer key.
    pub relayer: Relayer,
    /// Owner of the Directory contract (names credentialing authorities).
    pub admin: Wallet,
    /// The last verification and when it finished; held while one runs
    /// (one at a time, and at most one per [`VERIFY_INTERVAL`]).
    pub verifying: tokio::sync::Mutex<Option<(std::time::Instant, chartkey_api::LedgerVerification)>>,
    /// Each account's ledger activity as last shown, and up to which block
    /// it was read: the Ledger page reads only the blocks since.
    pub activity: std::sync::Mutex<std::collections::HashMap<alloy_primitives::Address, Activity>>,
}

/// An account's newest events (newest first) up to block `scanned`.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    pub scanned: u64,
    pub events: Vec<chartkey_api::LedgerEvent>,
}

/// Accounts whose activity is kept; past this the cache starts over.
pub const ACTIVITY_CACHED: usize = 10_000;

/// A verification re-executes the whole chain: within this long of the
/// last one, its result is given instead.
pub const VERIFY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Where the contracts are on an external chain: `contracts.json` in the
/// data directory (written after deploying them), or `--contracts FILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractsFile {
    pub chain_id: u64,
    pub directory: alloy_primitives::Address,
    pub records: alloy_primitives::Address,
    /// Absent in files written before the Access contract existed: the
    /// server then deploys it and rewrites the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<alloy_primitives::Address>,
}

impl ContractsFile {
    pub fn contracts(&self) -> Contracts {
        Contracts {
            directory: self.directory,
            records: self.records,
            access: self.access.unwrap_or(alloy_primitives::Address::ZERO),
        }
    }
}

impl Ledger {
    /// Opens the ledger `config` names: the embedded one under the data
    /// directory (created on first run: the chain in `ledger.sqlite3`, the
    /// keys in `keys/`, owner-only files), or the external node at
    /// `config.chain_rpc`. Then starts the relayer on its journal
    /// (`relayer.sqlite3`), which sends whatever it holds unsent.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let data_dir = &config.data_dir;
        let keys = data_dir.join("keys");
        let relayer_key = config.relayer_key.clone().unwrap_or_else(|| keys.join("relayer.key"));
        let relayer = load_or_create_key(&relayer_key)?;
        let admin = load_or_create_key(&keys.join("admin.key"))?;
        let (client, node) = match &config.chain_rpc {
            None => {
                let node = Arc::new(open_embedded(data_dir, config.chain_id, &relayer, &admin)?);
                #[cfg(feature = "test-controls")]
                if config.pause_mining {
                    tracing::warn!("test control: the ledger mines nothing");
                    node.pause_mining(true);
                }
                #[cfg(feature = "test-controls")]
                node.delay_blocks(config.block_delay);
                (LedgerClient::Embedded(Arc::clone(&node)), Some(node))
            }
            Some(url) => (open_remote(config, url.as_str(), &relayer, &admin).await?, None),
        };
        let relayer = Relayer::start(client.clone(), relayer, &data_dir.join("relayer.sqlite3"))
            .await
            .context("starting the relayer")?;
        Ok(Self {
            client,
            node,
            relayer,
            admin,
            verifying: tokio::sync::Mutex::new(None),
            activity: Default::default(),
        })
    }
}

fn open_embedded(data_dir: &Path, chain_id: u64, relayer: &Wallet, admin: &Wallet) -> anyhow::Result<Node> {
    let node = Node::open_or_init(&ledger_path(data_dir), || genesis(chain_id, relayer, admin))
        .context("opening the ledger")?;
    if node.chain_id() != chain_id {
        anyhow::bail!("the ledger in {} has chain id {}, not {chain_id}", data_dir.display(), node.chain_id());
    }
    if node.genesis().admin != admin.address() {
        anyhow::bail!("keys/admin.key is not the administrator this ledger was created with");
    }
    Ok(node)
}

/// The external node at `url`, with the contracts its file names, or newly
/// deployed (paid by the relayer key) when there is no file yet.
async fn open_remote(config: &Config, url: &str, relayer: &Wallet, admin: &Wallet) -> anyhow::Result<LedgerClient> {
    let path = config.contracts_file.clone().unwrap_or_else(|| config.data_dir.join("contracts.json"));
    let contracts = match std::fs::read(&path) {
        Ok(bytes) => {
            let file: ContractsFile = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a contracts file", path.display()))?;
            Some(file)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && config.contracts_file.is_none() => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let deployed = match &contracts {
        Some(file) => file.contracts(),
        None => {
            tracing::info!(url, relayer = %relayer.address(), "deploying the contracts on the external ledger");
            RemoteNode::deploy(url, relayer, admin.address()).await.with_context(|| {
                format!("deploying the contracts at {url} (the relayer {} pays; is it funded?)", relayer.address())
            })?
        }
    };
    let mut remote =
        RemoteNode::connect(url, deployed).await.with_context(|| format!("connecting to the ledger at {url}"))?;
    if let Some(file) = &contracts
        && remote.chain_id() != file.chain_id
    {
        anyhow::bail!("{url} is chain {}, but {} is for chain {}", remote.chain_id(), path.display(), file.chain_id)
    }
    let checking = || format!("checking the contracts {} names", path.display());
    remote.check_contracts().await.with_context(checking)?;
    if chartkey_ledger::abi::is_none(deployed.access) {
        // A file from before the Access contract: deploy it alongside.
        let upgraded = RemoteNode::deploy_missing(url, relayer, deployed).await.with_context(|| {
            format!("deploying the Access contract at {url} (the relayer {} pays; is it funded?)", relayer.address())
        })?;
        tracing::info!(access = %upgraded.access, "deployed the Access contract on the external ledger");
        remote =
            RemoteNode::connect(url, upgraded).await.with_context(|| format!("connecting to the ledger at {url}"))?;
    }
    let current = remote.contracts();
    if contracts.as_ref().map(ContractsFile::contracts) != Some(current) {
        let file = ContractsFile {
            chain_id: remote.chain_id(),
            directory: current.directory,
            records: current.records,
            access: Some(current.access),
        };
        replace_private(&path, &serde_json::to_vec_pretty(&file)?)?;
        tracing::info!(path = %path.display(), directory = %file.directory, records = %file.records,
            access = %current.access, "contracts written down");
    }
    remote.check_contracts().await.with_context(checking)?;
    Ok(LedgerClient::Remote(Arc::new(remote)))
}

pub fn ledger_path(data_dir: &Path) -> PathBuf {
    data_dir.join("ledger.sqlite3")
}

fn genesis(chain_id: u64, relayer: &Wallet, admin: &Wallet) -> Genesis {
    let ether = U256::from(10u64).pow(U256::from(18));
    Genesis {
        chain_id,
        timestamp: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        admin: admin.address(),
        alloc: [
            (relayer.address(), ether * U256::from(1_000_000_000u64)),
            (admin.address(), ether * U256::from(1_000u64)),
        ]
        .into(),
    }
}

/// Reads a hex secret key, or creates one readable by the owner only.
fn load_or_create_key(path: &Path) -> anyhow::Result<Wallet> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim().trim_start_matches("0x"))
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .with_context(|| format!("{} does not hold a 32-byte hex key", path.display()))?;
            Wallet::from_secret(&bytes).with_context(|| format!("{} is not a valid secp256k1 key", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let wallet = Wallet::random();
            write_private(path, hex::encode(wallet.secret()).as_bytes())?;
            tracing::info!(path = %path.display(), address = %wallet.address(), "created a ledger key");
            Ok(wallet)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reads a secret token (hex), or creates a random 256-bit one readable by
/// the owner only.
pub fn secret_file(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().len() >= 32 => Ok(text.trim().to_owned()),
        Ok(_) => anyhow::bail!("{} holds no token (32 characters or more)", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
            let token = hex::encode(bytes);
            write_private(path, token.as_bytes())?;
            tracing::info!(path = %path.display(), "created a token");
            Ok(token)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Creates `path` (it must not exist) readable by the owner only, durably.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

/// Writes `contents` to `path` (owner-only) in place of what is there, all
/// or nothing: a new file beside it, synced, then renamed over it.
fn replace_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let new = path.with_extension("new");
    match std::fs::remove_file(&new) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    write_private(&new, contents)?;
    std::fs::rename(&new, path).with_context(|| format!("replacing {}", path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, chain_id: u64) -> Config {
        let mut config = Config::new(dir.to_owned(), "http://localhost:8080".parse().unwrap());
        config.chain_id = chain_id;
        config
    }

    #[tokio::test]
    async fn keys_persist_and_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let first = Ledger::open(&config(dir.path(), DEFAULT_CHAIN_ID)).await.unwrap();
        let (relayer, admin) = (first.relayer.address(), first.admin.address());
        assert_ne!(relayer, admin);
        drop(first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keys/relayer.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Ledger::open(&config(dir.path(), DEFAULT_CHAIN_ID)).await.unwrap();
        assert_eq!((again.relayer.address(), again.admin.address()), (relayer, admin));
        assert!(again.node.as_ref().unwrap().balance(relayer) > U256::ZERO, "genesis funds the relayer");
        drop(again);
        assert!(Ledger::open(&config(dir.path(), 1)).await.is_err(), "another chain id is refused");
        std::fs::write(dir.path().join("keys/admin.key"), "zz").unwrap();
        assert!(Ledger::open(&config(dir.path(), DEFAULT_CHAIN_ID)).await.is_err(), "an unreadable key is refused");
    }
}
