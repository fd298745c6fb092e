//! The UI's one error type: what went wrong, in a sentence for the reader.
//! Resources and actions answer `Result<_, UiError>`, so a page shows an
//! error the same way wherever it came from (an `ErrorBoundary`, or
//! [`UiError::shown`] for an action's last answer).

use crate::api::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UiError {
    /// The server refused or failed; its typed answer says why.
    #[error("{0}")]
    Server(#[from] ApiError),
    /// A step in this browser failed: a check that did not hold, a prompt
    /// the reader dismissed, a network that was not there.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for UiError {
    fn from(sentence: String) -> Self {
        Self::Failed(sentence)
    }
}

impl UiError {
    /// The sentence of an action's or resource's last answer, if it failed.
    pub fn shown<T>(answer: Option<Result<T, UiError>>) -> Option<String> {
        answer.and_then(Result::err).map(|e| e.to_string())
    }
}
