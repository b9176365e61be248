//! The restart back-off of a pod's containers, as upstream's kubelet keeps it:
//! the first restart is immediate, then each restart waits 10 s, 20 s, 40 s …
//! up to 5 minutes after the container last finished; a container that ran
//! for 10 minutes before it ended starts over at no delay.
//!
//! Worked example (a container that exits at once, every time):
//!
//! | exit # | delay before restart | restartCount after |
//! | ------ | -------------------- | ------------------ |
//! | 1      | 0 s                  | 1                  |
//! | 2      | 10 s                 | 2                  |
//! | 3      | 20 s                 | 3                  |
//! | 6      | 160 s                | 6                  |
//! | 7, 8 … | 300 s (the cap)      | 7, 8 …             |
//!
//! `--max-container-restart-period` lowers the cap (upstream's kubelet
//! config has the same knob, alpha in 1.32); `skiff up --demo` uses 20 s so
//! a class sees a crashing pod come back within the lesson.

use std::collections::HashMap;
use std::time::Duration;

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);
/// Running this long before exiting resets the back-off.
pub const STABLE: Duration = Duration::from_secs(600);

/// Per container name: the delay the next restart waits after the container
/// finished (none before the first restart).
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    delays: HashMap<String, Duration>,
    /// The cap ([`MAX`] unless `--max-container-restart-period` says less).
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::with_max(MAX)
    }
}

impl Backoff {
    /// Delays doubling up to `max` instead of 5 minutes (at least the
    /// first 10 s step is kept only if `max` allows it).
    pub fn with_max(max: Duration) -> Backoff {
        Backoff {
            delays: HashMap::new(),
            max,
        }
    }

    /// How long container `name`, which finished at `finished_at` (ns), must
    /// still wait at `now` (ns) before it may restart; `None` when it may now.
    pub fn remaining(&self, name: &str, finished_at: i64, now: i64) -> Option<Duration> {
        let delay = *self.delays.get(name)?;
        let until = finished_at.saturating_add(delay.as_nanos() as i64);
        (now < until).then(|| Duration::from_nanos((until - now) as u64))
    }

    /// The current delay of `name` (for the CrashLoopBackOff message).
    pub fn delay(&self, name: &str) -> Duration {
        self.delays.get(name).copied().unwrap_or_default()
    }

    /// Records a restart of `name` that had run for `ran`: the next one waits longer.
    pub fn restarted(&mut self, name: &str, ran: Duration) {
        if ran >= STABLE {
            self.delays.remove(name);
        }
        let next = match self.delays.get(name) {
            None => INITIAL.min(self.max),
            Some(d) => (*d * 2).min(self.max),
        };
        self.delays.insert(name.to_string(), next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn a_lower_cap_for_demonstrations() {
        let mut b = Backoff::with_max(Duration::from_secs(20));
        let mut seen = Vec::new();
        for _ in 0..4 {
            b.restarted("c", Duration::from_secs(1));
            seen.push(b.delay("c").as_secs());
        }
        assert_eq!(seen, [10, 20, 20, 20]);
        let mut tiny = Backoff::with_max(Duration::from_secs(5));
        tiny.restarted("c", Duration::from_secs(1));
        assert_eq!(tiny.delay("c").as_secs(), 5);
    }

    #[test]
    fn delays_double_to_the_cap_and_reset_after_a_stable_run() {
        let mut b = Backoff::default();
        assert_eq!(
            b.remaining("c", 100 * S, 100 * S),
            None,
            "first restart at once"
        );
        let mut seen = Vec::new();
        for _ in 0..7 {
            b.restarted("c", Duration::from_secs(1));
            seen.push(b.delay("c").as_secs());
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(
            b.remaining("c", 100 * S, 250 * S),
            Some(Duration::from_secs(150))
        );
        assert_eq!(b.remaining("c", 100 * S, 400 * S), None);
        b.restarted("c", STABLE);
        assert_eq!(
            b.delay("c"),
            INITIAL,
            "a 10-minute run starts the back-off over"
        );
        assert_eq!(b.remaining("other", 0, 0), None);
    }
}
