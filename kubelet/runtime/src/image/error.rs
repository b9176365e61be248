//! The one error type of the image subsystem, with enough context in every
//! variant (which file, which digest, which archive entry) that a message in
//! the kubelet log says what to fix.

use std::io;
use std::path::Path;

use super::digest::{Digest, DigestError};
use super::reference::ReferenceError;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{context}: invalid JSON: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(
        "{what}: content digest is {actual}, expected {expected} (corrupted or tampered content refused)"
    )]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: size is {actual} bytes, expected {expected}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("image {0:?} not found")]
    ImageNotFound(String),
    #[error("blob {0} is not in the store")]
    BlobNotFound(Digest),
    #[error("{0}")]
    Format(String),
    #[error("no manifest for {wanted} in the image index (it has: {available})")]
    NoPlatform { wanted: String, available: String },
    #[error("{0} is not supported")]
    Unsupported(String),
    #[error("layer {layer}: entry {path:?} refused: {reason}")]
    UnsafePath {
        layer: String,
        path: String,
        reason: String,
    },
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;

impl ImageError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> ImageError {
        ImageError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn json(context: impl Into<String>, source: serde_json::Error) -> ImageError {
        ImageError::Json {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn format(message: impl Into<String>) -> ImageError {
        ImageError::Format(message.into())
    }

    /// True when the error says some content did not match its digest.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            ImageError::DigestMismatch { .. } | ImageError::SizeMismatch { .. }
        )
    }
}

/// Adds "what were we doing" context to io errors: `fs::read(p).ctx(|| ...)`.
pub(crate) trait IoContext<T> {
    fn ctx<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
    fn at(self, verb: &str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| ImageError::io(f(), e))
    }
    fn at(self, verb: &str, path: &Path) -> Result<T> {
        self.map_err(|e| ImageError::io(format!("{verb} {}", path.display()), e))
    }
}
