//! The userspace mode (`--mode userspace`): for machines without nftables,
//! the proxy itself listens on every Service's ClusterIP:port and NodePort
//! and relays to an endpoint — TCP spliced ([`tcp`]), UDP per-client
//! sessions ([`udp`]) — choosing endpoints as the rules do
//! ([`affinity`]).
//!
//! After every sync [`Userspace::sync`] diffs the listeners it wants
//! ([`wanted`], pure) against the open ones ([`diff`], pure): new ones are
//! bound, gone ones closed, the rest get their new endpoints in place (no
//! rebind, nothing dropped). A ClusterIP is made a local address by putting
//! it on `lo`, as the cluster DNS address is ([`crate::dns::link`]); it
//! comes off when its Service goes and on shutdown.
//!
//! What differs from the nftables mode: the endpoint sees the proxy's
//! address as the source (the node address the kernel picks for the route
//! to the endpoint), never the client's — so there is no masquerade to do
//! and no hairpin case (a pod reaching itself through its Service just gets
//! a connection from the node). A service port without usable endpoints has no listener, so the
//! kernel refuses it (TCP RST, ICMP port unreachable) exactly as the
//! nftables mode's reject does. Other addresses of the service range are
//! not dropped (nothing is in the packet path). Every byte crosses user
//! space twice, which costs throughput and latency (see `skiff-proxy
//! bench`). NodePorts listen on 0.0.0.0 (all of the node's addresses,
//! loopback included).

pub mod affinity;
pub mod tcp;
pub mod udp;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use self::affinity::Balancer;
use crate::dns::link::Links;
use crate::rules::{ServicePort, usable};

/// Where ClusterIPs go to be local (any kernel has `lo`).
pub const INTERFACE: &str = "lo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

/// One listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub protocol: Protocol,
    pub addr: SocketAddr,
}

/// What a listener relays to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `namespace/name:port` (logs).
    pub service: String,
    pub endpoints: Vec<SocketAddr>,
    pub affinity: Option<Duration>,
}

/// What to listen on: ClusterIP:port and 0.0.0.0:nodePort of every service
/// port with usable endpoints, and the ClusterIPs to make local (all of
/// them, with endpoints or not: a port without endpoints is refused by the
/// kernel, not routed away). `skip` is the cluster DNS address (the DNS
/// server's).
pub fn wanted(
    ports: &[ServicePort],
    skip: Option<&str>,
) -> (BTreeMap<Key, Target>, BTreeSet<IpAddr>) {
    let mut listeners = BTreeMap::new();
    let mut addresses = BTreeSet::new();
    for sp in ports {
        if Some(sp.cluster_ip.as_str()) == skip {
            continue;
        }
        let Ok(ip) = sp.cluster_ip.parse::<IpAddr>() else {
            // Headless ("None") or not yet allocated.
            continue;
        };
        let protocol = match sp.protocol.as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => continue,
        };
        addresses.insert(ip);
        let endpoints: Vec<SocketAddr> = usable(&sp.endpoints)
            .into_iter()
            .filter_map(|e| Some(SocketAddr::new(e.ip.parse().ok()?, e.port)))
            .collect();
        if endpoints.is_empty() || sp.port == 0 {
            continue;
        }
        let target = Target {
            service: format!("{}/{}:{}", sp.namespace, sp.name, sp.port),
            endpoints,
            affinity: sp
                .affinity_seconds
                .map(|s| Duration::from_secs(u64::from(s))),
        };
        if let Some(np) = sp.node_port.filter(|p| *p != 0) {
            let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), np);
            listeners.insert(
                Key {
                    protocol,
                    addr: any,
                },
                target.clone(),
            );
        }
        listeners.insert(
            Key {
                protocol,
                addr: SocketAddr::new(ip, sp.port),
            },
            target,
        );
    }
    (listeners, addresses)
}

/// (to close, to open): the open listeners not wanted, the wanted ones not open.
pub fn diff<V>(open: &BTreeSet<Key>, want: &BTreeMap<Key, V>) -> (Vec<Key>, Vec<Key>) {
    let close = open
        .iter()
        .filter(|k| !want.contains_key(k))
        .copied()
        .collect();
    let add = want.keys().filter(|k| !open.contains(k)).copied().collect();
    (close, add)
}

struct Listener {
    balancer: Arc<Mutex<Balancer>>,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Aborting the accept loop closes the socket.
        self.task.abort();
    }
}

/// What one sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synced {
    pub opened: usize,
    pub closed: usize,
    /// Listeners or addresses that could not be set up (tried again next sync).
    pub failed: usize,
}

/// The open listeners and the addresses put on `lo`.
pub struct Userspace {
    links: Arc<dyn Links>,
    udp_idle: Duration,
    listeners: BTreeMap<Key, Listener>,
    addresses: BTreeSet<IpAddr>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {protocol:?} {addr}: {source}")]
pub struct ListenError {
    pub protocol: Protocol,
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

impl Userspace {
    pub fn new(links: Arc<dyn Links>, udp_idle: Duration) -> Userspace {
        Userspace {
            links,
            udp_idle,
            listeners: BTreeMap::new(),
            addresses: BTreeSet::new(),
        }
    }

    /// The open listeners (tests).
    pub fn listening(&self) -> BTreeSet<Key> {
        self.listeners.keys().copied().collect()
    }

    /// Makes the listeners and addresses match `ports`.
    pub async fn sync(&mut self, ports: &[ServicePort], skip: Option<&str>) -> Synced {
        let (want, addresses) = wanted(ports, skip);
        let mut done = Synced::default();
        // Addresses first: binding needs them.
        for ip in addresses.difference(&self.addresses.clone()) {
            match self.links.add(INTERFACE, *ip) {
                Ok(()) => {
                    self.addresses.insert(*ip);
                }
                Err(e) => {
                    tracing::error!(error = %e, "userspace proxy: cannot make a ClusterIP local");
                    done.failed += 1;
                }
            }
        }
        let (close, open) = diff(&self.listening(), &want);
        for key in close {
            if let Some(mut l) = self.listeners.remove(&key) {
                // Closed by the time sync returns: abort only asks, and a
                // connection queued on a socket about to close would be
                // reset rather than refused.
                l.task.abort();
                let _ = (&mut l.task).await;
            }
            done.closed += 1;
        }
        for (key, target) in &want {
            if let Some(l) = self.listeners.get(key) {
                l.balancer
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .update(target.endpoints.clone(), target.affinity);
            }
        }
        for key in open {
            let target = &want[&key];
            match self.open(key, target).await {
                Ok(l) => {
                    tracing::debug!(service = %target.service, ?key, "userspace proxy: listening");
                    self.listeners.insert(key, l);
                    done.opened += 1;
                }
                Err(e) => {
                    tracing::error!(service = %target.service, error = %e, "userspace proxy");
                    done.failed += 1;
                }
            }
        }
        // Addresses last: their listeners are closed by now.
        for ip in self
            .addresses
            .difference(&addresses)
            .copied()
            .collect::<Vec<_>>()
        {
            match self.links.remove(INTERFACE, ip) {
                Ok(()) => {
                    self.addresses.remove(&ip);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "userspace proxy: cannot take a ClusterIP off");
                    done.failed += 1;
                }
            }
        }
        done
    }

    async fn open(&self, key: Key, target: &Target) -> Result<Listener, ListenError> {
        let error = |source| ListenError {
            protocol: key.protocol,
            addr: key.addr,
            source,
        };
        let balancer = Arc::new(Mutex::new(Balancer::new(
            target.endpoints.clone(),
            target.affinity,
        )));
        let task = match key.protocol {
            Protocol::Tcp => {
                let listener = tcp::listen(key.addr).map_err(error)?;
                tokio::spawn(tcp::serve(listener, balancer.clone()))
            }
            Protocol::Udp => {
                let socket = udp::listen(key.addr).await.map_err(error)?;
                tokio::spawn(udp::serve(socket, balancer.clone(), self.udp_idle))
            }
        };
        Ok(Listener { balancer, task })
    }

    /// Closes every listener and takes the ClusterIPs off `lo`.
    pub async fn stop(mut self) {
        self.sync(&[], None).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Endpoint;

    fn ep(ip: &str, ready: bool, terminating: bool) -> Endpoint {
        Endpoint {
            ip: ip.into(),
            port: 8080,
            ready,
            serving: ready || terminating,
            terminating,
        }
    }

    fn sp(
        name: &str,
        ip: &str,
        protocol: &str,
        node_port: Option<u16>,
        eps: Vec<Endpoint>,
    ) -> ServicePort {
        ServicePort {
            namespace: "default".into(),
            name: name.into(),
            port_name: "".into(),
            cluster_ip: ip.into(),
            protocol: protocol.into(),
            port: 80,
            node_port,
            endpoints: eps,
            affinity_seconds: None,
        }
    }

    fn tcp(addr: &str) -> Key {
        Key {
            protocol: Protocol::Tcp,
            addr: addr.parse().unwrap(),
        }
    }

    fn udp(addr: &str) -> Key {
        Key {
            protocol: Protocol::Udp,
            addr: addr.parse().unwrap(),
        }
    }

    #[test]
    fn listeners_and_addresses_wanted() {
        let mut sticky = sp(
            "sticky",
            "10.96.0.21",
            "tcp",
            None,
            vec![ep("10.244.1.2", true, false)],
        );
        sticky.affinity_seconds = Some(60);
        let ports = vec![
            sp(
                "web",
                "10.96.0.20",
                "tcp",
                Some(30080),
                vec![
                    ep("10.244.1.2", true, false),
                    ep("10.244.1.3", false, true),
                    ep("10.244.1.4", false, false),
                ],
            ),
            // Only terminating ones left: they serve.
            sp(
                "dns",
                "10.96.0.20",
                "udp",
                None,
                vec![ep("10.244.1.3", false, true)],
            ),
            sticky,
            // No usable endpoint: the address, no listener (refused by the kernel).
            sp(
                "empty",
                "10.96.0.30",
                "tcp",
                Some(30081),
                vec![ep("10.244.1.9", false, false)],
            ),
            sp(
                "headless",
                "None",
                "tcp",
                None,
                vec![ep("10.244.1.2", true, false)],
            ),
            sp(
                "kube-dns",
                "10.96.0.10",
                "udp",
                None,
                vec![ep("10.244.1.5", true, false)],
            ),
        ];
        let (listeners, addresses) = wanted(&ports, Some("10.96.0.10"));
        let got: Vec<(Key, Vec<String>, Option<Duration>)> = listeners
            .into_iter()
            .map(|(k, t)| {
                (
                    k,
                    t.endpoints.iter().map(|e| e.to_string()).collect(),
                    t.affinity,
                )
            })
            .collect();
        let web = vec!["10.244.1.2:8080".to_string()];
        let want = vec![
            (tcp("0.0.0.0:30080"), web.clone(), None),
            (tcp("10.96.0.20:80"), web, None),
            (
                tcp("10.96.0.21:80"),
                vec!["10.244.1.2:8080".to_string()],
                Some(Duration::from_secs(60)),
            ),
            (
                udp("10.96.0.20:80"),
                vec!["10.244.1.3:8080".to_string()],
                None,
            ),
        ];
        assert_eq!(got, want);
        let addresses: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
        assert_eq!(addresses, ["10.96.0.20", "10.96.0.21", "10.96.0.30"]);
    }

    #[test]
    fn diffs() {
        let open: BTreeSet<Key> = [tcp("10.96.0.20:80"), udp("10.96.0.20:53")].into();
        let cases: Vec<(Vec<Key>, Vec<Key>, Vec<Key>)> = vec![
            // (wanted, to close, to open)
            (
                vec![tcp("10.96.0.20:80"), udp("10.96.0.20:53")],
                vec![],
                vec![],
            ),
            (
                vec![],
                vec![udp("10.96.0.20:53"), tcp("10.96.0.20:80")],
                vec![],
            ),
            (
                vec![tcp("10.96.0.20:80"), tcp("0.0.0.0:30080")],
                vec![udp("10.96.0.20:53")],
                vec![tcp("0.0.0.0:30080")],
            ),
            // The same port over UDP is another listener.
            (
                vec![udp("10.96.0.20:80")],
                vec![udp("10.96.0.20:53"), tcp("10.96.0.20:80")],
                vec![udp("10.96.0.20:80")],
            ),
        ];
        for (want, close, add) in cases {
            let want: BTreeMap<Key, ()> = want.into_iter().map(|k| (k, ())).collect();
            let (mut c, a) = diff(&open, &want);
            let mut close = close;
            c.sort();
            close.sort();
            assert_eq!((c, a), (close, add), "{want:?}");
        }
    }
}
