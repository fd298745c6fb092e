//! Behind a real reverse proxy (Debian's nginx, started by the test on
//! 127.0.0.1 in front of the server), as a hospital would run it on the
//! same host. Security review finding 3, acceptance 3: /rpc is refused by
//! default, per-client limits count the address the trusted proxy
//! forwarded and nothing a client writes itself, a forged X-Forwarded-For
//! from a peer that is not a trusted proxy is ignored, and a request for
//! another host is refused.
//!
//! Distinct clients come from distinct loopback addresses (127.0.0.2, …):
//! nginx sees each one's own address, as it would see the Internet's.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::services::{Nginx, free_port};
use common::*;
use serde_json::json;

/// A client on `source` that reaches `localhost:port` (the origin's name)
/// at 127.0.0.1.
fn client_from(source: &str, port: u16) -> reqwest::Client {
    let source: IpAddr = source.parse().unwrap();
    reqwest::Client::builder()
        .local_address(source)
        .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap()
}

/// A sign-in start at `base`, naming `host` (default: the URL's).
async fn login_start(client: &reqwest::Client, base: &str, forwarded: Option<&str>, host: Option<&str>) -> u16 {
    let mut request = client.post(format!("{base}/api/login/start")).json(&json!({}));
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    if let Some(host) = host {
        request = request.header("host", host);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn behind_nginx_rpc_limits_and_host_hold() {
    let proxy_port = free_port();
    let server = TestServer::start_with(|c| {
        c.origin = format!("http://localhost:{proxy_port}").parse().unwrap();
        c.rpc_access = chartkey_server::config::RpcAccess::default();
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        c.login_per_minute = 2;
    })
    .await;
    let upstream = server.origin.port().unwrap();
    let nginx = Nginx::start(proxy_port, upstream);
    let portal = format!("http://localhost:{}", nginx.port);

    // /rpc: refused by default, although every request reaches the server
    // from loopback.
    let rpc = client_from("127.0.0.2", nginx.port)
        .post(format!("{portal}/rpc"))
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{ "fromBlock": "0x0" }] }))
        .send()
        .await
        .unwrap();
    // (Not served at all on an external chain: that node answers.)
    let refused = if common::engines::external_chain().is_some() { 404 } else { 403 };
    assert_eq!(rpc.status(), refused);

    // Each client has its own limit, counted on the address nginx saw.
    let (alice, bob) = (client_from("127.0.0.2", nginx.port), client_from("127.0.0.3", nginx.port));
    assert_eq!(login_start(&alice, &portal, None, None).await, 200);
    assert_eq!(login_start(&alice, &portal, None, None).await, 200);
    assert_eq!(login_start(&alice, &portal, None, None).await, 429, "Alice's third start in a minute");
    assert_eq!(login_start(&bob, &portal, None, None).await, 200, "Bob is not Alice");
    // Alice cannot become someone else by writing the header herself: nginx
    // appends her address, and that is the one counted.
    assert_eq!(login_start(&alice, &portal, Some("198.51.100.9"), None).await, 429);
    assert_eq!(login_start(&alice, &portal, Some("127.0.0.3"), None).await, 429);

    // Straight to the server (under the origin's name), from a peer that is
    // not a trusted proxy: the header is ignored, every request is that peer's.
    let direct = format!("http://localhost:{upstream}");
    let origin_host = format!("localhost:{proxy_port}");
    let carol = client_from("127.0.0.4", upstream);
    for forged in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(login_start(&carol, &direct, Some(forged), Some(&origin_host)).await, 200);
    }
    let third = login_start(&carol, &direct, Some("198.51.100.3"), Some(&origin_host)).await;
    assert_eq!(third, 429, "forged headers gave no new limit");

    // A request for another host (DNS rebinding) is refused through nginx.
    let dave = client_from("127.0.0.5", nginx.port);
    let rebound = dave
        .post(format!("{portal}/api/ledger/info"))
        .header("host", "attacker.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 421);
    let info = dave.post(format!("{portal}/api/ledger/info")).json(&json!({})).send().await.unwrap();
    assert_eq!(info.status(), 200, "the origin's own name works through the proxy");

    drop(nginx);
    assert!(std::net::TcpStream::connect(("127.0.0.1", proxy_port)).is_err(), "nginx stopped");
    server.stop().await;
}
