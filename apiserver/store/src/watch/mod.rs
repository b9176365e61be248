//! Watch streams: one gRPC stream carries many watches.
//!
//! Each stream is one task. It subscribes to the store's committed batches
//! when it starts, so from then on it sees every change in revision order.
//! A watch that starts in the past is first brought up to date from the
//! event log on disk, then follows the live batches; every watcher remembers
//! the next revision it owes its client (`next`), which is what makes the
//! hand-over from disk to live exact: no event twice, none missed. A stream
//! that falls too far behind the live batches (a slow client) is brought up
//! to date from disk the same way.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures::{Stream, StreamExt};
use prost::Message;
use skiff_proto::etcd::{
    Event, WatchCreateRequest, WatchRequest, WatchResponse, event::EventType,
    watch_create_request::FilterType, watch_request::RequestUnion,
};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::error::StoreError;
use crate::mvcc::{RevisionEvents, Store, keys::KeyRange};

/// How many revisions one catch-up read takes from disk (etcd's batch is the same).
const CATCH_UP_REVISIONS: usize = 1000;

#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// How often watches that asked for progress notifications get one when
    /// idle (etcd: `--experimental-watch-progress-notify-interval`, 10 min).
    pub progress_notify_interval: Duration,
    /// Responses of watches that allow fragmenting are split above this size.
    pub max_response_bytes: usize,
}

#[derive(Debug)]
struct Watcher {
    range: KeyRange,
    no_put: bool,
    no_delete: bool,
    prev_kv: bool,
    progress_notify: bool,
    fragment: bool,
    /// The next revision this watcher's client has not been sent.
    next: i64,
    /// Whether events went out since the last progress tick.
    active: bool,
}

impl Watcher {
    fn wants(&self, event: &Event) -> bool {
        let is_put = event.r#type == EventType::Put as i32;
        if (is_put && self.no_put) || (!is_put && self.no_delete) {
            return false;
        }
        event
            .kv
            .as_ref()
            .is_some_and(|kv| self.range.contains(&kv.key))
    }

    /// This watcher's events among `revisions`, from `next` on.
    fn select(&self, revisions: &[RevisionEvents]) -> Vec<Event> {
        let mut out = Vec::new();
        for rev in revisions.iter().filter(|r| r.revision >= self.next) {
            for event in rev.events.iter().filter(|e| self.wants(e)) {
                let mut event = event.clone();
                if !self.prev_kv {
                    event.prev_kv = None;
                }
                out.push(event);
            }
        }
        out
    }
}

/// The client went away or the server is stopping.
struct Closed;

struct WatchStream {
    store: Store,
    out: mpsc::Sender<Result<WatchResponse, Status>>,
    options: WatchOptions,
    watchers: BTreeMap<i64, Watcher>,
    next_id: i64,
}

/// Serves one watch stream until the client closes it or `stop` fires.
pub async fn serve(
    store: Store,
    requests: impl Stream<Item = Result<WatchRequest, Status>> + Unpin,
    out: mpsc::Sender<Result<WatchResponse, Status>>,
    options: WatchOptions,
    stop: CancellationToken,
) {
    let metrics_store = store.clone();
    metrics_store.metrics().watch_streams.fetch_add(1, Relaxed);
    let mut stream = WatchStream {
        store,
        out,
        options,
        watchers: BTreeMap::new(),
        next_id: 0,
    };
    let _ = stream.run(requests, stop).await;
    metrics_store
        .metrics()
        .watchers
        .fetch_sub(stream.watchers.len() as i64, Relaxed);
    metrics_store.metrics().watch_streams.fetch_sub(1, Relaxed);
}

impl WatchStream {
    async fn run(
        &mut self,
        mut requests: impl Stream<Item = Result<WatchRequest, Status>> + Unpin,
        stop: CancellationToken,
    ) -> Result<(), Closed> {
        let mut live = self.store.subscribe();
        let mut tick = tokio::time::interval(self.options.progress_notify_interval);
        tick.reset();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Err(Closed),
                request = requests.next() => match request {
                    Some(Ok(request)) => self.handle(request, &mut live).await?,
                    // The client half-closed or the connection broke.
                    Some(Err(_)) | None => return Err(Closed),
                },
                batch = live.recv() => match batch {
                    Ok(batch) => self.deliver(&batch).await?,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "watch stream fell behind; catching up from disk");
                        let ids: Vec<i64> = self.watchers.keys().copied().collect();
                        for id in ids {
                            self.catch_up(id).await?;
                        }
                    }
                    Err(RecvError::Closed) => return Err(Closed),
                },
                _ = tick.tick() => self.progress_tick().await?,
            }
        }
    }

    async fn send(&self, response: WatchResponse) -> Result<(), Closed> {
        self.store
            .metrics()
            .watch_events_sent
            .fetch_add(response.events.len() as u64, Relaxed);
        self.out.send(Ok(response)).await.map_err(|_| Closed)
    }

    fn response(&self, watch_id: i64, revision: i64) -> WatchResponse {
        WatchResponse {
            header: Some(self.store.header(revision)),
            watch_id,
            ..Default::default()
        }
    }

    async fn handle(
        &mut self,
        request: WatchRequest,
        live: &mut tokio::sync::broadcast::Receiver<crate::mvcc::CommittedBatch>,
    ) -> Result<(), Closed> {
        match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => self.create(create).await,
            Some(RequestUnion::CancelRequest(cancel)) => {
                // Cancelling an unknown watch is answered with silence, as in etcd.
                if self.watchers.remove(&cancel.watch_id).is_some() {
                    self.store.metrics().watchers.fetch_sub(1, Relaxed);
                    let mut response = self.response(cancel.watch_id, self.store.revision());
                    response.canceled = true;
                    self.send(response).await?;
                }
                Ok(())
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                // Everything up to `revision` has been handed to `live`; take
                // what is queued so the answer is true when it is sent.
                let revision = self.store.revision();
                loop {
                    match live.try_recv() {
                        Ok(batch) => self.deliver(&batch).await?,
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                            let ids: Vec<i64> = self.watchers.keys().copied().collect();
                            for id in ids {
                                self.catch_up(id).await?;
                            }
                        }
                        Err(_) => break,
                    }
                }
                // Not tied to one watch: etcd answers with watch id -1.
                self.send(self.response(-1, revision)).await
            }
            None => Ok(()),
        }
    }

    async fn create(&mut self, create: WatchCreateRequest) -> Result<(), Closed> {
        let current = self.store.revision();
        let id = if create.watch_id != 0 {
            if self.watchers.contains_key(&create.watch_id) {
                let mut response = self.response(-1, current);
                response.created = true;
                response.canceled = true;
                response.cancel_reason =
                    "mvcc: duplicate watch ID provided on the WatchStream".into();
                return self.send(response).await;
            }
            create.watch_id
        } else {
            while self.watchers.contains_key(&self.next_id) {
                self.next_id += 1;
            }
            self.next_id
        };
        // An empty key means the smallest key there is, like etcd.
        let key = if create.key.is_empty() {
            vec![0]
        } else {
            create.key.clone()
        };
        let filters = |f: FilterType| create.filters.contains(&(f as i32));
        let watcher = Watcher {
            range: KeyRange::new(&key, &create.range_end),
            no_put: filters(FilterType::Noput),
            no_delete: filters(FilterType::Nodelete),
            prev_kv: create.prev_kv,
            progress_notify: create.progress_notify,
            fragment: create.fragment,
            next: if create.start_revision > 0 {
                create.start_revision
            } else {
                current + 1
            },
            active: false,
        };
        let mut response = self.response(id, current);
        response.created = true;
        self.send(response).await?;
        self.watchers.insert(id, watcher);
        self.store.metrics().watchers.fetch_add(1, Relaxed);
        if create.start_revision > 0 && create.start_revision <= current {
            self.catch_up(id).await?;
        }
        Ok(())
    }

    /// Sends watcher `id` everything from its `next` revision up to what is
    /// on disk now. A watcher whose history was compacted away is cancelled
    /// with `compact_revision` set, so its client knows to start over.
    async fn catch_up(&mut self, id: i64) -> Result<(), Closed> {
        loop {
            let Some(watcher) = self.watchers.get(&id) else {
                return Ok(());
            };
            let target = self.store.revision();
            if watcher.next > target {
                return Ok(());
            }
            let range = watcher.range.clone();
            let changes =
                self.store
                    .changes(watcher.next, CATCH_UP_REVISIONS, watcher.prev_kv, |key| {
                        range.contains(key)
                    });
            match changes {
                Ok(changes) => {
                    let events = watcher.select(&changes.revisions);
                    self.send_events(id, events, changes.through).await?;
                    if let Some(watcher) = self.watchers.get_mut(&id) {
                        watcher.next = watcher.next.max(changes.through + 1);
                    }
                    if changes.through >= target {
                        return Ok(());
                    }
                }
                Err(StoreError::Compacted) => {
                    self.watchers.remove(&id);
                    self.store.metrics().watchers.fetch_sub(1, Relaxed);
                    let mut response = self.response(id, self.store.revision());
                    response.compact_revision = self.store.compact_revision();
                    response.canceled = true;
                    response.cancel_reason = StoreError::Compacted.to_string();
                    return self.send(response).await;
                }
                Err(err) => {
                    tracing::error!(error = %err, watch = id, "cannot read history for a watch");
                    let _ = self.out.send(Err(err.into())).await;
                    return Err(Closed);
                }
            }
        }
    }

    /// Hands one live batch to every watcher that wants part of it.
    async fn deliver(&mut self, batch: &[RevisionEvents]) -> Result<(), Closed> {
        let Some(last) = batch.last().map(|r| r.revision) else {
            return Ok(());
        };
        let ids: Vec<i64> = self.watchers.keys().copied().collect();
        for id in ids {
            let Some(watcher) = self.watchers.get(&id) else {
                continue;
            };
            if watcher.next > last {
                continue;
            }
            let events = watcher.select(batch);
            self.send_events(id, events, last).await?;
            if let Some(watcher) = self.watchers.get_mut(&id) {
                watcher.next = last + 1;
            }
        }
        Ok(())
    }

    async fn send_events(
        &mut self,
        id: i64,
        events: Vec<Event>,
        revision: i64,
    ) -> Result<(), Closed> {
        if events.is_empty() {
            return Ok(());
        }
        let fragment = match self.watchers.get_mut(&id) {
            Some(watcher) => {
                watcher.active = true;
                watcher.fragment
            }
            None => return Ok(()),
        };
        let mut response = self.response(id, revision);
        response.events = events;
        if !fragment || response.encoded_len() <= self.options.max_response_bytes {
            return self.send(response).await;
        }
        // Split into pieces under the limit (at least one event each); every
        // piece but the last says more is coming.
        let mut pieces: Vec<Vec<Event>> = vec![Vec::new()];
        let mut size = 0;
        for event in std::mem::take(&mut response.events) {
            let len = event.encoded_len();
            if size + len > self.options.max_response_bytes
                && !pieces.last().is_none_or(Vec::is_empty)
            {
                pieces.push(Vec::new());
                size = 0;
            }
            size += len;
            if let Some(piece) = pieces.last_mut() {
                piece.push(event);
            }
        }
        let count = pieces.len();
        for (i, events) in pieces.into_iter().enumerate() {
            let mut piece = self.response(id, revision);
            piece.events = events;
            piece.fragment = i + 1 < count;
            self.send(piece).await?;
        }
        Ok(())
    }

    /// Watchers that asked for progress notifications and had no events
    /// since the last tick learn the current revision.
    async fn progress_tick(&mut self) -> Result<(), Closed> {
        let revision = self.store.revision();
        let mut due = Vec::new();
        for (id, watcher) in &mut self.watchers {
            if watcher.progress_notify && !watcher.active && watcher.next > revision {
                due.push(*id);
            }
            watcher.active = false;
        }
        for id in due {
            self.send(self.response(id, revision)).await?;
        }
        Ok(())
    }
}
