//! Services and EndpointSlices → one nftables ruleset, as a pure function
//! (table tests below; `nft -f` loads it in one transaction).
//!
//! The shape, kube-proxy's nftables mode simplified:
//!
//! ```text
//! table ip <table> {
//!   map service-ips   { ClusterIP . proto . port : goto svc-… }      # with endpoints
//!   map service-nodeports { proto . port : goto svc-… }
//!   set no-endpoints  { ClusterIP . proto . port }                    # rejected
//!   set cluster-ips   { every ClusterIP }                             # the rest of the range is dropped
//!   chain nat-prerouting / nat-output  (dstnat): jump services
//!   chain services: ClusterIP vmap, then NodePort vmap on local addresses
//!   chain svc-…: mark for masquerade when not from a pod; numgen random mod N vmap { i : goto sep-… }
//!   chain sep-…: mark hairpin; dnat to endpoint
//!   chain nat-postrouting (srcnat): marked → masquerade
//!   chain filter-* (filter, before the default): no-endpoints → reject; service range but not a
//!                 ClusterIP → drop
//! }
//! ```
//!
//! Random choice: `numgen random mod N` picks one of N ready endpoints with
//! equal chance per new connection; conntrack keeps a connection on its
//! endpoint. Endpoints that are terminating take new connections only when
//! no ready one is left (so a rolling update drops nothing).

use std::collections::BTreeMap;
use std::fmt::Write;

/// One port of one Service, with the endpoints that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub name: String,
    /// The port's name ("" for a single unnamed port).
    pub port_name: String,
    pub cluster_ip: String,
    /// "tcp" or "udp".
    pub protocol: String,
    pub port: u16,
    pub node_port: Option<u16>,
    pub endpoints: Vec<Endpoint>,
    /// `sessionAffinity: ClientIP` with its timeout in seconds.
    pub affinity_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: String,
    pub port: u16,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

/// Settings the rules depend on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub table: String,
    /// Pods' addresses: traffic from elsewhere is masqueraded.
    pub cluster_cidr: String,
    /// The ClusterIP range: unallocated addresses in it are dropped.
    pub service_cidr: String,
    /// Served on this node by the DNS server, never by these rules.
    pub cluster_dns: Option<String>,
}

const MASQ: &str = "0x4000";

/// A chain name from a service port (nft identifiers: letters, digits, _ -).
fn chain_id(sp: &ServicePort) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect::<String>()
    };
    format!(
        "{}-{}-{}-{}",
        clean(&sp.namespace),
        clean(&sp.name),
        clean(&sp.port_name),
        sp.protocol
    )
}

/// The endpoints new connections go to: ready ones, else serving but
/// terminating ones.
pub fn usable(endpoints: &[Endpoint]) -> Vec<&Endpoint> {
    let ready: Vec<&Endpoint> = endpoints
        .iter()
        .filter(|e| e.ready && !e.terminating)
        .collect();
    if !ready.is_empty() {
        return ready;
    }
    endpoints
        .iter()
        .filter(|e| e.serving && e.terminating)
        .collect()
}

/// The whole ruleset: deletes and recreates the table in one transaction,
/// so a sync is atomic and nothing stale survives it.
pub fn ruleset(services: &[ServicePort], s: &Settings) -> String {
    let mut services: Vec<&ServicePort> = services
        .iter()
        .filter(|sp| Some(&sp.cluster_ip) != s.cluster_dns.as_ref())
        .filter(|sp| !sp.cluster_ip.is_empty() && sp.cluster_ip != "None")
        .collect();
    services.sort_by_key(|sp| chain_id(sp));
    let t = &s.table;
    // The old table goes in the same transaction the new one comes in.
    let mut out = delete(t);
    let _ = writeln!(out, "table ip {t} {{");
    let mut vmap = Vec::new();
    let mut nodeports = Vec::new();
    let mut rejected = Vec::new();
    let mut ips: BTreeMap<&str, ()> = BTreeMap::new();
    let mut chains = String::new();
    // Declared before the chains that use them.
    let mut sets = String::new();
    for sp in &services {
        ips.insert(&sp.cluster_ip, ());
        let id = chain_id(sp);
        let eps = usable(&sp.endpoints);
        if eps.is_empty() {
            rejected.push(format!("{} . {} . {}", sp.cluster_ip, sp.protocol, sp.port));
            continue;
        }
        vmap.push(format!(
            "{} . {} . {} : goto svc-{id}",
            sp.cluster_ip, sp.protocol, sp.port
        ));
        if let Some(np) = sp.node_port {
            nodeports.push(format!("{} . {np} : goto svc-{id}", sp.protocol));
        }
        let _ = writeln!(chains, "  chain svc-{id} {{");
        let _ = writeln!(
            chains,
            "    ip saddr != {} meta mark set meta mark | {MASQ}",
            s.cluster_cidr
        );
        if sp.affinity_seconds.is_some() {
            // A client seen recently goes back to its endpoint.
            for i in 0..eps.len() {
                let _ = writeln!(chains, "    ip saddr @aff-{id}-{i} goto sep-{id}-{i}");
            }
        }
        let targets: Vec<String> = (0..eps.len())
            .map(|i| format!("{i} : goto sep-{id}-{i}"))
            .collect();
        let _ = writeln!(
            chains,
            "    numgen random mod {} vmap {{ {} }}\n  }}",
            eps.len(),
            targets.join(", ")
        );
        for (i, e) in eps.iter().enumerate() {
            if let Some(timeout) = sp.affinity_seconds {
                let _ = writeln!(
                    sets,
                    "  set aff-{id}-{i} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"
                );
            }
            let _ = writeln!(chains, "  chain sep-{id}-{i} {{");
            // Hairpin: a pod reaching itself through its Service.
            let _ = writeln!(
                chains,
                "    ip saddr {} meta mark set meta mark | {MASQ}",
                e.ip
            );
            if sp.affinity_seconds.is_some() {
                let _ = writeln!(chains, "    update @aff-{id}-{i} {{ ip saddr }}");
            }
            let _ = writeln!(
                chains,
                "    meta l4proto {} dnat to {}:{}\n  }}",
                sp.protocol, e.ip, e.port
            );
        }
    }
    let elements = |v: &[String]| {
        if v.is_empty() {
            String::new()
        } else {
            format!(" elements = {{ {} }};", v.join(", "))
        }
    };
    let _ = writeln!(
        out,
        "  map service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict;{} }}",
        elements(&vmap)
    );
    let _ = writeln!(
        out,
        "  map service-nodeports {{ type inet_proto . inet_service : verdict;{} }}",
        elements(&nodeports)
    );
    let _ = writeln!(
        out,
        "  set no-endpoints {{ type ipv4_addr . inet_proto . inet_service;{} }}",
        elements(&rejected)
    );
    let mut allocated: Vec<String> = ips.keys().map(|ip| ip.to_string()).collect();
    if let Some(dns) = &s.cluster_dns {
        allocated.push(dns.clone());
    }
    let _ = writeln!(
        out,
        "  set cluster-ips {{ type ipv4_addr;{} }}",
        elements(&allocated)
    );
    out.push_str(&sets);
    out.push_str(&chains);
    let svc_cidr = &s.service_cidr;
    let _ = write!(
        out,
        "  chain services {{
    ip daddr . meta l4proto . th dport vmap @service-ips
    fib daddr type local meta l4proto . th dport vmap @service-nodeports
  }}
  chain nat-prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    jump services
  }}
  chain nat-output {{
    type nat hook output priority -100; policy accept;
    jump services
  }}
  chain nat-postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    meta mark & {MASQ} == {MASQ} meta mark set meta mark & 0xffffbfff masquerade
  }}
  chain filter-check {{
    ip daddr . meta l4proto . th dport @no-endpoints reject
    ip daddr {svc_cidr} ip daddr != @cluster-ips drop
  }}
  chain filter-output {{
    type filter hook output priority filter - 10; policy accept;
    jump filter-check
  }}
  chain filter-forward {{
    type filter hook forward priority filter - 10; policy accept;
    jump filter-check
  }}
  chain filter-input {{
    type filter hook input priority filter - 10; policy accept;
    jump filter-check
  }}
}}
"
    );
    out
}

/// Removes the table (clean shutdown, `--cleanup`); `add` first makes the
/// delete succeed whether or not the table exists.
pub fn delete(table: &str) -> String {
    format!("add table ip {table}\ndelete table ip {table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(ip: &str, ready: bool, terminating: bool) -> Endpoint {
        Endpoint {
            ip: ip.into(),
            port: 8080,
            ready,
            serving: ready || terminating,
            terminating,
        }
    }

    fn web(endpoints: Vec<Endpoint>) -> ServicePort {
        ServicePort {
            namespace: "default".into(),
            name: "web".into(),
            port_name: "http".into(),
            cluster_ip: "10.96.0.20".into(),
            protocol: "tcp".into(),
            port: 80,
            node_port: Some(30080),
            endpoints,
            affinity_seconds: None,
        }
    }

    fn settings() -> Settings {
        Settings {
            table: "skiff_proxy".into(),
            cluster_cidr: "10.244.0.0/16".into(),
            service_cidr: "10.96.0.0/12".into(),
            cluster_dns: Some("10.96.0.10".into()),
        }
    }

    #[test]
    fn new_connections_prefer_ready_then_terminating_endpoints() {
        let a = ep("10.244.1.2", true, false);
        let b = ep("10.244.1.3", false, true);
        let c = ep("10.244.1.4", false, false);
        let all = [a.clone(), b.clone(), c.clone()];
        assert_eq!(usable(&all), vec![&a]);
        assert_eq!(usable(&[b.clone(), c.clone()]), vec![&b]);
        assert!(usable(&[c]).is_empty());
    }

    #[test]
    fn endpoints_are_picked_at_random_with_equal_chance() {
        for n in 1..=3 {
            let eps: Vec<Endpoint> = (0..n)
                .map(|i| ep(&format!("10.244.1.{}", i + 2), true, false))
                .collect();
            let r = ruleset(&[web(eps)], &settings());
            let targets: Vec<String> = (0..n)
                .map(|i| format!("{i} : goto sep-default-web-http-tcp-{i}"))
                .collect();
            assert!(
                r.contains(&format!(
                    "numgen random mod {n} vmap {{ {} }}",
                    targets.join(", ")
                )),
                "{r}"
            );
            for i in 0..n {
                assert!(
                    r.contains(&format!("dnat to 10.244.1.{}:8080", i + 2)),
                    "{r}"
                );
            }
        }
    }

    #[test]
    fn cluster_ips_node_ports_and_rejects() {
        let r = ruleset(
            &[
                web(vec![ep("10.244.1.2", true, false)]),
                ServicePort {
                    name: "empty".into(),
                    cluster_ip: "10.96.0.30".into(),
                    node_port: None,
                    ..web(vec![ep("10.244.1.9", false, false)])
                },
                // The DNS Service is the DNS server's, not ours.
                ServicePort {
                    namespace: "kube-system".into(),
                    name: "kube-dns".into(),
                    cluster_ip: "10.96.0.10".into(),
                    protocol: "udp".into(),
                    port: 53,
                    node_port: None,
                    ..web(vec![])
                },
                // Headless: no ClusterIP, no rules.
                ServicePort {
                    name: "headless".into(),
                    cluster_ip: "None".into(),
                    ..web(vec![ep("10.244.1.5", true, false)])
                },
            ],
            &settings(),
        );
        assert!(r.starts_with(
            "add table ip skiff_proxy\ndelete table ip skiff_proxy\ntable ip skiff_proxy {"
        ));
        assert!(
            r.contains("elements = { 10.96.0.20 . tcp . 80 : goto svc-default-web-http-tcp };")
        );
        assert!(r.contains("elements = { tcp . 30080 : goto svc-default-web-http-tcp };"));
        assert!(r.contains("set no-endpoints { type ipv4_addr . inet_proto . inet_service; elements = { 10.96.0.30 . tcp . 80 }; }"));
        assert!(r.contains("elements = { 10.96.0.20, 10.96.0.30, 10.96.0.10 };"));
        assert!(!r.contains("kube-system-kube-dns"));
        assert!(!r.contains("10.244.1.5"));
        assert!(r.contains("ip saddr != 10.244.0.0/16 meta mark set meta mark | 0x4000"));
        assert!(r.contains("ip daddr 10.96.0.0/12 ip daddr != @cluster-ips drop"));
    }

    #[test]
    fn client_ip_affinity_remembers_clients_per_endpoint() {
        let mut sp = web(vec![
            ep("10.244.1.2", true, false),
            ep("10.244.1.3", true, false),
        ]);
        sp.affinity_seconds = Some(10800);
        let r = ruleset(&[sp], &settings());
        assert!(r.contains("ip saddr @aff-default-web-http-tcp-1 goto sep-default-web-http-tcp-1"));
        assert!(r.contains(
            "set aff-default-web-http-tcp-0 { type ipv4_addr; flags dynamic,timeout; timeout 10800s; }"
        ));
        assert!(r.contains("update @aff-default-web-http-tcp-0 { ip saddr }"));
    }

    #[test]
    #[ignore = "needs root: nft checks the ruleset against the kernel"]
    fn the_kernel_takes_the_ruleset() {
        let mut affinity = web(vec![
            ep("10.244.1.2", true, false),
            ep("10.244.1.3", true, false),
        ]);
        affinity.name = "sticky".into();
        affinity.cluster_ip = "10.96.0.21".into();
        affinity.node_port = Some(30081);
        affinity.affinity_seconds = Some(60);
        let mut s = settings();
        s.table = format!("skiff_check_{}", std::process::id());
        let r = ruleset(
            &[
                web(vec![ep("10.244.1.2", true, false)]),
                affinity,
                ServicePort {
                    name: "empty".into(),
                    cluster_ip: "10.96.0.30".into(),
                    node_port: None,
                    ..web(vec![])
                },
            ],
            &s,
        );
        // -c: checked by the kernel, not applied.
        let mut child = std::process::Command::new("nft")
            .args(["-c", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(r.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{r}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
