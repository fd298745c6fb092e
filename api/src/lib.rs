//! What crosses Chartkey's HTTP API: the request and response bodies of
//! the portal's server functions, and [`ApiError`], the one error they
//! answer with. The browser (chartkey-app) and the server side
//! (chartkey-services) both build on this crate, so a body is declared
//! once; the values inside it (hashes, addresses, signatures) are core's.

mod account;
mod ceremonies;
mod credentials;
mod emergency;
mod error;
mod ledger;
mod links;
mod records;
mod sharing;

pub use account::*;
pub use ceremonies::*;
pub use credentials::*;
pub use emergency::*;
pub use error::ApiError;
pub use ledger::*;
pub use links::*;
pub use records::*;
pub use sharing::*;
