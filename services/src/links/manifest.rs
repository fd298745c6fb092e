//! The manifest protocol of SMART Health Links (HL7 SMART Health Cards and
//! Links IG v1.0.0), for receivers without an account:
//!
//! - `POST /shl/<manifest id>` with `{"recipient", "passcode"?,
//!   "embeddedLengthMax"?}` answers the manifest: each file embedded (its
//!   JWE) or by `location`, a short-lived address of that one file.
//! - `GET /shl/files/<token>`: a location's file, until it expires.
//! - `GET /shl/<manifest id>?recipient=…`: a `U` (direct file) link's file.
//!
//! A link that is unknown, stopped, expired or out of passcode attempts
//! answers 404; a missing or wrong passcode 401 with `remainingAttempts`,
//! spent by one atomic update. Every answer that releases a file comes
//! after the ledger recorded the use (`logLinkUse`: the link and a hash of
//! the recipient's label); if it cannot, nothing is released (503, saying
//! why). Requests are rate limited per client and per link, and may come
//! from any origin (a receiver is another app).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chartkey_api::ApiError;
use chartkey_core::shl::{Manifest, ManifestFile, ManifestId, ManifestRequest, ManifestStatus, PasscodeRefused};
use chartkey_core::value::Hash32;
use chartkey_ledger::calls::LinkUse;
use chartkey_ledger::relayer::Request;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::store::{self, LinkRow};
use crate::pending::Work;
use crate::sessions::ResolvedCaller;
use crate::state::AppState;

/// The longest recipient label accepted.
pub const MAX_RECIPIENT_CHARS: usize = 256;
/// Files up to this size come embedded when the receiver sets no bound.
pub const EMBED_BY_DEFAULT: u64 = 1024 * 1024;
/// The largest file ever embedded; larger ones go by location.
pub const EMBED_AT_MOST: u64 = 4 * 1024 * 1024;

/// Why a request gets nothing.
enum Refusal {
    /// 404: unknown, stopped, expired, or out of attempts.
    Gone,
    Passcode(u32),
    BadRequest(&'static str),
    RateLimited,
    /// The ledger did not record the use: nothing released.
    Unrecorded,
    Internal,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::Passcode(remaining_attempts) => {
                return (StatusCode::UNAUTHORIZED, Json(PasscodeRefused { remaining_attempts })).into_response();
            }
            Self::Gone => (StatusCode::NOT_FOUND, "This link does not exist, was stopped or has expired."),
            Self::BadRequest(why) => (StatusCode::BAD_REQUEST, why),
            Self::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "Too many requests for this link; wait a minute."),
            Self::Unrecorded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The ledger could not record this use of the link, so nothing was released. Try again in a moment.",
            ),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on the server."),
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "link store failed");
        Self::Internal
    }
}

/// Any origin may call these (a receiver is another app); no credentials.
fn open_to_all(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `OPTIONS /shl/…`: the preflight of a cross-origin manifest request.
pub async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    open_to_all(response)
}

/// `POST /shl/<manifest id>`.
pub async fn resolve(
    State(state): State<AppState>,
    ResolvedCaller(caller): ResolvedCaller,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let answer = async {
        let link = admit(&state, &caller, &id).await?;
        let request: ManifestRequest =
            serde_json::from_slice(&body).map_err(|_| Refusal::BadRequest("The request is not a manifest request."))?;
        let recipient = recipient(&request.recipient)?;
        if let Some(stored) = link.passcode_hash {
            // An attempt is spent before the passcode is compared (one
            // atomic update), so requests in parallel can never compare more
            // passcodes than the attempts left; a right one gives it back.
            let left = store::spend_attempt(&state.pool, link.id).await?.ok_or(Refusal::Gone)?;
            let given = request.passcode.as_deref().unwrap_or_default();
            if given.chars().count() > super::MAX_PASSCODE_CHARS
                || !super::passcode_matches(&state, link.id, stored, given)
            {
                return Err(Refusal::Passcode(left));
            }
            store::refund_attempt(&state.pool, link.id).await?;
        }
        record_use(&state, &link, recipient).await?;
        manifest(&state, &link, request.embedded_length_max).await
    };
    open_to_all(match answer.await {
        Ok(manifest) => Json(manifest).into_response(),
        Err(refusal) => refusal.into_response(),
    })
}

#[derive(Deserialize)]
pub struct DirectQuery {
    recipient: Option<String>,
}

/// `GET /shl/<manifest id>?recipient=…`: a direct-file (`U`) link's file.
pub async fn direct(
    State(state): State<AppState>,
    ResolvedCaller(caller): ResolvedCaller,
    Path(id): Path<String>,
    query: Result<Query<DirectQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let answer = async {
        let link = admit(&state, &caller, &id).await?;
        if link.flags & chartkey_core::eip712::FLAG_DIRECT == 0 || link.passcode_hash.is_some() {
            return Err(Refusal::Gone);
        }
        let given = query.ok().and_then(|Query(q)| q.recipient).unwrap_or_default();
        let recipient = recipient(&given)?;
        let file = store::files(&state.pool, link.id).await?.into_iter().next().ok_or(Refusal::Gone)?;
        record_use(&state, &link, recipient).await?;
        read_blob(&state, file.blob).await
    };
    open_to_all(match answer.await {
        Ok(jwe) => jose(jwe),
        Err(refusal) => refusal.into_response(),
    })
}

/// `GET /shl/files/<token>`: one file of a manifest, while its address lasts.
pub async fn file(
    State(state): State<AppState>,
    ResolvedCaller(caller): ResolvedCaller,
    Path(token): Path<String>,
) -> Response {
    let answer = async {
        limit_client(&state, &caller).await?;
        let token = URL_SAFE_NO_PAD.decode(&token).ok().filter(|t| t.len() == 32).ok_or(Refusal::Gone)?;
        let hash = Hash32(Sha256::digest(&token).into());
        let (link_id, position, expires_at) = store::location(&state.pool, hash).await?.ok_or(Refusal::Gone)?;
        let now = crate::db::now();
        if expires_at <= now {
            return Err(Refusal::Gone);
        }
        let link = store::by_id(&state.pool, link_id).await?.filter(|l| l.live(now)).ok_or(Refusal::Gone)?;
        let files = store::files(&state.pool, link.id).await?;
        let file = files.get(usize::try_from(position).map_err(|_| Refusal::Internal)?).ok_or(Refusal::Gone)?;
        read_blob(&state, file.blob).await
    };
    open_to_all(match answer.await {
        Ok(jwe) => jose(jwe),
        Err(refusal) => refusal.into_response(),
    })
}

fn jose(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/jose")], body).into_response()
}

async fn limit_client(state: &AppState, caller: &crate::Caller) -> Result<(), Refusal> {
    let client = crate::caller::client_key(caller.ip);
    if state.limits.manifests.allow(&client).await { Ok(()) } else { Err(Refusal::RateLimited) }
}

/// The live link a manifest id names, within the client's and the link's
/// rate limits.
async fn admit(state: &AppState, caller: &crate::Caller, id: &str) -> Result<LinkRow, Refusal> {
    limit_client(state, caller).await?;
    let id = Hash32(ManifestId::parse(id).map_err(|_| Refusal::Gone)?.link_id());
    if !state.limits.link_requests.allow(&id).await {
        return Err(Refusal::RateLimited);
    }
    store::by_id(&state.pool, id).await?.filter(|l| l.live(crate::db::now())).ok_or(Refusal::Gone)
}

/// What the ledger records of a recipient's label: keccak256(salt ‖ label).
pub fn recipient_hash(salt: &[u8; 32], label: &str) -> [u8; 32] {
    ethers_core::utils::keccak256([salt.as_slice(), label.as_bytes()].concat())
}

/// The recipient's label, trimmed: 1 to [`MAX_RECIPIENT_CHARS`] characters.
fn recipient(text: &str) -> Result<&str, Refusal> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_RECIPIENT_CHARS || text.chars().any(char::is_control) {
        return Err(Refusal::BadRequest("Say who is asking (\"recipient\"), in at most 256 characters."));
    }
    Ok(text)
}

/// Records this use on the ledger (and, once mined, in the link's uses
/// with a notice to the patient); only a mined use lets anything out.
async fn record_use(state: &AppState, link: &LinkRow, recipient: &str) -> Result<(), Refusal> {
    let patient = crate::accounts::store::by_id(&state.pool, &link.account_id).await?.ok_or(Refusal::Gone)?;
    // Each use costs the relayer a transaction: it counts against the
    // patient's hourly allowance, so no one can spend without bound
    // through someone's links.
    if crate::chain::spend_relay(state, &link.account_id).await.is_err() {
        return Err(Refusal::RateLimited);
    }
    let use_id: [u8; 32] = rand::random();
    // The ledger gets keccak256(salt ‖ label): the salt stays in this
    // database, so a short label (a clinic's name) cannot be found on a
    // public chain by trying names, while the patient can still check it.
    let salt: [u8; 32] = rand::random();
    let call = LinkUse {
        patient: patient.address.into(),
        link_id: link.id.0,
        recipient_hash: recipient_hash(&salt, recipient),
        use_id,
    };
    let work = Work::LinkUse {
        patient_id: link.account_id.clone(),
        link_id: link.id,
        use_id: Hash32(use_id),
        recipient: recipient.to_owned(),
        salt: Hash32(salt),
    };
    let relayed = async {
        let (job, tx, settle) = crate::pending::relay(state, Request::link_use(&call), work, None).await?;
        crate::chain::settled(state, settle, job, tx).await
    };
    match relayed.await {
        Ok(receipt) if receipt.mined => {
            tracing::info!(block = receipt.block_number, "link use recorded, files released");
            Ok(())
        }
        Ok(_) => Err(Refusal::Unrecorded),
        Err(ApiError::Refused { code, .. })
            if ["UnknownLink", "LinkIsRevoked", "LinkExpired"].contains(&code.as_str()) =>
        {
            Err(Refusal::Gone)
        }
        Err(e) => {
            tracing::warn!(error = %e, "a link use was not recorded; nothing released");
            Err(Refusal::Unrecorded)
        }
    }
}

/// The manifest of `link`: each file embedded when it fits the receiver's
/// bound, otherwise by a location that lasts `link_location_ttl`.
async fn manifest(state: &AppState, link: &LinkRow, embedded_max: Option<u64>) -> Result<Manifest, Refusal> {
    // The server reads an embedded file whole: a receiver may ask for less,
    // never for more than this.
    let bound = embedded_max.unwrap_or(EMBED_BY_DEFAULT).min(EMBED_AT_MOST);
    let expires_at = crate::db::now() + state.config.link_location_ttl.as_secs() as i64;
    let mut files = Vec::new();
    for (position, file) in store::files(&state.pool, link.id).await?.into_iter().enumerate() {
        let (embedded, location) = if (file.size as u64) <= bound {
            let jwe = read_blob(state, file.blob).await?;
            (Some(String::from_utf8(jwe.to_vec()).map_err(|_| Refusal::Internal)?), None)
        } else {
            let token: [u8; 32] = rand::random();
            let hash = Hash32(Sha256::digest(token).into());
            store::add_location(&state.pool, hash, link.id, position as u32, expires_at).await?;
            let mut url = state.config.origin.clone();
            url.set_path(&format!("/shl/files/{}", URL_SAFE_NO_PAD.encode(token)));
            (None, Some(url.to_string()))
        };
        files.push(ManifestFile { content_type: file.content_type, embedded, location, last_updated: None });
    }
    let long_term = link.flags & chartkey_core::eip712::FLAG_LONG_TERM != 0;
    let status = Some(if long_term { ManifestStatus::CanChange } else { ManifestStatus::Finalized });
    Ok(Manifest { status, files })
}

async fn read_blob(state: &AppState, blob: Hash32) -> Result<Bytes, Refusal> {
    state.blobs.get(&blob.into()).await.map_err(|e| {
        tracing::error!(error = %e, "reading a link's file failed");
        Refusal::Internal
    })
}
