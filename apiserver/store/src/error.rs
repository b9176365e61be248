//! Every error the store can return, and the one place that turns them into
//! gRPC statuses with the codes and messages etcd uses, so clients written for
//! etcd (`etcdctl`, client libraries, the Kubernetes API server) recognise them.

use tonic::{Code, Status};

/// An error from the store. The messages are etcd's, word for word.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: invalid sort option")]
    InvalidSortOption,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: server stopped")]
    Stopped,
    /// The on-disk database failed; the request was not applied.
    #[error("etcdserver: storage error: {0}")]
    Storage(#[from] redb::Error),
    /// The batch this request was in could not be committed; nothing of it was applied.
    #[error("etcdserver: write not applied: {0}")]
    WriteFailed(String),
    /// A record on disk could not be decoded.
    #[error("etcdserver: corrupt record: {0}")]
    Corrupt(String),
    /// The store could not start (bad flag, unusable data directory, port in use).
    #[error("{0}")]
    Startup(String),
}

impl StoreError {
    /// The gRPC code etcd answers this error with.
    pub fn code(&self) -> Code {
        match self {
            StoreError::EmptyKey
            | StoreError::KeyNotFound
            | StoreError::ValueProvided
            | StoreError::LeaseProvided
            | StoreError::TooManyOps
            | StoreError::DuplicateKey
            | StoreError::InvalidSortOption
            | StoreError::RequestTooLarge => Code::InvalidArgument,
            StoreError::Compacted | StoreError::FutureRevision | StoreError::LeaseTtlTooLarge => {
                Code::OutOfRange
            }
            StoreError::LeaseNotFound => Code::NotFound,
            StoreError::LeaseExists => Code::FailedPrecondition,
            StoreError::Stopped => Code::Unavailable,
            StoreError::Storage(_) | StoreError::WriteFailed(_) | StoreError::Startup(_) => {
                Code::Internal
            }
            StoreError::Corrupt(_) => Code::DataLoss,
        }
    }
}

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Status {
        if matches!(err, StoreError::Storage(_) | StoreError::Corrupt(_)) {
            tracing::error!(error = %err, "request failed in storage");
        }
        Status::new(err.code(), err.to_string())
    }
}

/// redb reports failures through several error types; all of them mean
/// "storage failed" to a client.
macro_rules! storage_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(err: $t) -> Self {
                StoreError::Storage(redb::Error::from(err))
            }
        }
    )*};
}
storage_error_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<prost::DecodeError> for StoreError {
    fn from(err: prost::DecodeError) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_match_etcd() {
        let cases = [
            (
                StoreError::Compacted,
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted",
            ),
            (
                StoreError::FutureRevision,
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision",
            ),
            (
                StoreError::LeaseNotFound,
                Code::NotFound,
                "etcdserver: requested lease not found",
            ),
            (
                StoreError::RequestTooLarge,
                Code::InvalidArgument,
                "etcdserver: request is too large",
            ),
            (
                StoreError::DuplicateKey,
                Code::InvalidArgument,
                "etcdserver: duplicate key given in txn request",
            ),
            (
                StoreError::LeaseExists,
                Code::FailedPrecondition,
                "etcdserver: lease already exists",
            ),
        ];
        for (err, code, message) in cases {
            let status = Status::from(err);
            assert_eq!(status.code(), code, "{message}");
            assert_eq!(status.message(), message);
        }
    }
}
