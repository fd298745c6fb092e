//! Chartkey's server: passkeys, sessions, the public key directory and the
//! built web app, behind one axum router.
//!
//! `launch(listener, config, shutdown)` runs the real server on any
//! listener, so integration tests bind 127.0.0.1:0 and drive it over HTTP.

pub mod blob_routes;
pub mod web;

// The server side the binary and its tests reach by these names.
pub use chartkey_services::{Config, authorities, blobs, config, db, ledger, migrate, notices, sessions, state, store};

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
// The server functions register themselves with the router (inventory)
// when chartkey-app is linked into this binary: naming its API here is
// what links it.
use chartkey_app::api::ApiError;
use chartkey_services::Caller;
use leptos::prelude::provide_context;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use sessions::ResolvedCaller;
use state::AppState;
use web::Site;

/// Builds the application router.
pub fn router(state: AppState, site: Site) -> Router {
    let api = Router::new()
        .route("/api/{*fn_name}", post(api_handler))
        .layer(RequestBodyLimitLayer::new(state.config.api_body_limit))
        .with_state(state.clone());
    // Adding a thousand records at once lists each one.
    let records = Router::new()
        .route("/api/records/add", post(api_handler))
        .layer(RequestBodyLimitLayer::new(RECORDS_BODY_LIMIT))
        .with_state(state.clone());
    // Blob bodies are limited by the blob store itself (before and while reading).
    let blobs = Router::new()
        .route("/api/blobs/{name}", axum::routing::put(blob_routes::put))
        .route("/api/blobs/pack", post(blob_routes::put_pack))
        .route("/api/envelopes/{record}", get(blob_routes::get))
        .route("/api/envelopes", post(blob_routes::fetch).layer(RequestBodyLimitLayer::new(RECORDS_BODY_LIMIT)))
        .route("/api/notices/stream", get(notices::stream))
        .with_state(state.clone());

    // A link's files come with its creation or change (up to 48 MB).
    let links = Router::new()
        .route("/api/links/create", post(api_handler))
        .route("/api/links/update", post(api_handler))
        .layer(RequestBodyLimitLayer::new(LINKS_BODY_LIMIT))
        .with_state(state.clone());
    // SMART Health Links' manifest protocol: public, any origin.
    let shl = Router::new()
        .route(
            "/shl/{id}",
            post(chartkey_services::links::manifest::resolve)
                .get(chartkey_services::links::manifest::direct)
                .options(chartkey_services::links::manifest::preflight),
        )
        .route(
            "/shl/files/{token}",
            get(chartkey_services::links::manifest::file).options(chartkey_services::links::manifest::preflight),
        )
        .layer(RequestBodyLimitLayer::new(MANIFEST_BODY_LIMIT))
        .with_state(state.clone());

    let static_files = match &site.dist {
        Some(dir) => Router::new()
            .fallback_service(
                // The build writes each asset's brotli and gzip forms
                // beside it (xtask's `precompress`): sent as they are.
                ServeDir::new(dir)
                    .precompressed_br()
                    .precompressed_gzip()
                    .fallback(get(web::spa_fallback).with_state(site.clone())),
            )
            .layer(axum::middleware::from_fn(web::cache_headers)),
        None => Router::new().fallback(web::spa_fallback).with_state(site.clone()),
    };

    let rpc = Router::new()
        .route("/rpc", post(rpc_handler))
        .layer(RequestBodyLimitLayer::new(RPC_BODY_LIMIT))
        .with_state(state.clone());

    #[cfg(feature = "test-controls")]
    let shl =
        shl.merge(Router::new().route("/test/ledger/advance", post(advance_ledger_clock)).with_state(state.clone()));

    let viewer = Router::new().route(web::VIEWER_PATH, get(web::viewer_page)).with_state(site.clone());

    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/chain/heads", get(chain_heads))
        .with_state(state.clone())
        .merge(rpc)
        .merge(blobs)
        .merge(records)
        .merge(links)
        .merge(shl)
        .merge(api)
        .merge(viewer)
        .merge(static_files)
        .layer(web::compression())
        .layer(axum::middleware::from_fn_with_state(state.clone(), expected_host))
        .layer(axum::middleware::from_fn_with_state(site, web::security_headers))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // Path only: no query strings, headers or bodies in logs;
                    // and not a link's URL secret or a location's token.
                    tracing::info_span!("http", method = %req.method(), path = %logged_path(req.uri().path()))
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
}

/// The path as logs show it: `/shl/…` paths carry a secret (a link's
/// manifest id, a location's token), so only their prefix is kept.
fn logged_path(path: &str) -> &str {
    if path.starts_with("/shl/files/") {
        "/shl/files/…"
    } else if path.starts_with("/shl/") {
        "/shl/…"
    } else {
        path
    }
}

#[derive(serde::Deserialize)]
struct HeadsQuery {
    from: Option<u64>,
}

/// `GET /api/chain/heads?from=N`: consecutive chain heads (number, hash,
/// parent hash) for anyone who follows the chain from outside (finding 13
/// of the security review). Public, rate-limited per client address, and
/// readable from any origin: it is what every block already says.
async fn chain_heads(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    query: Result<axum::extract::Query<HeadsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(axum::extract::Query(query)) = query else {
        return (StatusCode::BAD_REQUEST, "from= is a block number.").into_response();
    };
    let client = chartkey_services::caller::client_key(sessions::client_from(
        peer.ip(),
        &headers,
        &state.config.trusted_proxies,
    ));
    if !state.limits.heads.allow(&client).await {
        return (StatusCode::TOO_MANY_REQUESTS, "Too many requests for chain heads; try again in a minute.")
            .into_response();
    }
    match chartkey_services::chain::heads(&state, query.from).await {
        Ok(heads) => ([(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], axum::Json(heads)).into_response(),
        Err(e) => (StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(e))
            .into_response(),
    }
}

/// `POST /test/ledger/advance` `{"seconds": n}`: moves the embedded
/// ledger's clock forward, so a test can let a waiting period pass. A test
/// control: not in release builds.
#[cfg(feature = "test-controls")]
async fn advance_ledger_clock(
    State(state): State<AppState>,
    axum::Json(body): axum::Json<serde_json::Value>,
) -> Response {
    let Some(seconds) = body["seconds"].as_u64() else { return StatusCode::BAD_REQUEST.into_response() };
    match &state.ledger.node {
        Some(node) => {
            tracing::warn!(seconds, "test control: the ledger's clock moves forward");
            node.advance_time(seconds);
            StatusCode::NO_CONTENT.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    match chartkey_services::store::ping(&state.pool).await {
        Ok(_) => {
            ([(header::CACHE_CONTROL, "no-store")], axum::Json(serde_json::json!({ "status": "ok" }))).into_response()
        }
        Err(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({ "status": "database unavailable" })))
                .into_response()
        }
    }
}

/// Largest body of `records/add` and `POST /api/envelopes` (5,000 records' names and keys).
const RECORDS_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// A link's creation or change: its files (48 MB of JWE text at most, as
/// JSON strings) and the signed message.
const LINKS_BODY_LIMIT: usize = chartkey_services::links::MAX_LINK_BYTES + 1024 * 1024;
/// A manifest request is a few short fields.
const MANIFEST_BODY_LIMIT: usize = 16 * 1024;

/// Largest JSON-RPC request (a batch, or a transaction with its data).
const RPC_BODY_LIMIT: usize = 1024 * 1024;

/// Ethereum JSON-RPC over the embedded ledger, for the clients `rpc_access`
/// allows. Answered on a blocking thread: a batch or a log query decodes
/// blocks, which must not hold up the async workers serving the portal.
async fn rpc_handler(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if state.ledger.node.is_none() {
        return (StatusCode::NOT_FOUND, "This server uses an external ledger (--chain-rpc): ask that node.")
            .into_response();
    }
    match (state.config.rpc_access, &state.rpc_token) {
        (config::RpcAccess::Open, _) => {}
        (config::RpcAccess::Token, Some(token)) if bearer_matches(&headers, token) => {}
        (config::RpcAccess::Token, _) => {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "The ledger's JSON-RPC needs the bearer token in keys/rpc.token of the data directory.",
            )
                .into_response();
        }
        (config::RpcAccess::Off, _) => {
            return (StatusCode::FORBIDDEN, "The ledger's JSON-RPC is off on this server (see --rpc-access).")
                .into_response();
        }
    }
    let runtime = tokio::runtime::Handle::current();
    let answered = tokio::task::spawn_blocking(move || {
        let node = state.ledger.node.as_ref().expect("checked above");
        runtime.block_on(chartkey_ledger::rpc::handle(node, &body))
    })
    .await;
    match answered {
        Ok(Some(answer)) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(answer)).into_response(),
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a JSON-RPC request failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Whether `Authorization: Bearer <token>` names `token` (compared as
/// hashes, so the time taken says nothing of how much matched).
fn bearer_matches(headers: &axum::http::HeaderMap, token: &str) -> bool {
    use sha2::Digest;
    let Some(given) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    sha2::Sha256::digest(given.trim().as_bytes()) == sha2::Sha256::digest(token.as_bytes())
}

/// Refuses requests whose `Host` is not the portal's origin (a DNS
/// rebinding page, or a client that reached the server by another name):
/// 421. `/healthz` answers whatever the name, for load balancers.
async fn expected_host(State(state): State<AppState>, request: Request, next: axum::middleware::Next) -> Response {
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| request.headers().get(header::HOST).and_then(|v| v.to_str().ok()).map(str::to_owned));
    match host {
        Some(host) if host_matches(&host, &state.config) => next.run(request).await,
        _ => {
            tracing::warn!("request for another host refused");
            let words = format!("This server answers as {} only.", state.config.origin_authority());
            (StatusCode::MISDIRECTED_REQUEST, words).into_response()
        }
    }
}

/// `host` (a Host header) names the origin's host and port.
pub fn host_matches(host: &str, config: &Config) -> bool {
    let expected = config.origin_authority();
    if host.eq_ignore_ascii_case(&expected) {
        return true;
    }
    // The scheme's default port spelled out.
    config.origin.port().is_none()
        && config
            .origin
            .port_or_known_default()
            .is_some_and(|port| host.eq_ignore_ascii_case(&format!("{expected}:{port}")))
}

/// Every server function call: refuse cross-site requests, resolve the
/// caller, then run the function with the state and caller in context
/// (`chartkey_app::api` takes them from there), and send any cookie the
/// call set.
async fn api_handler(
    State(state): State<AppState>,
    ResolvedCaller(caller): ResolvedCaller,
    request: Request<Body>,
) -> Response {
    if !same_origin(request.headers(), &state.config) {
        return (StatusCode::FORBIDDEN, "Cross-origin requests are not allowed.").into_response();
    }
    let context = caller.clone();
    let mut response = leptos_axum::handle_server_fns_with_context(
        move || {
            provide_context(state.clone());
            provide_context::<Caller>(context.clone());
        },
        request,
    )
    .await
    .into_response();
    for cookie in caller.take_cookies() {
        if let Ok(value) = header::HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    with_error_status(response).await
}

/// False for a request a browser sent from another site (its Origin
/// header names another origin than the portal's).
pub fn same_origin(headers: &axum::http::HeaderMap, config: &Config) -> bool {
    match headers.get(header::ORIGIN) {
        Some(origin) if origin.as_bytes() != config.origin.origin().ascii_serialization().as_bytes() => {
            tracing::warn!("cross-origin API call refused");
            false
        }
        _ => true,
    }
}

/// Server functions answer every error with 500; give the response the
/// status its typed error names (401, 403, 429…) so clients, proxies and
/// logs see what happened.
async fn with_error_status(response: Response) -> Response {
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Ok(error) = serde_json::from_slice::<ApiError>(&bytes) {
        parts.status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Runs the server on `listener` until `shutdown` resolves, then finishes
/// in-flight requests and returns.
pub async fn launch(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let site = Site::load(config.dist_dir.as_deref(), config.secure_cookies(), &config.viewer_hosts)?;
    let state = AppState::new(config).await?;
    chartkey_services::pending::reconcile(&state)
        .await
        .map_err(|e| anyhow::anyhow!("picking up pending bookkeeping: {e}"))?;
    authorities::watch(state.clone());
    let stopping = state.stopping.clone();
    let pool = state.pool.clone();
    let app = router(state, site);
    let shutdown = async move {
        shutdown.await;
        stopping.send_replace(true);
    };
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    // The database is closed before this returns (SQLite checkpoints its
    // WAL into the file), not whenever the last background task lets go.
    pool.close().await;
    Ok(())
}
