//! Errors of the catalog domain.

use serde::Serialize;

/// One problem with one field of an input document, located by a JSON pointer (RFC 6901).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON pointer of the offending field, e.g. `/dataAddress/url`.
    pub pointer: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl FieldError {
    /// A new field error.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pointer.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

/// Why a catalog request could not be answered. Each variant maps to one HTTP status in the
/// connector, and to a `CatalogError` body on DSP endpoints.
#[derive(Debug, thiserror::Error)]
pub enum CatalogFault {
    /// The request itself is wrong (bad filter, bad continuation token): 400.
    #[error("{0}")]
    BadRequest(String),
    /// The dataset does not exist or the requester may not see it: 404.
    #[error("{0}")]
    NotFound(String),
    /// The store failed; the cause goes to the log, never to the caller: 500.
    #[error("catalog store failed: {0}")]
    Store(String),
}
