//! Objects in etcd (or the embedded store, through the same client).
//!
//! Keys are `/registry/<plural>/<namespace>/<name>` (no namespace for
//! cluster-scoped kinds); values are the objects as JSON, without their
//! resourceVersion: that is the key's `mod_revision`, put back on read, and a
//! list's resourceVersion is the store revision it was read at.
//!
//! - create: txn `create_revision(key) == 0` → put (also for any "claims",
//!   extra keys that must be new, e.g. an allocated ClusterIP);
//! - update: txn `mod_revision(key) == expected` → put, else 409;
//! - delete: txn with the same precondition when one is given.

pub mod cache;
mod resource_store;

pub use resource_store::ResourceStore;

use etcd_client::{
    Compare, CompareOp, DeleteOptions, GetOptions, KvClient, PutOptions, Txn, TxnOp, TxnOpResponse,
    WatchClient,
};
use serde_json::Value;

/// Why a storage operation did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    /// The object changed since the revision the caller expected.
    #[error("the object has been modified")]
    Conflict,
    /// A claim key (e.g. an IP allocation) is taken.
    #[error("{0} is already allocated")]
    ClaimTaken(String),
    #[error("required revision has been compacted")]
    Compacted,
    #[error("etcd: {0}")]
    Unavailable(String),
    #[error("stored object at {key} is not valid JSON: {why}")]
    Corrupt { key: String, why: String },
    /// A write was refused before reaching the store (validation, admission).
    #[error("{0}")]
    Invalid(Box<crate::error::ApiError>),
}

impl From<etcd_client::Error> for StorageError {
    fn from(err: etcd_client::Error) -> Self {
        match &err {
            etcd_client::Error::GRpcStatus(status) if status.message().contains("compacted") => {
                StorageError::Compacted
            }
            _ => StorageError::Unavailable(err.to_string()),
        }
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// An object as read from the store, with its resourceVersion set.
#[derive(Debug, Clone)]
pub struct Stored {
    pub key: String,
    pub value: Value,
    pub revision: i64,
}

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Stored>,
    /// The store revision the page was read at.
    pub revision: i64,
    /// More keys follow the last one returned.
    pub more: bool,
}

#[derive(Clone)]
pub struct Storage {
    kv: KvClient,
    watch: WatchClient,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Storage")
    }
}

/// The encoded object: its JSON without metadata.resourceVersion.
fn encode(value: &Value) -> Vec<u8> {
    let mut value = value.clone();
    crate::object::remove(&mut value, &["metadata", "resourceVersion"]);
    serde_json::to_vec(&value).unwrap_or_default()
}

fn decode(key: &[u8], bytes: &[u8], revision: i64) -> StorageResult<Stored> {
    let key = String::from_utf8_lossy(key).into_owned();
    let mut value: Value = serde_json::from_slice(bytes).map_err(|e| StorageError::Corrupt {
        key: key.clone(),
        why: e.to_string(),
    })?;
    crate::object::set(
        &mut value,
        &["metadata", "resourceVersion"],
        Value::String(revision.to_string()),
    );
    Ok(Stored {
        key,
        value,
        revision,
    })
}

/// The smallest key after every key starting with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl Storage {
    pub async fn connect(endpoints: &[String]) -> StorageResult<Self> {
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_keep_alive(
                std::time::Duration::from_secs(10),
                std::time::Duration::from_secs(5),
            );
        let client = etcd_client::Client::connect(endpoints, Some(options)).await?;
        Ok(Storage {
            kv: client.kv_client(),
            watch: client.watch_client(),
        })
    }

    pub async fn get(&self, key: &str) -> StorageResult<Option<Stored>> {
        let resp = self.kv.clone().get(key, None).await?;
        resp.kvs()
            .first()
            .map(|kv| decode(kv.key(), kv.value(), kv.mod_revision()))
            .transpose()
    }

    /// The store's current revision, cheaply.
    pub async fn current_revision(&self) -> StorageResult<i64> {
        let resp = self
            .kv
            .clone()
            .get(
                "/registry/.revision",
                Some(GetOptions::new().with_count_only()),
            )
            .await?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    /// Keys under `prefix` after `start_after` (exclusive), at most `limit`
    /// (0: all), at `revision` (None: now).
    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<i64>,
    ) -> StorageResult<Page> {
        let start = match start_after {
            Some(key) => {
                let mut k = key.as_bytes().to_vec();
                k.push(0);
                k
            }
            None => prefix.as_bytes().to_vec(),
        };
        let mut options = GetOptions::new().with_range(prefix_end(prefix));
        if limit > 0 {
            options = options.with_limit(limit as i64);
        }
        if let Some(revision) = revision {
            options = options.with_revision(revision);
        }
        let resp = self.kv.clone().get(start, Some(options)).await?;
        let items = resp
            .kvs()
            .iter()
            .map(|kv| decode(kv.key(), kv.value(), kv.mod_revision()))
            .collect::<StorageResult<Vec<_>>>()?;
        let revision = revision.unwrap_or_else(|| resp.header().map_or(0, |h| h.revision()));
        Ok(Page {
            items,
            revision,
            more: resp.more(),
        })
    }

    /// Creates `key` (and every claim key) if none of them exists.
    pub async fn create(
        &self,
        key: &str,
        value: &Value,
        claims: &[String],
    ) -> StorageResult<Stored> {
        let mut compares = vec![Compare::create_revision(key, CompareOp::Equal, 0)];
        let mut puts = vec![TxnOp::put(key, encode(value), None)];
        for claim in claims {
            compares.push(Compare::create_revision(
                claim.as_str(),
                CompareOp::Equal,
                0,
            ));
            puts.push(TxnOp::put(claim.as_str(), key, None));
        }
        let resp = self
            .kv
            .clone()
            .txn(Txn::new().when(compares).and_then(puts))
            .await?;
        if !resp.succeeded() {
            if self.get(key).await?.is_some() {
                return Err(StorageError::AlreadyExists);
            }
            for claim in claims {
                if self.kv.clone().get(claim.as_str(), None).await?.count() > 0 {
                    return Err(StorageError::ClaimTaken(claim.clone()));
                }
            }
            return Err(StorageError::Conflict);
        }
        let revision = resp.header().map_or(0, |h| h.revision());
        let mut value = value.clone();
        crate::object::set(
            &mut value,
            &["metadata", "resourceVersion"],
            Value::String(revision.to_string()),
        );
        Ok(Stored {
            key: key.to_string(),
            value,
            revision,
        })
    }

    /// Replaces `key` if it is still at `expected` revision; creates the
    /// claims given and deletes the released ones in the same step.
    pub async fn update(
        &self,
        key: &str,
        value: &Value,
        expected: i64,
        claims: &[String],
        released: &[String],
    ) -> StorageResult<Stored> {
        let mut compares = vec![Compare::mod_revision(key, CompareOp::Equal, expected)];
        let mut ops = vec![TxnOp::put(key, encode(value), None)];
        for claim in claims {
            compares.push(Compare::create_revision(
                claim.as_str(),
                CompareOp::Equal,
                0,
            ));
            ops.push(TxnOp::put(claim.as_str(), key, None));
        }
        for gone in released {
            ops.push(TxnOp::delete(gone.as_str(), None));
        }
        let resp = self
            .kv
            .clone()
            .txn(Txn::new().when(compares).and_then(ops))
            .await?;
        if !resp.succeeded() {
            return Err(match self.get(key).await? {
                None => StorageError::NotFound,
                Some(current) if current.revision != expected => StorageError::Conflict,
                Some(_) => {
                    let mut taken = StorageError::Conflict;
                    for claim in claims {
                        if self.kv.clone().get(claim.as_str(), None).await?.count() > 0 {
                            taken = StorageError::ClaimTaken(claim.clone());
                        }
                    }
                    taken
                }
            });
        }
        let revision = resp.header().map_or(0, |h| h.revision());
        let mut value = value.clone();
        crate::object::set(
            &mut value,
            &["metadata", "resourceVersion"],
            Value::String(revision.to_string()),
        );
        Ok(Stored {
            key: key.to_string(),
            value,
            revision,
        })
    }

    /// Deletes `key` (if still at `expected`, when given) and the released
    /// claim keys; returns the object as it was, at the delete's revision.
    pub async fn delete(
        &self,
        key: &str,
        expected: Option<i64>,
        released: &[String],
    ) -> StorageResult<Stored> {
        let compares = match expected {
            Some(revision) => vec![Compare::mod_revision(key, CompareOp::Equal, revision)],
            None => vec![Compare::create_revision(key, CompareOp::Greater, 0)],
        };
        let mut ops = vec![TxnOp::delete(
            key,
            Some(DeleteOptions::new().with_prev_key()),
        )];
        for gone in released {
            ops.push(TxnOp::delete(gone.as_str(), None));
        }
        let resp = self
            .kv
            .clone()
            .txn(Txn::new().when(compares).and_then(ops))
            .await?;
        if !resp.succeeded() {
            return Err(if self.get(key).await?.is_some() {
                StorageError::Conflict
            } else {
                StorageError::NotFound
            });
        }
        let revision = resp.header().map_or(0, |h| h.revision());
        let prev = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Delete(d) => d
                .prev_kvs()
                .first()
                .map(|kv| (kv.key().to_vec(), kv.value().to_vec())),
            _ => None,
        });
        match prev {
            Some((k, v)) => decode(&k, &v, revision),
            None => Err(StorageError::NotFound),
        }
    }

    /// Forgets history before `revision` (the API server's periodic compaction).
    pub async fn compact(&self, revision: i64) -> StorageResult<()> {
        match self.kv.clone().compact(revision, None).await {
            Ok(_) => Ok(()),
            // Someone (another API server) compacted further already.
            Err(err) if err.to_string().contains("compacted") => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// A raw value (for claim keys and the like).
    pub async fn put_raw(&self, key: &str, value: &str) -> StorageResult<i64> {
        let resp = self
            .kv
            .clone()
            .put(key, value, Some(PutOptions::new()))
            .await?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    /// Raw keys under a prefix (for claim keys).
    pub async fn keys(&self, prefix: &str) -> StorageResult<Vec<String>> {
        let resp = self
            .kv
            .clone()
            .get(
                prefix,
                Some(GetOptions::new().with_prefix().with_keys_only()),
            )
            .await?;
        Ok(resp
            .kvs()
            .iter()
            .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
            .collect())
    }

    pub fn watch_client(&self) -> WatchClient {
        self.watch.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
    }

    #[test]
    fn resource_version_is_not_stored() {
        let v = serde_json::json!({"metadata": {"name": "x", "resourceVersion": "7"}});
        let bytes = encode(&v);
        assert!(!String::from_utf8_lossy(&bytes).contains("resourceVersion"));
        let back = decode(b"/registry/x", &bytes, 9).unwrap();
        assert_eq!(back.value["metadata"]["resourceVersion"], "9");
    }
}
