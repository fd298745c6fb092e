//! Test harness: the real server on 127.0.0.1:0, an HTTP client with a
//! cookie jar, and a software passkey standing in for the browser.

#![allow(dead_code)]

pub mod chain;
pub mod engines;
pub mod links;
pub mod records;
pub mod services;

use std::path::PathBuf;
use std::time::Duration;

use alloy_primitives::{Address, Bytes};
pub use chartkey_api::ApiError;
pub use chartkey_app::api as fns;
use chartkey_core::directory::DirectoryEntry;
use chartkey_core::keystore::SealedKeystore;
use chartkey_core::role::Role;
use chartkey_core::{AccountKeys, AccountSecret};
use chartkey_ledger::abi::SolCall;
use chartkey_ledger::node::{BASE_FEE, Fees, Wallet};
use chartkey_server::Config;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{AllowCredentials, CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse};

/// Where a running portal answers, and what a test needs to reach it: in
/// this process ([`TestServer`]), the real binary ([`ServerProcess`]) or
/// replicas behind a proxy. Both servers dereference to theirs.
pub struct Site {
    pub base: String,
    /// Where requests for `base` go, when not to its own name and port
    /// (a replica behind a proxy).
    pub pin: Option<std::net::SocketAddr>,
    pub origin: Url,
    pub data_dir: PathBuf,
    /// The external chain's JSON-RPC, when the portal relays to one.
    pub ledger_rpc: Option<Url>,
}

impl Site {
    /// The ledger's JSON-RPC: the external chain's, or the embedded one's
    /// with the bearer token the server keeps in its data directory (when
    /// it was started with `--rpc-access token`).
    pub fn rpc(&self) -> Rpc {
        if let Some(url) = &self.ledger_rpc {
            return Rpc { http: reqwest::Client::new(), url: url.to_string(), token: None };
        }
        let token = std::fs::read_to_string(self.data_dir.join("keys/rpc.token")).ok().map(|t| t.trim().to_owned());
        Rpc { http: self.client().http, url: format!("{}/rpc", self.base), token }
    }

    /// A browser-like client with its own cookie jar.
    pub fn client(&self) -> Client {
        let mut http = reqwest::Client::builder().cookie_store(true);
        if let (Some(addr), Some(host)) = (self.pin, self.origin.host_str()) {
            http = http.resolve(host, addr);
        }
        Client { http: http.build().unwrap(), base: self.base.clone() }
    }

    /// Waits (`tries` × 20 ms at most) for `/healthz` to answer.
    pub async fn answers(&self, tries: usize) -> bool {
        let probe = self.client().http;
        for _ in 0..tries {
            if probe.get(format!("{}/healthz", self.base)).send().await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

pub struct TestServer {
    site: Site,
    _tmp: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    db: tokio::sync::OnceCell<engines::Db>,
    blobs: tokio::sync::OnceCell<chartkey_server::blobs::BlobStore>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        // The server's log, when asked for: CHARTKEY_TEST_LOG=warn (a filter).
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("CHARTKEY_TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
        let tmp = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let origin: Url = format!("http://localhost:{port}").parse().unwrap();
        let mut config = Config::new(tmp.path().join("data"), origin.clone());
        // The tests read the ledger over /rpc with the data directory's token.
        config.rpc_access = chartkey_server::config::RpcAccess::Token;
        tweak(&mut config);
        // After the tweak, which may point at another data directory.
        if config.database.is_none()
            && let Some((database, blobs)) = engines::for_data_dir(&config.data_dir).await
        {
            config.database = Some(database);
            config.blob_store = Some(blobs);
        }
        if config.chain_rpc.is_none() {
            config.chain_rpc = engines::chain_for(&config.data_dir).await;
        }
        let data_dir = config.data_dir.clone();
        let ledger_rpc = config.chain_rpc.clone();
        // Requests go to the origin's name: the server refuses other hosts.
        // A replica's origin is the one its proxy serves (a tweak sets it,
        // without a port): its requests go to the origin's name, sent to
        // this replica's port. (A tweaked origin with a port is a proxy
        // the test starts itself, in front of the port here.)
        let (base, pin, origin) = if config.origin.port().is_none() {
            let base = config.origin.as_str().trim_end_matches('/').to_owned();
            (base, Some(listener.local_addr().unwrap()), config.origin.clone())
        } else {
            (format!("http://localhost:{port}"), None, origin)
        };
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(chartkey_server::launch(listener, config, async move {
            let _ = rx.await;
        }));
        let server = Self {
            site: Site { base, pin, origin, data_dir, ledger_rpc },
            _tmp: tmp,
            shutdown: Some(tx),
            handle: Some(handle),
            db: Default::default(),
            blobs: Default::default(),
        };
        assert!(server.answers(100).await, "server did not start");
        server
    }

    /// Row counts of the tables a refused request must not change.
    pub async fn counts(&self) -> (i64, i64, i64) {
        let db = self.db().await;
        let mut out = [0i64; 3];
        for (n, table) in out.iter_mut().zip(["accounts", "passkeys", "sessions"]) {
            *n = db.one(&format!("SELECT count(*) FROM {table}")).await.parse().unwrap();
        }
        (out[0], out[1], out[2])
    }

    /// The first value `sql` selects, as text (engines::Db::rows).
    pub async fn query_one(&self, sql: &str) -> String {
        self.db().await.one(sql).await
    }

    /// [`Self::query_one`], for closures that build the query.
    pub async fn query_one_owned(&self, sql: String) -> String {
        self.query_one(&sql).await
    }

    /// The server's database, on whichever engine it runs (one pool for
    /// the test's checks, opened on first use).
    pub async fn db(&self) -> &engines::Db {
        self.db.get_or_init(|| engines::Db::open(&self.data_dir)).await
    }

    /// The names of the objects it stored, sorted.
    pub async fn stored_blobs(&self) -> Vec<String> {
        let store = self.blobs.get_or_init(|| engines::blob_store(&self.data_dir)).await;
        engines::list(store).await
    }

    pub async fn stop(self) {
        self.stop_keeping_data().await;
    }

    /// Stops the server and hands over its temporary directory (the data
    /// directory is `data` inside it), for checks on what it left on disk.
    pub async fn stop_keeping_data(mut self) -> tempfile::TempDir {
        let _ = self.shutdown.take().unwrap().send(());
        let result = tokio::time::timeout(Duration::from_secs(10), self.handle.take().unwrap()).await;
        result.expect("server stops within 10 s").unwrap().unwrap();
        if let Some(db) = self.db.take() {
            db.pool().close().await;
        }
        self._tmp
    }
}

macro_rules! on_site {
    ($($server:ty),*) => {$(
        impl std::ops::Deref for $server {
            type Target = Site;
            fn deref(&self) -> &Site {
                &self.site
            }
        }
    )*};
}

on_site!(TestServer, ServerProcess);

/// The `chartkey` binary serving `data_dir` on 127.0.0.1 (a free port),
/// stopped with SIGKILL by its process id when dropped or killed.
pub struct ServerProcess {
    site: Site,
    child: std::process::Child,
}

impl ServerProcess {
    pub async fn spawn(data_dir: &std::path::Path, extra: &[&str]) -> Self {
        use std::io::BufRead;
        let rpc_access: &[&str] = if extra.contains(&"--rpc-access") { &[] } else { &["--rpc-access", "token"] };
        let engines = engines::flags_for(data_dir).await;
        // (flags_for named it, its keys funded.)
        let ledger_rpc = engines::external_chain();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_chartkey"))
            .args(["--port", "0", "--bind", "127.0.0.1", "--data-dir"])
            .arg(data_dir)
            .args(rpc_access)
            .args(engines)
            .args(extra)
            .env("CHARTKEY_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start the chartkey binary");
        // Owned from here on, so a failed start still kills it.
        let mut process = Self {
            site: Site {
                base: String::new(),
                pin: None,
                origin: "http://localhost".parse().unwrap(),
                data_dir: data_dir.to_owned(),
                ledger_rpc,
            },
            child,
        };
        let stdout = process.child.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut reader = std::io::BufReader::new(stdout);
            let mut line = String::new();
            reader.read_line(&mut line).map(|_| line)
        })
        .await
        .unwrap()
        .expect("the server prints its URL");
        process.site.origin = line
            .trim()
            .strip_prefix("Chartkey is running at ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .unwrap();
        process.site.base = format!("http://localhost:{}", process.origin.port().unwrap());
        assert!(process.answers(250).await, "the server process did not answer");
        process
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, no flushing, as a power cut or the OOM killer.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub set_cookie: Vec<String>,
}

impl Client {
    /// Calls server function `F` as the browser does: its typed arguments
    /// (the struct `#[server]` makes of them, e.g. `RecordsAdd { body }`)
    /// as JSON to its path, and its typed answer, or the `ApiError` the
    /// browser would get. The status must be the one that error maps to.
    pub async fn api<F>(&self, args: F) -> Result<F::Output, ApiError>
    where
        F: server_fn::ServerFn<Error = ApiError> + serde::Serialize,
        F::Output: serde::de::DeserializeOwned,
    {
        let res = self.http.post(format!("{}{}", self.base, F::PATH)).json(&args).send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        if status == 200 {
            return Ok(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", F::PATH)));
        }
        let error: ApiError = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", F::PATH));
        assert_eq!(error.status(), status, "{}: {error:?} answered with status {status}", F::PATH);
        Err(error)
    }

    /// Calls a server function by name with a raw JSON body: for what the
    /// browser never sends (malformed or forged input).
    pub async fn call(&self, name: &str, args: Value) -> Answer {
        let res = self.http.post(format!("{}/api/{name}", self.base)).json(&args).send().await.unwrap();
        let status = res.status().as_u16();
        let set_cookie = res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body, set_cookie }
    }
}

/// What the browser holds: the account secret and its keys, plus a
/// software authenticator standing in for the passkey, with a stand-in PRF
/// output (the real one comes from the authenticator in the browser tests).
pub struct Device {
    pub authenticator: SoftPasskey,
    pub prf: [u8; 32],
    pub credential_id: Option<Vec<u8>>,
    pub user_handle: Option<Vec<u8>>,
}

impl Device {
    pub fn new() -> Self {
        let mut prf = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut prf);
        Self { authenticator: SoftPasskey::new(true), prf, credential_id: None, user_handle: None }
    }

    pub fn register(&mut self, origin: &Url, options: Value) -> Value {
        let mut ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
        // The server asks for a discoverable credential with user
        // verification; the soft token cannot store resident keys, so the
        // test plays a browser that keeps the credential id itself.
        let selection = ccr.public_key.authenticator_selection.as_mut().expect("authenticator selection");
        assert_eq!(selection.resident_key, Some(webauthn_rs_proto::ResidentKeyRequirement::Required));
        assert_eq!(selection.user_verification, webauthn_rs_proto::UserVerificationPolicy::Required);
        selection.resident_key = None;
        selection.require_resident_key = false;
        self.user_handle = Some(ccr.public_key.user.id.to_vec());
        let cred = self.authenticator.do_registration(origin.clone(), ccr).expect("software passkey registers");
        self.credential_id = Some(cred.raw_id.to_vec());
        serde_json::to_value(cred).unwrap()
    }

    /// A discoverable assertion: the soft token needs the credential named,
    /// and reports the user handle as a resident credential would.
    pub fn assert(&mut self, origin: &Url, options: Value) -> PublicKeyCredential {
        let mut rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
        rcr.public_key.allow_credentials = vec![AllowCredentials {
            type_: "public-key".into(),
            id: self.credential_id.clone().expect("registered"),
            transports: None,
        }];
        let mut cred = self.authenticator.do_authentication(origin.clone(), rcr).expect("software passkey asserts");
        cred.response.user_handle = self.user_handle.clone();
        cred
    }

    pub fn seal(&self, secret: &AccountSecret) -> SealedKeystore {
        SealedKeystore::seal_with_prf(secret, &self.prf, &mut rand::rngs::OsRng).unwrap()
    }
}

/// A well-formed key store of some other secret: for requests that must
/// get past reading their body (and fail later, for another reason).
pub fn some_keystore() -> SealedKeystore {
    Device::new().seal(&AccountSecret::generate(&mut rand::rngs::OsRng))
}

pub struct Account {
    pub secret: AccountSecret,
    pub keys: AccountKeys,
    pub device: Device,
    pub client: Client,
    pub account_id: String,
}

/// WebAuthn options from a typed answer, as the software passkey takes them.
pub fn webauthn_options(options: &fns::WebauthnJson) -> Value {
    serde_json::from_str(options.get()).unwrap()
}

/// A credential (or any WebAuthn JSON) as the browser sends it back.
pub fn webauthn_json(value: &impl serde::Serialize) -> fns::WebauthnJson {
    serde_json::value::to_raw_value(value).unwrap()
}

/// The body a browser finishes a patient's sign-up with for `secret`: the
/// new passkey's `credential`, the key store sealed under `device`, the
/// signed directory entry, and no ledger registration (tests that need
/// one set it).
pub fn patient_signup(
    ceremony_id: String,
    device: &Device,
    credential: &impl serde::Serialize,
    secret: &AccountSecret,
) -> fns::SignupFinishBody {
    fns::SignupFinishBody {
        ceremony_id,
        credential: webauthn_json(credential),
        passkey_label: "p".into(),
        sealed_keystore: device.seal(secret),
        uses_passphrase: false,
        directory: DirectoryEntry::sign(&secret.derive(), Role::Patient),
        ledger_registration: None,
    }
}

/// Signs up a new account through the real ceremony; returns it signed in.
pub async fn sign_up(server: &Site, name: &str, role: Role) -> Account {
    let client = server.client();
    let secret = AccountSecret::generate(&mut rand::rngs::OsRng);
    let keys = secret.derive();
    let mut device = Device::new();
    let start = client.api(fns::SignupStart { display_name: name.into(), role }).await.expect("signup/start");
    let credential = device.register(&server.origin, webauthn_options(&start.options));
    let ledger = client.api(fns::LedgerInfo {}).await.expect("ledger/info");
    let (_, registration) =
        chartkey_core::eip712::first_registration(&keys, role.code(), ledger.chain_id, ledger.directory.into());
    let finish = fns::SignupFinishBody {
        ceremony_id: start.ceremony_id,
        credential: webauthn_json(&credential),
        passkey_label: "Test passkey".into(),
        sealed_keystore: device.seal(&secret),
        uses_passphrase: false,
        directory: DirectoryEntry::sign(&keys, role),
        ledger_registration: Some(registration),
    };
    let account = client.api(fns::SignupFinish { finish }).await.expect("signup/finish");
    Account { secret, keys, device, client, account_id: account.account_id }
}

/// A full discoverable sign-in; returns the server's answer.
pub async fn sign_in(server: &Site, client: &Client, device: &mut Device) -> Result<fns::LoginResult, ApiError> {
    let start = client.api(fns::LoginStart {}).await.expect("login/start");
    let assertion = device.assert(&server.origin, webauthn_options(&start.options));
    let finish = fns::LoginFinishBody { ceremony_id: start.ceremony_id, credential: webauthn_json(&assertion) };
    client.api(fns::LoginFinish { finish }).await
}

/// As [`sign_in`], with the raw answer: for the checks of its Set-Cookie
/// headers, which the typed answer does not carry.
pub async fn sign_in_raw(server: &Site, client: &Client, device: &mut Device) -> Answer {
    let start = client.api(fns::LoginStart {}).await.expect("login/start");
    let assertion = device.assert(&server.origin, webauthn_options(&start.options));
    let finish = fns::LoginFinishBody { ceremony_id: start.ceremony_id, credential: webauthn_json(&assertion) };
    // Raw: the session cookie is in the headers.
    client.call("login/finish", json!({ "finish": finish })).await
}

/// Adds a passkey to a signed-in account, the add signed by `signer`
/// (the account's own keys, or not). Returns the answer and the new device.
pub async fn add_passkey(
    server: &Site,
    account: &Account,
    signer: &AccountKeys,
) -> (Result<fns::PasskeyInfo, ApiError>, Device) {
    let start = account.client.api(fns::AddPasskeyStart {}).await.expect("passkeys/add/start");
    let mut device = Device::new();
    let credential = device.register(&server.origin, webauthn_options(&start.options));
    let credential_id = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        device.credential_id.as_ref().unwrap(),
    );
    let message = chartkey_core::proof::add_passkey_message(&account.keys.address(), &start.challenge, &credential_id);
    let finish = fns::AddPasskeyFinishBody {
        ceremony_id: start.ceremony_id,
        credential: webauthn_json(&credential),
        passkey_label: "Laptop".into(),
        sealed_keystore: device.seal(&account.secret),
        uses_passphrase: false,
        signature: chartkey_core::proof::sign_message(signer, &message),
    };
    let answer = account.client.api(fns::AddPasskeyFinish { finish }).await;
    (answer, device)
}

/// Removes a passkey, the removal signed by `signer` over a fresh challenge.
pub async fn remove_passkey(account: &Account, credential_id: &str, signer: &AccountKeys) -> Result<(), ApiError> {
    let start = account
        .client
        .api(fns::RemovePasskeyStart { credential_id: credential_id.into() })
        .await
        .expect("passkeys/remove/start");
    let message =
        chartkey_core::proof::remove_passkey_message(&account.keys.address(), &start.challenge, credential_id);
    account
        .client
        .api(fns::RemovePasskey {
            ceremony_id: start.ceremony_id,
            credential_id: credential_id.into(),
            signature: chartkey_core::proof::sign_message(signer, &message),
        })
        .await
}

/// Every file under `dir`, at any depth (none if it does not exist).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let entries = walkdir::WalkDir::new(dir).into_iter().filter_map(Result::ok);
    entries.filter(|e| e.file_type().is_file()).map(walkdir::DirEntry::into_path).collect()
}

/// A ledger key the server created in its data directory.
pub fn wallet(data_dir: &std::path::Path, name: &str) -> Wallet {
    let text = std::fs::read_to_string(data_dir.join("keys").join(name)).unwrap();
    Wallet::from_secret(&hex::decode(text.trim()).unwrap().try_into().unwrap()).unwrap()
}

/// JSON-RPC to the server's /rpc.
pub struct Rpc {
    pub http: reqwest::Client,
    pub url: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub token: Option<String>,
}

impl Rpc {
    pub async fn raw(&self, body: String) -> (u16, Value) {
        let mut request = self.http.post(&self.url).header("content-type", "application/json").body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn call(&self, method: &str, params: Value) -> Value {
        let (_, answer) =
            self.raw(json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params }).to_string()).await;
        assert_eq!(answer["id"], 7, "{answer}");
        answer
    }

    pub async fn result(&self, method: &str, params: Value) -> Value {
        let answer = self.call(method, params).await;
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// Calls view `call` of the contract at `to` (`eth_call` on the latest
    /// block) and decodes its answer with the contract bindings.
    pub async fn view<C: SolCall>(&self, to: impl Into<Address>, call: C) -> C::Return {
        let data = format!("{}", Bytes::from(call.abi_encode()));
        let out = self.result("eth_call", json!([{ "to": to.into(), "data": data }, "latest"])).await;
        let out: Bytes = out.as_str().unwrap().parse().unwrap();
        C::abi_decode_returns(&out).unwrap()
    }

    /// Signs `input` to `to` with `wallet` and sends it; returns the transaction hash.
    pub async fn send(&self, chain_id: u64, wallet: &Wallet, to: Address, input: Vec<u8>) -> String {
        let nonce = self.result("eth_getTransactionCount", json!([wallet.address(), "latest"])).await;
        let nonce = u64::from_str_radix(nonce.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
        let fees =
            Fees { gas_limit: 1_000_000, max_fee_per_gas: 2 * u128::from(BASE_FEE), max_priority_fee_per_gas: 0 };
        let raw = wallet.sign_raw(chain_id, nonce, Some(to), Bytes::from(input), fees);
        let hash = self.result("eth_sendRawTransaction", json!([format!("0x{}", hex::encode(raw))])).await;
        // The embedded node answers once it is mined; anvil a moment after.
        let started = std::time::Instant::now();
        let receipt = loop {
            let receipt = self.result("eth_getTransactionReceipt", json!([hash])).await;
            if !receipt.is_null() || started.elapsed() > Duration::from_secs(10) {
                break receipt;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(receipt["status"], "0x1", "{receipt}");
        hash.as_str().unwrap().to_owned()
    }
}

pub fn other_keys() -> AccountKeys {
    AccountSecret::generate(&mut rand::rngs::OsRng).derive()
}

/// A clinician's licence as they would enter it, at Riverside Clinic.
pub fn license(number: &str, specialty: &str) -> fns::License {
    fns::License {
        license_number: number.into(),
        specialty: specialty.into(),
        jurisdiction: "Massachusetts, US".into(),
        organisation: "Riverside Clinic".into(),
    }
}

/// The workspace, read when the test runs: a test binary cargo reuses
/// from a build in another checkout keeps that checkout's compile-time
/// path (`env!`), which may be gone.
pub fn workspace() -> PathBuf {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    manifest.parent().expect("the crate is in the workspace").to_owned()
}
