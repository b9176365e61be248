//! The cluster domain as DNS sees it, built from Services and
//! EndpointSlices (pure, table-tested), with the names upstream's cluster
//! DNS (CoreDNS' `kubernetes` plugin) answers:
//!
//! | name | answer |
//! |---|---|
//! | `<svc>.<ns>.svc.<domain>` | A/AAAA: the ClusterIPs; headless: one per ready endpoint; ExternalName: CNAME |
//! | `<host>.<svc>.<ns>.svc.<domain>` | A/AAAA of a headless Service's endpoint, by its `hostname` or its dashed IP (`10-244-0-5`, `fd00-10-244--5`) |
//! | `_<port>._<proto>.<svc>.<ns>.svc.<domain>` | SRV for a named port (headless: one per endpoint) |
//! | `<a-b-c-d>.<ns>.pod.<domain>` | A `a.b.c.d` (AAAA for a dashed IPv6 address) |
//! | `<d>.<c>.<b>.<a>.in-addr.arpa` / `….ip6.arpa` of a ClusterIP | PTR `<svc>.<ns>.svc.<domain>` |
//!
//! IPv6: a dual-stack or IPv6 Service's `spec.clusterIPs` and the endpoints
//! of its `addressType: IPv6` slices answer AAAA, the IPv4 ones A; a name
//! with only A records asked for AAAA (or the reverse) gets the empty
//! answer, so a resolver asking both at once is not held up.
//!
//! Another name in the domain is NXDOMAIN; a known name without records
//! of the asked type is an empty answer (NOERROR); names outside the domain
//! (and unknown reverse names) are [`Resolution::Outside`], for the
//! upstream resolvers. Short names (`web`, `web.default`) never get here as
//! such: the pods' `resolv.conf` search path turns them into FQDNs.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::model::{all_slices_of, parts};

/// Record data, free of any DNS library's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Ptr(String),
}

impl Data {
    /// An address record of `ip`'s family.
    pub fn address(ip: IpAddr) -> Data {
        match ip {
            IpAddr::V4(ip) => Data::A(ip),
            IpAddr::V6(ip) => Data::Aaaa(ip),
        }
    }

    /// The DNS type name (`A`, `AAAA`, `CNAME`, `SRV`, `PTR`).
    pub fn kind(&self) -> &'static str {
        match self {
            Data::A(_) => "A",
            Data::Aaaa(_) => "AAAA",
            Data::Cname(_) => "CNAME",
            Data::Srv { .. } => "SRV",
            Data::Ptr(_) => "PTR",
        }
    }
}

/// One answer record: its owner name (FQDN without the final dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub name: String,
    pub data: Data,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Records(Vec<Answer>),
    /// The name exists, without records of that type.
    NoData,
    NxDomain,
    /// Not ours: forward it.
    Outside,
}

#[derive(Debug, Clone)]
struct Endpoint {
    ip: IpAddr,
    hostname: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    /// `spec.clusterIPs` (IPv4, IPv6 or both); empty: headless.
    cluster_ips: Vec<IpAddr>,
    external_name: Option<String>,
    /// (name, protocol lower-case, port): the Service's ports, or for a
    /// headless Service its slices' ports.
    ports: Vec<(String, String, u16)>,
    /// Ready endpoints (headless Services only).
    endpoints: Vec<Endpoint>,
}

/// The cluster domain's names.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    domain: String,
    services: BTreeMap<(String, String), Entry>,
}

/// An address as a DNS label, as CoreDNS makes it: `10-244-0-5`;
/// IPv6 `fd00::5` → `fd00--5` (a leading or trailing `-` gets a `0`, a
/// label cannot begin or end with one).
fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string().replace('.', "-"),
        IpAddr::V6(ip) => {
            let mut s = ip.to_string().replace(':', "-");
            if s.starts_with('-') {
                s.insert(0, '0');
            }
            if s.ends_with('-') {
                s.push('0');
            }
            s
        }
    }
}

/// The address a dashed label stands for (IPv4 or IPv6).
fn undashed(label: &str) -> Option<IpAddr> {
    label
        .replace('-', ".")
        .parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .or_else(|_| label.replace('-', ":").parse::<Ipv6Addr>().map(IpAddr::V6))
        .ok()
}

/// The address of a reverse name (`…in-addr.arpa`, `…ip6.arpa`).
fn reverse_address(qname: &str) -> Option<IpAddr> {
    if let Some(reversed) = qname.strip_suffix(".in-addr.arpa") {
        let octets: Vec<u8> = reversed
            .split('.')
            .map(|o| o.parse().ok())
            .collect::<Option<_>>()?;
        if let [d, c, b, a] = octets[..] {
            return Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
        }
    } else if let Some(reversed) = qname.strip_suffix(".ip6.arpa") {
        let nibbles: Vec<u8> = reversed
            .split('.')
            .map(|n| u8::from_str_radix(n, 16).ok().filter(|_| n.len() == 1))
            .collect::<Option<_>>()?;
        if nibbles.len() == 32 {
            let bits = nibbles
                .iter()
                .rev()
                .fold(0u128, |acc, n| (acc << 4) | u128::from(*n));
            return Some(IpAddr::V6(Ipv6Addr::from(bits)));
        }
    }
    None
}

impl Zone {
    /// The zone for `domain` (e.g. `cluster.local`) from what the API holds.
    pub fn build(domain: &str, services: &[Service], slices: &[EndpointSlice]) -> Zone {
        let mut zone = Zone {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            services: BTreeMap::new(),
        };
        for svc in services {
            let Some((ns, name, spec)) = parts(svc) else {
                continue;
            };
            let mut entry = Entry::default();
            if spec.type_.as_deref() == Some("ExternalName") {
                entry.external_name = spec
                    .external_name
                    .as_ref()
                    .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
            } else {
                // clusterIPs (dual-stack) when set, else the single clusterIP.
                let listed: Vec<&str> = match &spec.cluster_ips {
                    Some(ips) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
                    _ => spec.cluster_ip.as_deref().into_iter().collect(),
                };
                entry.cluster_ips = listed.iter().filter_map(|ip| ip.parse().ok()).collect();
                if entry.cluster_ips.is_empty() && !listed.contains(&"None") {
                    // No address yet: nothing to say about it.
                    continue;
                }
            }
            let headless = entry.cluster_ips.is_empty() && entry.external_name.is_none();
            if headless {
                for slice in all_slices_of(slices, ns, name)
                    .into_iter()
                    .filter(|s| s.address_type == "IPv4" || s.address_type == "IPv6")
                {
                    for p in slice.ports.iter().flatten() {
                        if let (Some(n), Some(port)) = (&p.name, p.port) {
                            let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                            entry.ports.push((n.clone(), proto, port as u16));
                        }
                    }
                    for ep in slice.endpoints.iter().flatten() {
                        let ready = ep.conditions.as_ref().and_then(|c| c.ready) != Some(false);
                        if !ready {
                            continue;
                        }
                        for ip in ep.addresses.iter().filter_map(|a| a.parse().ok()) {
                            entry.endpoints.push(Endpoint {
                                ip,
                                hostname: ep.hostname.clone(),
                            });
                        }
                    }
                }
                entry.ports.sort();
                entry.ports.dedup();
                entry.endpoints.sort_by_key(|e| e.ip);
                entry.endpoints.dedup_by_key(|e| e.ip);
            } else {
                for p in spec.ports.iter().flatten() {
                    if let Some(n) = &p.name {
                        let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                        entry.ports.push((n.clone(), proto, p.port as u16));
                    }
                }
            }
            zone.services
                .insert((ns.to_string(), name.to_string()), entry);
        }
        zone
    }

    fn fqdn(&self, ns: &str, name: &str) -> String {
        format!("{name}.{ns}.svc.{}", self.domain)
    }

    /// Every record `qname` has (`qname` lower-case, trailing dot or not).
    fn records(&self, qname: &str) -> Resolution {
        let qname = qname.trim_end_matches('.').to_ascii_lowercase();
        if qname.ends_with(".in-addr.arpa") || qname.ends_with(".ip6.arpa") {
            if let Some(ip) = reverse_address(&qname) {
                for ((ns, name), e) in &self.services {
                    if e.cluster_ips.contains(&ip) {
                        let data = Data::Ptr(self.fqdn(ns, name));
                        return Resolution::Records(vec![Answer { name: qname, data }]);
                    }
                }
            }
            return Resolution::Outside;
        }
        let rest = if qname == self.domain {
            ""
        } else if let Some(rest) = qname.strip_suffix(&format!(".{}", self.domain)) {
            rest
        } else {
            return Resolution::Outside;
        };
        let labels: Vec<&str> = if rest.is_empty() {
            vec![]
        } else {
            rest.split('.').collect()
        };
        let exists = Resolution::NoData;
        let answer = |data: Vec<Data>| {
            Resolution::Records(
                data.into_iter()
                    .map(|data| Answer {
                        name: qname.clone(),
                        data,
                    })
                    .collect(),
            )
        };
        match labels[..] {
            [] | ["svc"] | ["pod"] => exists,
            [ns, "svc"] => {
                if self.services.keys().any(|(n, _)| n == ns) {
                    exists
                } else {
                    Resolution::NxDomain
                }
            }
            [ip, _ns, "pod"] => match undashed(ip) {
                Some(ip) => answer(vec![Data::address(ip)]),
                None => Resolution::NxDomain,
            },
            [name, ns, "svc"] => {
                let Some(e) = self.services.get(&(ns.to_string(), name.to_string())) else {
                    return Resolution::NxDomain;
                };
                if let Some(target) = &e.external_name {
                    return answer(vec![Data::Cname(target.clone())]);
                }
                if e.cluster_ips.is_empty() {
                    answer(e.endpoints.iter().map(|ep| Data::address(ep.ip)).collect())
                } else {
                    answer(e.cluster_ips.iter().map(|ip| Data::address(*ip)).collect())
                }
            }
            [port, proto, name, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => {
                let Some(e) = self.services.get(&(ns.to_string(), name.to_string())) else {
                    return Resolution::NxDomain;
                };
                let Some((_, _, number)) = e
                    .ports
                    .iter()
                    .find(|(n, p, _)| n == &port[1..] && p == &proto[1..])
                else {
                    return Resolution::NxDomain;
                };
                let service = self.fqdn(ns, name);
                let srv = |target: String| Data::Srv {
                    priority: 0,
                    weight: 100,
                    port: *number,
                    target,
                };
                match e.cluster_ips.is_empty() {
                    false => answer(vec![srv(service)]),
                    true => answer(
                        e.endpoints
                            .iter()
                            .map(|ep| {
                                let host = ep.hostname.clone().unwrap_or_else(|| dashed(ep.ip));
                                srv(format!("{host}.{service}"))
                            })
                            .collect(),
                    ),
                }
            }
            [host, name, ns, "svc"] => {
                let Some(e) = self.services.get(&(ns.to_string(), name.to_string())) else {
                    return Resolution::NxDomain;
                };
                let found: Vec<Data> = e
                    .endpoints
                    .iter()
                    .filter(|ep| ep.hostname.as_deref() == Some(host) || dashed(ep.ip) == host)
                    .map(|ep| Data::address(ep.ip))
                    .collect();
                if found.is_empty() {
                    Resolution::NxDomain
                } else {
                    answer(found)
                }
            }
            _ => Resolution::NxDomain,
        }
    }

    /// The answer to a question for `qname` of type `qtype` (`A`, `AAAA`,
    /// `SRV`, `PTR`, `CNAME`, `ANY`, …). A CNAME answers any type, as it
    /// does in DNS.
    pub fn resolve(&self, qname: &str, qtype: &str) -> Resolution {
        match self.records(qname) {
            Resolution::Records(all) => {
                let kept: Vec<Answer> = all
                    .into_iter()
                    .filter(|a| {
                        qtype == "ANY" || a.data.kind() == qtype || a.data.kind() == "CNAME"
                    })
                    .collect();
                if kept.is_empty() {
                    Resolution::NoData
                } else {
                    Resolution::Records(kept)
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn zone() -> Zone {
        let services: Vec<Service> = serde_json::from_value(json!([
            {"metadata": {"name": "web", "namespace": "shop"},
             "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81}]}},
            {"metadata": {"name": "db", "namespace": "shop"},
             "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}},
            {"metadata": {"name": "ext", "namespace": "shop"},
             "spec": {"type": "ExternalName", "externalName": "example.org."}},
            {"metadata": {"name": "pending", "namespace": "shop"}, "spec": {}},
            {"metadata": {"name": "dual", "namespace": "shop"},
             "spec": {"clusterIP": "10.96.0.30", "clusterIPs": ["10.96.0.30", "fd00:96::30"],
                      "ipFamilies": ["IPv4", "IPv6"], "ports": [{"name": "http", "port": 80}]}},
            {"metadata": {"name": "six", "namespace": "shop"},
             "spec": {"clusterIP": "fd00:96::40", "clusterIPs": ["fd00:96::40"], "ipFamilies": ["IPv6"]}},
            {"metadata": {"name": "db6", "namespace": "shop"},
             "spec": {"clusterIP": "None", "clusterIPs": ["None"], "ipFamilies": ["IPv4", "IPv6"]}},
        ]))
        .unwrap();
        let slices: Vec<EndpointSlice> = serde_json::from_value(json!([
            {"metadata": {"name": "db-x", "namespace": "shop", "labels": {"kubernetes.io/service-name": "db"}},
             "addressType": "IPv4",
             "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
             "endpoints": [
                {"addresses": ["10.244.0.7"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.244.0.8"], "conditions": {"ready": true}},
                {"addresses": ["10.244.0.9"], "hostname": "db-2", "conditions": {"ready": false}},
             ]},
            // A dual-stack headless Service: one slice per family.
            {"metadata": {"name": "db6-v4", "namespace": "shop", "labels": {"kubernetes.io/service-name": "db6"}},
             "addressType": "IPv4",
             "endpoints": [{"addresses": ["10.244.0.17"], "hostname": "db6-0"}]},
            {"metadata": {"name": "db6-v6", "namespace": "shop", "labels": {"kubernetes.io/service-name": "db6"}},
             "addressType": "IPv6",
             "endpoints": [
                {"addresses": ["fd00:244::17"], "hostname": "db6-0", "conditions": {"ready": true}},
                {"addresses": ["fd00:244::18"], "conditions": {"ready": true}},
                {"addresses": ["fd00:244::19"], "conditions": {"ready": false}},
             ]},
            // FQDN slices are not addresses.
            {"metadata": {"name": "db6-fqdn", "namespace": "shop", "labels": {"kubernetes.io/service-name": "db6"}},
             "addressType": "FQDN",
             "endpoints": [{"addresses": ["example.org"]}]},
        ]))
        .unwrap();
        Zone::build("cluster.local", &services, &slices)
    }

    fn a(name: &str, ip: &str) -> Answer {
        Answer {
            name: name.into(),
            data: Data::A(ip.parse().unwrap()),
        }
    }

    fn aaaa(name: &str, ip: &str) -> Answer {
        Answer {
            name: name.into(),
            data: Data::Aaaa(ip.parse().unwrap()),
        }
    }

    #[test]
    fn ipv6_addresses_answer_aaaa() {
        let z = zone();
        let records = |v: Vec<Answer>| Resolution::Records(v);
        let dual = "dual.shop.svc.cluster.local";
        let six = "six.shop.svc.cluster.local";
        let db6 = "db6.shop.svc.cluster.local";
        let cases: Vec<(&str, &str, Resolution)> = vec![
            // Dual-stack: A for the IPv4 ClusterIP, AAAA for the IPv6 one.
            (dual, "A", records(vec![a(dual, "10.96.0.30")])),
            (dual, "AAAA", records(vec![aaaa(dual, "fd00:96::30")])),
            (
                dual,
                "ANY",
                records(vec![a(dual, "10.96.0.30"), aaaa(dual, "fd00:96::30")]),
            ),
            // IPv6 only: asked for A, the name exists without A records.
            (six, "AAAA", records(vec![aaaa(six, "fd00:96::40")])),
            (six, "A", Resolution::NoData),
            // IPv4 only: an empty answer for AAAA, not NXDOMAIN.
            ("web.shop.svc.cluster.local", "AAAA", Resolution::NoData),
            // Headless dual-stack: the ready endpoints of each family.
            (db6, "A", records(vec![a(db6, "10.244.0.17")])),
            (
                db6,
                "AAAA",
                records(vec![aaaa(db6, "fd00:244::17"), aaaa(db6, "fd00:244::18")]),
            ),
            (
                "db6-0.db6.shop.svc.cluster.local",
                "AAAA",
                records(vec![aaaa(
                    "db6-0.db6.shop.svc.cluster.local",
                    "fd00:244::17",
                )]),
            ),
            (
                "db6-0.db6.shop.svc.cluster.local",
                "A",
                records(vec![a("db6-0.db6.shop.svc.cluster.local", "10.244.0.17")]),
            ),
            // An IPv6 endpoint without hostname: its dashed address.
            (
                "fd00-244--18.db6.shop.svc.cluster.local",
                "AAAA",
                records(vec![aaaa(
                    "fd00-244--18.db6.shop.svc.cluster.local",
                    "fd00:244::18",
                )]),
            ),
            (
                "fd00-244--19.db6.shop.svc.cluster.local",
                "AAAA",
                Resolution::NxDomain,
            ),
            // A pod by its dashed IPv6 address; a leading "::" gets its "0".
            (
                "fd00-244--5.shop.pod.cluster.local",
                "AAAA",
                records(vec![aaaa(
                    "fd00-244--5.shop.pod.cluster.local",
                    "fd00:244::5",
                )]),
            ),
            (
                "fd00-244--5.shop.pod.cluster.local",
                "A",
                Resolution::NoData,
            ),
            // Reverse of an IPv6 ClusterIP.
            (
                "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa",
                "PTR",
                records(vec![Answer {
                    name:
                        "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa"
                            .into(),
                    data: Data::Ptr(dual.into()),
                }]),
            ),
            (
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
                "PTR",
                Resolution::Outside,
            ),
        ];
        for (name, qtype, want) in cases {
            assert_eq!(z.resolve(name, qtype), want, "{name} {qtype}");
        }
    }

    #[test]
    fn addresses_as_labels() {
        let cases = [
            ("10.244.0.5", "10-244-0-5"),
            ("fd00:244::5", "fd00-244--5"),
            ("::1", "0--1"),
            ("fd00::", "fd00--0"),
        ];
        for (ip, label) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(dashed(ip), label);
            assert_eq!(undashed(label), Some(ip), "{label}");
        }
        assert_eq!(undashed("not-an-ip"), None);
    }

    #[test]
    fn names_resolve_as_upstream_cluster_dns_answers_them() {
        let z = zone();
        let srv = |name: &str, port, target: &str| Answer {
            name: name.into(),
            data: Data::Srv {
                priority: 0,
                weight: 100,
                port,
                target: target.into(),
            },
        };
        let cases: Vec<(&str, &str, Resolution)> = vec![
            // A ClusterIP Service; the FQDN in any case, with the final dot.
            (
                "web.shop.svc.cluster.local",
                "A",
                Resolution::Records(vec![a("web.shop.svc.cluster.local", "10.96.0.20")]),
            ),
            (
                "WEB.Shop.svc.cluster.local.",
                "A",
                Resolution::Records(vec![a("web.shop.svc.cluster.local", "10.96.0.20")]),
            ),
            ("web.shop.svc.cluster.local", "AAAA", Resolution::NoData),
            // Headless: the ready endpoints only.
            (
                "db.shop.svc.cluster.local",
                "A",
                Resolution::Records(vec![
                    a("db.shop.svc.cluster.local", "10.244.0.7"),
                    a("db.shop.svc.cluster.local", "10.244.0.8"),
                ]),
            ),
            (
                "db-0.db.shop.svc.cluster.local",
                "A",
                Resolution::Records(vec![a("db-0.db.shop.svc.cluster.local", "10.244.0.7")]),
            ),
            (
                "10-244-0-8.db.shop.svc.cluster.local",
                "A",
                Resolution::Records(vec![a(
                    "10-244-0-8.db.shop.svc.cluster.local",
                    "10.244.0.8",
                )]),
            ),
            ("db-2.db.shop.svc.cluster.local", "A", Resolution::NxDomain),
            // SRV for named ports.
            (
                "_http._tcp.web.shop.svc.cluster.local",
                "SRV",
                Resolution::Records(vec![srv(
                    "_http._tcp.web.shop.svc.cluster.local",
                    80,
                    "web.shop.svc.cluster.local",
                )]),
            ),
            (
                "_pg._tcp.db.shop.svc.cluster.local",
                "SRV",
                Resolution::Records(vec![
                    srv(
                        "_pg._tcp.db.shop.svc.cluster.local",
                        5432,
                        "db-0.db.shop.svc.cluster.local",
                    ),
                    srv(
                        "_pg._tcp.db.shop.svc.cluster.local",
                        5432,
                        "10-244-0-8.db.shop.svc.cluster.local",
                    ),
                ]),
            ),
            (
                "_http._udp.web.shop.svc.cluster.local",
                "SRV",
                Resolution::NxDomain,
            ),
            // ExternalName: a CNAME whatever the type.
            (
                "ext.shop.svc.cluster.local",
                "A",
                Resolution::Records(vec![Answer {
                    name: "ext.shop.svc.cluster.local".into(),
                    data: Data::Cname("example.org".into()),
                }]),
            ),
            // Pods by dashed address.
            (
                "10-244-1-5.shop.pod.cluster.local",
                "A",
                Resolution::Records(vec![a("10-244-1-5.shop.pod.cluster.local", "10.244.1.5")]),
            ),
            // Reverse of a ClusterIP; other reverse names go upstream.
            (
                "20.0.96.10.in-addr.arpa",
                "PTR",
                Resolution::Records(vec![Answer {
                    name: "20.0.96.10.in-addr.arpa".into(),
                    data: Data::Ptr("web.shop.svc.cluster.local".into()),
                }]),
            ),
            ("1.1.168.192.in-addr.arpa", "PTR", Resolution::Outside),
            // What exists without records, what does not, what is not ours.
            ("shop.svc.cluster.local", "A", Resolution::NoData),
            ("cluster.local", "A", Resolution::NoData),
            ("other.svc.cluster.local", "A", Resolution::NxDomain),
            ("nope.shop.svc.cluster.local", "A", Resolution::NxDomain),
            ("pending.shop.svc.cluster.local", "A", Resolution::NxDomain),
            ("a.b.c.d.e.svc.cluster.local", "A", Resolution::NxDomain),
            ("example.org", "A", Resolution::Outside),
            ("notcluster.local", "A", Resolution::Outside),
        ];
        for (name, qtype, want) in cases {
            assert_eq!(z.resolve(name, qtype), want, "{name} {qtype}");
        }
    }
}
