//! Reads: one key or a range of keys, now or at a past revision.
//!
//! [`Reader`] works over any redb tables that can be read, so the same code
//! answers a plain `Range` (in a read transaction, which sees only committed
//! data) and a `Range` inside a `Txn` (in the writer's transaction, which sees
//! the txn's own earlier writes).

use std::ops::Bound;

use redb::ReadableTable;
use skiff_proto::etcd::{
    Event, KeyValue, RangeRequest, RangeResponse, ResponseHeader,
    event::EventType,
    range_request::{SortOrder, SortTarget},
};

use super::keys::KeyRange;
use super::schema::{decode, decode_latest};
use crate::error::{Result, StoreError};

/// Borrowed tables to read from.
pub(crate) struct Reader<'a, L, H, E> {
    pub latest: &'a L,
    pub history: &'a H,
    pub events: &'a E,
}

/// What a scan of a range found.
pub(crate) struct Scan {
    /// Live key-values in key order, at most the limit asked for.
    pub kvs: Vec<KeyValue>,
    /// Every live key in the range, ignoring the limit.
    pub count: i64,
}

/// One revision's changes, as produced by a write and replayed to watchers.
#[derive(Debug, Clone)]
pub struct RevisionEvents {
    pub revision: i64,
    /// Events in sub-revision order. `prev_kv` is always filled when the key
    /// existed before; watchers that did not ask for it strip it.
    pub events: Vec<Event>,
}

impl<L, H, E> Reader<'_, L, H, E>
where
    L: ReadableTable<&'static [u8], &'static [u8]>,
    H: ReadableTable<(&'static [u8], u64), (u32, bool)>,
    E: ReadableTable<(u64, u32), &'static [u8]>,
{
    /// The value of `key` at revision `at`, or now when `at` is `None`.
    pub fn get(&self, key: &[u8], at: Option<i64>) -> Result<Option<KeyValue>> {
        match at {
            None => match self.latest.get(key)? {
                Some(bytes) => Ok(Some(decode_latest(key, bytes.value())?)),
                None => Ok(None),
            },
            Some(rev) => {
                let last = self
                    .history
                    .range((key, 0u64)..=(key, rev as u64))?
                    .next_back();
                match last {
                    Some(entry) => {
                        let (k, v) = entry?;
                        let (_, revision) = k.value();
                        let (sub, tombstone) = v.value();
                        if tombstone {
                            Ok(None)
                        } else {
                            self.event_kv(revision, sub).map(Some)
                        }
                    }
                    None => Ok(None),
                }
            }
        }
    }

    /// Live keys of `range` at revision `at` (now when `None`). Returns up to
    /// `limit` key-values (0: all) and the count of all of them; with
    /// `fetch == false` it only counts.
    pub fn scan(
        &self,
        range: &KeyRange,
        at: Option<i64>,
        limit: usize,
        fetch: bool,
    ) -> Result<Scan> {
        let mut scan = Scan {
            kvs: Vec::new(),
            count: 0,
        };
        if range.is_empty() {
            return Ok(scan);
        }
        if let KeyRange::One(key) = range {
            if let Some(kv) = self.get(key, at)? {
                scan.count = 1;
                if fetch {
                    scan.kvs.push(kv);
                }
            }
            return Ok(scan);
        }
        let wants = |scan: &Scan| fetch && (limit == 0 || scan.kvs.len() < limit);
        let start = range.start();
        let end = range.end();
        match at {
            None => {
                let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                for entry in self
                    .latest
                    .range::<&[u8]>((Bound::Included(start), upper))?
                {
                    let (k, v) = entry?;
                    scan.count += 1;
                    if wants(&scan) {
                        scan.kvs.push(decode_latest(k.value(), v.value())?);
                    }
                }
            }
            Some(rev) => {
                let rev = rev as u64;
                let upper = end
                    .as_deref()
                    .map_or(Bound::Unbounded, |e| Bound::Excluded((e, 0u64)));
                // Entries come grouped by key, oldest first: remember the newest
                // entry at or below `rev` for the key being walked, and settle it
                // when the key changes.
                let mut key: Vec<u8> = Vec::new();
                let mut best: Option<(u64, u32, bool)> = None;
                let settle = |best: Option<(u64, u32, bool)>, scan: &mut Scan| -> Result<()> {
                    if let Some((revision, sub, false)) = best {
                        scan.count += 1;
                        if wants(scan) {
                            scan.kvs.push(self.event_kv(revision, sub)?);
                        }
                    }
                    Ok(())
                };
                for entry in self
                    .history
                    .range::<(&[u8], u64)>((Bound::Included((start, 0u64)), upper))?
                {
                    let (k, v) = entry?;
                    let (entry_key, entry_rev) = k.value();
                    if entry_key != key.as_slice() {
                        settle(best.take(), &mut scan)?;
                        key.clear();
                        key.extend_from_slice(entry_key);
                    }
                    if entry_rev <= rev {
                        let (sub, tombstone) = v.value();
                        best = Some((entry_rev, sub, tombstone));
                    }
                }
                settle(best, &mut scan)?;
            }
        }
        Ok(scan)
    }

    /// The changes of revisions `from..=to` to keys that `wanted` accepts,
    /// oldest first, with `prev_kv` filled when `with_prev` is set. Reads at
    /// most `max_revisions` revisions; returns the events and the last
    /// revision it covered (`to`, unless it stopped early).
    pub fn changes(
        &self,
        from: i64,
        to: i64,
        max_revisions: usize,
        with_prev: bool,
        wanted: impl Fn(&[u8]) -> bool,
    ) -> Result<(Vec<RevisionEvents>, i64)> {
        let mut out: Vec<RevisionEvents> = Vec::new();
        let mut seen = 0usize;
        let mut last_seen = from - 1;
        for entry in self
            .events
            .range((from.max(0) as u64, 0u32)..=(to.max(0) as u64, u32::MAX))?
        {
            let (k, v) = entry?;
            let revision = k.value().0 as i64;
            if revision != last_seen {
                if seen == max_revisions {
                    return Ok((out, last_seen));
                }
                seen += 1;
                last_seen = revision;
            }
            let kv = decode(v.value())?;
            if !wanted(&kv.key) {
                continue;
            }
            let prev_kv = if with_prev {
                self.get(&kv.key, Some(revision - 1))?
            } else {
                None
            };
            let r#type = if kv.version == 0 {
                EventType::Delete
            } else {
                EventType::Put
            };
            let event = Event {
                r#type: r#type as i32,
                kv: Some(kv),
                prev_kv,
            };
            match out.last_mut() {
                Some(last) if last.revision == revision => last.events.push(event),
                _ => out.push(RevisionEvents {
                    revision,
                    events: vec![event],
                }),
            }
        }
        Ok((out, to))
    }

    fn event_kv(&self, revision: u64, sub: u32) -> Result<KeyValue> {
        match self.events.get((revision, sub))? {
            Some(bytes) => decode(bytes.value()),
            None => Err(StoreError::Corrupt(format!(
                "history points at revision {revision}.{sub}, which is not in the event log"
            ))),
        }
    }
}

/// Checks a Range's revision against the store: 0 (or less) means now.
pub(crate) fn check_revision(asked: i64, current: i64, compacted: i64) -> Result<Option<i64>> {
    if asked <= 0 || asked == current {
        Ok(None)
    } else if asked > current {
        Err(StoreError::FutureRevision)
    } else if asked < compacted {
        Err(StoreError::Compacted)
    } else {
        Ok(Some(asked))
    }
}

/// Answers a `RangeRequest` the way etcd does: limit, count, sort, revision
/// filters, keys-only and count-only. `current` is the revision the reader
/// sees; the header is filled by the caller.
pub(crate) fn serve_range<L, H, E>(
    reader: &Reader<'_, L, H, E>,
    req: &RangeRequest,
    current: i64,
    compacted: i64,
) -> Result<RangeResponse>
where
    L: ReadableTable<&'static [u8], &'static [u8]>,
    H: ReadableTable<(&'static [u8], u64), (u32, bool)>,
    E: ReadableTable<(u64, u32), &'static [u8]>,
{
    let at = check_revision(req.revision, current, compacted)?;
    let order = SortOrder::try_from(req.sort_order).map_err(|_| StoreError::InvalidSortOption)?;
    let target =
        SortTarget::try_from(req.sort_target).map_err(|_| StoreError::InvalidSortOption)?;
    // Keys come out of the store in ascending key order, so only another
    // order or target (or a filter) needs everything fetched before the limit
    // is applied. Like etcd, a target other than KEY with no order means ascending.
    let order = match (order, target) {
        (SortOrder::None, SortTarget::Key) => SortOrder::None,
        (SortOrder::None, _) => SortOrder::Ascend,
        (order, _) => order,
    };
    let filtered = req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0;
    let in_store_order = matches!(order, SortOrder::None)
        || (matches!(order, SortOrder::Ascend) && matches!(target, SortTarget::Key));
    let limit = req.limit.max(0) as usize;
    // One more than the limit tells whether there is more.
    let fetch_limit = if in_store_order && !filtered && limit > 0 {
        limit + 1
    } else {
        0
    };
    let range = KeyRange::new(&req.key, &req.range_end);
    let Scan { mut kvs, count } = reader.scan(&range, at, fetch_limit, !req.count_only)?;

    if filtered {
        kvs.retain(|kv| {
            (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
                && (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
                && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
                && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
        });
    }
    if !in_store_order {
        // Stable sorts keep ties in key order.
        match target {
            SortTarget::Key => {}
            SortTarget::Version => kvs.sort_by_key(|kv| kv.version),
            SortTarget::Create => kvs.sort_by_key(|kv| kv.create_revision),
            SortTarget::Mod => kvs.sort_by_key(|kv| kv.mod_revision),
            SortTarget::Value => kvs.sort_by(|a, b| a.value.cmp(&b.value)),
        }
        if matches!(order, SortOrder::Descend) {
            kvs.reverse();
        }
    }
    let mut more = false;
    if limit > 0 && kvs.len() > limit {
        kvs.truncate(limit);
        more = true;
    }
    if req.keys_only {
        for kv in &mut kvs {
            kv.value.clear();
        }
    }
    Ok(RangeResponse {
        header: Some(ResponseHeader {
            revision: current,
            ..Default::default()
        }),
        kvs,
        more,
        count,
    })
}
