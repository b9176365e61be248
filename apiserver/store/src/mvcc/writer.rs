//! The writer: one thread that applies every write, in batches.
//!
//! Requests queue on a channel. The writer takes the first waiting request
//! and every other one already queued behind it (up to a limit), applies them
//! in order inside one redb transaction, commits once (one fsync for the whole
//! batch: group commit), and only then answers each request and hands the
//! batch's events to watchers. So an acknowledged write is on disk, a failed
//! request leaves no trace, and concurrent writers share the cost of a sync
//! instead of each paying for their own.

use std::sync::Arc;
use std::time::Instant;

use skiff_proto::etcd::{
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, TxnRequest, TxnResponse,
};
use tokio::sync::{mpsc, oneshot};

use super::apply::{Applied, Applier};
use super::shared::Shared;
use crate::error::{Result, StoreError};

/// One write, as queued for the writer.
#[derive(Debug)]
pub(crate) enum WriteOp {
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    Compact(i64),
    LeaseGrant { id: i64, ttl: i64 },
    LeaseRevoke(i64),
}

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

pub(crate) struct Job {
    pub op: WriteOp,
    pub reply: oneshot::Sender<Result<WriteDone>>,
}

/// Runs the writer until every sender of `jobs` is gone.
pub(crate) fn run(shared: Arc<Shared>, mut jobs: mpsc::Receiver<Job>, max_batch: usize) {
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&shared, batch);
    }
    tracing::debug!("writer stopped: no more senders");
}

fn commit_batch(shared: &Shared, batch: Vec<Job>) {
    let started = Instant::now();
    let size = batch.len();
    let (ops, replies): (Vec<WriteOp>, Vec<_>) =
        batch.into_iter().map(|job| (job.op, job.reply)).unzip();
    match apply_batch(shared, &ops) {
        Ok((results, applied)) => {
            shared.publish(applied);
            for (reply, result) in replies.into_iter().zip(results) {
                // The requester may have gone away; the write stands anyway.
                let _ = reply.send(result);
            }
        }
        Err(err) => {
            // Nothing of the batch was committed: every request fails, and the
            // in-memory state (which is only updated after a commit) is intact.
            tracing::error!(error = %err, requests = size, "write batch failed; nothing was applied");
            let message = err.to_string();
            for reply in replies {
                let _ = reply.send(Err(StoreError::WriteFailed(message.clone())));
            }
        }
    }
    shared.metrics.record_batch(size, started.elapsed());
}

/// Applies `ops` in one transaction. A request that fails its checks gets its
/// own error; a storage failure aborts the whole batch.
fn apply_batch(shared: &Shared, ops: &[WriteOp]) -> Result<(Vec<Result<WriteDone>>, Applied)> {
    let txn = shared.db.begin_write()?;
    let mut results = Vec::with_capacity(ops.len());
    let applied = {
        let mut applier = Applier::open(
            &txn,
            shared.revision(),
            shared.compact_revision(),
            shared.min_lease_ttl,
        )?;
        for op in ops {
            match apply_one(&mut applier, op) {
                Ok(output) => {
                    let revision = applier.finish_request();
                    results.push(Ok(WriteDone { output, revision }));
                }
                Err(err @ (StoreError::Storage(_) | StoreError::Corrupt(_))) => return Err(err),
                Err(err) => {
                    applier.abandon_request();
                    results.push(Err(err));
                }
            }
        }
        applier.finish()?
    };
    if applied.changed {
        txn.commit()?;
    } else {
        txn.abort()?;
    }
    Ok((results, applied))
}

fn apply_one(applier: &mut Applier<'_>, op: &WriteOp) -> Result<WriteOutput> {
    Ok(match op {
        WriteOp::Put(req) => WriteOutput::Put(applier.put(req)?),
        WriteOp::DeleteRange(req) => WriteOutput::DeleteRange(applier.delete_range(req)?),
        WriteOp::Txn(req) => WriteOutput::Txn(applier.txn(req)?),
        WriteOp::Compact(revision) => {
            applier.compact(*revision)?;
            WriteOutput::Compacted
        }
        WriteOp::LeaseGrant { id, ttl } => {
            let (id, ttl) = applier.lease_grant(*id, *ttl)?;
            WriteOutput::LeaseGranted { id, ttl }
        }
        WriteOp::LeaseRevoke(id) => {
            applier.lease_revoke(*id)?;
            WriteOutput::LeaseRevoked
        }
    })
}
