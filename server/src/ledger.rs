//! The server's side of the ledger: the embedded node, opened from the data
//! directory, the keys the operator holds (relayer, administrator), and the
//! relayer with its journal.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::U256;
use anyhow::Context;
use chartkey_ledger::client::LedgerClient;
use chartkey_ledger::node::{Genesis, Node, Wallet};
use chartkey_ledger::relayer::Relayer;

/// Chartkey's default chain id for the embedded ledger ("chk").
pub const DEFAULT_CHAIN_ID: u64 = 0x0063_686b;

/// The embedded ledger and the keys that act on it.
pub struct Ledger {
    pub node: Arc<Node>,
    /// Relays the signed messages of the portal's users, paying their gas
    /// with keys/relayer.key.
    pub relayer: Relayer,
    /// Owner of the Directory contract (names credentialing authorities).
    pub admin: Wallet,
}

impl Ledger {
    /// Opens (or, on first run, creates) the ledger under `data_dir`: the
    /// chain in `ledger.sqlite3`, the keys in `keys/` (owner-only files), the
    /// relayer's journal in `relayer.sqlite3` (whatever it holds unsent is
    /// sent now).
    pub async fn open(data_dir: &Path, chain_id: u64) -> anyhow::Result<Self> {
        let keys = data_dir.join("keys");
        let relayer = load_or_create_key(&keys.join("relayer.key"))?;
        let admin = load_or_create_key(&keys.join("admin.key"))?;
        let node = Node::open_or_init(&ledger_path(data_dir), || genesis(chain_id, &relayer, &admin))
            .context("opening the ledger")?;
        if node.chain_id() != chain_id {
            anyhow::bail!("the ledger in {} has chain id {}, not {chain_id}", data_dir.display(), node.chain_id());
        }
        if node.genesis().admin != admin.address() {
            anyhow::bail!("keys/admin.key is not the administrator this ledger was created with");
        }
        let node = Arc::new(node);
        let relayer =
            Relayer::start(LedgerClient::Embedded(Arc::clone(&node)), relayer, &data_dir.join("relayer.sqlite3"))
                .await
                .context("starting the relayer")?;
        Ok(Self { node, relayer, admin })
    }
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
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
            file.write_all(hex::encode(wallet.secret()).as_bytes())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), address = %wallet.address(), "created a ledger key");
            Ok(wallet)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_persist_and_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let first = Ledger::open(dir.path(), DEFAULT_CHAIN_ID).await.unwrap();
        let (relayer, admin) = (first.relayer.address(), first.admin.address());
        assert_ne!(relayer, admin);
        drop(first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keys/relayer.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Ledger::open(dir.path(), DEFAULT_CHAIN_ID).await.unwrap();
        assert_eq!((again.relayer.address(), again.admin.address()), (relayer, admin));
        assert!(again.node.balance(relayer) > U256::ZERO, "genesis funds the relayer");
        drop(again);
        assert!(Ledger::open(dir.path(), 1).await.is_err(), "another chain id is refused");
        std::fs::write(dir.path().join("keys/admin.key"), "zz").unwrap();
        assert!(Ledger::open(dir.path(), DEFAULT_CHAIN_ID).await.is_err(), "an unreadable key is refused");
    }
}
