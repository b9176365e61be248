//! The programs of a one-machine cluster and their flags, in start order.
//! To add a program: one more entry in [`programs`] (its binary must sit
//! next to `skiff`; a missing optional one is skipped).

use crate::cluster::{Layout, Settings};

/// The cluster DNS address: the `kube-dns` Service the proxy keeps and
/// serves on the node's `lo`, and the nameserver in every pod.
pub const CLUSTER_DNS: &str = "10.96.0.10";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Its short name: log `<data>/<name>.log`, `skiff logs <name>`
    /// (`kubelet-node2` for a --nodes cluster's node).
    pub name: String,
    pub binary: &'static str,
    pub args: Vec<String>,
    /// Started only when its binary exists (programs still to come).
    pub optional: bool,
    /// The node it belongs to, with --nodes: it runs in that node's network
    /// namespace and stays down while `skiff node stop` holds the node.
    pub node: Option<crate::cluster::SimNode>,
}

/// Every program, the API server first: the others need its kubeconfig.
pub fn programs(s: &Settings, l: &Layout) -> Vec<Program> {
    let data = l.data.display().to_string();
    let kubeconfig = l.client_kubeconfig(s).display().to_string();
    // A worker (`skiff join`): its kubelet and proxy, nothing else; the
    // Node's name is the one it joined with.
    if s.join.is_some() {
        let mut node = node_programs(s, &kubeconfig, &s.node_ip, &l.kubelet_root(), &l.cni_dir());
        if let Some(name) = &s.node_name {
            for p in node.iter_mut() {
                p.args.extend(["--hostname-override".into(), name.clone()]);
            }
        }
        return node;
    }
    // With --nodes, the nodes reach it on the host bridge (their own
    // loopback is theirs); that address goes in every kubeconfig.
    let mut apiserver = vec![
        "--data-dir".into(),
        data,
        "--bind-address".into(),
        s.api_host(),
        "--secure-port".into(),
        s.port.to_string(),
    ];
    // `skiff server`: on every address, advertised (in kubeconfigs and the
    // `kubernetes` Service) at the address workers reach.
    if s.server {
        apiserver[3] = "0.0.0.0".into();
        apiserver.extend(["--advertise-address".into(), s.node_ip.clone()]);
    }
    if let Some(etcd) = &s.etcd_servers {
        apiserver.extend(["--etcd-servers".into(), etcd.clone()]);
    }
    let demo = |flags: &[&str]| demo_flags(s, flags);
    // --demo: evictions 30 s after a node fails instead of 300 s.
    apiserver.extend(demo(&[
        "--default-not-ready-toleration-seconds",
        "30",
        "--default-unreachable-toleration-seconds",
        "30",
    ]));
    let mask = s.node_mask().to_string();
    let mut all = vec![
        Program {
            name: "apiserver".into(),
            binary: "skiff-apiserver",
            args: apiserver,
            optional: false,
            node: None,
        },
        Program {
            name: "controller-manager".into(),
            binary: "skiff-controller-manager",
            // One node: the cluster's pod range is that node's whole block,
            // so its podCIDR is exactly the fenced subnet; with --nodes each
            // node gets a /24 of it.
            args: [
                vec![
                    "--kubeconfig".into(),
                    kubeconfig.clone(),
                    "--cluster-cidr".into(),
                    s.pod_subnet.clone(),
                    "--node-cidr-mask-size".into(),
                    mask,
                ],
                // --demo: a silent node is noticed after 10 s, looked at every second.
                demo(&[
                    "--node-monitor-grace-period",
                    "10s",
                    "--node-monitor-period",
                    "1s",
                ]),
            ]
            .concat(),
            optional: false,
            node: None,
        },
        Program {
            name: "scheduler".into(),
            binary: "skiff-scheduler",
            args: vec!["--kubeconfig".into(), kubeconfig.clone()],
            optional: false,
            node: None,
        },
    ];
    if s.multi() {
        for n in s.sim_nodes() {
            let dir = l.node_dir(&n.name);
            let ip = n.ip.to_string();
            let mut kubelet =
                node_programs(s, &kubeconfig, &ip, &dir.join("kubelet"), &dir.join("cni"));
            for p in kubelet.iter_mut() {
                p.name = format!("{}-{}", p.name, n.name);
                p.node = Some(n.clone());
                p.args
                    .extend(["--hostname-override".into(), n.name.clone()]);
            }
            all.extend(kubelet);
        }
    } else {
        let node = s.node_ip.clone();
        all.extend(node_programs(
            s,
            &kubeconfig,
            &node,
            &l.kubelet_root(),
            &l.cni_dir(),
        ));
    }
    all
}

/// `flags` under --demo, else none.
fn demo_flags(s: &Settings, flags: &[&str]) -> Vec<String> {
    if s.demo {
        flags.iter().map(|f| f.to_string()).collect()
    } else {
        Vec::new()
    }
}

/// A node's kubelet and proxy.
fn node_programs(
    s: &Settings,
    kubeconfig: &str,
    ip: &str,
    root: &std::path::Path,
    cni: &std::path::Path,
) -> Vec<Program> {
    let demo = |flags: &[&str]| demo_flags(s, flags);
    // Static pods: the node's data dir (next to its kubelet root) holds a
    // `manifests` dir, which the kubelet makes, for users to drop Pods in.
    let manifests = root
        .parent()
        .unwrap_or(root)
        .join("manifests")
        .display()
        .to_string();
    vec![
        Program {
            name: "kubelet".into(),
            binary: "skiff-kubelet",
            args: vec![
                "--kubeconfig".into(),
                kubeconfig.into(),
                "--root-dir".into(),
                root.display().to_string(),
                "--node-ip".into(),
                ip.into(),
                "--address".into(),
                ip.into(),
                "--port".into(),
                s.kubelet_port.to_string(),
                "--cni-conf-dir".into(),
                cni.display().to_string(),
                // Pods ask the proxy's cluster DNS (its default address).
                "--cluster-dns".into(),
                CLUSTER_DNS.into(),
                "--pod-manifest-path".into(),
                manifests,
            ]
            .into_iter()
            // --demo: the Lease renewed every 2 s (so 10 s of silence means
            // something), the status every 2 s, restarts at most 20 s apart.
            .chain(demo(&[
                "--node-lease-duration-seconds",
                "8",
                "--node-status-update-frequency",
                "2s",
                "--max-container-restart-period",
                "20s",
            ]))
            .collect(),
            optional: false,
            node: None,
        },
        Program {
            name: "proxy".into(),
            binary: "skiff-proxy",
            args: vec![
                "--kubeconfig".into(),
                kubeconfig.into(),
                "--cluster-cidr".into(),
                s.pod_subnet.clone(),
                // Named after the cluster: two clusters (or a test) on one
                // machine do not share a table.
                "--nft-table".into(),
                format!("{}_proxy", s.name),
                "--cluster-dns".into(),
                CLUSTER_DNS.into(),
            ],
            optional: true,
            node: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_server_starts_first_and_the_node_gets_the_subnet() {
        let s = Settings {
            port: 16443,
            node_ip: "192.168.56.10".into(),
            pod_subnet: "10.250.0.0/23".into(),
            name: "lab".into(),
            etcd_servers: Some("http://127.0.0.1:2379".into()),
            demo: true,
            ..Settings::default()
        };
        let l = Layout::new(std::path::Path::new("/var/lib/skiff")).unwrap();
        let p = programs(&s, &l);
        let names: Vec<_> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "apiserver",
                "controller-manager",
                "scheduler",
                "kubelet",
                "proxy"
            ]
        );
        assert!(
            p[0].args
                .windows(2)
                .any(|w| w == ["--secure-port", "16443"])
        );
        assert!(
            p[0].args
                .windows(2)
                .any(|w| w == ["--etcd-servers", "http://127.0.0.1:2379"])
        );
        assert!(
            p[1].args
                .windows(2)
                .any(|w| w == ["--cluster-cidr", "10.250.0.0/23"])
        );
        assert!(
            p[1].args
                .windows(2)
                .any(|w| w == ["--node-cidr-mask-size", "23"])
        );
        assert!(
            p[3].args
                .windows(2)
                .any(|w| w == ["--address", "192.168.56.10"])
        );
        assert!(
            p[3].args
                .windows(2)
                .any(|w| w == ["--root-dir", "/var/lib/skiff/kubelet"])
        );
        assert!(
            p[3].args
                .windows(2)
                .any(|w| w == ["--pod-manifest-path", "/var/lib/skiff/manifests"])
        );
        // --demo's short timers, in each program that has them; none without.
        let has =
            |p: &Program, flag: &str, value: &str| p.args.windows(2).any(|w| w == [flag, value]);
        assert!(has(&p[0], "--default-unreachable-toleration-seconds", "30"));
        assert!(has(&p[1], "--node-monitor-grace-period", "10s"));
        assert!(has(&p[3], "--node-lease-duration-seconds", "8"));
        assert!(has(&p[3], "--max-container-restart-period", "20s"));
        let plain = programs(
            &Settings {
                demo: false,
                ..s.clone()
            },
            &l,
        );
        assert!(
            plain
                .iter()
                .all(|p| !p.args.iter().any(|a| a.contains("toleration-seconds")
                    || a == "--node-monitor-grace-period"
                    || a == "--max-container-restart-period"))
        );
    }

    #[test]
    fn several_nodes_each_get_a_kubelet_and_proxy_in_their_namespace() {
        let s = Settings {
            pod_subnet: "10.244.0.0/16".into(),
            name: "lab".into(),
            nodes: 2,
            ..Settings::default()
        };
        let l = Layout::new(std::path::Path::new("/var/lib/skiff")).unwrap();
        let p = programs(&s, &l);
        let names: Vec<_> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "apiserver",
                "controller-manager",
                "scheduler",
                "kubelet-node1",
                "proxy-node1",
                "kubelet-node2",
                "proxy-node2"
            ]
        );
        let has =
            |p: &Program, flag: &str, value: &str| p.args.windows(2).any(|w| w == [flag, value]);
        // The API server on the bridge, where the nodes reach it.
        assert!(has(&p[0], "--bind-address", "10.245.0.1"));
        assert!(has(&p[1], "--node-cidr-mask-size", "24"));
        assert!(p[..3].iter().all(|p| p.node.is_none()));
        let k2 = &p[5];
        assert_eq!(k2.node.as_ref().unwrap().netns, "lab-node2");
        assert!(has(k2, "--node-ip", "10.245.0.12"));
        assert!(has(k2, "--hostname-override", "node2"));
        assert!(has(k2, "--root-dir", "/var/lib/skiff/nodes/node2/kubelet"));
        assert!(has(k2, "--cni-conf-dir", "/var/lib/skiff/nodes/node2/cni"));
        assert!(has(
            k2,
            "--pod-manifest-path",
            "/var/lib/skiff/nodes/node2/manifests"
        ));
        assert!(has(&p[6], "--hostname-override", "node2"));
        assert!(has(&p[6], "--cluster-cidr", "10.244.0.0/16"));
    }
}
