//! Session tokens and cookies, and the extractor that resolves a request's
//! caller (IP and session) before any server function runs.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use chartkey_api::ApiError;

pub mod store;

use crate::caller::{Caller, SessionRef};
use crate::db;
use crate::state::AppState;
use crate::token::token_hash;

pub fn cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-chartkey_session" } else { "chartkey_session" }
}

/// `Set-Cookie` value for a new session.
pub fn session_cookie(token: &str, max_age_secs: u64, secure: bool) -> String {
    let name = cookie_name(secure);
    let secure_attr = if secure { "; Secure" } else { "" };
    format!("{name}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure_attr}")
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clearing_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

/// The session token from the request's cookies, if any.
pub fn token_from_headers(headers: &axum::http::HeaderMap, secure: bool) -> Option<String> {
    let name = cookie_name(secure);
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty() && v.len() <= 64)
        .map(|(_, v)| v.to_owned())
}

/// The request's client address: the peer, or the one a trusted proxy
/// forwarded (`caller::client_ip`).
pub fn client_of(parts: &Parts, trusted_proxies: &[ipnet::IpNet]) -> std::net::IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    client_from(peer, &parts.headers, trusted_proxies)
}

/// The client address of a request from `peer` with `headers`.
pub fn client_from(
    peer: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
    trusted_proxies: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let forwarded: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    crate::caller::client_ip(peer, &forwarded, trusted_proxies)
}

/// Resolves the caller: remote IP and, when the cookie names a live
/// session, its account.
pub struct ResolvedCaller(pub Caller);

impl<S> FromRequestParts<S> for ResolvedCaller
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let ip = client_of(parts, &state.config.trusted_proxies);
        let mut session = None;
        if let Some(token) = token_from_headers(&parts.headers, state.config.secure_cookies()) {
            let hash = token_hash(&token);
            let idle = state.config.clinician_idle_lock.as_secs() as i64;
            match store::live(&state.pool, &hash, idle, true).await {
                Ok(Some(live)) => {
                    session = Some(SessionRef {
                        account_id: live.account_id,
                        token_hash: hash,
                        credential_id: live.credential_id,
                    })
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "looking up a session failed"),
            }
        }
        Ok(ResolvedCaller(Caller::new(ip, session)))
    }
}

/// Signs the caller in with the passkey `credential_id`: a fresh session
/// token (never reusing the one the browser had), stored hashed, sent as an
/// HttpOnly SameSite=Strict cookie. The session dies with its passkey.
pub(crate) async fn start_session(
    state: &AppState,
    c: &Caller,
    account_id: &str,
    credential_id: &str,
) -> Result<(), ApiError> {
    let token = crate::token::random_token();
    let hash = crate::token::token_hash(&token);
    let ttl = state.config.session_ttl.as_secs();
    let expires_at = db::now() + ttl as i64;
    let old = c.session.as_ref().map(|s| s.token_hash.as_str());
    let session = store::LiveSession { account_id: account_id.to_owned(), credential_id: credential_id.to_owned() };
    store::start(&state.pool, &hash, old, &session, expires_at).await?;
    c.set_cookie(session_cookie(&token, ttl, state.config.secure_cookies()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, header::COOKIE};

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
        h
    }

    #[test]
    fn cookie_attributes() {
        let c = session_cookie("abc", 60, false);
        assert_eq!(c, "chartkey_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60");
        let c = session_cookie("abc", 60, true);
        assert!(c.starts_with("__Host-chartkey_session=abc;"));
        assert!(c.ends_with("; Secure"));
    }

    #[test]
    fn token_parsing_tolerates_other_cookies_and_refuses_junk() {
        assert_eq!(token_from_headers(&headers("a=b; chartkey_session=tok; c=d"), false).as_deref(), Some("tok"));
        assert_eq!(token_from_headers(&headers("chartkey_session="), false), None);
        assert_eq!(token_from_headers(&headers("chartkey_sessionx=tok"), false), None);
        assert_eq!(token_from_headers(&headers(";;;==;"), false), None);
        assert_eq!(token_from_headers(&headers(&format!("chartkey_session={}", "a".repeat(65))), false), None);
        // The insecure name is not accepted when cookies are secure.
        assert_eq!(token_from_headers(&headers("chartkey_session=tok"), true), None);
    }
}
