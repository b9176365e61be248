//! The files a pod's containers see as `/etc/hosts`, `/etc/hostname` and
//! `/etc/resolv.conf`, written by the runtime from the sandbox config (the
//! containers bind-mount them), in the forms the kubelet gives them upstream.

/// `/etc/hosts`: localhost, then the pod's own name on its IP.
pub fn hosts(hostname: &str, ip: &str) -> String {
    let mut s = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if !ip.is_empty() {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    s
}

/// `/etc/hosts` of a host-network pod: the node's own file (`host`) under
/// the header upstream's kubelet gives it, so names the node resolves the
/// pod resolves too.
pub fn host_network_hosts(host: &std::path::Path) -> String {
    format!(
        "# Kubernetes-managed hosts file (host network).\n{}",
        std::fs::read_to_string(host).unwrap_or_default()
    )
}

/// The pod's `/etc/resolv.conf`: from the CRI DNSConfig, or — when the
/// kubelet sent none at all — the host's own file (`host`), as containerd
/// does; an empty file would send every lookup to 127.0.0.1 inside the pod.
pub fn pod_resolv_conf(
    servers: &[String],
    searches: &[String],
    options: &[String],
    host: &std::path::Path,
) -> String {
    if servers.is_empty() && searches.is_empty() && options.is_empty() {
        return std::fs::read_to_string(host).unwrap_or_default();
    }
    resolv_conf(servers, searches, options)
}

/// `/etc/resolv.conf` from the CRI DNSConfig.
pub fn resolv_conf(servers: &[String], searches: &[String], options: &[String]) -> String {
    let mut s = String::new();
    if !searches.is_empty() {
        s.push_str(&format!("search {}\n", searches.join(" ")));
    }
    for server in servers {
        s.push_str(&format!("nameserver {server}\n"));
    }
    if !options.is_empty() {
        s.push_str(&format!("options {}\n", options.join(" ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_files() {
        let h = hosts("web-1", "10.244.0.5");
        assert!(h.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.244.0.5\tweb-1\n"));
        assert_eq!(
            resolv_conf(
                &["10.96.0.10".into()],
                &["shop.svc.cluster.local".into(), "svc.cluster.local".into()],
                &["ndots:5".into()]
            ),
            "search shop.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
        assert_eq!(resolv_conf(&[], &[], &[]), "");
    }

    #[test]
    fn a_host_network_pod_gets_the_nodes_hosts_file() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("hosts");
        std::fs::write(&host, "127.0.0.1 localhost\n192.0.2.7 node-a\n").unwrap();
        assert_eq!(
            host_network_hosts(&host),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.0.2.7 node-a\n"
        );
    }

    #[test]
    fn no_dns_config_means_the_hosts_resolv_conf() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("resolv.conf");
        std::fs::write(&host, "nameserver 192.0.2.53\n").unwrap();
        assert_eq!(
            pod_resolv_conf(&[], &[], &[], &host),
            "nameserver 192.0.2.53\n"
        );
        assert_eq!(
            pod_resolv_conf(&["10.96.0.10".into()], &[], &[], &host),
            "nameserver 10.96.0.10\n"
        );
        assert_eq!(pod_resolv_conf(&[], &[], &[], &dir.path().join("none")), "");
    }
}
