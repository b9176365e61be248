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

use std::collections::HashMap;
use std::time::Duration;

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);
/// Running this long before exiting resets the back-off.
pub const STABLE: Duration = Duration::from_secs(600);

/// Per container name: the delay the next restart waits after the container
/// finished (none before the first restart).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Backoff {
    delays: HashMap<String, Duration>,
}

impl Backoff {
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
            None => INITIAL,
            Some(d) => (*d * 2).min(MAX),
        };
        self.delays.insert(name.to_string(), next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

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
