//! Acceptance: the built app is served with the right types, caching and
//! security headers, client-side routes fall back to the entry page, and
//! the server stops cleanly.

mod common;

use common::*;

const INDEX: &str = r#"<!doctype html><html><head>
<link rel="modulepreload" href="/chartkey-app-0123456789abcdef.js">
<script type="module">import init from '/chartkey-app-0123456789abcdef.js'; init();</script>
</head><body></body></html>"#;

const VIEW: &str = r#"<!doctype html><html><head>
<script type="module">import init from "/chartkey-viewer-0123456789abcdef/chartkey-viewer.js"; init();</script>
</head><body><main id="main"></main></body></html>"#;

fn sha256_base64(text: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(text.as_bytes()))
}

async fn server_with_dist() -> TestServer {
    let dist = tempfile::tempdir().unwrap().keep();
    std::fs::write(dist.join("index.html"), INDEX).unwrap();
    std::fs::write(dist.join("view.html"), VIEW).unwrap();
    std::fs::write(dist.join("chartkey-app-0123456789abcdef.js"), "export default function init() {}").unwrap();
    std::fs::write(dist.join("chartkey-app-0123456789abcdef_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    // What the build writes beside it (stand-ins: the server sends them as
    // they are).
    std::fs::write(dist.join("chartkey-app-0123456789abcdef_bg.wasm.br"), "the brotli form").unwrap();
    std::fs::write(dist.join("chartkey-app-0123456789abcdef_bg.wasm.gz"), "the gzip form").unwrap();
    std::fs::write(dist.join("style-fedcba9876543210.css"), "body{}").unwrap();
    std::fs::write(dist.join("favicon.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap();
    TestServer::start_with(move |c| c.dist_dir = Some(dist)).await
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or("")
}

#[tokio::test]
async fn assets_have_types_and_cache_policy() {
    let server = server_with_dist().await;
    let http = reqwest::Client::new();
    for (path, mime, cache) in [
        ("/chartkey-app-0123456789abcdef.js", "text/javascript", "immutable"),
        ("/chartkey-app-0123456789abcdef_bg.wasm", "application/wasm", "immutable"),
        ("/style-fedcba9876543210.css", "text/css", "immutable"),
        ("/favicon.svg", "image/svg+xml", "no-cache"),
        ("/", "text/html", "no-cache"),
    ] {
        let res = http.get(format!("{}{path}", server.base)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert!(header(&res, "content-type").starts_with(mime), "{path}: {}", header(&res, "content-type"));
        assert!(header(&res, "cache-control").contains(cache), "{path}: {}", header(&res, "cache-control"));
    }
    server.stop().await;
}

#[tokio::test]
async fn client_routes_fall_back_to_the_app_and_missing_files_are_404() {
    let server = server_with_dist().await;
    let http = reqwest::Client::new();
    let res = http.get(format!("{}/account", server.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("modulepreload"));
    let res = http.get(format!("{}/missing-0123456789abcdef.js", server.base)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = http.get(format!("{}/api/nope", server.base)).send().await.unwrap();
    assert!(res.status().is_client_error());
    server.stop().await;
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let server = server_with_dist().await;
    let http = reqwest::Client::new();
    let expected_hash = sha256_base64("import init from '/chartkey-app-0123456789abcdef.js'; init();");
    let requests = [
        http.get(format!("{}/", server.base)),
        http.get(format!("{}/healthz", server.base)),
        http.get(format!("{}/nope.png", server.base)),
        http.post(format!("{}/api/me", server.base)).json(&serde_json::json!({})),
        http.post(format!("{}/api/login/start", server.base)).body(vec![b'x'; 200_000]),
    ];
    for request in requests {
        let res = request.send().await.unwrap();
        let csp = header(&res, "content-security-policy");
        assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval'"), "{csp}");
        assert!(csp.contains(&format!("'sha256-{expected_hash}'")), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
        assert_eq!(header(&res, "referrer-policy"), "no-referrer");
        assert!(header(&res, "permissions-policy").contains("camera=()"));
    }
    server.stop().await;
}

/// The viewer's page has its own CSP (its own script, the link hosts the
/// operator named) and may use the camera; no other page may.
#[tokio::test]
async fn the_viewer_has_its_own_page_csp_and_camera() {
    let dist = tempfile::tempdir().unwrap().keep();
    std::fs::write(dist.join("index.html"), INDEX).unwrap();
    std::fs::write(dist.join("view.html"), VIEW).unwrap();
    let server = TestServer::start_with(move |c| {
        c.dist_dir = Some(dist);
        c.viewer_hosts = vec!["https://links.example.org".parse().unwrap()];
    })
    .await;
    let res = reqwest::get(format!("{}/view", server.base)).await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = header(&res, "content-security-policy").to_owned();
    let camera = header(&res, "permissions-policy").to_owned();
    assert_eq!(res.text().await.unwrap(), VIEW, "the viewer's page, not the portal's");
    let viewer_script =
        sha256_base64(r#"import init from "/chartkey-viewer-0123456789abcdef/chartkey-viewer.js"; init();"#);
    assert!(csp.contains(&format!("'sha256-{viewer_script}'")), "{csp}");
    assert!(!csp.contains(&sha256_base64("import init from '/chartkey-app-0123456789abcdef.js'; init();")), "{csp}");
    assert!(csp.contains("connect-src 'self' https://links.example.org;"), "{csp}");
    assert!(camera.contains("camera=(self)"), "{camera}");
    // Everywhere else: the portal's policy, no camera, no other host.
    let res = reqwest::get(format!("{}/records", server.base)).await.unwrap();
    assert!(header(&res, "permissions-policy").contains("camera=()"));
    assert!(header(&res, "content-security-policy").contains("connect-src 'self';"));
    server.stop().await;
}

/// The build's brotli and gzip forms go as they are to browsers that take
/// them, the file itself to others; caches are told the answer varies.
#[tokio::test]
async fn assets_go_in_the_precompressed_form_the_browser_takes() {
    let server = server_with_dist().await;
    let http = reqwest::Client::new();
    let wasm = format!("{}/chartkey-app-0123456789abcdef_bg.wasm", server.base);
    for (accepts, encoding, body) in [
        ("gzip, deflate, br, zstd", "br", &b"the brotli form"[..]),
        ("gzip, deflate", "gzip", b"the gzip form"),
        ("identity", "", b"\0asm\x01\0\0\0"),
    ] {
        let res = http.get(&wasm).header("accept-encoding", accepts).send().await.unwrap();
        assert_eq!(res.status(), 200, "{accepts}");
        assert_eq!(header(&res, "content-encoding"), encoding, "{accepts}");
        assert_eq!(header(&res, "content-type"), "application/wasm", "{accepts}");
        assert!(header(&res, "vary").to_ascii_lowercase().contains("accept-encoding"), "{accepts}");
        assert!(header(&res, "cache-control").contains("immutable"), "{accepts}");
        assert_eq!(res.bytes().await.unwrap(), body, "{accepts}");
    }
    server.stop().await;
}

/// JSON answers are compressed for a browser that takes gzip or brotli,
/// and read back the same.
#[tokio::test]
async fn json_answers_are_compressed() {
    let server = server_with_dist().await;
    let client = server.client();
    let url = format!("{}/api/ledger/info", server.base);
    let plain = client.http.post(&url).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(header(&plain, "content-encoding"), "");
    let plain = plain.bytes().await.unwrap();
    let res =
        client.http.post(&url).header("accept-encoding", "gzip").json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!((res.status().as_u16(), header(&res, "content-encoding")), (200, "gzip"));
    assert!(header(&res, "vary").to_ascii_lowercase().contains("accept-encoding"));
    let gzipped = res.bytes().await.unwrap();
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzipped[..]), &mut unzipped).unwrap();
    assert_eq!(unzipped, plain);
    assert!(gzipped.len() < plain.len(), "{} < {}", gzipped.len(), plain.len());
    server.stop().await;
}

#[tokio::test]
async fn healthz_answers_and_shutdown_is_graceful() {
    let server = TestServer::start().await;
    let res = reqwest::get(format!("{}/healthz", server.base)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["status"], "ok");
    let base = server.base.clone();
    server.stop().await;
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err(), "nothing listens after shutdown");
}

#[tokio::test]
async fn database_is_migrated_to_the_latest_schema() {
    let server = TestServer::start().await;
    let latest = |engine: &str| -> i64 {
        let dir = workspace().join("services/migrations").join(engine);
        let names = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap());
        names.map(|n| n[..4].parse::<i64>().unwrap()).max().unwrap()
    };
    let db = server.db().await;
    if db.is_sqlite() {
        assert_eq!(db.one("PRAGMA journal_mode").await, "wal");
        assert_eq!(db.one("PRAGMA user_version").await, latest("sqlite").to_string());
    } else {
        assert_eq!(
            db.one("SELECT max(version) FROM _sqlx_migrations WHERE success").await,
            latest("postgres").to_string()
        );
    }
    // Both engines reach the same version: a migration added to one is
    // added to the other.
    assert_eq!(latest("sqlite"), latest("postgres"));
    server.stop().await;
}

#[tokio::test]
async fn missing_app_build_fails_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = chartkey_server::Config::new(tmp.path().join("d"), "http://localhost:1".parse().unwrap());
    config.dist_dir = Some(tmp.path().join("no-such-dist"));
    let err = chartkey_server::launch(listener, config, async {}).await.unwrap_err();
    assert!(err.to_string().contains("the web app is not built"), "{err}");
}

/// Security review finding 3 (DNS rebinding): a request naming another
/// host than the origin's is refused, on every route but /healthz.
#[tokio::test]
async fn requests_for_another_host_are_refused() {
    let server = TestServer::start().await;
    let port = server.origin.port().unwrap();
    let raw = reqwest::Client::new();
    let at = |host: String, path: &str| {
        raw.post(format!("http://127.0.0.1:{port}{path}")).header("host", host).json(&serde_json::json!({})).send()
    };
    for host in [
        format!("127.0.0.1:{port}"),
        format!("evil.example:{port}"),
        "localhost".into(),
        format!("localhost:{}", port + 1),
    ] {
        let refused = at(host.clone(), "/api/ledger/info").await.unwrap();
        assert_eq!(refused.status(), 421, "{host}");
        assert!(refused.text().await.unwrap().contains(&format!("localhost:{port}")));
    }
    assert_eq!(at(format!("LOCALHOST:{port}"), "/api/ledger/info").await.unwrap().status(), 200);
    assert_eq!(at(format!("localhost:{port}"), "/api/ledger/info").await.unwrap().status(), 200);
    let health = raw.get(format!("http://127.0.0.1:{port}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "health checks answer whatever the name");
    server.stop().await;
}

/// Per-client limits count the client a trusted proxy names, and ignore
/// the header from anyone else (it is the client's to forge).
#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let start = |client: &reqwest::Client, base: &str, forwarded: &str| {
        client
            .post(format!("{base}/api/login/start"))
            .header("x-forwarded-for", forwarded)
            .json(&serde_json::json!({}))
            .send()
    };
    // The test is the proxy: its loopback address is trusted.
    let server = TestServer::start_with(|c| {
        c.login_per_minute = 2;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()];
    })
    .await;
    let http = reqwest::Client::new();
    for _ in 0..2 {
        assert_eq!(start(&http, &server.base, "198.51.100.7").await.unwrap().status(), 200);
    }
    assert_eq!(start(&http, &server.base, "198.51.100.7").await.unwrap().status(), 429, "that client's limit");
    assert_eq!(start(&http, &server.base, "198.51.100.8").await.unwrap().status(), 200, "another client's own");
    // A client cannot pick its address by adding to the header: the proxy
    // appends the one it saw, and that is what counts.
    assert_eq!(start(&http, &server.base, "203.0.113.1, 198.51.100.7").await.unwrap().status(), 429);
    server.stop().await;

    // No trusted proxy: the header means nothing; every request is the peer's.
    let server = TestServer::start_with(|c| c.login_per_minute = 2).await;
    assert_eq!(start(&http, &server.base, "198.51.100.1").await.unwrap().status(), 200);
    assert_eq!(start(&http, &server.base, "198.51.100.2").await.unwrap().status(), 200);
    assert_eq!(
        start(&http, &server.base, "198.51.100.3").await.unwrap().status(),
        429,
        "forged headers changed nothing"
    );
    server.stop().await;
}
