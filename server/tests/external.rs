//! `--chain-rpc`: the server on an external Ethereum node (anvil, started on
//! 127.0.0.1): it deploys the contracts on first start and remembers them,
//! relays through that node, and refuses a contracts file that names no
//! contracts.

mod common;

use std::path::{Path, PathBuf};

use chartkey_core::role::Role;
use chartkey_ledger::anvil::Anvil;
use chartkey_ledger::client::RemoteNode;
use chartkey_ledger::node::{Contracts, Wallet};
use chartkey_server::Config;
use chartkey_server::ledger::{ContractsFile, Ledger};
use common::*;
use serde_json::json;

const RELAYER: [u8; 32] = [0x5e; 32];

/// Anvil, with the relayer key (written to `dir/relayer.key`) funded.
async fn anvil_with_funded_relayer(dir: &Path) -> (Anvil, PathBuf) {
    let anvil = Anvil::start(&workspace(), 31_337).expect("anvil (npm @foundry-rs/anvil in contracts/)");
    anvil.fund(&[Wallet::from_secret(&RELAYER).unwrap().address()], 1_000).await.unwrap();
    let key = dir.join("relayer.key");
    std::fs::write(&key, hex::encode(RELAYER)).unwrap();
    (anvil, key)
}

async fn relayer_nonce(anvil: &Anvil) -> u64 {
    let node = RemoteNode::connect(&anvil.url, Contracts::none()).await.unwrap();
    node.pending_nonce(Wallet::from_secret(&RELAYER).unwrap().address()).await.unwrap()
}

fn external(config: &mut Config, data_dir: &Path, anvil: &Anvil, key: &Path) {
    config.data_dir = data_dir.to_owned();
    config.chain_rpc = Some(anvil.url.parse().unwrap());
    config.relayer_key = Some(key.to_owned());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_runs_on_an_external_node() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let (anvil, key) = anvil_with_funded_relayer(tmp.path()).await;

    // First start: the contracts are deployed and written down.
    let server = TestServer::start_with(|c| external(c, &data_dir, &anvil, &key)).await;
    let file: ContractsFile = serde_json::from_slice(&std::fs::read(data_dir.join("contracts.json")).unwrap()).unwrap();
    assert_eq!(file.chain_id, 31_337);
    let patient = sign_up(&server, "Pat", Role::Patient).await;
    let info = patient.client.api(fns::LedgerInfo {}).await.unwrap();
    assert_eq!(info.chain_id, 31_337);
    assert_eq!(info.directory.to_string(), format!("{:?}", file.directory).to_lowercase());

    // Sign-up registered the patient on anvil.
    let remote = RemoteNode::connect(&anvil.url, file.contracts()).await.unwrap();
    let account = chartkey_ledger::convert::to_alloy(patient.keys.address());
    let call = chartkey_ledger::abi::ChartkeyDirectory::accountOfCall { account };
    let request = chartkey_ledger::node::CallRequest {
        to: Some(file.directory),
        data: chartkey_ledger::abi::SolCall::abi_encode(&call).into(),
        ..Default::default()
    };
    let answer = remote.call(&request).await.unwrap();
    let account =
        <chartkey_ledger::abi::ChartkeyDirectory::accountOfCall as chartkey_ledger::abi::SolCall>::abi_decode_returns(
            &answer,
        )
        .unwrap();
    assert_eq!(account.role, Role::Patient.code(), "registered on anvil as a patient");

    // The embedded node's JSON-RPC is not served: the ledger is elsewhere.
    let rpc = reqwest::Client::new()
        .post(format!("{}/rpc", server.base))
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "eth_chainId" }))
        .send()
        .await
        .unwrap();
    assert_eq!(rpc.status(), 404);
    server.stop().await;

    // A restart uses the same contracts: nothing is deployed again.
    let before = relayer_nonce(&anvil).await;
    let server = TestServer::start_with(|c| external(c, &data_dir, &anvil, &key)).await;
    let info = server.client().api(fns::LedgerInfo {}).await.unwrap();
    assert_eq!(info.records.to_string(), format!("{:?}", file.records).to_lowercase());
    assert_eq!(relayer_nonce(&anvil).await, before);
    server.stop().await;

    // A contracts file written before the Access contract existed: the
    // server deploys it (one transaction) and writes it into the file.
    let access = file.access.expect("a new file names the Access contract");
    assert!(!remote.code(access).await.unwrap().is_empty());
    let old = ContractsFile { access: None, ..file.clone() };
    std::fs::write(data_dir.join("contracts.json"), serde_json::to_vec(&old).unwrap()).unwrap();
    let server = TestServer::start_with(|c| external(c, &data_dir, &anvil, &key)).await;
    let upgraded: ContractsFile =
        serde_json::from_slice(&std::fs::read(data_dir.join("contracts.json")).unwrap()).unwrap();
    assert_eq!((upgraded.directory, upgraded.records), (file.directory, file.records));
    let access = upgraded.access.expect("written down");
    assert_ne!(access, file.access.unwrap(), "deployed anew");
    assert_eq!(relayer_nonce(&anvil).await, before + 1);
    let info = server.client().api(fns::LedgerInfo {}).await.unwrap();
    assert_eq!(info.access.to_string(), format!("{access:?}").to_lowercase());
    server.stop().await;
    let server = TestServer::start_with(|c| external(c, &data_dir, &anvil, &key)).await;
    assert_eq!(relayer_nonce(&anvil).await, before + 1, "and only once");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contracts_file_without_contracts_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (anvil, key) = anvil_with_funded_relayer(tmp.path()).await;
    let data_dir = tmp.path().join("data");
    let named = tmp.path().join("contracts.json");
    let nowhere = ContractsFile {
        chain_id: 31_337,
        directory: alloy_primitives::Address::repeat_byte(1),
        records: alloy_primitives::Address::repeat_byte(2),
        access: None,
    };
    std::fs::write(&named, serde_json::to_vec(&nowhere).unwrap()).unwrap();
    let mut config = Config::new(data_dir.clone(), "http://localhost:1".parse().unwrap());
    external(&mut config, &data_dir, &anvil, &key);
    config.contracts_file = Some(named.clone());
    let error = Ledger::open(&config).await.err().expect("refused").to_string();
    assert!(error.contains("checking the contracts"), "{error}");

    let wrong_chain = ContractsFile { chain_id: 1, ..nowhere };
    std::fs::write(&named, serde_json::to_vec(&wrong_chain).unwrap()).unwrap();
    let error = format!("{:#}", Ledger::open(&config).await.err().expect("refused"));
    assert!(error.contains("for chain 1"), "{error}");

    std::fs::write(&named, b"{\"chainId\": 31337}").unwrap();
    let error = format!("{:#}", Ledger::open(&config).await.err().expect("refused"));
    assert!(error.contains("is not a contracts file"), "{error}");

    config.contracts_file = Some(tmp.path().join("missing.json"));
    assert!(Ledger::open(&config).await.is_err(), "a named file must exist");
}
