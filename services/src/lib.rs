//! Chartkey's server side: what each of the portal's server functions
//! does, one module per capability, over the database, the blob store, the
//! ledger and WebAuthn state. The server functions (declared once, in
//! chartkey-app's `api`) call these functions directly; the binary
//! (chartkey-server) adds the HTTP routes around them.
//!
//! Every capability function authorises first (session, role, rate limit),
//! validates its input, and answers with a typed [`ApiError`].

pub mod accounts;
pub mod approvals;
pub mod authorities;
pub mod blobs;
pub mod caller;
pub mod ceremonies;
pub mod chain;
pub mod config;
pub mod credentials;
pub mod db;
pub mod directory;
pub mod emergency;
pub mod ledger;
pub mod limits;
pub mod links;
pub mod migrate;
pub mod notices;
pub mod notifier;
pub mod passkeys;
pub mod pending;
pub mod records;
pub mod sessions;
pub mod shares;
pub mod state;
pub mod store;
pub mod token;
pub mod webauthn;

pub use caller::{Caller, SessionRef};
pub use config::Config;
pub use records::can_access;
pub use state::AppState;
