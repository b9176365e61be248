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

/// The four collections every table has; Services add and remove elements.
const SERVICE_IPS: &str = "service-ips";
const SERVICE_NODEPORTS: &str = "service-nodeports";
const NO_ENDPOINTS: &str = "no-endpoints";
const CLUSTER_IPS: &str = "cluster-ips";

/// A service port's part of chain and set names:
/// `<namespace>/<name>/<protocol>/<port name>`. Namespaces, names and port
/// names never hold a `/`, so two service ports never share one (a `-`
/// would: `a-b`/`c` and `a`/`b-c`).
fn service_id(sp: &ServicePort) -> String {
    format!(
        "{}/{}/{}/{}",
        sp.namespace, sp.name, sp.protocol, sp.port_name
    )
}

/// An endpoint's chain: `sep-<service id>/<ip>/<port>`. Named by address,
/// not by position, so a change to one endpoint leaves the others' chains
/// (and their affinity sets) as they are.
fn endpoint_id(service: &str, e: &Endpoint) -> String {
    format!("{service}/{}/{}", e.ip, e.port)
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

/// The Services' part of the table, as data: [`ruleset`] prints all of it
/// in a new table, [`update`] only what differs from the last one loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Programme {
    /// `svc-…` and `sep-…` chains → their rules, in order.
    pub chains: BTreeMap<String, Vec<String>>,
    /// `aff-…` sets (ClientIP affinity) → their declaration.
    pub sets: BTreeMap<String, String>,
    /// The elements of the fixed maps and sets: collection → key → verdict
    /// ("" in a set).
    pub elements: BTreeMap<&'static str, BTreeMap<String, String>>,
}

/// What the table should hold for these service ports.
pub fn programme(services: &[ServicePort], s: &Settings) -> Programme {
    let mut p = Programme::default();
    for name in [SERVICE_IPS, SERVICE_NODEPORTS, NO_ENDPOINTS, CLUSTER_IPS] {
        p.elements.insert(name, BTreeMap::new());
    }
    let element = |p: &mut Programme, collection: &'static str, key: String, value: String| {
        if let Some(c) = p.elements.get_mut(collection) {
            c.insert(key, value);
        }
    };
    if let Some(dns) = &s.cluster_dns {
        element(&mut p, CLUSTER_IPS, dns.clone(), String::new());
    }
    let services = services
        .iter()
        .filter(|sp| Some(&sp.cluster_ip) != s.cluster_dns.as_ref())
        .filter(|sp| !sp.cluster_ip.is_empty() && sp.cluster_ip != "None");
    for sp in services {
        element(&mut p, CLUSTER_IPS, sp.cluster_ip.clone(), String::new());
        let id = service_id(sp);
        let key = format!("{} . {} . {}", sp.cluster_ip, sp.protocol, sp.port);
        let eps = usable(&sp.endpoints);
        if eps.is_empty() {
            element(&mut p, NO_ENDPOINTS, key, String::new());
            continue;
        }
        element(&mut p, SERVICE_IPS, key, format!("goto svc-{id}"));
        if let Some(np) = sp.node_port {
            element(
                &mut p,
                SERVICE_NODEPORTS,
                format!("{} . {np}", sp.protocol),
                format!("goto svc-{id}"),
            );
        }
        let mut svc = vec![format!(
            "ip saddr != {} meta mark set meta mark | {MASQ}",
            s.cluster_cidr
        )];
        let mut targets = Vec::new();
        for (i, e) in eps.iter().enumerate() {
            let ep = endpoint_id(&id, e);
            let mut sep = vec![
                // Hairpin: a pod reaching itself through its Service.
                format!("ip saddr {} meta mark set meta mark | {MASQ}", e.ip),
            ];
            if let Some(timeout) = sp.affinity_seconds {
                // The timeout is in the name: a new timeout is a new set,
                // and the chains that use it change with it.
                let aff = format!("aff-{ep}/{timeout}");
                p.sets.insert(
                    aff.clone(),
                    format!("type ipv4_addr; flags dynamic,timeout; timeout {timeout}s;"),
                );
                // A client seen recently goes back to its endpoint.
                svc.push(format!("ip saddr @{aff} goto sep-{ep}"));
                sep.push(format!("update @{aff} {{ ip saddr }}"));
            }
            sep.push(format!(
                "meta l4proto {} dnat to {}:{}",
                sp.protocol, e.ip, e.port
            ));
            p.chains.insert(format!("sep-{ep}"), sep);
            targets.push(format!("{i} : goto sep-{ep}"));
        }
        svc.push(format!(
            "numgen random mod {} vmap {{ {} }}",
            eps.len(),
            targets.join(", ")
        ));
        p.chains.insert(format!("svc-{id}"), svc);
    }
    p
}

/// The whole ruleset: deletes and recreates the table in one transaction,
/// so a sync is atomic and nothing stale survives it (on start, and after
/// a failed update).
pub fn ruleset(services: &[ServicePort], s: &Settings) -> String {
    full(&programme(services, s), s)
}

/// [`ruleset`] of a programme made already.
pub fn full(p: &Programme, s: &Settings) -> String {
    let t = &s.table;
    // The old table goes in the same transaction the new one comes in.
    let mut out = delete(t);
    let _ = writeln!(out, "table ip {t} {{");
    let elements = |name: &str| {
        let c = &p.elements[name];
        if c.is_empty() {
            return String::new();
        }
        let v: Vec<String> = c.iter().map(|(k, v)| element_text(k, v)).collect();
        format!(" elements = {{ {} }};", v.join(", "))
    };
    let _ = writeln!(
        out,
        "  map {SERVICE_IPS} {{ type ipv4_addr . inet_proto . inet_service : verdict;{} }}",
        elements(SERVICE_IPS)
    );
    let _ = writeln!(
        out,
        "  map {SERVICE_NODEPORTS} {{ type inet_proto . inet_service : verdict;{} }}",
        elements(SERVICE_NODEPORTS)
    );
    let _ = writeln!(
        out,
        "  set {NO_ENDPOINTS} {{ type ipv4_addr . inet_proto . inet_service;{} }}",
        elements(NO_ENDPOINTS)
    );
    let _ = writeln!(
        out,
        "  set {CLUSTER_IPS} {{ type ipv4_addr;{} }}",
        elements(CLUSTER_IPS)
    );
    for (name, decl) in &p.sets {
        let _ = writeln!(out, "  set {name} {{ {decl} }}");
    }
    for (name, rules) in &p.chains {
        let _ = writeln!(out, "  chain {name} {{");
        for r in rules {
            let _ = writeln!(out, "    {r}");
        }
        let _ = writeln!(out, "  }}");
    }
    let svc_cidr = &s.service_cidr;
    let _ = write!(
        out,
        "  chain services {{
    ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}
    fib daddr type local meta l4proto . th dport vmap @{SERVICE_NODEPORTS}
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
    ip daddr . meta l4proto . th dport @{NO_ENDPOINTS} reject
    ip daddr {svc_cidr} ip daddr != @{CLUSTER_IPS} drop
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

fn element_text(key: &str, value: &str) -> String {
    if value.is_empty() {
        key.to_string()
    } else {
        format!("{key} : {value}")
    }
}

/// The transaction that turns table `table`, loaded from `old`, into
/// `new`, touching only what differs; `None` when nothing does. One
/// endpoint replaced among 1 000 Services is a few lines, not the whole
/// table, and the affinity sets of untouched endpoints keep their clients.
///
/// The order makes every step valid where it runs (all of it is one
/// transaction, so traffic sees the old table or the new one):
/// 1. elements that go or change are deleted (nothing points at a stale
///    chain from a map any more);
/// 2. new sets and new (empty) chains are added, so every rule below finds
///    what it names;
/// 3. new chains get their rules; changed ones are flushed and get theirs;
/// 4. new and changed elements are added;
/// 5. chains that go are flushed, then deleted (a `svc-` chain may point at
///    a `sep-` chain that goes with it); then the sets that go.
pub fn update(old: &Programme, new: &Programme, table: &str) -> Option<String> {
    if old == new {
        return None;
    }
    let mut out = String::new();
    let empty = BTreeMap::new();
    for (name, old_c) in &old.elements {
        let new_c = new.elements.get(name).unwrap_or(&empty);
        for (k, v) in old_c {
            if new_c.get(k) != Some(v) {
                let _ = writeln!(out, "delete element ip {table} {name} {{ {k} }}");
            }
        }
    }
    for (name, decl) in &new.sets {
        if !old.sets.contains_key(name) {
            let _ = writeln!(out, "add set ip {table} {name} {{ {decl} }}");
        }
    }
    for name in new.chains.keys() {
        if !old.chains.contains_key(name) {
            let _ = writeln!(out, "add chain ip {table} {name}");
        }
    }
    for (name, rules) in &new.chains {
        match old.chains.get(name) {
            Some(was) if was == rules => continue,
            Some(_) => {
                let _ = writeln!(out, "flush chain ip {table} {name}");
            }
            None => {}
        }
        for r in rules {
            let _ = writeln!(out, "add rule ip {table} {name} {r}");
        }
    }
    for (name, new_c) in &new.elements {
        let old_c = old.elements.get(name).unwrap_or(&empty);
        for (k, v) in new_c {
            if old_c.get(k) != Some(v) {
                let _ = writeln!(
                    out,
                    "add element ip {table} {name} {{ {} }}",
                    element_text(k, v)
                );
            }
        }
    }
    let gone: Vec<&String> = old
        .chains
        .keys()
        .filter(|c| !new.chains.contains_key(*c))
        .collect();
    for name in &gone {
        let _ = writeln!(out, "flush chain ip {table} {name}");
    }
    for name in &gone {
        let _ = writeln!(out, "delete chain ip {table} {name}");
    }
    for name in old.sets.keys() {
        if !new.sets.contains_key(name) {
            let _ = writeln!(out, "delete set ip {table} {name}");
        }
    }
    Some(out)
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
                .map(|i| {
                    format!(
                        "{i} : goto sep-default/web/tcp/http/10.244.1.{}/8080",
                        i + 2
                    )
                })
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
            r.contains("elements = { 10.96.0.20 . tcp . 80 : goto svc-default/web/tcp/http };")
        );
        assert!(r.contains("elements = { tcp . 30080 : goto svc-default/web/tcp/http };"));
        assert!(r.contains("set no-endpoints { type ipv4_addr . inet_proto . inet_service; elements = { 10.96.0.30 . tcp . 80 }; }"));
        assert!(r.contains("elements = { 10.96.0.10, 10.96.0.20, 10.96.0.30 };"));
        assert!(!r.contains("kube-system/kube-dns"));
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
        let ep = "default/web/tcp/http/10.244.1.3/8080";
        assert!(r.contains(&format!("ip saddr @aff-{ep}/10800 goto sep-{ep}")));
        assert!(r.contains(&format!(
            "set aff-{ep}/10800 {{ type ipv4_addr; flags dynamic,timeout; timeout 10800s; }}"
        )));
        assert!(r.contains(&format!("update @aff-{ep}/10800 {{ ip saddr }}")));
    }

    fn lines(t: &str) -> Vec<&str> {
        t.lines().collect()
    }

    #[test]
    fn nothing_changed_loads_nothing() {
        let p = programme(&[web(vec![ep("10.244.1.2", true, false)])], &settings());
        assert_eq!(update(&p, &p.clone(), "t"), None);
    }

    #[test]
    fn one_endpoint_replaced_rewrites_its_service_only() {
        let other = ServicePort {
            name: "api".into(),
            cluster_ip: "10.96.0.40".into(),
            node_port: None,
            ..web(vec![ep("10.244.2.7", true, false)])
        };
        let before = programme(
            &[
                web(vec![
                    ep("10.244.1.2", true, false),
                    ep("10.244.1.3", true, false),
                ]),
                other.clone(),
            ],
            &settings(),
        );
        let after = programme(
            &[
                web(vec![
                    ep("10.244.1.2", true, false),
                    ep("10.244.1.4", true, false),
                ]),
                other,
            ],
            &settings(),
        );
        let svc = "default/web/tcp/http";
        assert_eq!(
            lines(&update(&before, &after, "t").unwrap()),
            [
                format!("add chain ip t sep-{svc}/10.244.1.4/8080"),
                format!(
                    "add rule ip t sep-{svc}/10.244.1.4/8080 ip saddr 10.244.1.4 meta mark set meta mark | 0x4000"
                ),
                format!(
                    "add rule ip t sep-{svc}/10.244.1.4/8080 meta l4proto tcp dnat to 10.244.1.4:8080"
                ),
                format!("flush chain ip t svc-{svc}"),
                format!(
                    "add rule ip t svc-{svc} ip saddr != 10.244.0.0/16 meta mark set meta mark | 0x4000"
                ),
                format!(
                    "add rule ip t svc-{svc} numgen random mod 2 vmap {{ 0 : goto sep-{svc}/10.244.1.2/8080, 1 : goto sep-{svc}/10.244.1.4/8080 }}"
                ),
                format!("flush chain ip t sep-{svc}/10.244.1.3/8080"),
                format!("delete chain ip t sep-{svc}/10.244.1.3/8080"),
            ]
        );
    }

    #[test]
    fn a_service_that_loses_its_endpoints_is_rejected_then_goes() {
        let mut sp = web(vec![ep("10.244.1.2", true, false)]);
        sp.affinity_seconds = Some(60);
        let serving = programme(&[sp.clone()], &settings());
        sp.endpoints.clear();
        let empty = programme(&[sp], &settings());
        let svc = "default/web/tcp/http";
        let ep = format!("{svc}/10.244.1.2/8080");
        assert_eq!(
            lines(&update(&serving, &empty, "t").unwrap()),
            [
                "delete element ip t service-ips { 10.96.0.20 . tcp . 80 }".to_string(),
                "delete element ip t service-nodeports { tcp . 30080 }".to_string(),
                "add element ip t no-endpoints { 10.96.0.20 . tcp . 80 }".to_string(),
                format!("flush chain ip t sep-{ep}"),
                format!("flush chain ip t svc-{svc}"),
                format!("delete chain ip t sep-{ep}"),
                format!("delete chain ip t svc-{svc}"),
                format!("delete set ip t aff-{ep}/60"),
            ]
        );
        // And the Service itself goes: its address leaves the allocated set.
        let none = programme(&[], &settings());
        assert_eq!(
            lines(&update(&empty, &none, "t").unwrap()),
            [
                "delete element ip t cluster-ips { 10.96.0.20 }",
                "delete element ip t no-endpoints { 10.96.0.20 . tcp . 80 }",
            ]
        );
    }

    #[test]
    fn services_whose_names_share_dashes_get_chains_of_their_own() {
        let a = ServicePort {
            namespace: "a-b".into(),
            name: "c".into(),
            ..web(vec![ep("10.244.1.2", true, false)])
        };
        let b = ServicePort {
            namespace: "a".into(),
            name: "b-c".into(),
            cluster_ip: "10.96.0.21".into(),
            node_port: None,
            ..web(vec![ep("10.244.1.3", true, false)])
        };
        let p = programme(&[a, b], &settings());
        assert_eq!(p.chains.keys().filter(|c| c.starts_with("svc-")).count(), 2);
    }

    /// A network namespace of the test's own, removed on drop.
    struct Netns(String);

    impl Netns {
        fn new(tag: &str) -> Netns {
            let name = format!("skiffrules{tag}{}", std::process::id());
            let ok = std::process::Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .unwrap()
                .success();
            assert!(ok, "ip netns add {name}");
            Netns(name)
        }

        fn nft(&self, ruleset: &str) -> Result<(), crate::nft::NftError> {
            crate::nft::feed(&["ip", "netns", "exec", &self.0, "nft", "-f", "-"], ruleset)
        }

        /// The table as the kernel holds it, order-free where the kernel's
        /// order means nothing (objects, elements) and in order where it
        /// does (each chain's rules).
        fn table(&self, table: &str) -> BTreeMap<String, Vec<String>> {
            let out = std::process::Command::new("ip")
                .args([
                    "netns", "exec", &self.0, "nft", "-j", "list", "table", "ip", table,
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            fn strip(v: &mut serde_json::Value) {
                match v {
                    serde_json::Value::Object(m) => {
                        m.remove("handle");
                        for x in m.values_mut() {
                            strip(x);
                        }
                        if let Some(serde_json::Value::Array(e)) = m.get_mut("elem") {
                            e.sort_by_key(|x| x.to_string());
                        }
                    }
                    serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
                    _ => {}
                }
            }
            let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for mut o in v["nftables"].as_array().cloned().unwrap_or_default() {
                strip(&mut o);
                if let Some(rule) = o.get("rule") {
                    let chain = rule["chain"].as_str().unwrap_or("").to_string();
                    out.entry(format!("rule {chain}"))
                        .or_default()
                        .push(o.to_string());
                } else if o.get("metainfo").is_none() {
                    out.entry("objects".into()).or_default().push(o.to_string());
                }
            }
            if let Some(objects) = out.get_mut("objects") {
                objects.sort();
            }
            out
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .status();
        }
    }

    #[test]
    #[ignore = "needs root: loads rules into a network namespace's kernel tables"]
    fn updates_leave_the_table_a_full_load_would_make() {
        let s = settings();
        let mut sticky = web(vec![
            ep("10.244.1.2", true, false),
            ep("10.244.1.3", true, false),
        ]);
        sticky.name = "sticky".into();
        sticky.cluster_ip = "10.96.0.21".into();
        sticky.node_port = Some(30081);
        sticky.affinity_seconds = Some(60);
        let api = ServicePort {
            name: "api".into(),
            cluster_ip: "10.96.0.40".into(),
            node_port: None,
            ..web(vec![])
        };
        // A life of three Services: scaled, replaced, emptied, re-timed, gone.
        let mut steps = vec![vec![
            web(vec![ep("10.244.1.2", true, false)]),
            sticky.clone(),
            api.clone(),
        ]];
        let mut next = |f: &dyn Fn(&mut Vec<ServicePort>)| {
            let mut v = steps.last().unwrap().clone();
            f(&mut v);
            steps.push(v);
        };
        next(&|v| v[0].endpoints.push(ep("10.244.1.9", true, false)));
        next(&|v| v[1].endpoints[0] = ep("10.244.1.5", true, false));
        next(&|v| v[2].endpoints.push(ep("10.244.2.2", true, false)));
        next(&|v| v[0].endpoints.clear());
        next(&|v| v[1].affinity_seconds = Some(30));
        next(&|v| v[1].endpoints[1].terminating = true);
        next(&|v| {
            v.remove(2);
        });
        next(&|v| v[0].endpoints.push(ep("10.244.1.2", true, false)));
        next(&|v| v.clear());

        let incremental = Netns::new("inc");
        let fresh = Netns::new("full");
        let mut last = programme(&steps[0], &s);
        incremental.nft(&full(&last, &s)).unwrap();
        for (i, step) in steps.iter().enumerate().skip(1) {
            let p = programme(step, &s);
            let tx = update(&last, &p, &s.table).expect("every step changes something");
            incremental
                .nft(&tx)
                .unwrap_or_else(|e| panic!("step {i}: {e}\n{tx}"));
            fresh.nft(&full(&p, &s)).unwrap();
            if i == 1 {
                // The comparison sees the Services' chains, not only the frame.
                let t = fresh.table(&s.table);
                assert!(t.contains_key("rule svc-default/sticky/tcp/http"), "{t:?}");
            }
            assert_eq!(
                incremental.table(&s.table),
                fresh.table(&s.table),
                "step {i}:\n{tx}"
            );
            last = p;
        }
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
