//! The watch cache: one etcd watch per resource serves every watcher.
//!
//! Each resource's cache lists its prefix once, then follows one etcd watch.
//! It keeps every current object (lists are served from memory) and the
//! events of the last `history` (5 minutes by default), so a client that
//! lost its connection can resume from the last resourceVersion it saw. A
//! resourceVersion older than the history kept is answered with 410 Expired,
//! and the client relists. A thousand `kubectl get -w` are a thousand
//! broadcast receivers, not a thousand etcd watches.
//!
//! When the etcd watch breaks (or the history it needs was compacted), the
//! cache lists again and starts a new history; open watches are closed, and
//! clients re-watch from where they were (or get 410 and relist).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use etcd_client::{EventType, WatchOptions};
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::{Storage, StorageError, decode, prefix_end};
use crate::registry::Resource;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// An object in the cache, with its JSON encoding made once, when first
/// needed, and then shared: a thousand watchers of one event, or a hundred
/// lists of the same pods, serialize each object once. It reads as the
/// object itself (`Deref<Target = Value>`).
#[derive(Debug)]
pub struct Cached {
    value: Value,
    json: std::sync::OnceLock<bytes::Bytes>,
}

impl Cached {
    pub fn new(value: Value) -> Arc<Cached> {
        Arc::new(Cached {
            value,
            json: std::sync::OnceLock::new(),
        })
    }

    /// The object as JSON.
    pub fn json(&self) -> &[u8] {
        self.json
            .get_or_init(|| serde_json::to_vec(&self.value).unwrap_or_default().into())
    }
}

impl std::ops::Deref for Cached {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.value
    }
}

/// One change to one object, as watchers see it.
#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventKind,
    pub key: String,
    /// The object after the change (before it, for a delete), with the
    /// event's resourceVersion.
    pub object: Arc<Cached>,
    /// The object before the change, for selector transitions.
    pub prev: Option<Arc<Cached>>,
    pub revision: i64,
    at: Instant,
}

impl CacheEvent {
    /// An event made by hand, for tests of what watchers see.
    #[doc(hidden)]
    pub fn for_test(
        kind: EventKind,
        object: Arc<Cached>,
        prev: Option<Arc<Cached>>,
        revision: i64,
        at: Instant,
    ) -> Self {
        CacheEvent {
            kind,
            key: String::new(),
            object,
            prev,
            revision,
            at,
        }
    }
}

/// The events a new watch sends first, and the receiver of what follows.
pub type Subscription = (Vec<Arc<CacheEvent>>, broadcast::Receiver<Arc<CacheEvent>>);

/// Why a watch cannot start.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchStartError {
    /// The resourceVersion is older than the history kept.
    Expired { asked: i64, oldest: i64 },
}

struct State {
    objects: BTreeMap<String, Arc<Cached>>,
    history: VecDeque<Arc<CacheEvent>>,
    /// Watches from this revision on can be served (events after it are kept).
    oldest: i64,
    /// The cache is current up to this store revision.
    revision: i64,
    events: broadcast::Sender<Arc<CacheEvent>>,
}

pub struct ResourceCache {
    pub resource: &'static Resource,
    prefix: String,
    state: RwLock<State>,
    progress: watch::Sender<i64>,
    history: Duration,
}

/// Most events kept, whatever their age, to bound memory.
const MAX_HISTORY_EVENTS: usize = 100_000;
/// Events queued per watcher before it is considered too slow and closed.
const WATCHER_QUEUE: usize = 4096;

impl ResourceCache {
    fn new(resource: &'static Resource, history: Duration) -> Self {
        let (events, _) = broadcast::channel(WATCHER_QUEUE);
        let state = State {
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            oldest: 0,
            revision: 0,
            events,
        };
        ResourceCache {
            resource,
            prefix: resource.key_prefix(),
            state: RwLock::new(state),
            progress: watch::channel(0).0,
            history,
        }
    }

    /// The revision the cache is current at (0 until its first list).
    pub fn revision(&self) -> i64 {
        *self.progress.borrow()
    }

    /// Waits until the cache is current at `revision` or later.
    pub async fn wait_for(&self, revision: i64, timeout: Duration) -> bool {
        let mut rx = self.progress.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The current objects under `prefix` (a namespace's, or all), and the
    /// revision they are current at.
    pub fn list(&self, prefix: &str) -> (Vec<Arc<Cached>>, i64) {
        let state = self.state.read().expect("cache lock");
        let objects = state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect();
        (objects, state.revision)
    }

    pub fn get(&self, key: &str) -> Option<Arc<Cached>> {
        self.state
            .read()
            .expect("cache lock")
            .objects
            .get(key)
            .cloned()
    }

    /// Starts a watch: the events to send first and a receiver for the rest,
    /// with no gap between them. `after`: replay events after this revision;
    /// `None`: every current object as ADDED.
    pub fn subscribe(&self, after: Option<i64>) -> Result<Subscription, WatchStartError> {
        let state = self.state.read().expect("cache lock");
        let first = match after {
            None => state
                .objects
                .iter()
                .map(|(key, object)| {
                    let revision = crate::object::str_at(object, &["metadata", "resourceVersion"])
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0);
                    Arc::new(CacheEvent {
                        kind: EventKind::Added,
                        key: key.clone(),
                        object: object.clone(),
                        prev: None,
                        revision,
                        at: Instant::now(),
                    })
                })
                .collect(),
            Some(asked) if asked < state.oldest => {
                return Err(WatchStartError::Expired {
                    asked,
                    oldest: state.oldest,
                });
            }
            Some(asked) => state
                .history
                .iter()
                .filter(|e| e.revision > asked)
                .cloned()
                .collect(),
        };
        Ok((first, state.events.subscribe()))
    }

    /// Lists, then follows the etcd watch until `stop`; starts over when the
    /// watch breaks.
    async fn run(self: Arc<Self>, storage: Storage, stop: CancellationToken) {
        loop {
            match self.sync(&storage, &stop).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(resource = self.resource.plural, error = %err, "watch cache lost its etcd watch; listing again");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
        }
    }

    async fn sync(&self, storage: &Storage, stop: &CancellationToken) -> Result<(), StorageError> {
        let mut objects = BTreeMap::new();
        let mut after: Option<String> = None;
        let mut revision = None;
        loop {
            let page = storage
                .list(&self.prefix, after.as_deref(), 5000, revision)
                .await?;
            revision = Some(page.revision);
            for item in page.items {
                after = Some(item.key.clone());
                objects.insert(item.key, Cached::new(self.resource.served(item.value)));
            }
            if !page.more {
                break;
            }
        }
        let listed_at = revision.unwrap_or(0);
        {
            let mut state = self.state.write().expect("cache lock");
            state.objects = objects;
            state.history.clear();
            state.oldest = listed_at;
            state.revision = listed_at;
            // A new channel: watchers of the old history are closed and resume.
            state.events = broadcast::channel(WATCHER_QUEUE).0;
        }
        self.progress.send_replace(listed_at);

        let options = WatchOptions::new()
            .with_range(prefix_end(&self.prefix))
            .with_start_revision(listed_at + 1)
            .with_prev_key();
        let mut stream = storage
            .watch_client()
            .watch(self.prefix.as_str(), Some(options))
            .await?;
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                // Learn the store revision even when this resource is quiet,
                // so consistent reads and bookmarks need not wait for an event.
                _ = tick.tick() => stream.request_progress().await?,
                message = stream.message() => {
                    let Some(resp) = message? else { return Err(StorageError::Unavailable("the etcd watch ended".into())) };
                    if resp.canceled() || resp.compact_revision() != 0 {
                        return Err(StorageError::Compacted);
                    }
                    let header = resp.header().map_or(0, |h| h.revision());
                    if resp.events().is_empty() {
                        if !resp.created() && header > 0 {
                            self.advance(header);
                        }
                        continue;
                    }
                    self.apply(resp.events())?;
                }
            }
        }
    }

    fn advance(&self, revision: i64) {
        let mut state = self.state.write().expect("cache lock");
        if revision > state.revision {
            state.revision = revision;
            drop(state);
            self.progress.send_replace(revision);
        }
    }

    fn apply(&self, events: &[etcd_client::Event]) -> Result<(), StorageError> {
        let mut state = self.state.write().expect("cache lock");
        let now = Instant::now();
        for event in events {
            let Some(kv) = event.kv() else { continue };
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let revision = kv.mod_revision();
            let cache_event = match event.event_type() {
                EventType::Put => {
                    let object = decode(kv.key(), kv.value(), revision)?.value;
                    let object = Cached::new(self.resource.served(object));
                    let prev = state.objects.insert(key.clone(), object.clone());
                    let kind = if prev.is_none() {
                        EventKind::Added
                    } else {
                        EventKind::Modified
                    };
                    CacheEvent {
                        kind,
                        key,
                        object,
                        prev,
                        revision,
                        at: now,
                    }
                }
                EventType::Delete => {
                    let cached = state.objects.remove(&key);
                    // The object as it was, stamped with the delete's revision.
                    let last = match event.prev_kv() {
                        Some(prev) => self
                            .resource
                            .served(decode(prev.key(), prev.value(), revision)?.value),
                        None => {
                            let mut last =
                                cached.as_deref().map_or(Value::Null, |c| Value::clone(c));
                            crate::object::set(
                                &mut last,
                                &["metadata", "resourceVersion"],
                                Value::String(revision.to_string()),
                            );
                            last
                        }
                    };
                    CacheEvent {
                        kind: EventKind::Deleted,
                        key,
                        object: Cached::new(last),
                        prev: cached,
                        revision,
                        at: now,
                    }
                }
            };
            let cache_event = Arc::new(cache_event);
            state.revision = state.revision.max(revision);
            state.history.push_back(cache_event.clone());
            // Nobody watching is fine.
            let _ = state.events.send(cache_event);
        }
        while let Some(front) = state.history.front() {
            let too_old = now.duration_since(front.at) > self.history;
            if !too_old && state.history.len() <= MAX_HISTORY_EVENTS {
                break;
            }
            let dropped = front.revision;
            state.history.pop_front();
            state.oldest = state.oldest.max(dropped);
        }
        let revision = state.revision;
        drop(state);
        self.progress.send_replace(revision);
        Ok(())
    }
}

/// The caches of every resource.
pub struct WatchCache {
    caches: HashMap<String, Arc<ResourceCache>>,
}

impl WatchCache {
    /// Starts one cache per resource; they run until `stop`.
    pub fn start(
        storage: &Storage,
        resources: impl IntoIterator<Item = &'static Resource>,
        history: Duration,
        stop: &CancellationToken,
    ) -> Self {
        let mut caches = HashMap::new();
        for resource in resources {
            let cache = Arc::new(ResourceCache::new(resource, history));
            tokio::spawn(cache.clone().run(storage.clone(), stop.clone()));
            caches.insert(resource.qualified(), cache);
        }
        WatchCache { caches }
    }

    pub fn of(&self, resource: &Resource) -> Option<&Arc<ResourceCache>> {
        self.caches.get(&resource.qualified())
    }
}
