//! Prometheus metrics with kube-scheduler's names: attempts by result, attempt latency, and
//! pending pods by queue.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds (upstream: 1ms × 2^0..14).
const BUCKETS: [f64; 15] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192, 16.384,
];

#[derive(Debug, Clone, Copy)]
pub enum AttemptResult {
    Scheduled,
    Unschedulable,
    Error,
}

impl AttemptResult {
    fn label(self) -> &'static str {
        match self {
            AttemptResult::Scheduled => "scheduled",
            AttemptResult::Unschedulable => "unschedulable",
            AttemptResult::Error => "error",
        }
    }
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// Per result: attempts and their latency.
    attempts: [Histogram; 3],
    /// active, backoff, unschedulable (and gated, always 0).
    pending: [AtomicU64; 3],
    /// Whether the caches have synced (for /readyz).
    pub synced: std::sync::atomic::AtomicBool,
}

impl Metrics {
    pub fn attempt(&self, result: AttemptResult, took: Duration) {
        let h = &self.attempts[result as usize];
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn attempts(&self, result: AttemptResult) -> u64 {
        self.attempts[result as usize].count.load(Ordering::Relaxed)
    }

    pub fn set_pending(&self, active: usize, backoff: usize, unschedulable: usize) {
        self.pending[0].store(active as u64, Ordering::Relaxed);
        self.pending[1].store(backoff as u64, Ordering::Relaxed);
        self.pending[2].store(unschedulable as u64, Ordering::Relaxed);
    }

    /// The Prometheus text format.
    pub fn render(&self, profile: &str) -> String {
        let results = [
            AttemptResult::Scheduled,
            AttemptResult::Unschedulable,
            AttemptResult::Error,
        ];
        let mut out = String::new();
        out.push_str("# HELP scheduler_schedule_attempts_total Number of attempts to schedule pods, by the result.\n");
        out.push_str("# TYPE scheduler_schedule_attempts_total counter\n");
        for r in results {
            let n = self.attempts(r);
            let _ = writeln!(
                out,
                "scheduler_schedule_attempts_total{{profile=\"{profile}\",result=\"{}\"}} {n}",
                r.label()
            );
        }
        out.push_str("# HELP scheduler_scheduling_attempt_duration_seconds Scheduling attempt latency in seconds (scheduling algorithm + binding).\n");
        out.push_str("# TYPE scheduler_scheduling_attempt_duration_seconds histogram\n");
        for r in results {
            let h = &self.attempts[r as usize];
            let labels = format!("profile=\"{profile}\",result=\"{}\"", r.label());
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "scheduler_scheduling_attempt_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.buckets[i].load(Ordering::Relaxed)
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "scheduler_scheduling_attempt_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "scheduler_scheduling_attempt_duration_seconds_sum{{{labels}}} {}",
                h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "scheduler_scheduling_attempt_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out.push_str("# HELP scheduler_pending_pods Number of pending pods, by the queue type.\n");
        out.push_str("# TYPE scheduler_pending_pods gauge\n");
        for (i, queue) in ["active", "backoff", "unschedulable"].iter().enumerate() {
            let _ = writeln!(
                out,
                "scheduler_pending_pods{{queue=\"{queue}\"}} {}",
                self.pending[i].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "scheduler_pending_pods{{queue=\"gated\"}} 0");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_buckets() {
        let m = Metrics::default();
        m.attempt(AttemptResult::Scheduled, Duration::from_millis(3));
        m.attempt(AttemptResult::Scheduled, Duration::from_millis(20));
        m.attempt(AttemptResult::Unschedulable, Duration::from_millis(1));
        m.set_pending(4, 2, 1);
        let text = m.render("default-scheduler");
        for line in [
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 2",
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"unschedulable\"} 1",
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"error\"} 0",
            "scheduler_scheduling_attempt_duration_seconds_bucket{profile=\"default-scheduler\",result=\"scheduled\",le=\"0.002\"} 0",
            "scheduler_scheduling_attempt_duration_seconds_bucket{profile=\"default-scheduler\",result=\"scheduled\",le=\"0.004\"} 1",
            "scheduler_scheduling_attempt_duration_seconds_bucket{profile=\"default-scheduler\",result=\"scheduled\",le=\"0.032\"} 2",
            "scheduler_scheduling_attempt_duration_seconds_sum{profile=\"default-scheduler\",result=\"scheduled\"} 0.023",
            "scheduler_pending_pods{queue=\"active\"} 4",
            "scheduler_pending_pods{queue=\"backoff\"} 2",
            "scheduler_pending_pods{queue=\"unschedulable\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
