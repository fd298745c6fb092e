//! Who is calling: resolved from the request (its client address and
//! session cookie) before any server function runs.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chartkey_api::ApiError;

#[derive(Debug, Clone)]
pub struct Caller {
    pub ip: IpAddr,
    /// The account of a valid, unexpired session, if any.
    pub session: Option<SessionRef>,
    /// `Set-Cookie` values for the response, added by the route that ran
    /// the call once it has answered.
    cookies: Arc<Mutex<Vec<String>>>,
}

#[derive(Debug, Clone)]
pub struct SessionRef {
    pub account_id: String,
    /// SHA-256 of the session token (the token itself is never stored).
    pub token_hash: String,
    /// The passkey this session signed in with.
    pub credential_id: String,
}

impl Caller {
    pub fn new(ip: IpAddr, session: Option<SessionRef>) -> Self {
        Self { ip, session, cookies: Default::default() }
    }

    /// The session, or 401.
    pub fn require_session(&self) -> Result<&SessionRef, ApiError> {
        self.session.as_ref().ok_or(ApiError::Unauthorized)
    }

    /// Asks for a `Set-Cookie` header on the response.
    pub fn set_cookie(&self, cookie: String) {
        self.cookies.lock().unwrap_or_else(|e| e.into_inner()).push(cookie);
    }

    /// The cookies asked for so far (the route that answers takes them).
    pub fn take_cookies(&self) -> Vec<String> {
        std::mem::take(&mut *self.cookies.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
