//! The work queue (client-go's `workqueue` semantics): a key is queued at
//! most once; a key being processed is not handed to a second worker, and if
//! it is added meanwhile it is processed again afterwards. Failures come back
//! with per-key exponential backoff; `add_after` schedules a later look.
//! Event handlers only add keys; workers take keys and reconcile.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Debug)]
struct State<K> {
    queue: VecDeque<K>,
    dirty: HashSet<K>,
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
    shut_down: bool,
}

#[derive(Debug)]
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    notify: Notify,
    /// First retry delay; doubles per failure up to `max_backoff`.
    base_backoff: Duration,
    max_backoff: Duration,
}

impl<K: Clone + Eq + Hash + Send + 'static> WorkQueue<K> {
    pub fn new() -> Arc<Self> {
        Self::with_backoff(Duration::from_millis(5), Duration::from_secs(1000))
    }

    pub fn with_backoff(base_backoff: Duration, max_backoff: Duration) -> Arc<Self> {
        Arc::new(WorkQueue {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                shut_down: false,
            }),
            notify: Notify::new(),
            base_backoff,
            max_backoff,
        })
    }

    pub fn add(&self, key: K) {
        let mut s = self.state.lock().unwrap();
        if s.shut_down || s.dirty.contains(&key) {
            return;
        }
        s.dirty.insert(key.clone());
        if s.processing.contains(&key) {
            return;
        }
        s.queue.push_back(key);
        drop(s);
        self.notify.notify_one();
    }

    /// Adds `key` after `delay` (from a timer task).
    pub fn add_after(self: &Arc<Self>, key: K, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let queue = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// Adds `key` again after its backoff, which doubles with each failure.
    pub fn add_rate_limited(self: &Arc<Self>, key: K) {
        let failures = {
            let mut s = self.state.lock().unwrap();
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(30));
        let delay = self
            .base_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        self.add_after(key, delay);
    }

    /// The key succeeded: its backoff starts over.
    pub fn forget(&self, key: &K) {
        self.state.lock().unwrap().failures.remove(key);
    }

    pub fn failures(&self, key: &K) -> u32 {
        self.state
            .lock()
            .unwrap()
            .failures
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// The next key, or `None` once shut down.
    pub async fn get(&self) -> Option<K> {
        loop {
            {
                let mut s = self.state.lock().unwrap();
                if s.shut_down {
                    return None;
                }
                if let Some(key) = s.queue.pop_front() {
                    s.dirty.remove(&key);
                    s.processing.insert(key.clone());
                    return Some(key);
                }
            }
            self.notify.notified().await;
        }
    }

    /// Processing of `key` finished; if it was added meanwhile it is queued again.
    pub fn done(&self, key: &K) {
        let mut s = self.state.lock().unwrap();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.queue.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.state.lock().unwrap().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn shut_down(&self) {
        self.state.lock().unwrap().shut_down = true;
        self.notify.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn dedups_and_requeues_keys_added_while_processing() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        let first = q.get().await.unwrap();
        assert_eq!(first, "a");
        // Added while processing: not handed out twice, queued after done.
        q.add("a");
        assert_eq!(q.get().await.unwrap(), "b");
        assert!(q.is_empty());
        q.done(&"a");
        assert_eq!(q.get().await.unwrap(), "a");
        q.done(&"a");
        q.done(&"b");
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_and_forget_resets() {
        let q = WorkQueue::with_backoff(Duration::from_millis(10), Duration::from_millis(50));
        let start = tokio::time::Instant::now();
        let mut delays = Vec::new();
        for _ in 0..4 {
            q.add_rate_limited("k");
            let k = q.get().await.unwrap();
            q.done(&k);
            delays.push(start.elapsed().as_millis());
        }
        // 10, +20, +40, +50 (capped)
        assert_eq!(delays, vec![10, 30, 70, 120]);
        assert_eq!(q.failures(&"k"), 4);
        q.forget(&"k");
        assert_eq!(q.failures(&"k"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_waits() {
        let q = WorkQueue::new();
        q.add_after("later", Duration::from_secs(30));
        tokio::task::yield_now().await;
        assert!(q.is_empty());
        tokio::time::advance(Duration::from_secs(29)).await;
        tokio::task::yield_now().await;
        assert!(q.is_empty());
        let got = tokio::time::timeout(Duration::from_secs(2), q.get()).await;
        assert_eq!(got.unwrap(), Some("later"));
    }

    #[tokio::test(start_paused = true)]
    async fn shut_down_ends_workers() {
        let q: Arc<WorkQueue<&str>> = WorkQueue::new();
        let worker = tokio::spawn({
            let q = q.clone();
            async move { q.get().await }
        });
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(worker.await.unwrap(), None);
    }
}
