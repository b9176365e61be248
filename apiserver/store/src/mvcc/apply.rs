//! Applies writes inside the writer's redb transaction, with etcd's MVCC rules.
//!
//! Each request gets at most one new revision: every key it changes shares
//! that main revision, with sub-revisions 0, 1, 2… in the order of the
//! changes. A request that changes nothing (a txn that only reads, a delete
//! that matched no key) leaves the revision where it was.
//!
//! Every request is checked completely before its first change, so a request
//! that fails leaves nothing behind and the rest of the batch goes on.

use std::ops::Bound;

use redb::{ReadableTable, Table, WriteTransaction};
use skiff_proto::etcd::{
    DeleteRangeRequest, DeleteRangeResponse, Event, KeyValue, PutRequest, PutResponse,
    RangeRequest, RangeResponse, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
    event::EventType, request_op::Request, response_op::Response,
};

use super::compare;
use super::keys::KeyRange;
use super::read::{Reader, RevisionEvents, check_revision, serve_range};
use super::schema::{
    EVENTS, HISTORY, LATEST, LEASE_KEYS, LEASES, META, META_COMPACT_REVISION, META_REVISION,
    META_WAL_SEQUENCE, decode, encode,
};
use crate::error::{Result, StoreError};

/// What a batch did to leases, applied to the in-memory lessor once the
/// batch is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeaseEffect {
    Granted { id: i64, ttl: i64 },
    Revoked { id: i64 },
}

type LatestTable<'t> = Table<'t, &'static [u8], &'static [u8]>;
type HistoryTable<'t> = Table<'t, (&'static [u8], u64), (u32, bool)>;
type EventsTable<'t> = Table<'t, (u64, u32), &'static [u8]>;

pub(crate) struct Applier<'t> {
    latest: LatestTable<'t>,
    history: HistoryTable<'t>,
    events: EventsTable<'t>,
    leases: Table<'t, i64, i64>,
    lease_keys: Table<'t, (i64, &'static [u8]), ()>,
    meta: Table<'t, &'static str, u64>,
    /// The last revision written, committed or earlier in this batch.
    revision: i64,
    compact_revision: i64,
    /// The compact revision when the batch began, to tell whether it changed.
    compacted_before: i64,
    min_lease_ttl: i64,
    /// Changes of the request being applied, all at `revision + 1`.
    pending: Vec<Event>,
    /// Every revision this batch produced.
    produced: Vec<RevisionEvents>,
    lease_effects: Vec<LeaseEffect>,
}

/// What a committed batch hands back to the store.
pub(crate) struct Applied {
    /// False when the batch wrote nothing (reads, failed checks): then there
    /// is nothing to commit.
    pub changed: bool,
    pub revision: i64,
    pub compact_revision: i64,
    pub produced: Vec<RevisionEvents>,
    pub lease_effects: Vec<LeaseEffect>,
}

impl<'t> Applier<'t> {
    pub fn open(
        txn: &'t WriteTransaction,
        revision: i64,
        compact_revision: i64,
        min_lease_ttl: i64,
    ) -> Result<Self> {
        Ok(Applier {
            latest: txn.open_table(LATEST)?,
            history: txn.open_table(HISTORY)?,
            events: txn.open_table(EVENTS)?,
            leases: txn.open_table(LEASES)?,
            lease_keys: txn.open_table(LEASE_KEYS)?,
            meta: txn.open_table(META)?,
            revision,
            compact_revision,
            compacted_before: compact_revision,
            min_lease_ttl,
            pending: Vec::new(),
            produced: Vec::new(),
            lease_effects: Vec::new(),
        })
    }

    /// Ends one request: if it changed anything, its changes become the next
    /// revision. Returns the revision its response reports.
    pub fn finish_request(&mut self) -> i64 {
        if !self.pending.is_empty() {
            self.revision += 1;
            self.produced.push(RevisionEvents {
                revision: self.revision,
                events: std::mem::take(&mut self.pending),
            });
        }
        self.revision
    }

    /// Drops what a failed request may have queued (nothing, when its checks
    /// ran first: this is a guard, not a rollback).
    pub fn abandon_request(&mut self) {
        debug_assert!(self.pending.is_empty(), "a request failed after writing");
        self.pending.clear();
    }

    /// Whether the request being applied has changed anything yet.
    pub fn has_pending_changes(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Records the revisions (and, when anything changed, the log sequence
    /// the batch will have) and closes the tables; the caller commits.
    pub fn finish(mut self, wal_sequence: u64) -> Result<Applied> {
        let changed = !self.produced.is_empty()
            || !self.lease_effects.is_empty()
            || self.compact_revision != self.compacted_before;
        if changed {
            self.meta.insert(META_REVISION, self.revision as u64)?;
            self.meta
                .insert(META_COMPACT_REVISION, self.compact_revision as u64)?;
            self.meta.insert(META_WAL_SEQUENCE, wal_sequence)?;
        }
        Ok(Applied {
            changed,
            revision: self.revision,
            compact_revision: self.compact_revision,
            produced: self.produced,
            lease_effects: self.lease_effects,
        })
    }

    fn reader(&self) -> Reader<'_, LatestTable<'t>, HistoryTable<'t>, EventsTable<'t>> {
        Reader {
            latest: &self.latest,
            history: &self.history,
            events: &self.events,
        }
    }

    /// The revision this request's changes get.
    fn write_revision(&self) -> i64 {
        self.revision + 1
    }

    /// The revision reads inside this request see.
    fn visible_revision(&self) -> i64 {
        if self.pending.is_empty() {
            self.revision
        } else {
            self.revision + 1
        }
    }

    fn header(&self) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            revision: self.visible_revision(),
            ..Default::default()
        })
    }

    // ---- put -----------------------------------------------------------

    pub fn put(&mut self, req: &PutRequest) -> Result<PutResponse> {
        self.check_put(req)?;
        self.put_checked(req)
    }

    fn check_put(&self, req: &PutRequest) -> Result<()> {
        if (req.ignore_value || req.ignore_lease) && self.reader().get(&req.key, None)?.is_none() {
            return Err(StoreError::KeyNotFound);
        }
        if req.lease != 0 && self.leases.get(req.lease)?.is_none() {
            return Err(StoreError::LeaseNotFound);
        }
        Ok(())
    }

    fn put_checked(&mut self, req: &PutRequest) -> Result<PutResponse> {
        let prev = self.reader().get(&req.key, None)?;
        let revision = self.write_revision();
        let kv = KeyValue {
            key: req.key.clone(),
            value: match (&prev, req.ignore_value) {
                (Some(prev), true) => prev.value.clone(),
                _ => req.value.clone(),
            },
            lease: match (&prev, req.ignore_lease) {
                (Some(prev), true) => prev.lease,
                _ => req.lease,
            },
            create_revision: prev.as_ref().map_or(revision, |p| p.create_revision),
            mod_revision: revision,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
        };
        let old_lease = prev.as_ref().map_or(0, |p| p.lease);
        if old_lease != kv.lease {
            if old_lease != 0 {
                self.lease_keys.remove((old_lease, kv.key.as_slice()))?;
            }
            if kv.lease != 0 {
                self.lease_keys.insert((kv.lease, kv.key.as_slice()), ())?;
            }
        }
        let stored = KeyValue {
            key: Vec::new(),
            ..kv.clone()
        };
        self.latest
            .insert(kv.key.as_slice(), encode(&stored).as_slice())?;
        self.record(kv, EventType::Put, prev.clone())?;
        Ok(PutResponse {
            header: self.header(),
            prev_kv: if req.prev_kv { prev } else { None },
        })
    }

    /// Appends one change to the event log and the key's history.
    fn record(&mut self, kv: KeyValue, r#type: EventType, prev_kv: Option<KeyValue>) -> Result<()> {
        let revision = self.write_revision() as u64;
        let sub = self.pending.len() as u32;
        self.events
            .insert((revision, sub), encode(&kv).as_slice())?;
        let tombstone = r#type == EventType::Delete;
        self.history
            .insert((kv.key.as_slice(), revision), (sub, tombstone))?;
        self.pending.push(Event {
            r#type: r#type as i32,
            kv: Some(kv),
            prev_kv,
        });
        Ok(())
    }

    // ---- delete --------------------------------------------------------

    pub fn delete_range(&mut self, req: &DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        let range = KeyRange::new(&req.key, &req.range_end);
        let doomed = self.reader().scan(&range, None, 0, true)?.kvs;
        for kv in &doomed {
            self.delete_key(kv.clone())?;
        }
        Ok(DeleteRangeResponse {
            header: self.header(),
            deleted: doomed.len() as i64,
            prev_kvs: if req.prev_kv { doomed } else { Vec::new() },
        })
    }

    fn delete_key(&mut self, prev: KeyValue) -> Result<()> {
        self.latest.remove(prev.key.as_slice())?;
        if prev.lease != 0 {
            self.lease_keys.remove((prev.lease, prev.key.as_slice()))?;
        }
        // A tombstone: only the key and the revision of the delete.
        let tombstone = KeyValue {
            key: prev.key.clone(),
            mod_revision: self.write_revision(),
            ..Default::default()
        };
        self.record(tombstone, EventType::Delete, Some(prev))
    }

    // ---- txn -----------------------------------------------------------

    /// Every compare of the txn and of the txns nested in its taken branches
    /// is evaluated first, against the store as it was before the txn; then
    /// every operation on that path is checked; only then does anything run.
    pub fn txn(&mut self, req: &TxnRequest) -> Result<TxnResponse> {
        let mut path = Vec::new();
        self.choose_path(req, &mut path)?;
        self.check_path(req, &path, &mut 0)?;
        self.run_path(req, &path, &mut 0)
    }

    fn choose_path(&self, req: &TxnRequest, path: &mut Vec<bool>) -> Result<()> {
        let mut succeeded = true;
        for cmp in &req.compare {
            let range = KeyRange::new(&cmp.key, &cmp.range_end);
            let kvs = self.reader().scan(&range, None, 0, true)?.kvs;
            if !compare::holds(cmp, &kvs) {
                succeeded = false;
                break;
            }
        }
        path.push(succeeded);
        for op in branch(req, succeeded) {
            if let Some(Request::RequestTxn(nested)) = &op.request {
                self.choose_path(nested, path)?;
            }
        }
        Ok(())
    }

    fn check_path(&self, req: &TxnRequest, path: &[bool], at: &mut usize) -> Result<()> {
        let succeeded = path[*at];
        *at += 1;
        for op in branch(req, succeeded) {
            match &op.request {
                Some(Request::RequestPut(put)) => self.check_put(put)?,
                Some(Request::RequestRange(range)) => {
                    check_revision(range.revision, self.revision, self.compact_revision)?;
                }
                Some(Request::RequestTxn(nested)) => self.check_path(nested, path, at)?,
                Some(Request::RequestDeleteRange(_)) | None => {}
            }
        }
        Ok(())
    }

    fn run_path(&mut self, req: &TxnRequest, path: &[bool], at: &mut usize) -> Result<TxnResponse> {
        let succeeded = path[*at];
        *at += 1;
        let mut responses = Vec::new();
        for op in branch(req, succeeded) {
            let response = match &op.request {
                Some(Request::RequestRange(range)) => Response::ResponseRange(self.range(range)?),
                Some(Request::RequestPut(put)) => Response::ResponsePut(self.put_checked(put)?),
                Some(Request::RequestDeleteRange(del)) => {
                    Response::ResponseDeleteRange(self.delete_range(del)?)
                }
                Some(Request::RequestTxn(nested)) => {
                    Response::ResponseTxn(self.run_path(nested, path, at)?)
                }
                None => continue,
            };
            responses.push(ResponseOp {
                response: Some(response),
            });
        }
        Ok(TxnResponse {
            header: self.header(),
            succeeded,
            responses,
        })
    }

    /// A range inside a txn sees the txn's own earlier writes.
    fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        serve_range(
            &self.reader(),
            req,
            self.visible_revision(),
            self.compact_revision,
        )
    }

    // ---- compaction ----------------------------------------------------

    /// Forgets history at and below `at`, keeping for every key the newest
    /// version at or below `at` unless that version is a delete. Reads at
    /// `at` and later still work; reads below it answer "compacted".
    ///
    /// Only keys changed since the last compaction can hold more than one old
    /// version, so only those are visited. Example: after compacting at 10,
    /// key `a` has one old entry (rev 8). Writes at 12 and 15, then a compact
    /// at 14: `a` was changed in (10, 14], so rev 8 goes and rev 12 stays;
    /// rev 15 is above 14 and untouched.
    pub fn compact(&mut self, at: i64) -> Result<()> {
        if at <= self.compact_revision {
            return Err(StoreError::Compacted);
        }
        if at > self.revision {
            return Err(StoreError::FutureRevision);
        }
        let mut keys = std::collections::BTreeSet::new();
        let window = (self.compact_revision as u64 + 1, 0u32)..=(at as u64, u32::MAX);
        for entry in self.events.range(window)? {
            let (_, v) = entry?;
            keys.insert(decode(v.value())?.key);
        }
        for key in keys {
            let mut entries: Vec<(u64, u32, bool)> = Vec::new();
            for entry in self
                .history
                .range((key.as_slice(), 0u64)..=(key.as_slice(), at as u64))?
            {
                let (k, v) = entry?;
                let (sub, tombstone) = v.value();
                entries.push((k.value().1, sub, tombstone));
            }
            let newest = entries.len().saturating_sub(1);
            for (i, (revision, sub, tombstone)) in entries.into_iter().enumerate() {
                if i < newest || tombstone {
                    self.history.remove((key.as_slice(), revision))?;
                    self.events.remove((revision, sub))?;
                }
            }
        }
        self.compact_revision = at;
        Ok(())
    }

    // ---- leases --------------------------------------------------------

    /// Grants a lease; `id == 0` picks an unused random id. Returns (id, ttl).
    pub fn lease_grant(&mut self, id: i64, ttl: i64) -> Result<(i64, i64)> {
        let id = if id == 0 {
            loop {
                let candidate = rand::random::<i64>() & i64::MAX;
                if candidate != 0 && self.leases.get(candidate)?.is_none() {
                    break candidate;
                }
            }
        } else if self.leases.get(id)?.is_some() {
            return Err(StoreError::LeaseExists);
        } else {
            id
        };
        let ttl = ttl.max(self.min_lease_ttl);
        self.leases.insert(id, ttl)?;
        self.lease_effects.push(LeaseEffect::Granted { id, ttl });
        Ok((id, ttl))
    }

    /// Revokes a lease and deletes every key attached to it, all in one revision.
    pub fn lease_revoke(&mut self, id: i64) -> Result<()> {
        if self.leases.get(id)?.is_none() {
            return Err(StoreError::LeaseNotFound);
        }
        for key in attached_keys(&self.lease_keys, id)? {
            if let Some(kv) = self.reader().get(&key, None)? {
                self.delete_key(kv)?;
            }
        }
        self.leases.remove(id)?;
        self.lease_effects.push(LeaseEffect::Revoked { id });
        Ok(())
    }
}

fn branch(req: &TxnRequest, succeeded: bool) -> &[RequestOp] {
    if succeeded {
        &req.success
    } else {
        &req.failure
    }
}

/// The keys attached to lease `id`, in key order.
pub(crate) fn attached_keys(
    lease_keys: &impl ReadableTable<(i64, &'static [u8]), ()>,
    id: i64,
) -> Result<Vec<Vec<u8>>> {
    let empty: &[u8] = &[];
    let upper = match id.checked_add(1) {
        Some(next) => Bound::Excluded((next, empty)),
        None => Bound::Unbounded,
    };
    let mut keys = Vec::new();
    for entry in lease_keys.range::<(i64, &[u8])>((Bound::Included((id, empty)), upper))? {
        let (k, _) = entry?;
        keys.push(k.value().1.to_vec());
    }
    Ok(keys)
}
