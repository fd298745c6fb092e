//! Chartkey's server: passkeys, sessions, the public key directory and the
//! built web app, behind one axum router.
//!
//! `launch(listener, config, shutdown)` runs the real server on any
//! listener, so integration tests bind 127.0.0.1:0 and drive it over HTTP.

pub mod authorities;
pub mod backend;
pub mod blob_routes;
pub mod blobs;
pub mod ceremonies;
pub mod config;
pub mod db;
pub mod ledger;
pub mod notices;
pub mod sessions;
pub mod state;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chartkey_app::api::ssr::DynBackend;
use leptos::prelude::provide_context;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use config::Config;
use sessions::ResolvedCaller;
use state::AppState;
use web::Site;

#[derive(Clone)]
struct ApiState {
    app: AppState,
    backend: DynBackend,
}

impl FromRef<ApiState> for AppState {
    fn from_ref(api: &ApiState) -> AppState {
        api.app.clone()
    }
}

/// Builds the application router.
pub fn router(state: AppState, site: Site) -> Router {
    let backend: DynBackend = Arc::new(backend::ServerBackend { state: state.clone() });
    let api_state = ApiState { app: state.clone(), backend };
    let api = Router::new()
        .route("/api/{*fn_name}", post(api_handler))
        .layer(RequestBodyLimitLayer::new(state.config.api_body_limit))
        .with_state(api_state.clone());
    // Adding a thousand records at once lists each one.
    let records = Router::new()
        .route("/api/records/add", post(api_handler))
        .layer(RequestBodyLimitLayer::new(RECORDS_BODY_LIMIT))
        .with_state(api_state);
    // Blob bodies are limited by the blob store itself (before and while reading).
    let blobs = Router::new()
        .route("/api/blobs/{name}", axum::routing::put(blob_routes::put))
        .route("/api/blobs/pack", post(blob_routes::put_pack))
        .route("/api/envelopes/{record}", get(blob_routes::get))
        .route("/api/envelopes", post(blob_routes::fetch).layer(RequestBodyLimitLayer::new(RECORDS_BODY_LIMIT)))
        .route("/api/notices/stream", get(notices::stream))
        .with_state(state.clone());

    let static_files = match &site.dist {
        Some(dir) => Router::new()
            .fallback_service(ServeDir::new(dir).fallback(get(web::spa_fallback).with_state(site.clone())))
            .layer(axum::middleware::from_fn(web::cache_headers)),
        None => Router::new().fallback(web::spa_fallback).with_state(site.clone()),
    };

    let rpc = Router::new()
        .route("/rpc", post(rpc_handler))
        .layer(RequestBodyLimitLayer::new(RPC_BODY_LIMIT))
        .with_state(state.clone());

    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
        .merge(rpc)
        .merge(blobs)
        .merge(records)
        .merge(api)
        .merge(static_files)
        .layer(axum::middleware::from_fn_with_state(site, web::security_headers))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // Path only: no query strings, headers or bodies in logs.
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.call(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))).await {
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

/// Largest JSON-RPC request (a batch, or a transaction with its data).
const RPC_BODY_LIMIT: usize = 1024 * 1024;

/// Ethereum JSON-RPC over the embedded ledger, for the clients `rpc_access` allows.
async fn rpc_handler(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
    let allowed = match state.config.rpc_access {
        config::RpcAccess::Off => false,
        config::RpcAccess::Loopback => peer.ip().is_loopback(),
        config::RpcAccess::Open => true,
    };
    if !allowed {
        return (StatusCode::FORBIDDEN, "The ledger's JSON-RPC is not open to this client (see --rpc-access).")
            .into_response();
    }
    let Some(node) = &state.ledger.node else {
        return (StatusCode::NOT_FOUND, "This server uses an external ledger (--chain-rpc): ask that node.")
            .into_response();
    };
    match chartkey_ledger::rpc::handle(node, &body).await {
        Some(answer) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(answer)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// Every server function call: refuse cross-site requests, resolve the
/// caller, then run the function with the backend and caller in context.
async fn api_handler(
    State(ApiState { app: state, backend }): State<ApiState>,
    ResolvedCaller(caller): ResolvedCaller,
    request: Request<Body>,
) -> Response {
    if !same_origin(request.headers(), &state.config) {
        return (StatusCode::FORBIDDEN, "Cross-origin requests are not allowed.").into_response();
    }
    let response = leptos_axum::handle_server_fns_with_context(
        move || {
            provide_context(backend.clone());
            provide_context(caller.clone());
        },
        request,
    )
    .await
    .into_response();
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
    if let Ok(error) = serde_json::from_slice::<chartkey_app::api::ApiError>(&bytes) {
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
    let site = Site::load(config.dist_dir.as_deref(), config.secure_cookies())?;
    let state = AppState::new(config).await?;
    authorities::watch(state.clone());
    let stopping = state.stopping.clone();
    let app = router(state, site);
    let shutdown = async move {
        shutdown.await;
        stopping.send_replace(true);
    };
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
