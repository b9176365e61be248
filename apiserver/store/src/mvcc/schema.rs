//! The tables of the on-disk database (one redb file, `<data-dir>/store.redb`).
//!
//! The layout mirrors etcd's MVCC design: an append-only log of changes keyed
//! by revision (what watchers replay), an index of every key's revisions (what
//! reads of the past use), and the newest value of every live key (what almost
//! every read uses, without walking history).
//!
//! A put of `k = v` at revision 7 that creates the key writes:
//!
//! ```text
//! EVENTS   (7, 0)        -> KeyValue{key: k, value: v, create: 7, mod: 7, version: 1}
//! HISTORY  (k, 7)        -> (sub 0, tombstone false)
//! LATEST   k             -> KeyValue{value: v, create: 7, mod: 7, version: 1}   (key omitted)
//! META     "revision"    -> 7
//! ```
//!
//! A delete at revision 8 writes a tombstone (a KeyValue with version 0) to
//! EVENTS and HISTORY and removes the key from LATEST.

use prost::Message;
use redb::TableDefinition;
use skiff_proto::etcd::KeyValue;

use crate::error::Result;

/// Store-wide numbers, by name (see the `META_*` constants).
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Every change in revision order: (revision, sub-revision) → encoded `KeyValue`.
pub(crate) const EVENTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("events");
/// Every revision of every key in key order: (key, revision) → (sub-revision, tombstone).
pub(crate) const HISTORY: TableDefinition<(&[u8], u64), (u32, bool)> =
    TableDefinition::new("history");
/// The live value of every key: key → encoded `KeyValue` with its key left out.
pub(crate) const LATEST: TableDefinition<&[u8], &[u8]> = TableDefinition::new("latest");
/// Granted leases: lease id → TTL in seconds.
pub(crate) const LEASES: TableDefinition<i64, i64> = TableDefinition::new("leases");
/// Keys attached to leases: (lease id, key) → ().
pub(crate) const LEASE_KEYS: TableDefinition<(i64, &[u8]), ()> = TableDefinition::new("lease_keys");

/// The store revision: the revision of the last change. A new store is at 1, like etcd.
pub(crate) const META_REVISION: &str = "revision";
/// Reads and watches below this revision answer "compacted".
pub(crate) const META_COMPACT_REVISION: &str = "compact_revision";
/// The last write-ahead-log record the database holds (see `wal.rs`).
pub(crate) const META_WAL_SEQUENCE: &str = "wal_sequence";
pub(crate) const META_CLUSTER_ID: &str = "cluster_id";
pub(crate) const META_MEMBER_ID: &str = "member_id";

/// Encodes a record for EVENTS (with its key) or LATEST (key cleared first).
pub(crate) fn encode(kv: &KeyValue) -> Vec<u8> {
    kv.encode_to_vec()
}

pub(crate) fn decode(bytes: &[u8]) -> Result<KeyValue> {
    Ok(KeyValue::decode(bytes)?)
}

/// Decodes a LATEST record and puts its key back.
pub(crate) fn decode_latest(key: &[u8], bytes: &[u8]) -> Result<KeyValue> {
    let mut kv = KeyValue::decode(bytes)?;
    kv.key = key.to_vec();
    Ok(kv)
}
