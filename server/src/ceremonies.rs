//! WebAuthn ceremonies in progress: server-side, single-use and expiring.
//! The browser only ever holds an opaque id; the challenge state stays here,
//! so an answer cannot be replayed and a stale one is refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chartkey_app::api::ApiError;
use chartkey_core::wire::Role;
use webauthn_rs::prelude::{DiscoverableAuthentication, PasskeyRegistration};

/// Ceremonies kept at most at once; beyond this, new ones are refused
/// rather than letting memory grow without bound.
const MAX_PENDING: usize = 10_000;

pub enum Ceremony {
    Signup { registration: PasskeyRegistration, account_id: String, display_name: String, role: Role },
    Login { authentication: DiscoverableAuthentication },
    Restore { registration: PasskeyRegistration, account_id: String, challenge: String },
    AddPasskey { registration: PasskeyRegistration, account_id: String },
}

pub struct Ceremonies {
    ttl: Duration,
    pending: Mutex<HashMap<String, (Instant, Ceremony)>>,
}

impl Ceremonies {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, pending: Mutex::new(HashMap::new()) }
    }

    /// Stores a ceremony and returns its id.
    pub fn begin(&self, ceremony: Ceremony) -> Result<String, ApiError> {
        let id = crate::sessions::random_token();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = self.ttl;
        pending.retain(|_, (started, _)| started.elapsed() < ttl);
        if pending.len() >= MAX_PENDING {
            tracing::warn!("too many pending WebAuthn ceremonies");
            return Err(ApiError::RateLimited);
        }
        pending.insert(id.clone(), (Instant::now(), ceremony));
        Ok(id)
    }

    /// Takes a ceremony out (single use): unknown, already used and expired
    /// ids are refused.
    pub fn take(&self, id: &str) -> Result<Ceremony, ApiError> {
        let entry = self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        match entry {
            Some((started, ceremony)) if started.elapsed() < self.ttl => Ok(ceremony),
            Some(_) => Err(ApiError::bad_request("This passkey request expired. Start again.")),
            None => Err(ApiError::bad_request("This passkey request is not known or was already used. Start again.")),
        }
    }
}
