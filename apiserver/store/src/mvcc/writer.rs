//! The writer: one thread that applies every write, in batches.
//!
//! Requests queue on a channel. The writer takes the first waiting request
//! and every other one already queued behind it (up to a limit), and for the
//! whole batch:
//!
//! 1. applies them in order inside one redb transaction (`apply.rs`); a
//!    request that fails its checks gets its error and changes nothing;
//! 2. appends the writes that changed something to the write-ahead log
//!    (`wal.rs`) as one record, and syncs it: from here the batch is durable;
//! 3. commits the redb transaction without syncing it (readers see the batch
//!    only now, after it is durable), except at a checkpoint, when the commit
//!    is synced and the log before it is deleted;
//! 4. publishes the events to watchers and answers every request.
//!
//! So concurrent writers share one sync (group commit), nothing is visible or
//! acknowledged before it is on disk, and a crash loses only writes nobody
//! was told about. On start, the log after the last checkpoint is replayed
//! through the same [`apply`] function the live path uses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use skiff_proto::etcd::{DeleteRangeResponse, PutResponse, TxnResponse};
use skiff_proto::store::{LeaseGrant, WalBatch, WalOp, wal_op::Op};
use tokio::sync::{mpsc, oneshot};

use super::apply::{Applied, Applier};
use super::schema::{META, META_WAL_SEQUENCE};
use super::shared::Shared;
use super::wal::Wal;
use crate::error::{Result, StoreError};

/// What the writer answers for one write.
#[derive(Debug)]
pub(crate) enum WriteOutput {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compacted,
    LeaseGranted { id: i64, ttl: i64 },
    LeaseRevoked,
}

/// A write's result and the store revision its response reports.
#[derive(Debug)]
pub(crate) struct WriteDone {
    pub output: WriteOutput,
    pub revision: i64,
}

pub(crate) enum Job {
    /// A write, in the form the log records it (a lease grant may still have
    /// id 0 here; the log gets the id it was given).
    Write {
        op: WalOp,
        reply: oneshot::Sender<Result<WriteDone>>,
    },
    /// Make everything written so far durable in the database itself.
    Checkpoint { reply: oneshot::Sender<Result<()>> },
}

#[derive(Debug, Clone)]
pub(crate) struct WriterOptions {
    pub max_batch: usize,
    pub max_batch_bytes: usize,
    pub checkpoint_interval: Duration,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    wal: Wal,
    /// The last log sequence the database holds durably.
    durable_sequence: u64,
    last_checkpoint: Instant,
    options: WriterOptions,
    /// Set when a batch failed after reaching the log: the database and the
    /// log may disagree until a restart replays the log, so no more writes.
    broken: Option<String>,
}

/// How a batch failed.
enum BatchFailure {
    /// Nothing was logged or committed; the store is as it was.
    Rejected(StoreError),
    /// The log has the batch but the database may not.
    Broken(String),
}

impl Writer {
    pub fn new(
        shared: Arc<Shared>,
        wal: Wal,
        durable_sequence: u64,
        options: WriterOptions,
    ) -> Self {
        Writer {
            shared,
            wal,
            durable_sequence,
            last_checkpoint: Instant::now(),
            options,
            broken: None,
        }
    }

    /// The checkpoint at start: makes a replayed log durable in the database.
    pub fn start_checkpoint(&mut self) -> Result<()> {
        let last = self.wal.last_sequence();
        if last > self.durable_sequence {
            self.checkpoint()?;
        }
        self.wal
            .release_through(self.durable_sequence)
            .map_err(|e| StoreError::Startup(e.to_string()))?;
        Ok(())
    }

    /// Runs until every sender of `jobs` is gone, then checkpoints.
    pub fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let mut held: Option<Job> = None;
        loop {
            let Some(first) = held.take().or_else(|| jobs.blocking_recv()) else {
                break;
            };
            let mut writes = Vec::new();
            let mut checkpoints = Vec::new();
            let mut bytes = 0;
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Write { op, reply } => {
                        bytes += op.encoded_len();
                        writes.push((op, reply));
                    }
                    Job::Checkpoint { reply } => checkpoints.push(reply),
                }
                if writes.len() >= self.options.max_batch || bytes >= self.options.max_batch_bytes {
                    break;
                }
                next = jobs.try_recv().ok();
            }
            if let Some(job) = next {
                held = Some(job);
            }
            if !writes.is_empty() {
                self.commit_batch(writes);
            }
            if !checkpoints.is_empty() {
                let result = self.checkpoint();
                for reply in checkpoints {
                    let _ = reply.send(
                        result
                            .as_ref()
                            .map(|_| ())
                            .map_err(|e| StoreError::WriteFailed(e.to_string())),
                    );
                }
            }
        }
        if let Err(err) = self.checkpoint() {
            tracing::error!(error = %err, "final checkpoint failed; the log will be replayed at the next start");
        }
        tracing::debug!("writer stopped: no more senders");
    }

    fn commit_batch(&mut self, batch: Vec<(WalOp, oneshot::Sender<Result<WriteDone>>)>) {
        let started = Instant::now();
        let size = batch.len();
        let (ops, replies): (Vec<WalOp>, Vec<_>) = batch.into_iter().unzip();
        let outcome = match &self.broken {
            Some(reason) => Err(BatchFailure::Broken(reason.clone())),
            None => self.apply_batch(&ops),
        };
        // Counted before anyone is answered, so that a client that saw its
        // write acknowledged also sees it in the metrics.
        self.shared.metrics.record_batch(size, started.elapsed());
        match outcome {
            Ok((results, applied)) => {
                self.shared.publish(applied);
                for (reply, result) in replies.into_iter().zip(results) {
                    // The requester may have gone away; the write stands anyway.
                    let _ = reply.send(result);
                }
            }
            Err(failure) => {
                let message = match failure {
                    BatchFailure::Rejected(err) => {
                        tracing::error!(error = %err, requests = size, "write batch failed; nothing was applied");
                        err.to_string()
                    }
                    BatchFailure::Broken(reason) => {
                        if self.broken.is_none() {
                            tracing::error!(%reason, "the store stops taking writes; restart it to replay its log");
                            self.broken = Some(reason.clone());
                        }
                        format!(
                            "the store stopped taking writes after a storage failure ({reason}); restart it"
                        )
                    }
                };
                for reply in replies {
                    let _ = reply.send(Err(StoreError::WriteFailed(message.clone())));
                }
            }
        }
    }

    fn apply_batch(
        &mut self,
        ops: &[WalOp],
    ) -> Result<(Vec<Result<WriteDone>>, Applied), BatchFailure> {
        let rejected = |err: StoreError| BatchFailure::Rejected(err);
        let mut txn = self
            .shared
            .db
            .begin_write()
            .map_err(|e| rejected(e.into()))?;
        let sequence = self.wal.last_sequence() + 1;
        let mut results = Vec::with_capacity(ops.len());
        let mut logged = Vec::new();
        let applied = {
            let mut applier = Applier::open(
                &txn,
                self.shared.revision(),
                self.shared.compact_revision(),
                self.shared.min_lease_ttl,
            )
            .map_err(rejected)?;
            for op in ops {
                match apply(&mut applier, op) {
                    Ok((output, log)) => {
                        let revision = applier.finish_request();
                        logged.extend(log);
                        results.push(Ok(WriteDone { output, revision }));
                    }
                    Err(err @ (StoreError::Storage(_) | StoreError::Corrupt(_))) => {
                        return Err(rejected(err));
                    }
                    Err(err) => {
                        applier.abandon_request();
                        results.push(Err(err));
                    }
                }
            }
            applier.finish(sequence).map_err(rejected)?
        };
        if !applied.changed {
            txn.abort().map_err(|e| rejected(e.into()))?;
            return Ok((results, applied));
        }
        let payload = WalBatch { ops: logged }.encode_to_vec();
        match self.wal.append(&payload) {
            Ok(written) => debug_assert_eq!(written, sequence),
            Err(err) => return Err(BatchFailure::Broken(format!("cannot write the log: {err}"))),
        }
        let checkpoint = self.last_checkpoint.elapsed() >= self.options.checkpoint_interval;
        let durability = if checkpoint {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        };
        txn.set_durability(durability)
            .map_err(|e| BatchFailure::Broken(e.to_string()))?;
        txn.commit()
            .map_err(|e| BatchFailure::Broken(format!("cannot commit to the database: {e}")))?;
        if checkpoint {
            self.checkpointed(sequence);
        }
        Ok((results, applied))
    }

    /// Makes the database itself durable up to the last logged batch, so the
    /// log before it can go.
    fn checkpoint(&mut self) -> Result<()> {
        let last = self.wal.last_sequence();
        if last == self.durable_sequence || self.broken.is_some() {
            return Ok(());
        }
        let mut txn = self.shared.db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|e| StoreError::WriteFailed(e.to_string()))?;
        // Rewriting the sequence gives the commit something to write.
        txn.open_table(META)?.insert(META_WAL_SEQUENCE, last)?;
        txn.commit()?;
        self.checkpointed(last);
        Ok(())
    }

    fn checkpointed(&mut self, sequence: u64) {
        self.durable_sequence = sequence;
        self.last_checkpoint = Instant::now();
        self.shared
            .metrics
            .checkpoints
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Err(err) = self.wal.release_through(sequence) {
            tracing::warn!(error = %err, "cannot delete old log segments");
        }
    }
}

/// Applies one write. Returns what to answer and what to log: nothing when
/// the write changed nothing (a txn that only read, a delete that matched no
/// key), and for a lease grant the id it was given.
pub(crate) fn apply(applier: &mut Applier<'_>, op: &WalOp) -> Result<(WriteOutput, Option<WalOp>)> {
    let logged = |op: Op| Some(WalOp { op: Some(op) });
    Ok(match &op.op {
        Some(Op::Put(req)) => (WriteOutput::Put(applier.put(req)?), Some(op.clone())),
        Some(Op::DeleteRange(req)) => {
            let resp = applier.delete_range(req)?;
            let log = (resp.deleted > 0).then(|| op.clone());
            (WriteOutput::DeleteRange(resp), log)
        }
        Some(Op::Txn(req)) => {
            let resp = applier.txn(req)?;
            let log = applier.has_pending_changes().then(|| op.clone());
            (WriteOutput::Txn(resp), log)
        }
        Some(Op::Compact(revision)) => {
            applier.compact(*revision)?;
            (WriteOutput::Compacted, Some(op.clone()))
        }
        Some(Op::LeaseGrant(grant)) => {
            let (id, ttl) = applier.lease_grant(grant.id, grant.ttl)?;
            (
                WriteOutput::LeaseGranted { id, ttl },
                logged(Op::LeaseGrant(LeaseGrant { id, ttl })),
            )
        }
        Some(Op::LeaseRevoke(id)) => {
            applier.lease_revoke(*id)?;
            (WriteOutput::LeaseRevoked, Some(op.clone()))
        }
        None => return Err(StoreError::Corrupt("a write with no operation".into())),
    })
}
