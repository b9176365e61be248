//! The multi-version key-value store: etcd's data model over redb.
//!
//! [`Store`] is the handle everything else uses. Reads run on the caller's
//! task in a redb read transaction (a consistent snapshot that never waits
//! for writers). Writes are queued to the single writer thread
//! ([`writer`]), which batches them into group commits.

mod apply;
mod check;
mod compare;
pub mod keys;
mod read;
mod schema;
mod shared;
mod wal;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prost::Message;
use redb::{Database, ReadOnlyTable, ReadableDatabase, ReadableTable};
use skiff_proto::etcd::{
    CompactionRequest, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, ResponseHeader, TxnRequest, TxnResponse,
};
use tokio::sync::{broadcast, mpsc, oneshot};

pub(crate) use apply::LeaseEffect;
pub use read::RevisionEvents;
pub use shared::CommittedBatch;

use crate::error::{Result, StoreError};
use crate::lease::Lessor;
use crate::metrics::Metrics;
use read::Reader;
use schema::*;
use shared::Shared;
use skiff_proto::store::{LeaseGrant, WalBatch, WalOp, wal_op::Op};
use writer::{Job, WriteDone, WriteOutput, Writer, WriterOptions};

/// How the store is opened; see [`crate::Config`] for the flags that set these.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub data_dir: PathBuf,
    /// Largest request accepted (etcd's `--max-request-bytes`, 1.5 MiB by default).
    pub max_request_bytes: usize,
    /// Most compares or operations per txn branch (etcd's `--max-txn-ops`).
    pub max_txn_ops: usize,
    /// Shorter TTLs are raised to this, as etcd raises them to its minimum.
    pub min_lease_ttl: i64,
    /// Most requests the writer puts in one commit.
    pub max_batch: usize,
    /// How often the database is made durable on its own, so that the
    /// write-ahead log before that point can be deleted.
    pub checkpoint_interval: Duration,
    /// Size of each preallocated write-ahead-log segment.
    pub wal_segment_bytes: u64,
    /// redb's page cache (reads, and writes not yet synced to the file).
    pub cache_bytes: usize,
}

impl StoreOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreOptions {
            data_dir: data_dir.into(),
            max_request_bytes: 1536 * 1024,
            max_txn_ops: 128,
            min_lease_ttl: 2,
            max_batch: 1024,
            checkpoint_interval: Duration::from_secs(1),
            wal_segment_bytes: 64 * 1024 * 1024,
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The largest TTL etcd accepts.
const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// A cheap, cloneable handle to the open store.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
    options: Arc<StoreOptions>,
    path: Arc<PathBuf>,
}

/// The writer thread; join it after the last [`Store`] handle is dropped.
pub struct WriterThread(JoinHandle<()>);

impl WriterThread {
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("the writer thread panicked");
        }
    }
}

/// A lease's remaining life, as `LeaseTimeToLive` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseTimeToLive {
    /// Whole seconds left.
    pub remaining: i64,
    /// The TTL it was granted with.
    pub granted: i64,
    /// The keys attached to it, when asked for.
    pub keys: Vec<Vec<u8>>,
}

/// Events read back from disk for a watcher that is behind.

#[derive(Debug)]
pub struct Changes {
    pub revisions: Vec<RevisionEvents>,
    /// The last revision covered: resume from `through + 1`.
    pub through: i64,
}

impl Store {
    /// Opens (or creates) the store in `options.data_dir`, replays its
    /// write-ahead log, and starts its writer.
    pub fn open(options: StoreOptions) -> Result<(Store, WriterThread)> {
        create_private_dir(&options.data_dir)?;
        let path = options.data_dir.join("store.redb");
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(&path)
            .map_err(|err| {
                StoreError::Startup(format!(
                    "cannot open the store at {}: {err}",
                    path.display()
                ))
            })?;
        let wal_dir = options.data_dir.join("wal");
        let (wal, records) =
            wal::Wal::open(&wal_dir, options.wal_segment_bytes).map_err(|err| {
                StoreError::Startup(format!(
                    "cannot read the write-ahead log in {}: {err}",
                    wal_dir.display()
                ))
            })?;
        initialise(&db)?;
        // The sequence the database holds durably; replay commits do not
        // sync, so until the checkpoint below this is still the durable one.
        let durable_sequence = load(&db)?.wal_sequence;
        let replayed = replay(&db, records, durable_sequence, options.min_lease_ttl)?;
        let loaded = load(&db)?;
        tracing::info!(
            path = %path.display(),
            revision = loaded.revision,
            compact_revision = loaded.compact_revision,
            leases = loaded.leases.len(),
            replayed_batches = replayed,
            "store opened"
        );
        let lessor = Lessor::load(loaded.leases, Instant::now());
        let shared = Arc::new(Shared::new(
            db,
            loaded.revision,
            loaded.compact_revision,
            lessor,
            loaded.ids,
            options.min_lease_ttl,
        ));
        let writer_options = WriterOptions {
            max_batch: options.max_batch.max(1),
            max_batch_bytes: 4 * options.max_request_bytes.max(1),
            checkpoint_interval: options.checkpoint_interval,
        };
        let mut writer = Writer::new(shared.clone(), wal, durable_sequence, writer_options);
        // Whatever was replayed becomes durable in the database now.
        writer.start_checkpoint()?;
        let (jobs, queue) = mpsc::channel(16 * 1024);
        let thread = std::thread::Builder::new()
            .name("skiff-store-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|err| StoreError::Startup(format!("cannot start the writer thread: {err}")))?;
        let store = Store {
            shared,
            jobs,
            options: Arc::new(options),
            path: Arc::new(path),
        };
        Ok((store, WriterThread(thread)))
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// The revision of the last committed change.
    pub fn revision(&self) -> i64 {
        self.shared.revision()
    }

    pub fn compact_revision(&self) -> i64 {
        self.shared.compact_revision()
    }

    pub fn cluster_id(&self) -> u64 {
        self.shared.cluster_id
    }

    pub fn member_id(&self) -> u64 {
        self.shared.member_id
    }

    /// Size of the database file in bytes.
    pub fn db_size(&self) -> u64 {
        std::fs::metadata(self.path.as_ref())
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// A response header at `revision`, with this store's identity. The raft
    /// term is always 1: there is one member and it never loses leadership.
    pub fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.shared.cluster_id,
            member_id: self.shared.member_id,
            revision,
            raft_term: 1,
        }
    }

    /// Every event committed from now on, batch by batch.
    pub fn subscribe(&self) -> broadcast::Receiver<CommittedBatch> {
        self.shared.events.subscribe()
    }

    // ---- reads ---------------------------------------------------------

    fn read<T>(
        &self,
        f: impl FnOnce(
            &Reader<
                '_,
                ReadOnlyTable<&'static [u8], &'static [u8]>,
                ReadOnlyTable<(&'static [u8], u64), (u32, bool)>,
                ReadOnlyTable<(u64, u32), &'static [u8]>,
            >,
            i64,
            i64,
        ) -> Result<T>,
    ) -> Result<T> {
        let txn = self.shared.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let revision = meta.get(META_REVISION)?.map_or(1, |v| v.value()) as i64;
        let compacted = meta.get(META_COMPACT_REVISION)?.map_or(0, |v| v.value()) as i64;
        let latest = txn.open_table(LATEST)?;
        let history = txn.open_table(HISTORY)?;
        let events = txn.open_table(EVENTS)?;
        f(
            &Reader {
                latest: &latest,
                history: &history,
                events: &events,
            },
            revision,
            compacted,
        )
    }

    pub async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        self.shared.metrics.range.fetch_add(1, Relaxed);
        check::check_range(&req)?;
        self.check_size(&req)?;
        let mut resp = self.read(|reader, revision, compacted| {
            read::serve_range(reader, &req, revision, compacted)
        })?;
        resp.header = Some(self.header(resp.header.map_or(0, |h| h.revision)));
        Ok(resp)
    }

    /// Events of revisions `from` onwards (at most `max_revisions` of them)
    /// to keys `wanted` accepts. `Err(Compacted)` when `from` is compacted.
    pub fn changes(
        &self,
        from: i64,
        max_revisions: usize,
        with_prev: bool,
        wanted: impl Fn(&[u8]) -> bool,
    ) -> Result<Changes> {
        self.read(|reader, revision, compacted| {
            if from < compacted {
                return Err(StoreError::Compacted);
            }
            let (revisions, through) =
                reader.changes(from, revision, max_revisions, with_prev, wanted)?;
            Ok(Changes { revisions, through })
        })
    }

    // ---- writes --------------------------------------------------------

    fn check_size(&self, req: &impl Message) -> Result<()> {
        if req.encoded_len() > self.options.max_request_bytes {
            return Err(StoreError::RequestTooLarge);
        }
        Ok(())
    }

    async fn submit(&self, op: Op) -> Result<WriteDone> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Write {
            op: WalOp { op: Some(op) },
            reply,
        };
        self.jobs.send(job).await.map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// Makes everything written so far durable in the database itself (the
    /// writer also does this every `checkpoint_interval` while writes come).
    pub async fn checkpoint(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Checkpoint { reply })
            .await
            .map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// Checkpoints every `checkpoint_interval` until `stop` resolves, so a
    /// store that went quiet does not keep its log around.
    pub async fn checkpoint_periodically(self, stop: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(
            self.options
                .checkpoint_interval
                .max(Duration::from_millis(10)),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {}
            }
            if let Err(err) = self.checkpoint().await {
                tracing::warn!(error = %err, "periodic checkpoint failed");
            }
        }
    }

    pub async fn put(&self, req: PutRequest) -> Result<PutResponse> {
        self.shared.metrics.put.fetch_add(1, Relaxed);
        check::check_put(&req)?;
        self.check_size(&req)?;
        match self.submit(Op::Put(req)).await? {
            WriteDone {
                output: WriteOutput::Put(mut resp),
                revision,
            } => {
                resp.header = Some(self.header(revision));
                Ok(resp)
            }
            other => unreachable_output(other),
        }
    }

    pub async fn delete_range(&self, req: DeleteRangeRequest) -> Result<DeleteRangeResponse> {
        self.shared.metrics.delete_range.fetch_add(1, Relaxed);
        check::check_delete(&req)?;
        self.check_size(&req)?;
        match self.submit(Op::DeleteRange(req)).await? {
            WriteDone {
                output: WriteOutput::DeleteRange(mut resp),
                revision,
            } => {
                resp.header = Some(self.header(revision));
                Ok(resp)
            }
            other => unreachable_output(other),
        }
    }

    pub async fn txn(&self, req: TxnRequest) -> Result<TxnResponse> {
        self.shared.metrics.txn.fetch_add(1, Relaxed);
        check::check_txn(&req, self.options.max_txn_ops)?;
        self.check_size(&req)?;
        match self.submit(Op::Txn(req)).await? {
            WriteDone {
                output: WriteOutput::Txn(mut resp),
                revision,
            } => {
                fill_headers(&mut resp, &self.header(revision));
                Ok(resp)
            }
            other => unreachable_output(other),
        }
    }

    /// Compacts history up to `req.revision`; returns the header revision.
    /// The compaction is on disk when this returns, so `physical` always holds.
    pub async fn compact(&self, req: CompactionRequest) -> Result<i64> {
        self.shared.metrics.compact.fetch_add(1, Relaxed);
        let done = self.submit(Op::Compact(req.revision)).await?;
        Ok(done.revision)
    }

    // ---- leases --------------------------------------------------------

    /// Grants a lease; returns (id, ttl, revision).
    pub async fn lease_grant(&self, id: i64, ttl: i64) -> Result<(i64, i64, i64)> {
        self.shared.metrics.lease_grant.fetch_add(1, Relaxed);
        if ttl > MAX_LEASE_TTL {
            return Err(StoreError::LeaseTtlTooLarge);
        }
        match self.submit(Op::LeaseGrant(LeaseGrant { id, ttl })).await? {
            WriteDone {
                output: WriteOutput::LeaseGranted { id, ttl },
                revision,
            } => Ok((id, ttl, revision)),
            other => unreachable_output(other),
        }
    }

    /// Revokes a lease, deleting its keys; returns the revision.
    pub async fn lease_revoke(&self, id: i64) -> Result<i64> {
        self.shared.metrics.lease_revoke.fetch_add(1, Relaxed);
        Ok(self.submit(Op::LeaseRevoke(id)).await?.revision)
    }

    /// A keep-alive; the lease's TTL, or `None` when it does not exist.
    pub fn lease_renew(&self, id: i64) -> Option<i64> {
        self.shared.metrics.lease_keep_alive.fetch_add(1, Relaxed);
        self.shared
            .lessor
            .lock()
            .expect("lessor lock")
            .renew(id, Instant::now())
    }

    /// How long a lease has left, or `None` when it does not exist.
    pub fn lease_time_to_live(&self, id: i64, with_keys: bool) -> Result<Option<LeaseTimeToLive>> {
        let Some((remaining, granted)) = self
            .shared
            .lessor
            .lock()
            .expect("lessor lock")
            .time_to_live(id, Instant::now())
        else {
            return Ok(None);
        };
        let keys = if with_keys {
            let txn = self.shared.db.begin_read()?;
            apply::attached_keys(&txn.open_table(LEASE_KEYS)?, id)?
        } else {
            Vec::new()
        };
        Ok(Some(LeaseTimeToLive {
            remaining,
            granted,
            keys,
        }))
    }

    pub fn lease_ids(&self) -> Vec<i64> {
        self.shared.lessor.lock().expect("lessor lock").ids()
    }

    /// Revokes expired leases until `stop` resolves. etcd checks every 500 ms;
    /// this checks twice as often so short TTLs end close to on time.
    pub async fn expire_leases(self, stop: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {}
            }
            let expired = self
                .shared
                .lessor
                .lock()
                .expect("lessor lock")
                .take_expired(Instant::now());
            for id in expired {
                match self.submit(Op::LeaseRevoke(id)).await {
                    Ok(done) => {
                        self.shared.metrics.lease_expired.fetch_add(1, Relaxed);
                        tracing::debug!(
                            lease = id,
                            revision = done.revision,
                            "lease expired and revoked"
                        );
                    }
                    Err(StoreError::LeaseNotFound) => {}
                    Err(err) => {
                        tracing::warn!(lease = id, error = %err, "could not revoke an expired lease; will retry")
                    }
                }
            }
        }
    }
}

fn unreachable_output<T>(done: WriteDone) -> Result<T> {
    Err(StoreError::Corrupt(format!(
        "the writer answered with the wrong kind of result: {:?}",
        done.output
    )))
}

/// A txn's nested responses carry the store's identity too.
fn fill_headers(resp: &mut TxnResponse, header: &ResponseHeader) {
    use skiff_proto::etcd::response_op::Response;
    resp.header = Some(*header);
    for op in &mut resp.responses {
        let inner = match &mut op.response {
            Some(Response::ResponseRange(r)) => &mut r.header,
            Some(Response::ResponsePut(r)) => &mut r.header,
            Some(Response::ResponseDeleteRange(r)) => &mut r.header,
            Some(Response::ResponseTxn(r)) => {
                let revision = r.header.map_or(header.revision, |h| h.revision);
                fill_headers(
                    r,
                    &ResponseHeader {
                        revision,
                        ..*header
                    },
                );
                continue;
            }
            None => continue,
        };
        let revision = inner.map_or(header.revision, |h| h.revision);
        *inner = Some(ResponseHeader {
            revision,
            ..*header
        });
    }
}

/// Creates the data directory readable by its owner only: it holds every
/// secret the cluster stores.
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|err| {
                StoreError::Startup(format!(
                    "cannot create the data directory {}: {err}",
                    dir.display()
                ))
            })?;
    } else if dir
        .metadata()
        .map(|m| m.permissions().mode() & 0o077 != 0)
        .unwrap_or(false)
    {
        tracing::warn!(dir = %dir.display(), "the data directory is readable by other users; consider chmod 700");
    }
    Ok(())
}

/// What a store holds about itself.
struct Loaded {
    revision: i64,
    compact_revision: i64,
    ids: (u64, u64),
    leases: Vec<(i64, i64)>,
    wal_sequence: u64,
}

/// Creates the tables of a new store (at revision 1, like a new etcd).
fn initialise(db: &Database) -> Result<()> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        txn.open_table(EVENTS)?;
        txn.open_table(HISTORY)?;
        txn.open_table(LATEST)?;
        txn.open_table(LEASES)?;
        txn.open_table(LEASE_KEYS)?;
        let mut init = |name: &'static str, value: u64| -> Result<()> {
            if meta.get(name)?.is_none() {
                meta.insert(name, value)?;
            }
            Ok(())
        };
        init(META_REVISION, 1)?;
        init(META_COMPACT_REVISION, 0)?;
        init(META_WAL_SEQUENCE, 0)?;
        // Random identities, kept for the life of the data directory, within
        // the positive int64 range that some clients assume.
        init(META_CLUSTER_ID, rand::random::<u64>() >> 1)?;
        init(META_MEMBER_ID, rand::random::<u64>() >> 1)?;
    }
    txn.commit()?;
    Ok(())
}

fn load(db: &Database) -> Result<Loaded> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let get = |name: &str| -> Result<u64> { Ok(meta.get(name)?.map_or(0, |v| v.value())) };
    let mut leases = Vec::new();
    for entry in txn.open_table(LEASES)?.iter()? {
        let (id, ttl) = entry?;
        leases.push((id.value(), ttl.value()));
    }
    Ok(Loaded {
        revision: get(META_REVISION)? as i64,
        compact_revision: get(META_COMPACT_REVISION)? as i64,
        ids: (get(META_CLUSTER_ID)?, get(META_MEMBER_ID)?),
        leases,
        wal_sequence: get(META_WAL_SEQUENCE)?,
    })
}

/// Applies the log records the database does not have yet (those after its
/// last checkpoint), through the same code as live writes. Returns how many.
fn replay(
    db: &Database,
    records: Vec<wal::Record>,
    durable: u64,
    min_lease_ttl: i64,
) -> Result<usize> {
    let mut replayed = 0;
    for record in records.into_iter().filter(|r| r.sequence > durable) {
        let batch = WalBatch::decode(record.payload.as_slice())?;
        let loaded = load(db)?;
        let mut txn = db.begin_write()?;
        txn.set_durability(redb::Durability::None)
            .map_err(|e| StoreError::Startup(e.to_string()))?;
        {
            let mut applier = apply::Applier::open(
                &txn,
                loaded.revision,
                loaded.compact_revision,
                min_lease_ttl,
            )?;
            for op in &batch.ops {
                writer::apply(&mut applier, op).map_err(|err| {
                    StoreError::Corrupt(format!(
                        "log record {} does not replay: {err}",
                        record.sequence
                    ))
                })?;
                applier.finish_request();
            }
            applier.finish(record.sequence)?;
        }
        txn.commit()?;
        replayed += 1;
    }
    Ok(replayed)
}
