//! The scheduling queue, as kube-scheduler's: pods wait in one of three places.
//!
//! - **active**: ready to be tried, highest `spec.priority` first, then first come;
//! - **backoff**: tried and failed recently; back to active after 1s, 2s, 4s… (at most 10s)
//!   counted from the last failure;
//! - **unschedulable**: no node fit at the last try; they stay until something happens that
//!   could make them fit — a node added or changed, a pod deleted ([`Queue::move_all`]) —
//!   and at the latest after 5 minutes.
//!
//! A pod being scheduled or bound is *in flight*: updates to it are kept, and it leaves the
//! queue when its binding succeeds ([`Queue::done`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);
const STALE_SCAN_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Active,
    Backoff(Instant),
    Unschedulable,
    InFlight,
}

/// A pod in the queue.
#[derive(Debug, Clone)]
pub struct QueuedPod {
    pub pod: Arc<Pod>,
    pub uid: String,
    /// How many times it was popped.
    pub attempts: u32,
    /// When the queue first saw it.
    pub first_seen: Instant,
    pub last_failure: Option<Instant>,
    pub place: Place,
    ticket: u64,
}

/// The backoff after `attempts` tries: 1s doubling up to 10s.
pub fn backoff(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(16);
    (INITIAL_BACKOFF * 2u32.pow(exp)).min(MAX_BACKOFF)
}

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// What an update must change for an unschedulable pod to be worth another try.
fn fit_inputs(pod: &Pod) -> (Option<String>, Option<String>) {
    (
        serde_json::to_string(&pod.spec).ok(),
        serde_json::to_string(&pod.metadata.labels).ok(),
    )
}

#[derive(Debug, Default)]
pub struct Queue {
    pods: HashMap<String, QueuedPod>,
    /// (priority, earliest ticket first, uid); entries whose ticket no longer matches are stale.
    active: BinaryHeap<(i32, Reverse<u64>, String)>,
    backoff: BinaryHeap<Reverse<(Instant, String)>>,
    next_ticket: u64,
    /// When unschedulable pods were last checked for waiting too long (once a second at
    /// most: the check walks the queue).
    last_stale_scan: Option<Instant>,
}

impl Queue {
    pub fn new() -> Queue {
        Queue::default()
    }

    fn activate(&mut self, uid: &str) {
        let Some(entry) = self.pods.get_mut(uid) else {
            return;
        };
        self.next_ticket += 1;
        entry.ticket = self.next_ticket;
        entry.place = Place::Active;
        self.active
            .push((priority(&entry.pod), Reverse(entry.ticket), uid.to_string()));
    }

    fn requeue_after_backoff(&mut self, uid: &str, now: Instant) {
        let Some(entry) = self.pods.get_mut(uid) else {
            return;
        };
        let ready = entry
            .last_failure
            .map(|t| t + backoff(entry.attempts))
            .filter(|t| *t > now);
        match ready {
            Some(at) => {
                entry.place = Place::Backoff(at);
                self.backoff.push(Reverse((at, uid.to_string())));
            }
            None => self.activate(uid),
        }
    }

    /// A pending pod was seen (added or updated).
    pub fn add_or_update(&mut self, pod: Arc<Pod>, now: Instant) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        match self.pods.get_mut(&uid) {
            Some(entry) => {
                let changed = fit_inputs(&entry.pod) != fit_inputs(&pod);
                entry.pod = pod;
                if changed && entry.place == Place::Unschedulable {
                    self.requeue_after_backoff(&uid, now);
                }
            }
            None => {
                self.pods.insert(
                    uid.clone(),
                    QueuedPod {
                        pod,
                        uid: uid.clone(),
                        attempts: 0,
                        first_seen: now,
                        last_failure: None,
                        place: Place::Active,
                        ticket: 0,
                    },
                );
                self.activate(&uid);
            }
        }
    }

    pub fn remove(&mut self, uid: &str) -> Option<QueuedPod> {
        self.pods.remove(uid)
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    pub fn get(&self, uid: &str) -> Option<&QueuedPod> {
        self.pods.get(uid)
    }

    /// Moves backoff pods whose time has come to active, and unschedulable pods that waited
    /// longer than [`MAX_UNSCHEDULABLE`] (checked at most once a second).
    pub fn flush(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.backoff.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, uid))) = self.backoff.pop() else {
                break;
            };
            if self
                .pods
                .get(&uid)
                .is_some_and(|e| e.place == Place::Backoff(at))
            {
                self.activate(&uid);
            }
        }
        if self
            .last_stale_scan
            .is_some_and(|t| now.duration_since(t) < STALE_SCAN_INTERVAL)
        {
            return;
        }
        self.last_stale_scan = Some(now);
        let stale: Vec<String> = self
            .pods
            .values()
            .filter(|e| {
                e.place == Place::Unschedulable
                    && e.last_failure
                        .is_some_and(|t| now.duration_since(t) >= MAX_UNSCHEDULABLE)
            })
            .map(|e| e.uid.clone())
            .collect();
        for uid in stale {
            self.activate(&uid);
        }
    }

    /// The next pod to try (it becomes in flight), after [`flush`](Self::flush)ing.
    pub fn pop(&mut self, now: Instant) -> Option<QueuedPod> {
        self.flush(now);
        while let Some((_, Reverse(ticket), uid)) = self.active.pop() {
            if let Some(entry) = self.pods.get_mut(&uid)
                && entry.place == Place::Active
                && entry.ticket == ticket
            {
                entry.place = Place::InFlight;
                entry.attempts += 1;
                return Some(entry.clone());
            }
        }
        None
    }

    /// No node fit: wait for a change in the cluster.
    pub fn unschedulable(&mut self, uid: &str, now: Instant) {
        if let Some(entry) = self.pods.get_mut(uid) {
            entry.place = Place::Unschedulable;
            entry.last_failure = Some(now);
        }
    }

    /// An error (binding failed, …): try again after the backoff.
    pub fn retry_after_backoff(&mut self, uid: &str, now: Instant) {
        if let Some(entry) = self.pods.get_mut(uid) {
            entry.last_failure = Some(now);
            self.requeue_after_backoff(uid, now);
        }
    }

    /// Bound: the pod leaves the queue.
    pub fn done(&mut self, uid: &str) -> Option<QueuedPod> {
        self.pods.remove(uid)
    }

    /// Something changed that could make unschedulable pods fit: each goes to active, or to
    /// backoff when its backoff has not run out yet.
    pub fn move_all(&mut self, now: Instant) {
        let waiting: Vec<String> = self
            .pods
            .values()
            .filter(|e| e.place == Place::Unschedulable)
            .map(|e| e.uid.clone())
            .collect();
        for uid in waiting {
            self.requeue_after_backoff(&uid, now);
        }
    }

    /// When [`flush`](Self::flush) next may have something to do: the first backoff to
    /// end, or the next check for unschedulable pods that waited too long.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let backoff = self.backoff.peek().map(|Reverse((at, _))| *at);
        let stale_scan = self.last_stale_scan.map(|t| t + STALE_SCAN_INTERVAL);
        [backoff, stale_scan].into_iter().flatten().min()
    }

    /// How many pods are (active, backoff, unschedulable, in flight).
    pub fn lengths(&self) -> (usize, usize, usize, usize) {
        let mut l = (0, 0, 0, 0);
        for e in self.pods.values() {
            match e.place {
                Place::Active => l.0 += 1,
                Place::Backoff(_) => l.1 += 1,
                Place::Unschedulable => l.2 += 1,
                Place::InFlight => l.3 += 1,
            }
        }
        l
    }

    pub fn uids(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, priority: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": uid, "uid": uid},
                "spec": {"priority": priority, "containers": []}}))
            .unwrap(),
        )
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        let secs: Vec<u64> = (1..=6).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn priority_then_arrival() {
        let t = Instant::now();
        let mut q = Queue::new();
        q.add_or_update(pod("a", 0), t);
        q.add_or_update(pod("b", 10), t);
        q.add_or_update(pod("c", 0), t);
        let order: Vec<String> = std::iter::from_fn(|| q.pop(t).map(|p| p.uid)).collect();
        assert_eq!(order, ["b", "a", "c"]);
        assert_eq!(q.lengths(), (0, 0, 0, 3));
    }

    #[test]
    fn unschedulable_waits_for_a_move_then_backs_off() {
        let t0 = Instant::now();
        let mut q = Queue::new();
        q.add_or_update(pod("a", 0), t0);
        assert_eq!(q.pop(t0).unwrap().attempts, 1);
        q.unschedulable("a", t0);
        assert_eq!(q.lengths(), (0, 0, 1, 0));
        // nothing happens by itself (until 5 minutes)
        assert!(q.pop(t0 + Duration::from_secs(60)).is_none());
        // an update that changes nothing about fit does not move it
        q.add_or_update(pod("a", 0), t0);
        assert_eq!(q.lengths(), (0, 0, 1, 0));
        // a node was added 0.5s after the failure: backoff (1s) not over → backoff queue
        q.move_all(t0 + Duration::from_millis(500));
        assert_eq!(q.lengths(), (0, 1, 0, 0));
        assert_eq!(q.next_wakeup(), Some(t0 + Duration::from_secs(1)));
        assert!(q.pop(t0 + Duration::from_millis(900)).is_none());
        let p = q.pop(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(p.attempts, 2);
        // second failure: 2s backoff; a move 3s later goes straight to active
        let t1 = t0 + Duration::from_secs(1);
        q.unschedulable("a", t1);
        q.move_all(t1 + Duration::from_secs(3));
        assert_eq!(q.lengths(), (1, 0, 0, 0));
        // errors back off too, then done removes it
        let p = q.pop(t1 + Duration::from_secs(3)).unwrap();
        assert_eq!(p.attempts, 3);
        let t2 = t1 + Duration::from_secs(3);
        q.retry_after_backoff("a", t2);
        assert_eq!(q.lengths(), (0, 1, 0, 0));
        assert!(q.pop(t2 + Duration::from_secs(3)).is_none()); // 4s backoff
        assert!(q.pop(t2 + Duration::from_secs(4)).is_some());
        q.done("a");
        assert_eq!(q.lengths(), (0, 0, 0, 0));
    }

    #[test]
    fn spec_change_retries_and_long_waits_flush() {
        let t0 = Instant::now();
        let mut q = Queue::new();
        q.add_or_update(pod("a", 0), t0);
        q.pop(t0);
        q.unschedulable("a", t0);
        // a spec change (priority here) is worth another try, after the backoff
        q.add_or_update(pod("a", 5), t0 + Duration::from_secs(2));
        assert_eq!(q.lengths(), (1, 0, 0, 0));
        q.pop(t0);
        q.unschedulable("a", t0);
        assert!(
            q.pop(t0 + MAX_UNSCHEDULABLE - Duration::from_secs(1))
                .is_none()
        );
        assert!(q.pop(t0 + MAX_UNSCHEDULABLE).is_some());
        // removed pods are not popped
        q.add_or_update(pod("b", 0), t0);
        q.remove("b");
        assert!(q.pop(t0).is_none());
    }
}
