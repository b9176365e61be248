//! Which endpoint a new connection (or UDP session) goes to — pure, with
//! the clock and the dice passed in, so it is table-tested.
//!
//! As the nftables rules do it: one of the usable endpoints (ready, else
//! serving-but-terminating: [`crate::rules::usable`]) at random with equal
//! chance; with `sessionAffinity: ClientIP` a client seen within the
//! timeout goes back to its endpoint while that endpoint is still usable,
//! and each new connection restarts its timeout (nftables' `update @aff`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Past this many remembered clients, expired ones are swept on the next pick.
const SWEEP_ABOVE: usize = 4096;

/// The endpoints of one service port and, with affinity, its clients.
#[derive(Debug, Clone, Default)]
pub struct Balancer {
    endpoints: Vec<SocketAddr>,
    affinity: Option<Duration>,
    /// client → (its endpoint, when it last opened a connection).
    clients: HashMap<IpAddr, (SocketAddr, Instant)>,
}

impl Balancer {
    pub fn new(endpoints: Vec<SocketAddr>, affinity: Option<Duration>) -> Balancer {
        Balancer {
            endpoints,
            affinity,
            clients: HashMap::new(),
        }
    }

    /// New endpoints (an EndpointSlice changed): clients keep their endpoint
    /// if it is still there, as the per-endpoint sets of the nftables rules
    /// do; a new timeout starts the table afresh.
    pub fn update(&mut self, endpoints: Vec<SocketAddr>, affinity: Option<Duration>) {
        if affinity != self.affinity {
            self.clients.clear();
        }
        self.clients.retain(|_, (e, _)| endpoints.contains(e));
        self.endpoints = endpoints;
        self.affinity = affinity;
    }

    pub fn endpoints(&self) -> &[SocketAddr] {
        &self.endpoints
    }

    /// The endpoint for a new connection from `client`, skipping `tried`
    /// (endpoints that refused this connection already); `None` when none
    /// is left. `random(n)` returns a number below `n`.
    pub fn pick(
        &mut self,
        client: IpAddr,
        now: Instant,
        tried: &[SocketAddr],
        random: &mut impl FnMut(usize) -> usize,
    ) -> Option<SocketAddr> {
        let candidates: Vec<SocketAddr> = self
            .endpoints
            .iter()
            .filter(|e| !tried.contains(e))
            .copied()
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let Some(timeout) = self.affinity else {
            return Some(candidates[random(candidates.len()) % candidates.len()]);
        };
        if self.clients.len() > SWEEP_ABOVE {
            self.clients
                .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < timeout);
        }
        if let Some((endpoint, seen)) = self.clients.get_mut(&client)
            && now.saturating_duration_since(*seen) < timeout
            && candidates.contains(endpoint)
        {
            *seen = now;
            return Some(*endpoint);
        }
        let chosen = candidates[random(candidates.len()) % candidates.len()];
        self.clients.insert(client, (chosen, now));
        Some(chosen)
    }

    /// Forgets `client`'s endpoint (it refused a connection).
    pub fn forget(&mut self, client: IpAddr) {
        self.clients.remove(&client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// One step of a scenario: at `at` seconds, `client` opens a
    /// connection (having already tried `tried`) with the dice showing
    /// `dice`; `want` is where it goes.
    struct Step {
        at: u64,
        client: &'static str,
        tried: Vec<&'static str>,
        dice: usize,
        want: Option<&'static str>,
    }

    fn step(at: u64, client: &'static str, dice: usize, want: Option<&'static str>) -> Step {
        Step {
            at,
            client,
            tried: vec![],
            dice,
            want,
        }
    }

    fn run(name: &str, endpoints: &[&str], affinity: Option<u64>, steps: Vec<Step>) {
        let start = Instant::now();
        let mut b = Balancer::new(
            endpoints.iter().map(|e| addr(e)).collect(),
            affinity.map(Duration::from_secs),
        );
        for (i, s) in steps.into_iter().enumerate() {
            let tried: Vec<SocketAddr> = s.tried.iter().map(|t| addr(t)).collect();
            let got = b.pick(
                s.client.parse().unwrap(),
                start + Duration::from_secs(s.at),
                &tried,
                &mut |n| s.dice % n,
            );
            assert_eq!(got, s.want.map(addr), "{name}: step {i}");
        }
    }

    const A: &str = "10.244.1.2:8080";
    const B: &str = "10.244.1.3:8080";
    const C: &str = "10.244.1.4:8080";

    #[test]
    fn picks() {
        run(
            "no endpoints: refused",
            &[],
            None,
            vec![step(0, "1.1.1.1", 0, None)],
        );
        run(
            "random without affinity: the dice decide every time",
            &[A, B, C],
            None,
            vec![
                step(0, "1.1.1.1", 0, Some(A)),
                step(0, "1.1.1.1", 1, Some(B)),
                step(0, "1.1.1.1", 2, Some(C)),
            ],
        );
        run(
            "affinity: a client sticks within the timeout, others are free",
            &[A, B, C],
            Some(10),
            vec![
                step(0, "1.1.1.1", 1, Some(B)),
                step(5, "1.1.1.1", 2, Some(B)),
                step(5, "2.2.2.2", 2, Some(C)),
                // Each connection restarts the timeout: 5 + 9 < 10 after the last.
                step(14, "1.1.1.1", 0, Some(B)),
                // 10 s idle: the entry expired, the dice decide again.
                step(24, "1.1.1.1", 0, Some(A)),
            ],
        );
        run(
            "a refused endpoint is skipped, and the client moves",
            &[A, B],
            Some(10),
            vec![
                step(0, "1.1.1.1", 0, Some(A)),
                Step {
                    at: 1,
                    client: "1.1.1.1",
                    tried: vec![A],
                    dice: 0,
                    want: Some(B),
                },
                step(2, "1.1.1.1", 0, Some(B)),
                Step {
                    at: 3,
                    client: "1.1.1.1",
                    tried: vec![A, B],
                    dice: 0,
                    want: None,
                },
            ],
        );
    }

    #[test]
    fn endpoint_changes_keep_clients_whose_endpoint_stays() {
        let now = Instant::now();
        let mut b = Balancer::new(vec![addr(A), addr(B)], Some(Duration::from_secs(60)));
        let one: IpAddr = "1.1.1.1".parse().unwrap();
        let two: IpAddr = "2.2.2.2".parse().unwrap();
        assert_eq!(b.pick(one, now, &[], &mut |_| 0), Some(addr(A)));
        assert_eq!(b.pick(two, now, &[], &mut |_| 1), Some(addr(B)));
        // B leaves, C comes: one stays on A, two is placed anew.
        b.update(vec![addr(A), addr(C)], Some(Duration::from_secs(60)));
        assert_eq!(b.pick(one, now, &[], &mut |_| 1), Some(addr(A)));
        assert_eq!(b.pick(two, now, &[], &mut |_| 1), Some(addr(C)));
        // Affinity off: every pick is free again.
        b.update(vec![addr(A), addr(C)], None);
        assert_eq!(b.pick(one, now, &[], &mut |_| 1), Some(addr(C)));
        // Forgetting a client frees it.
        b.update(vec![addr(A), addr(C)], Some(Duration::from_secs(60)));
        assert_eq!(b.pick(one, now, &[], &mut |_| 0), Some(addr(A)));
        b.forget(one);
        assert_eq!(b.pick(one, now, &[], &mut |_| 1), Some(addr(C)));
    }
}
