//! The envelope endpoints: binary bodies, so plain axum routes beside the
//! JSON server functions. All need a signed-in session and refuse
//! cross-site requests.
//!
//! Uploads name content by its hash; reads name a record, never a hash
//! (fingerprints are public, on the ledger, so knowing one gives nothing):
//!
//! - `PUT /api/blobs/{sha256}`: one envelope, streamed (large files).
//! - `POST /api/blobs/pack`: many small envelopes in one body (an import).
//! - `GET /api/envelopes/{record_id}`: one envelope of a record the caller
//!   may read now.
//! - `POST /api/envelopes`: many envelopes at once, as a pack.
//!
//! A pack is a sequence of frames, `name (32 bytes) || length (u32
//! big-endian) || envelope` (`chartkey_core::records::pack_frame`): named by
//! SHA-256 going up, by record id coming down.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chartkey_api::ApiError;
use chartkey_core::envelope::RecordId;
use chartkey_core::value::Hash32;
use chartkey_ledger::convert;
use chartkey_services::records::store::{self as records, Release};

use chartkey_core::records::pack_frame;

use crate::blobs::{BlobError, BlobName};
use crate::sessions::ResolvedCaller;
use crate::state::AppState;

/// Largest pack: many records at once (an import), each within the
/// per-record limit.
const PACK_LIMIT: u64 = 256 * 1024 * 1024;

/// Most envelopes fetched in one request.
const MAX_FETCH: usize = 5_000;

/// Records `account` as an uploader of each `(name, size)`.
async fn note_uploads(state: &AppState, account: &str, blobs: &[(Hash32, u64)]) -> Result<(), ApiError> {
    Ok(records::note_uploads(&state.pool, account, blobs).await?)
}

/// Refuses an upload of `adding` bytes that would take `account` over its
/// storage quota (counted over what it uploaded, each blob once); `None`
/// when it fits. The size must be declared (Content-Length): it is checked
/// before a byte is read, and again as the body arrives.
async fn over_quota(state: &AppState, account: &str, adding: Option<u64>) -> Option<Response> {
    let Some(adding) = adding else {
        return Some(refuse(
            StatusCode::LENGTH_REQUIRED,
            ApiError::bad_request("An upload must say its size (Content-Length)."),
        ));
    };
    let used = match records::uploaded_bytes(&state.pool, account).await {
        Ok(used) => used,
        Err(e) => return Some(api_refusal(e.into())),
    };
    let quota = state.config.storage_quota_bytes;
    if used.saturating_add(adding) <= quota {
        return None;
    }
    tracing::warn!(account = %account, "storage quota reached");
    let mb = |b: u64| b.div_ceil(1_000_000);
    Some(refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::bad_request(format!(
            "Your storage is full: {} MB of your {} MB are used and this needs {} MB more. Nothing was stored.",
            mb(used),
            mb(quota),
            mb(adding)
        )),
    ))
}

/// The body's size as the request declares it: its Content-Length, or none
/// at all (0) when it is not chunked either.
fn declared_size(headers: &HeaderMap) -> Option<u64> {
    match headers.get(header::CONTENT_LENGTH) {
        Some(length) => length.to_str().ok().and_then(|v| v.parse().ok()),
        None if !headers.contains_key(header::TRANSFER_ENCODING) => Some(0),
        None => None,
    }
}

fn api_refusal(e: ApiError) -> Response {
    refuse(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), e)
}

fn refuse(status: StatusCode, error: ApiError) -> Response {
    (status, Json(error)).into_response()
}

fn blob_error(e: BlobError) -> Response {
    match e {
        BlobError::BadName => refuse(StatusCode::BAD_REQUEST, ApiError::bad_request("That is not a blob name.")),
        BlobError::TooLarge { limit, .. } => refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::bad_request(format!("The file is too large: the limit is {} MB.", limit / 1_000_000)),
        ),
        BlobError::HashMismatch { .. } => refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::bad_request("The upload was damaged on the way: its contents do not match its fingerprint."),
        ),
        BlobError::Interrupted(_) => {
            refuse(StatusCode::BAD_REQUEST, ApiError::bad_request("The upload was interrupted; nothing was stored."))
        }
        BlobError::NotFound => refuse(StatusCode::NOT_FOUND, ApiError::NotFound("No such record content.".into())),
        BlobError::MalformedPack(_) => {
            refuse(StatusCode::BAD_REQUEST, ApiError::bad_request("The upload is not a well-formed pack."))
        }
        other => {
            tracing::error!(error = %other, "blob storage failed");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, ApiError::Internal)
        }
    }
}

/// Why a blob request was turned away before anything was read.
pub enum Denied {
    CrossOrigin,
    SignedOut,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::CrossOrigin => (StatusCode::FORBIDDEN, "Cross-origin requests are not allowed.").into_response(),
            Denied::SignedOut => refuse(StatusCode::UNAUTHORIZED, ApiError::Unauthorized),
        }
    }
}

/// The signed-in account of a same-origin request, the first thing every
/// envelope route takes: nothing is read before it holds.
pub struct SignedIn(String);

impl axum::extract::FromRequestParts<AppState> for SignedIn {
    type Rejection = Denied;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Denied> {
        if !crate::same_origin(&parts.headers, &state.config) {
            return Err(Denied::CrossOrigin);
        }
        let Ok(ResolvedCaller(caller)) = ResolvedCaller::from_request_parts(parts, state).await;
        caller.session.map(|s| SignedIn(s.account_id)).ok_or(Denied::SignedOut)
    }
}

pub async fn put(
    State(state): State<AppState>,
    SignedIn(account): SignedIn,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let name = match BlobName::parse(&name) {
        Ok(n) => n,
        Err(e) => return blob_error(e),
    };
    let declared = declared_size(&headers);
    if let Some(refused) = over_quota(&state, &account, declared).await {
        return refused;
    }
    match state.blobs.put_stream(&name, declared, body.into_data_stream()).await {
        Ok(new) => {
            let size = match state.blobs.size(&name).await {
                Ok(Some(size)) => size,
                Ok(None) => return blob_error(BlobError::NotFound),
                Err(e) => return blob_error(e),
            };
            if let Err(e) = note_uploads(&state, &account, &[(name.hash(), size)]).await {
                return api_refusal(e);
            }
            tracing::info!(account = %account, new, "blob stored");
            (if new { StatusCode::CREATED } else { StatusCode::OK }, Json(serde_json::json!({ "new": new })))
                .into_response()
        }
        Err(e) => blob_error(e),
    }
}

pub async fn put_pack(
    State(state): State<AppState>,
    SignedIn(account): SignedIn,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = PACK_LIMIT.max(state.blobs.limit);
    let declared = declared_size(&headers);
    if let Some(size) = declared
        && size > limit
    {
        return blob_error(BlobError::TooLarge { size, limit });
    }
    if let Some(refused) = over_quota(&state, &account, declared).await {
        return refused;
    }
    // Read and stored frame by frame, in bounded memory; what was stored
    // before a failure counts against the allowance like the rest.
    let (done, result) = state.blobs.put_pack(body.into_data_stream(), limit).await;
    let (count, new) = (done.stored.len(), done.new);
    let names: Vec<(Hash32, u64)> = done.stored.iter().map(|(name, size)| (name.hash(), *size)).collect();
    if !names.is_empty()
        && let Err(e) = note_uploads(&state, &account, &names).await
    {
        return api_refusal(e);
    }
    match result {
        Ok(()) => {
            tracing::info!(account = %account, count, new, "blob pack stored");
            Json(serde_json::json!({ "count": count, "new": new })).into_response()
        }
        Err(e) => blob_error(e),
    }
}

/// How long after the ledger recorded a grantee's access the envelope of
/// that record may be fetched by them.
pub const RELEASE_SECONDS: i64 = 60;

/// The envelopes (record id, blob name) of `records` that `account` may read
/// now: records of its own chart (the account is their patient); or, for
/// anyone else, a record whose access by this account the ledger recorded
/// in the last [`RELEASE_SECONDS`] (`records/open`) and still allows now, so
/// stopping a share closes the window at once (unless `own_only`).
/// Authorship gives nothing: a clinician reads a note they wrote back
/// through `records/open` too.
async fn readable(
    state: &AppState,
    account: String,
    records: Vec<RecordId>,
    own_only: bool,
) -> Result<Vec<(RecordId, BlobName)>, ApiError> {
    let since = crate::db::now() - RELEASE_SECONDS;
    let found = records::releasable(&state.pool, &account, &records, since, own_only).await?;
    let mut out = Vec::with_capacity(found.len());
    for (id, release) in found {
        let blob = match release {
            Release::Own(blob) => blob,
            Release::Opened { blob, patient, grantee } => {
                let (patient, grantee) = (convert::alloy(patient), convert::alloy(grantee));
                if !chartkey_services::can_access(state, grantee, patient, id).await? {
                    continue;
                }
                blob
            }
        };
        out.push((id, BlobName::from(blob)));
    }
    Ok(out)
}

fn not_readable() -> Response {
    refuse(StatusCode::NOT_FOUND, ApiError::NotFound("No such record, or it is not open to you now.".into()))
}

/// `GET /api/envelopes/{record_id}`: one record's envelope.
pub async fn get(State(state): State<AppState>, SignedIn(account): SignedIn, Path(record): Path<String>) -> Response {
    let Some(record) = RecordId::from_hex(&record) else {
        return refuse(StatusCode::BAD_REQUEST, ApiError::bad_request("That is not a record id."));
    };
    let name = match readable(&state, account, vec![record], false).await {
        Ok(allowed) => match allowed.first() {
            Some((_, name)) => *name,
            None => return not_readable(),
        },
        Err(e) => return api_refusal(e),
    };
    match state.blobs.get(&name).await {
        Ok(bytes) => {
            ([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "private, no-store")], bytes)
                .into_response()
        }
        Err(e) => blob_error(e),
    }
}

#[derive(serde::Deserialize)]
pub struct FetchBody {
    records: Vec<RecordId>,
}

/// `POST /api/envelopes`: many envelopes of the caller's own chart at once,
/// as a pack whose frames are named by record id, in the order asked. A
/// grantee reads one record per logged open (`GET /api/envelopes/{id}`).
pub async fn fetch(
    State(state): State<AppState>,
    SignedIn(account): SignedIn,
    Json(body): Json<FetchBody>,
) -> Response {
    if body.records.len() > MAX_FETCH {
        return refuse(
            StatusCode::BAD_REQUEST,
            ApiError::bad_request(format!("At most {MAX_FETCH} records can be fetched at once.")),
        );
    }
    let mut records = body.records;
    let mut seen = std::collections::HashSet::new();
    records.retain(|r| seen.insert(*r));
    let asked = records.len();
    let allowed = match readable(&state, account, records, true).await {
        Ok(a) => a,
        Err(e) => return api_refusal(e),
    };
    if allowed.len() != asked {
        return not_readable();
    }
    // Envelopes missing from storage are left out: the reader reports
    // those records, and still gets the rest.
    let limit = PACK_LIMIT.max(state.blobs.limit);
    let mut out = Vec::new();
    for (id, name) in &allowed {
        match state.blobs.get(name).await {
            Ok(bytes) if !out.is_empty() && (out.len() + bytes.len()) as u64 > limit => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ApiError::bad_request("Too much at once: ask for fewer records per request."),
                );
            }
            Ok(bytes) => pack_frame(&mut out, &id.0, &bytes),
            Err(BlobError::NotFound) => {
                tracing::error!(blob = %name.hex(), "a record's envelope is missing from storage");
            }
            Err(e) => return blob_error(e),
        }
    }
    ([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "private, no-store")], out)
        .into_response()
}
