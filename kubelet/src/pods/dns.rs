//! A pod's DNS (the CRI `DNSConfig` its sandbox gets), as upstream's
//! kubelet makes it (`pkg/kubelet/network/dns`): `dnsPolicy` picks the base
//! and `spec.dnsConfig` is added to it.
//!
//! | `dnsPolicy`               | pod network | base                         |
//! | ------------------------- | ----------- | ---------------------------- |
//! | `ClusterFirst` (default)  | its own     | the cluster DNS              |
//! | `ClusterFirst`            | the node's  | the node's (as `Default`)    |
//! | `ClusterFirstWithHostNet` | either      | the cluster DNS              |
//! | `Default`                 | either      | the node's resolv.conf       |
//! | `None`                    | either      | nothing                      |
//!
//! The cluster DNS is `--cluster-dns` as nameservers, the search path
//! `<ns>.svc.<domain> svc.<domain> <domain>` followed by the node's own
//! searches, and `ndots:5`; without `--cluster-dns` a cluster policy falls
//! back to the node's, as upstream. The node's is `--resolv-conf` (default
//! `/etc/resolv.conf`) read when the sandbox is made; with `--resolv-conf=""`
//! there is none: `Default` is then `nameserver 127.0.0.1`, `search .`, as
//! upstream. At
//! most 3 nameservers and 32 searches are kept (the resolver reads no more).

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Pod, PodDNSConfig};
use skiff_proto::cri;

/// The kubelet's DNS flags.
#[derive(Debug, Clone, Default)]
pub struct DnsSettings {
    /// `--cluster-dns`: the cluster DNS Service's IPs.
    pub servers: Vec<String>,
    /// `--cluster-domain`.
    pub domain: String,
    /// `--resolv-conf`: the node's resolver file; `None` for upstream's `""`.
    pub resolv_conf: Option<PathBuf>,
}

/// What a pod's DNS is based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsType {
    /// The cluster DNS.
    Cluster,
    /// The node's resolv.conf.
    Host,
    /// Only what `spec.dnsConfig` says.
    None,
}

/// Upstream's `getPodDNSType`: the policy table above (an unknown policy,
/// which the API server refuses anyway, is the cluster's).
pub fn dns_type(pod: &Pod) -> DnsType {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    match spec.and_then(|s| s.dns_policy.as_deref()) {
        Some("None") => DnsType::None,
        Some("Default") => DnsType::Host,
        Some("ClusterFirstWithHostNet") => DnsType::Cluster,
        // A host-network pod's lookups leave from the node, where the
        // cluster DNS may not be reachable: the node's own resolver.
        Some("ClusterFirst") | None if host_network => DnsType::Host,
        _ => DnsType::Cluster,
    }
}

/// A resolv.conf's nameservers, searches and options, read as upstream's
/// `parseResolvConf`: comments skipped, the last `search` line wins (with
/// trailing dots trimmed and `.` dropped), `options` lines add up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    pub fn parse(text: &str) -> ResolvConf {
        let mut r = ResolvConf::default();
        for line in text.lines() {
            if line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["nameserver", server, ..] => r.servers.push(server.to_string()),
                ["search", rest @ ..] => {
                    r.searches = rest
                        .iter()
                        .filter(|s| **s != ".")
                        .map(|s| s.trim_end_matches('.').to_string())
                        .collect()
                }
                ["options", rest @ ..] => {
                    r.options = merge_options(&r.options, rest.iter().map(|o| o.to_string()))
                }
                _ => {}
            }
        }
        r
    }
}

impl DnsSettings {
    /// The node's resolver as `--resolv-conf` gives it: the file read now
    /// (a missing file is an empty one); `None` without one.
    pub fn node_resolver(&self) -> Option<ResolvConf> {
        let path = self.resolv_conf.as_ref()?;
        Some(ResolvConf::parse(
            &std::fs::read_to_string(path).unwrap_or_default(),
        ))
    }
}

/// The pod's DNS config from its policy, the kubelet's settings and the
/// node's resolver (`node`; `None` with `--resolv-conf=""`), with
/// `spec.dnsConfig` added.
pub fn pod_dns(pod: &Pod, settings: &DnsSettings, node: Option<&ResolvConf>) -> cri::DnsConfig {
    let node_searches = node.map(|n| n.searches.clone()).unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let mut kind = dns_type(pod);
    // Upstream falls back the same way (and records MissingClusterDNS).
    if kind == DnsType::Cluster && settings.servers.is_empty() {
        kind = DnsType::Host;
    }
    let mut dns = match kind {
        DnsType::None => cri::DnsConfig::default(),
        DnsType::Host => match node {
            Some(node) => cri::DnsConfig {
                servers: node.servers.clone(),
                searches: node.searches.clone(),
                options: node.options.clone(),
            },
            // No resolver file: lookups go to the node itself, as the
            // resolver library would without nameservers (upstream's words).
            None => cri::DnsConfig {
                servers: vec!["127.0.0.1".into()],
                searches: vec![".".into()],
                options: vec![],
            },
        },
        DnsType::Cluster => {
            let domain = &settings.domain;
            let cluster: Vec<String> = if domain.is_empty() {
                vec![]
            } else {
                vec![
                    format!("{namespace}.svc.{domain}"),
                    format!("svc.{domain}"),
                    domain.clone(),
                ]
            };
            cri::DnsConfig {
                servers: settings.servers.clone(),
                searches: dedup(cluster.into_iter().chain(node_searches)),
                options: vec!["ndots:5".into()],
            }
        }
    };
    if let Some(own) = pod.spec.as_ref().and_then(|s| s.dns_config.as_ref()) {
        add_pod_dns_config(&mut dns, own);
    }
    // What a resolver reads at most (upstream trims and warns).
    dns.servers.truncate(3);
    dns.searches.truncate(32);
    dns
}

/// Upstream's `appendDNSConfig`: nameservers and searches appended (each
/// once), options merged by name (the pod's value wins).
fn add_pod_dns_config(dns: &mut cri::DnsConfig, own: &PodDNSConfig) {
    dns.servers = dedup(
        dns.servers
            .iter()
            .cloned()
            .chain(own.nameservers.iter().flatten().cloned()),
    );
    dns.searches = dedup(
        dns.searches
            .iter()
            .cloned()
            .chain(own.searches.iter().flatten().cloned()),
    );
    let options = own.options.iter().flatten().filter_map(|o| {
        let name = o.name.as_deref().filter(|n| !n.is_empty())?;
        Some(match o.value.as_deref() {
            Some(v) if !v.is_empty() => format!("{name}:{v}"),
            _ => name.to_string(),
        })
    });
    dns.options = merge_options(&dns.options, options);
}

/// `options` by name, a later one replacing an earlier one in place.
fn merge_options(existing: &[String], more: impl IntoIterator<Item = String>) -> Vec<String> {
    let name = |o: &str| o.split(':').next().unwrap_or_default().to_string();
    let mut out: Vec<String> = existing.to_vec();
    for o in more {
        match out.iter_mut().find(|e| name(e) == name(&o)) {
            Some(e) => *e = o,
            None => out.push(o),
        }
    }
    out
}

fn dedup(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodDNSConfigOption, PodSpec};

    fn pod(policy: Option<&str>, host_network: bool) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("p".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                dns_policy: policy.map(String::from),
                host_network: Some(host_network),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn settings() -> DnsSettings {
        DnsSettings {
            servers: vec!["10.96.0.10".into()],
            domain: "cluster.local".into(),
            resolv_conf: None,
        }
    }

    fn node() -> ResolvConf {
        ResolvConf::parse(
            "# written by hand\nnameserver 192.0.2.53\nsearch old.example\nsearch lab.example. .\n\
             options edns0 ndots:2\noptions timeout:1\n",
        )
    }

    #[test]
    fn the_policy_table() {
        use DnsType as T;
        for (policy, host_network, want) in [
            (None, false, T::Cluster),
            (Some("ClusterFirst"), false, T::Cluster),
            (None, true, T::Host),
            (Some("ClusterFirst"), true, T::Host),
            (Some("ClusterFirstWithHostNet"), true, T::Cluster),
            (Some("ClusterFirstWithHostNet"), false, T::Cluster),
            (Some("Default"), false, T::Host),
            (Some("Default"), true, T::Host),
            (Some("None"), false, T::None),
            (Some("None"), true, T::None),
        ] {
            assert_eq!(
                dns_type(&pod(policy, host_network)),
                want,
                "{policy:?} hostNetwork={host_network}"
            );
        }
    }

    #[test]
    fn the_nodes_resolv_conf_read_as_upstream() {
        assert_eq!(
            node(),
            ResolvConf {
                servers: vec!["192.0.2.53".into()],
                searches: vec!["lab.example".into()],
                options: vec!["edns0".into(), "ndots:2".into(), "timeout:1".into()],
            }
        );
    }

    #[test]
    fn configs_per_policy() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let node = node();
        let node = Some(&node);
        let cluster = pod_dns(&pod(None, false), &settings(), node);
        assert_eq!(cluster.servers, s(&["10.96.0.10"]));
        assert_eq!(
            cluster.searches,
            s(&[
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "lab.example"
            ])
        );
        assert_eq!(cluster.options, s(&["ndots:5"]));
        // hostNetwork with ClusterFirst: the node's, as it is.
        let host = pod_dns(&pod(Some("ClusterFirst"), true), &settings(), node);
        assert_eq!(
            (host.servers, host.searches, host.options),
            (
                s(&["192.0.2.53"]),
                s(&["lab.example"]),
                s(&["edns0", "ndots:2", "timeout:1"])
            )
        );
        // …unless it asks for the cluster's.
        let with = pod_dns(
            &pod(Some("ClusterFirstWithHostNet"), true),
            &settings(),
            node,
        );
        assert_eq!(with, cluster);
        assert_eq!(
            pod_dns(&pod(Some("None"), false), &settings(), node),
            cri::DnsConfig::default()
        );
        // No cluster DNS known: the node's, not a file without nameserver.
        let lost = pod_dns(
            &pod(None, false),
            &DnsSettings {
                servers: vec![],
                ..settings()
            },
            node,
        );
        assert_eq!(lost.servers, s(&["192.0.2.53"]));
        // --resolv-conf="": upstream's stand-in for the node's, and no
        // node searches after the cluster's.
        assert_eq!(settings().node_resolver(), None);
        let none = pod_dns(&pod(Some("Default"), false), &settings(), None);
        assert_eq!(
            (none.servers, none.searches, none.options),
            (s(&["127.0.0.1"]), s(&["."]), vec![])
        );
        assert_eq!(
            pod_dns(&pod(None, false), &settings(), None).searches,
            s(&[
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ])
        );
    }

    #[test]
    fn the_pods_dns_config_is_added() {
        let mut p = pod(None, false);
        p.spec.as_mut().unwrap().dns_config = Some(PodDNSConfig {
            nameservers: Some(vec!["10.96.0.10".into(), "1.1.1.1".into()]),
            searches: Some(vec!["my.example".into(), "svc.cluster.local".into()]),
            options: Some(vec![
                PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                },
                PodDNSConfigOption {
                    name: Some("edns0".into()),
                    value: None,
                },
            ]),
        });
        let dns = pod_dns(&p, &settings(), Some(&ResolvConf::default()));
        assert_eq!(dns.servers, ["10.96.0.10", "1.1.1.1"]);
        assert_eq!(
            dns.searches,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "my.example"
            ]
        );
        assert_eq!(dns.options, ["ndots:2", "edns0"]);
        // dnsPolicy None: only the pod's, trimmed to what resolvers read.
        let mut p = pod(Some("None"), false);
        p.spec.as_mut().unwrap().dns_config = Some(PodDNSConfig {
            nameservers: Some((1..=5).map(|i| format!("192.0.2.{i}")).collect()),
            searches: Some((0..40).map(|i| format!("s{i}.example")).collect()),
            options: None,
        });
        let dns = pod_dns(&p, &settings(), Some(&node()));
        assert_eq!(dns.servers, ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
        assert_eq!(dns.searches.len(), 32);
        assert!(dns.options.is_empty());
    }

    #[test]
    fn the_node_resolver_is_read_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resolv.conf");
        std::fs::write(&file, "nameserver 192.0.2.9\n").unwrap();
        let s = DnsSettings {
            resolv_conf: Some(file),
            ..settings()
        };
        assert_eq!(s.node_resolver().unwrap().servers, ["192.0.2.9"]);
        let missing = DnsSettings {
            resolv_conf: Some(dir.path().join("none")),
            ..settings()
        };
        assert_eq!(missing.node_resolver(), Some(ResolvConf::default()));
    }
}
