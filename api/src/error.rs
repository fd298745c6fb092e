use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

/// Every error a server function can return. Messages are sentences for a
/// person; internals are logged on the server, never sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    #[error("You are not signed in, or your session has ended. Sign in again.")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The ledger's contracts refused a signed message: `code` is the
    /// contract's error name, `message` says why in words.
    #[error("{message}")]
    Refused { code: String, message: String },
    #[error("Too many attempts from your network. Wait a minute, then try again.")]
    RateLimited,
    /// An account's own allowance is used up (ledger messages per hour,
    /// open pages): says which, and when it comes back.
    #[error("{0}")]
    OverQuota(String),
    #[error("Something went wrong on the server. Try again; if it keeps happening, tell your administrator.")]
    Internal,
    /// The request did not reach the server function (network, size limit,
    /// or an unreadable answer).
    #[error("The server could not be reached or gave an unexpected answer ({0}). Check your connection and try again.")]
    Transport(String),
}

impl ApiError {
    /// HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::BadRequest(_) => 400,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::Refused { .. } => 422,
            ApiError::RateLimited | ApiError::OverQuota(_) => 429,
            ApiError::Internal => 500,
            ApiError::Transport(_) => 400,
        }
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // Arguments the server could not read: the caller's fault.
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => {
                ApiError::BadRequest("The request was not understood.".into())
            }
            ServerFnErrorErr::Request(e) => ApiError::Transport(short(&e)),
            // On the server, the only thing deserialised is the request's
            // arguments: unreadable ones are the caller's fault. In the
            // browser, it is the server's answer that could not be read.
            ServerFnErrorErr::Deserialization(e) => {
                if cfg!(feature = "server") {
                    // serde's reason names the field's problem (e.g. "an
                    // address must start with 0x"); never the value.
                    ApiError::BadRequest(format!("The request was not understood: {}.", short(&e)))
                } else {
                    ApiError::Transport(short(&e))
                }
            }
            other => ApiError::Transport(short(&other.to_string())),
        }
    }
}

fn short(s: &str) -> String {
    s.chars().take(120).collect()
}
