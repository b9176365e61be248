//! The cluster domain as DNS sees it, built from Services and
//! EndpointSlices (pure, table-tested), with the names upstream's cluster
//! DNS (CoreDNS' `kubernetes` plugin) answers:
//!
//! | name | answer |
//! |---|---|
//! | `<svc>.<ns>.svc.<domain>` | A: the ClusterIP; headless: one A per ready endpoint; ExternalName: CNAME |
//! | `<host>.<svc>.<ns>.svc.<domain>` | A of a headless Service's endpoint, by its `hostname` or its dashed IP (`10-244-0-5`) |
//! | `_<port>._<proto>.<svc>.<ns>.svc.<domain>` | SRV for a named port (headless: one per endpoint) |
//! | `<a-b-c-d>.<ns>.pod.<domain>` | A `a.b.c.d` |
//! | `<d>.<c>.<b>.<a>.in-addr.arpa` of a ClusterIP | PTR `<svc>.<ns>.svc.<domain>` |
//!
//! Another name in the domain is NXDOMAIN; a known name without records
//! of the asked type is an empty answer (NOERROR); names outside the domain
//! (and unknown reverse names) are [`Resolution::Outside`], for the
//! upstream resolvers. Short names (`web`, `web.default`) never get here as
//! such: the pods' `resolv.conf` search path turns them into FQDNs.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::model::{parts, slices_of};

/// Record data, free of any DNS library's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
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
    /// The DNS type name (`A`, `CNAME`, `SRV`, `PTR`).
    pub fn kind(&self) -> &'static str {
        match self {
            Data::A(_) => "A",
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
    ip: Ipv4Addr,
    hostname: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    /// `None`: headless.
    cluster_ip: Option<Ipv4Addr>,
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

fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
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
                entry.cluster_ip = spec
                    .cluster_ip
                    .as_deref()
                    .filter(|ip| *ip != "None")
                    .and_then(|ip| ip.parse().ok());
                if entry.cluster_ip.is_none() && spec.cluster_ip.as_deref() != Some("None") {
                    // No address yet (or IPv6 only): nothing to say about it.
                    continue;
                }
            }
            let headless = entry.cluster_ip.is_none() && entry.external_name.is_none();
            if headless {
                for slice in slices_of(slices, ns, name) {
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
        if let Some(reversed) = qname.strip_suffix(".in-addr.arpa") {
            let octets: Vec<u8> = reversed.split('.').filter_map(|o| o.parse().ok()).collect();
            if let [d, c, b, a] = octets[..] {
                let ip = Ipv4Addr::new(a, b, c, d);
                for ((ns, name), e) in &self.services {
                    if e.cluster_ip == Some(ip) {
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
            [ip, _ns, "pod"] => match ip.replace('-', ".").parse::<Ipv4Addr>() {
                Ok(ip) => answer(vec![Data::A(ip)]),
                Err(_) => Resolution::NxDomain,
            },
            [name, ns, "svc"] => {
                let Some(e) = self.services.get(&(ns.to_string(), name.to_string())) else {
                    return Resolution::NxDomain;
                };
                if let Some(target) = &e.external_name {
                    return answer(vec![Data::Cname(target.clone())]);
                }
                match e.cluster_ip {
                    Some(ip) => answer(vec![Data::A(ip)]),
                    None => answer(e.endpoints.iter().map(|ep| Data::A(ep.ip)).collect()),
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
                match e.cluster_ip {
                    Some(_) => answer(vec![srv(service)]),
                    None => answer(
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
                    .map(|ep| Data::A(ep.ip))
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
