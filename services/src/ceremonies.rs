//! WebAuthn ceremonies in progress: server-side, single-use and expiring.
//! The browser only ever holds an opaque id; the challenge state stays here,
//! so an answer cannot be replayed and a stale one is refused.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chartkey_api::ApiError;
use chartkey_core::role::Role;
use webauthn_rs::prelude::{DiscoverableAuthentication, PasskeyRegistration};

/// Ceremonies kept at most at once; beyond this, new ones are refused
/// rather than letting memory grow without bound.
const MAX_PENDING: usize = 10_000;
/// Ceremonies one client address may have pending at once, so one client
/// cannot fill the table for everyone.
const MAX_PENDING_PER_CLIENT: usize = 20;
/// Ceremonies the clients of one network may have pending at once, for
/// wider and wider networks (IPv4 prefix, IPv6 prefix, cap): one site's
/// /48 holds 65,536 IPv6 /64s, so a per-client cap alone would let it fill
/// the table for everyone. Filling it now takes five IPv4 /16s or five
/// IPv6 /32s (each an ISP's allocation).
const NETWORK_CAPS: [(u8, u8, usize); 2] = [(24, 48, 200), (16, 32, MAX_PENDING / 5)];

/// The network of `prefix` bits (IPv4) or `prefix6` bits (IPv6) `ip` is in.
fn network(ip: IpAddr, prefix: u8, prefix6: u8) -> IpAddr {
    let bits = if ip.is_ipv4() { prefix } else { prefix6 };
    ipnet::IpNet::new(ip, bits).map(|net| net.network()).unwrap_or(ip)
}

pub enum Ceremony {
    Signup {
        registration: PasskeyRegistration,
        account_id: String,
        display_name: String,
        role: Role,
    },
    Login {
        authentication: DiscoverableAuthentication,
    },
    /// Restore, step 1: a challenge for the account key to sign. Nothing
    /// about the account is revealed before the signature checks out.
    RestoreProof {
        address: chartkey_core::value::Address,
        challenge: String,
    },
    /// Restore, step 2: the proof passed; a passkey may be registered.
    Restore {
        registration: PasskeyRegistration,
        account_id: String,
    },
    AddPasskey {
        registration: PasskeyRegistration,
        account_id: String,
        challenge: String,
    },
    /// Removing a passkey: the challenge the account key signs with it.
    RemovePasskey {
        account_id: String,
        credential_id: String,
        challenge: String,
    },
    /// A passkey approval of one signed ledger message (its EIP-712 digest).
    Approval {
        authentication: webauthn_rs::prelude::PasskeyAuthentication,
        account_id: String,
        digest: [u8; 32],
        /// The nonce in the challenge (`proof::approval_challenge`).
        nonce: [u8; 32],
    },
}

struct Pending {
    started: Instant,
    client: IpAddr,
    /// The client's networks, one per [`NETWORK_CAPS`] entry.
    networks: [IpAddr; NETWORK_CAPS.len()],
    ceremony: Ceremony,
}

/// `client`'s network for each [`NETWORK_CAPS`] entry.
fn networks_of(client: IpAddr) -> [IpAddr; NETWORK_CAPS.len()] {
    NETWORK_CAPS.map(|(v4, v6, _)| network(client, v4, v6))
}

pub struct Ceremonies {
    ttl: Duration,
    pending: Mutex<HashMap<String, Pending>>,
}

impl Ceremonies {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, pending: Mutex::new(HashMap::new()) }
    }

    /// Stores a ceremony started by `client` and returns its id.
    pub fn begin(&self, client: IpAddr, ceremony: Ceremony) -> Result<String, ApiError> {
        let id = crate::token::random_token();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = self.ttl;
        pending.retain(|_, p| p.started.elapsed() < ttl);
        let client = crate::caller::client_key(client);
        let networks = networks_of(client);
        let network_full = NETWORK_CAPS
            .iter()
            .enumerate()
            .any(|(i, &(_, _, cap))| pending.values().filter(|p| p.networks[i] == networks[i]).count() >= cap);
        if pending.len() >= MAX_PENDING
            || pending.values().filter(|p| p.client == client).count() >= MAX_PENDING_PER_CLIENT
            || network_full
        {
            tracing::warn!(%client, "too many pending WebAuthn ceremonies");
            return Err(ApiError::RateLimited);
        }
        pending.insert(id.clone(), Pending { started: Instant::now(), client, networks, ceremony });
        Ok(id)
    }

    /// Takes a ceremony out (single use): unknown, already used and expired
    /// ids are refused.
    pub fn take(&self, id: &str) -> Result<Ceremony, ApiError> {
        let entry = self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        match entry {
            Some(p) if p.started.elapsed() < self.ttl => Ok(p.ceremony),
            Some(_) => Err(ApiError::bad_request("This passkey request expired. Start again.")),
            None => Err(ApiError::bad_request("This passkey request is not known or was already used. Start again.")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> Ceremony {
        Ceremony::RestoreProof { address: chartkey_core::value::Address::ZERO, challenge: String::new() }
    }

    #[test]
    fn single_use_and_expiring() {
        let c = Ceremonies::new(Duration::from_millis(50));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let id = c.begin(ip, login()).unwrap();
        assert!(c.take(&id).is_ok());
        assert!(c.take(&id).is_err());
        let id = c.begin(ip, login()).unwrap();
        std::thread::sleep(Duration::from_millis(80));
        assert!(c.take(&id).is_err());
        assert!(c.take("unknown").is_err());
    }

    #[test]
    fn one_client_cannot_fill_the_table() {
        let c = Ceremonies::new(Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..MAX_PENDING_PER_CLIENT {
            c.begin(ip, login()).unwrap();
        }
        assert_eq!(c.begin(ip, login()).unwrap_err(), ApiError::RateLimited);
        // Another address in the same IPv6 /64 counts as the same client…
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..MAX_PENDING_PER_CLIENT {
            c.begin(v6, login()).unwrap();
        }
        assert!(c.begin("2001:db8::ffff".parse().unwrap(), login()).is_err());
        // …but other clients still get in.
        assert!(c.begin("10.0.0.2".parse().unwrap(), login()).is_ok());
    }

    /// Finding 7: one network's many client addresses (a /48 holds 65,536
    /// IPv6 /64s) no longer fill the table for everyone.
    #[test]
    fn one_network_cannot_fill_the_table() {
        let ip = |text: String| -> IpAddr { text.parse().unwrap() };
        // A /48: 200 of its /64s, then no more; another /48 still gets in.
        let c = Ceremonies::new(Duration::from_secs(60));
        for n in 0..200u32 {
            c.begin(ip(format!("2001:db8:1:{n:x}::1")), login()).unwrap();
        }
        assert_eq!(c.begin(ip("2001:db8:1:ffff::1".into()), login()).unwrap_err(), ApiError::RateLimited);
        assert!(c.begin(ip("2001:db8:2::1".into()), login()).is_ok());

        // A /32: ten full /48s, then no more; another /32 still gets in.
        let c = Ceremonies::new(Duration::from_secs(60));
        for site in 0..10u32 {
            for n in 0..200u32 {
                c.begin(ip(format!("2001:db8:{site:x}:{n:x}::1")), login()).unwrap();
            }
        }
        assert_eq!(c.begin(ip("2001:db8:ff::1".into()), login()).unwrap_err(), ApiError::RateLimited);
        assert!(c.begin(ip("2001:db9::1".into()), login()).is_ok());

        // IPv4: 200 addresses of one /24, then no more.
        let c = Ceremonies::new(Duration::from_secs(60));
        for n in 0..200u8 {
            c.begin(IpAddr::from([10, 1, 0, n]), login()).unwrap();
        }
        assert_eq!(c.begin(IpAddr::from([10, 1, 0, 250]), login()).unwrap_err(), ApiError::RateLimited);
        assert!(c.begin(IpAddr::from([10, 1, 1, 1]), login()).is_ok());
    }
}
