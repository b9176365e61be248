//! The programs of a one-machine cluster and their flags, in start order.
//! To add a program: one more entry in [`programs`] (its binary must sit
//! next to `skiff`; a missing optional one is skipped).

use crate::cluster::{Layout, Settings};

/// The cluster DNS address: the `kube-dns` Service the proxy keeps and
/// serves on the node's `lo`, and the nameserver in every pod.
pub const CLUSTER_DNS: &str = "10.96.0.10";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Its short name: log `<data>/<name>.log`, `skiff logs <name>`.
    pub name: &'static str,
    pub binary: &'static str,
    pub args: Vec<String>,
    /// Started only when its binary exists (programs still to come).
    pub optional: bool,
}

/// Every program, the API server first: the others need its kubeconfig.
pub fn programs(s: &Settings, l: &Layout) -> Vec<Program> {
    let data = l.data.display().to_string();
    let kubeconfig = l.kubeconfig().display().to_string();
    let mut apiserver = vec![
        "--data-dir".into(),
        data,
        "--bind-address".into(),
        "127.0.0.1".into(),
        "--secure-port".into(),
        s.port.to_string(),
    ];
    if let Some(etcd) = &s.etcd_servers {
        apiserver.extend(["--etcd-servers".into(), etcd.clone()]);
    }
    let demo = |flags: &[&str]| -> Vec<String> {
        if s.demo {
            flags.iter().map(|f| f.to_string()).collect()
        } else {
            Vec::new()
        }
    };
    // --demo: evictions 30 s after a node fails instead of 300 s.
    apiserver.extend(demo(&[
        "--default-not-ready-toleration-seconds",
        "30",
        "--default-unreachable-toleration-seconds",
        "30",
    ]));
    let mask = s.pod_subnet.split('/').nth(1).unwrap_or("24").to_string();
    vec![
        Program {
            name: "apiserver",
            binary: "skiff-apiserver",
            args: apiserver,
            optional: false,
        },
        Program {
            name: "controller-manager",
            binary: "skiff-controller-manager",
            // One node: the cluster's pod range is that node's whole block,
            // so its podCIDR is exactly the fenced subnet.
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
        },
        Program {
            name: "scheduler",
            binary: "skiff-scheduler",
            args: vec!["--kubeconfig".into(), kubeconfig.clone()],
            optional: false,
        },
        Program {
            name: "kubelet",
            binary: "skiff-kubelet",
            args: vec![
                "--kubeconfig".into(),
                kubeconfig.clone(),
                "--root-dir".into(),
                l.kubelet_root().display().to_string(),
                "--node-ip".into(),
                s.node_ip.clone(),
                "--address".into(),
                s.node_ip.clone(),
                "--port".into(),
                s.kubelet_port.to_string(),
                "--cni-conf-dir".into(),
                l.cni_dir().display().to_string(),
                // Pods ask the proxy's cluster DNS (its default address).
                "--cluster-dns".into(),
                CLUSTER_DNS.into(),
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
        },
        Program {
            name: "proxy",
            binary: "skiff-proxy",
            args: vec![
                "--kubeconfig".into(),
                kubeconfig,
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
            kubelet_port: 10250,
            demo: true,
        };
        let l = Layout::new(std::path::Path::new("/var/lib/skiff")).unwrap();
        let p = programs(&s, &l);
        let names: Vec<_> = p.iter().map(|p| p.name).collect();
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
        // --demo's short timers, in each program that has them; none without.
        let has =
            |p: &Program, flag: &str, value: &str| p.args.windows(2).any(|w| w == [flag, value]);
        assert!(has(&p[0], "--default-unreachable-toleration-seconds", "30"));
        assert!(has(&p[1], "--node-monitor-grace-period", "10s"));
        assert!(has(&p[3], "--node-lease-duration-seconds", "8"));
        assert!(has(&p[3], "--max-container-restart-period", "20s"));
        let plain = programs(&Settings { demo: false, ..s }, &l);
        assert!(
            plain
                .iter()
                .all(|p| !p.args.iter().any(|a| a.contains("toleration-seconds")
                    || a == "--node-monitor-grace-period"
                    || a == "--max-container-restart-period"))
        );
    }
}
