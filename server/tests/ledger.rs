//! The embedded ledger through the server: JSON-RPC at /rpc as geth answers
//! it, read by an independent client (ethers.js), and `chartkey ledger
//! verify` on the chain the server wrote.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use chartkey_core::eip712::{Domain, Grant, IssueCredential, Register, bytes32_text};
use chartkey_core::{AccountKeys, AccountSecret};
use chartkey_ledger::abi::{ChartkeyDirectory, ChartkeyRecords, SolCall};
use chartkey_ledger::calls;
use chartkey_ledger::convert::to_alloy;
use chartkey_ledger::node::Contracts;
use common::{ApiError, TestServer, fns, wallet};
use ethers_core::types::U256;
use serde_json::{Value, json};

fn keys(n: u8) -> AccountKeys {
    AccountSecret::from_bytes([n; 32]).derive()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn json_rpc_answers_like_geth_and_ethers_reads_a_grant() {
    if !common::engines::on_embedded_ledger("the embedded node's /rpc") {
        return;
    }
    let server = TestServer::start().await;
    let rpc = server.rpc();

    // Basics and geth's errors.
    let chain_id = rpc.result("eth_chainId", json!([])).await;
    let chain_id = u64::from_str_radix(chain_id.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(chain_id, chartkey_server::ledger::DEFAULT_CHAIN_ID);
    assert_eq!(rpc.result("net_version", json!([])).await, chain_id.to_string());
    // Block 1 deploys the contracts added after genesis (no transactions).
    assert_eq!(rpc.result("eth_blockNumber", json!([])).await, "0x1");
    let upgrade = rpc.result("eth_getBlockByNumber", json!(["0x1", false])).await;
    assert_eq!(upgrade["extraData"], format!("0x{}", hex::encode(b"chartkey:access-v1")));
    assert_eq!(upgrade["transactions"], json!([]));
    assert_eq!(rpc.result("eth_gasPrice", json!([])).await, "0x3b9aca00");
    let genesis = rpc.result("eth_getBlockByNumber", json!(["earliest", false])).await;
    assert_eq!(genesis["number"], "0x0");
    assert_eq!(genesis["transactions"], json!([]));
    assert_eq!(rpc.result("eth_getBlockByNumber", json!(["0x5", false])).await, Value::Null);
    let (_, parse) = rpc.raw("{not json".into()).await;
    assert_eq!(parse["error"]["code"], -32700);
    let unknown = rpc.call("eth_mining", json!([])).await;
    assert_eq!(unknown["error"]["code"], -32601);
    assert_eq!(unknown["error"]["message"], "the method eth_mining does not exist/is not available");
    let bad_param = rpc.call("eth_getBalance", json!(["0x12"])).await;
    assert_eq!(bad_param["error"]["code"], -32602);
    let (_, invalid) = rpc.raw(json!({ "id": 1, "method": "eth_chainId" }).to_string()).await;
    assert_eq!(invalid["error"]["code"], -32600, "jsonrpc 2.0 is required");
    let (_, batch) = rpc
        .raw(
            json!([
                { "jsonrpc": "2.0", "id": 1, "method": "eth_chainId" },
                { "jsonrpc": "2.0", "method": "eth_blockNumber" },
                { "jsonrpc": "2.0", "id": 2, "method": "nope" }
            ])
            .to_string(),
        )
        .await;
    assert_eq!(batch.as_array().unwrap().len(), 2, "the notification gets no answer: {batch}");
    assert_eq!(batch[1]["error"]["code"], -32601);
    let junk = rpc.call("eth_sendRawTransaction", json!(["0x02c0"])).await;
    assert_eq!(junk["error"]["code"], -32000, "{junk}");

    // A real scenario: accounts, an authority, a credential, a grant.
    let contracts = Contracts::of_genesis();
    let (dir_address, rec_address) = (contracts.directory.0.0.into(), contracts.records.0.0.into());
    let directory_domain = Domain::directory(chain_id, dir_address);
    let records_domain = Domain::records(chain_id, rec_address);
    let relayer = wallet(&server.data_dir, "relayer.key");
    let admin = wallet(&server.data_dir, "admin.key");
    let (patient, clinician, authority) = (keys(1), keys(2), keys(3));
    for (who, role) in [(&patient, 1u8), (&clinician, 2), (&authority, 4)] {
        let message =
            Register { account: who.address(), role, encryption_key: who.encryption_public(), nonce: U256::zero() };
        let input = calls::input(&message, directory_domain.sign(who, &message));
        rpc.send(chain_id, &relayer, contracts.directory, input).await;
    }
    let input =
        ChartkeyDirectory::setAuthorityCall { authority: to_alloy(authority.address()), enabled: true }.abi_encode();
    rpc.send(chain_id, &admin, contracts.directory, input).await;
    let credential = IssueCredential {
        authority: authority.address(),
        clinician: clinician.address(),
        license_id_hash: ethers_core::utils::keccak256(b"GMC-7654321"),
        specialty: bytes32_text("psychiatry").unwrap(),
        expires_at: now() + 365 * 86_400,
        nonce: U256::one(),
    };
    let input = calls::input(&credential, directory_domain.sign(&authority, &credential));
    rpc.send(chain_id, &relayer, contracts.directory, input).await;
    let grant = Grant {
        patient: patient.address(),
        grantee: clinician.address(),
        scope: 2,
        categories: 0,
        records: Vec::new(),
        write: false,
        expires_at: now() + 7 * 86_400,
        nonce: U256::zero(),
    };
    let input = calls::input(&grant, records_domain.sign(&patient, &grant));
    let grant_hash = rpc.send(chain_id, &relayer, contracts.records, input).await;

    // Our own view of it first.
    let receipt = rpc.result("eth_getTransactionReceipt", json!([grant_hash])).await;
    assert_eq!(receipt["to"], format!("{:#x}", contracts.records).to_lowercase());
    assert_eq!(receipt["logs"].as_array().unwrap().len(), 1);
    let logs = rpc
        .result("eth_getLogs", json!([{ "address": contracts.records, "fromBlock": "0x0", "toBlock": "latest" }]))
        .await;
    assert_eq!(logs.as_array().unwrap().len(), 1);
    assert_eq!(logs[0]["transactionHash"], grant_hash);
    let none = rpc
        .result(
            "eth_getLogs",
            json!([{ "address": contracts.directory, "topics": [format!("0x{}", "ab".repeat(32))] }]),
        )
        .await;
    assert_eq!(none, json!([]));
    let view = ChartkeyRecords::canAccessCall {
        grantee: to_alloy(clinician.address()),
        patient: to_alloy(patient.address()),
        recordId: [1; 32].into(),
    }
    .abi_encode();
    let reverted = rpc
        .call(
            "eth_call",
            json!([{ "to": contracts.directory, "input": format!("0x{}", hex::encode(&view)) }, "latest"]),
        )
        .await;
    assert_eq!(reverted["error"]["code"], 3, "an unknown selector reverts: {reverted}");
    let head = rpc.result("eth_blockNumber", json!([])).await;
    let old_state = rpc.call("eth_getBalance", json!([relayer.address(), "0x1"])).await;
    assert_eq!(old_state["error"]["code"], -32000, "no historical state: {old_state}");

    // ethers.js, on its own.
    let script = common::workspace().join("contracts/test/ethers-rpc.mjs");
    assert!(
        common::workspace().join("contracts/node_modules/ethers").exists(),
        "ethers.js is not installed: run `cargo xtask test` (it runs npm ci in contracts/)"
    );
    // Off the runtime's thread: the server answering ethers runs on it.
    let (url, hash, token) = (rpc.url.clone(), grant_hash.clone(), rpc.token.clone().unwrap());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node").arg(&script).arg(&url).arg(&hash).env("CHARTKEY_RPC_TOKEN", token).output()
    })
    .await
    .unwrap()
    .expect("node runs");
    assert!(output.status.success(), "ethers-rpc.mjs failed: {}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    assert_eq!(seen["chainId"], chain_id.to_string());
    assert_eq!(format!("0x{:x}", seen["blockNumber"].as_u64().unwrap()), head);
    assert_eq!(seen["function"], "grant");
    assert_eq!(seen["from"].as_str().unwrap().to_lowercase(), format!("{:#x}", relayer.address()));
    assert_eq!(seen["receiptStatus"], 1);
    assert_eq!(seen["receiptBlockHash"], seen["blockHash"]);
    assert_eq!(seen["blockHasTransaction"], true);
    assert_eq!(seen["logs"].as_array().unwrap().len(), 1);
    assert_eq!(seen["logs"][0]["transactionHash"], grant_hash);
    let patient_address = format!("{:?}", patient.address());
    assert_eq!(seen["logs"][0]["patient"].as_str().unwrap().to_lowercase(), patient_address);
    assert_eq!(seen["signer"].as_str().unwrap().to_lowercase(), patient_address, "ethers recovers the patient");
    assert_eq!(seen["digest"], format!("0x{}", hex::encode(records_domain.digest(&grant))), "same EIP-712 digest");

    // The chain the server wrote verifies; a changed byte is named.
    let data_dir = server.data_dir.clone();
    let _kept = server.stop_keeping_data().await;
    let verify = |dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_chartkey")).args(["ledger", "verify", "--data-dir"]).arg(dir).output().unwrap()
    };
    let ok = verify(&data_dir);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}");
    assert!(stdout.starts_with("ledger verified: 8 blocks, 6 transactions"), "{stdout}");
    let conn = rusqlite::Connection::open(data_dir.join("ledger.sqlite3")).unwrap();
    let mut receipt: Vec<u8> =
        conn.query_row("SELECT raw FROM receipts WHERE block_number = 4", [], |r| r.get(0)).unwrap();
    receipt[10] ^= 0x80;
    conn.execute("UPDATE receipts SET raw = ?1 WHERE block_number = 4", [&receipt]).unwrap();
    let bad = verify(&data_dir);
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("block 4 is bad"), "{stdout}");
}

/// Security review finding 3: /rpc is off unless the operator opens it,
/// with a bearer token or for everyone; "from this machine" is no rule
/// (behind a reverse proxy on the same host, everyone is). Batches are
/// capped.
#[tokio::test]
async fn json_rpc_is_refused_unless_allowed() {
    if !common::engines::on_embedded_ledger("the embedded node's /rpc") {
        return;
    }
    use chartkey_server::config::RpcAccess;
    let chain_id = json!({ "jsonrpc": "2.0", "id": 1, "method": "eth_chainId" }).to_string();
    let ask = |server: &TestServer, token: Option<&str>| {
        let mut rpc = server.rpc();
        rpc.token = token.map(str::to_owned);
        let body = chain_id.clone();
        async move { rpc.raw(body).await.0 }
    };

    // The default: off, from anywhere, loopback included.
    let server = TestServer::start_with(|c| c.rpc_access = RpcAccess::default()).await;
    assert_eq!(ask(&server, None).await, 403);
    assert!(!server.data_dir.join("keys/rpc.token").exists(), "no token is made when it is off");
    server.stop().await;

    // A token: kept owner-only in the data directory, required exactly.
    let server = TestServer::start().await;
    let token = std::fs::read_to_string(server.data_dir.join("keys/rpc.token")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.data_dir.join("keys/rpc.token")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(ask(&server, None).await, 401);
    assert_eq!(ask(&server, Some("not-the-token")).await, 401);
    assert_eq!(ask(&server, Some(&token[..token.len() - 1])).await, 401);
    assert_eq!(ask(&server, Some(token.trim())).await, 200);
    // Batches are capped.
    let rpc = server.rpc();
    let batch = |n: usize| {
        json!((0..n).map(|i| json!({ "jsonrpc": "2.0", "id": i, "method": "eth_chainId" })).collect::<Vec<_>>())
    };
    let (status, answer) = rpc.raw(batch(100).to_string()).await;
    assert_eq!((status, answer.as_array().map(Vec::len)), (200, Some(100)));
    let (_, answer) = rpc.raw(batch(101).to_string()).await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    server.stop().await;

    let server = TestServer::start_with(|c| c.rpc_access = RpcAccess::Open).await;
    assert_eq!(ask(&server, None).await, 200);
    server.stop().await;
}

/// Finding 13: outside witnesses follow the chain through a public,
/// rate-limited list of heads (number, hash, parent hash), each linked to
/// the one before; malformed queries are refused.
#[tokio::test]
async fn chain_heads_are_public_linked_and_rate_limited() {
    let server = TestServer::start_with(|c| c.heads_per_minute = 5).await;
    let anyone = server.client();
    let account = common::sign_up(&server, "Witness Patient", chartkey_core::role::Role::Patient).await;
    let get = |query: &str| {
        let url = format!("{}/api/chain/heads{query}", server.base);
        let http = anyone.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    let answer = get("?from=0").await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["access-control-allow-origin"], "*");
    let body: Value = answer.json().await.unwrap();
    let heads = body["heads"].as_array().unwrap();
    // The head it names is the ledger's (or one before it, on an external
    // chain other tests also write to).
    let head = body["head"].as_u64().unwrap();
    let now = server.rpc().result("eth_blockNumber", json!([])).await;
    assert!(u64::from_str_radix(now.as_str().unwrap().trim_start_matches("0x"), 16).unwrap() >= head);
    assert_eq!(heads.len() as u64, (head + 1).min(256), "from genesis to the head, 256 at most");
    for pair in heads.windows(2) {
        assert_eq!(pair[1]["number"].as_u64(), pair[0]["number"].as_u64().map(|n| n + 1));
        assert_eq!(pair[1]["parent_hash"], pair[0]["hash"], "each block names the one before");
    }
    let last = format!("{:#x}", heads.last().unwrap()["number"].as_u64().unwrap());
    let block = server.rpc().result("eth_getBlockByNumber", json!([last, false])).await;
    assert_eq!(heads.last().unwrap()["hash"], block["hash"]);
    assert_eq!(heads.last().unwrap()["parent_hash"], block["parentHash"]);
    let beyond: Value = get("?from=1000000").await.json().await.unwrap();
    assert_eq!(beyond["heads"], json!([]));
    assert_eq!(get("?from=abc").await.status(), 400);
    assert_eq!(get("?from=-1").await.status(), 400);
    // Five a minute here: the sixth is refused, for this client only.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get("").await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429], "two of five were used above (malformed ones count none)");
    let _ = account;
    server.stop().await;
}

/// Finding 13: a patient keeps a checkpoint (the head, signed with the
/// ledger's administrator key); `chartkey ledger verify --checkpoint FILE`
/// holds the chain to it, and refuses one that was altered or signed by
/// another key.
#[tokio::test]
async fn a_checkpoint_is_signed_by_the_administrator_and_verified_offline() {
    if !common::engines::on_embedded_ledger("the embedded ledger's files (ledger verify)") {
        return;
    }
    let server = TestServer::start().await;
    let patient = common::sign_up(&server, "Checkpoint Patient", chartkey_core::role::Role::Patient).await;
    assert_eq!(server.client().api(fns::LedgerCheckpoint {}).await, Err(ApiError::Unauthorized));
    let checkpoint = patient.client.api(fns::LedgerCheckpoint {}).await.unwrap();
    let admin = wallet(&server.data_dir, "admin.key");
    assert_eq!(checkpoint.signer.to_string(), format!("{:#x}", admin.address()));
    let head = server.rpc().result("eth_blockNumber", json!([])).await;
    assert_eq!(format!("{:#x}", checkpoint.number), head.as_str().unwrap());
    let dir = server.stop_keeping_data().await;
    let data_dir = dir.path().join("data");
    let verify = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_chartkey"))
            .args(["ledger", "verify", "--data-dir"])
            .arg(&data_dir)
            .arg("--checkpoint")
            .arg(file)
            .output()
            .unwrap()
    };
    let file = dir.path().join("checkpoint.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&checkpoint).unwrap()).unwrap();
    let held = verify(&file);
    assert!(held.status.success(), "{}", String::from_utf8_lossy(&held.stdout));
    assert!(String::from_utf8_lossy(&held.stdout).contains("checkpoint holds"));

    // Another hash for that block (a rewritten chain, as the checkpoint
    // sees it), re-signed by someone else, or not re-signed at all.
    let mut forged = checkpoint.clone();
    let other_hash = chartkey_core::value::Hash32([0xab; 32]);
    let number = checkpoint.number;
    let chain_id = checkpoint.chain_id;
    forged.hash = other_hash;
    let unsigned = forged.clone();
    forged.message = chartkey_core::proof::checkpoint_message(chain_id, number, &other_hash);
    let stranger = keys(7);
    forged.signature = chartkey_core::proof::sign_message(&stranger, &forged.message);
    let signed_by_admin = {
        let mut c = forged.clone();
        c.signature = chartkey_core::proof::sign_message_with_secret(&admin.secret(), &c.message).unwrap();
        c
    };
    let beyond = {
        let mut c = checkpoint.clone();
        let message = chartkey_core::proof::checkpoint_message(chain_id, number + 50, &checkpoint.hash);
        c.number = number + 50;
        c.signature = chartkey_core::proof::sign_message_with_secret(&admin.secret(), &message).unwrap();
        c.message = message;
        c
    };
    for (case, body, why) in [
        ("altered, not re-signed", unsigned, "does not match"),
        ("signed by another key", forged, "not by this ledger's administrator"),
        ("the administrator's, for another history", signed_by_admin, "the chain was rewritten"),
        ("beyond the chain", beyond, "does not reach block"),
    ] {
        std::fs::write(&file, serde_json::to_vec(&body).unwrap()).unwrap();
        let refused = verify(&file);
        let out = String::from_utf8_lossy(&refused.stdout);
        assert!(!refused.status.success(), "{case}: {out}");
        assert!(out.contains(why), "{case}: {out}");
    }
    std::fs::write(&file, b"{ not json").unwrap();
    assert!(!verify(&file).status.success(), "a malformed file");
}
