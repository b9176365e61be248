//! The real `skiff-proxy --mode userspace` against the real API server and
//! controller manager, as root, with the backends of `services.rs` (busybox
//! httpd in network namespaces this test creates): the ClusterIP — put on
//! lo by the proxy — reaches every backend; the NodePort answers on a node
//! address and on loopback; a Service without endpoints is refused; a
//! ClientIP-affinity Service keeps a client on one backend; a deleted pod
//! leaves the rotation; no nftables table is made; SIGTERM takes the
//! ClusterIPs off lo.
//!
//! Safety as in `services.rs`: names carry this run's id, backends are on
//! a private range behind veths the test made, and a fence drops anything
//! to the service range that is not for lo. Removed on drop.

mod common;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use skiff_tests::{TestCluster, eventually, set_pod_status};

use common::{Net, answers, sh};

fn on_lo(ip: &str) -> bool {
    let lo = Command::new("ip")
        .args(["-o", "addr", "show", "dev", "lo"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&lo.stdout).contains(&format!(" {ip}/32 "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: network namespaces, veths, addresses on lo"]
async fn userspace_mode_relays_cluster_ips_and_node_ports() {
    let mut net = Net::new();
    net.fence(true);
    let table = format!("skiff_pxuser_{}", std::process::id());
    net.tables.push(("ip".into(), table.clone()));
    let ips: Vec<String> = (0..3).map(|i| net.backend(i)).collect();

    let mut cluster = TestCluster::start().await;
    cluster.start_controller_manager();
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (i, ip) in ips.iter().enumerate() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("b{i}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "httpd", "image": "skiff/httpd",
                     "ports": [{"name": "http", "containerPort": 80}]}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        set_pod_status(&pods, &format!("b{i}"), ip, true).await;
    }
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let create = |spec: serde_json::Value| {
        let services = services.clone();
        async move {
            let svc: Service = serde_json::from_value(spec).unwrap();
            let svc = services.create(&PostParams::default(), &svc).await.unwrap();
            svc.spec.unwrap()
        }
    };
    let port = json!([{"name": "http", "port": 80, "targetPort": "http"}]);
    let web = create(json!({"metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": port}}))
    .await;
    let sticky = create(json!({"metadata": {"name": "sticky"},
        "spec": {"selector": {"app": "web"}, "ports": port, "sessionAffinity": "ClientIP",
                 "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}}))
    .await;
    let empty = create(json!({"metadata": {"name": "empty"},
        "spec": {"selector": {"app": "nothing"}, "ports": port}}))
    .await;
    let web_ip = web.cluster_ip.clone().unwrap();
    let node_port = web.ports.as_ref().unwrap()[0].node_port.unwrap();
    let sticky_ip = sticky.cluster_ip.unwrap();
    let empty_ip = empty.cluster_ip.unwrap();
    for ip in [&web_ip, &sticky_ip, &empty_ip] {
        net.lo_addresses.push(format!("{ip}/32"));
    }

    net.proxy = Some(
        Command::new(env!("CARGO_BIN_EXE_skiff-proxy"))
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args(["--mode", "userspace", "--nft-table", &table])
            .args(["--hostname-override", "n1", "--host-gw=false"])
            .args(["--serve-dns=false", "--metrics-bind-address", ""])
            .args(["--cluster-cidr", &format!("{}.0/24", net.subnet())])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );

    let addr = format!("{web_ip}:80");
    let seen = eventually(
        "all three backends behind the ClusterIP",
        Duration::from_secs(30),
        || {
            let addr = addr.clone();
            async move {
                let seen = answers(&addr, 30);
                (seen.len() == 3).then_some(seen)
            }
        },
    )
    .await;
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["backend-0", "backend-1", "backend-2"]
    );
    assert!(on_lo(&web_ip), "the ClusterIP is on lo");
    // The NodePort on a node address and, unlike the nftables mode, on loopback.
    for host in [format!("{}.1", net.subnet()), "127.0.0.1".to_string()] {
        let np = format!("{host}:{node_port}");
        assert!(
            !answers(&np, 10).is_empty(),
            "NodePort {np} answered nothing"
        );
    }
    // No endpoints: the address is local, nothing listens, the kernel refuses.
    eventually(
        "the empty Service to be refused",
        Duration::from_secs(15),
        || {
            let refused = TcpStream::connect_timeout(
                &format!("{empty_ip}:80").parse().unwrap(),
                Duration::from_millis(500),
            );
            async move {
                matches!(refused, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
                    .then_some(())
            }
        },
    )
    .await;
    // Affinity: every connection from here goes to one backend.
    let sticky_addr = format!("{sticky_ip}:80");
    let stuck = eventually("the sticky Service", Duration::from_secs(15), || {
        let seen = answers(&sticky_addr, 20);
        async move { (!seen.is_empty()).then_some(seen) }
    })
    .await;
    assert_eq!(stuck.len(), 1, "ClientIP affinity: {stuck:?}");
    assert!(
        !sh("nft", &["list", "table", "ip", &table]),
        "the userspace mode makes no nftables table"
    );

    pods.delete("b2", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually("b2 to leave the Service", Duration::from_secs(15), || {
        let addr = addr.clone();
        async move {
            let seen = answers(&addr, 20);
            (seen.len() == 2 && !seen.contains("backend-2")).then_some(())
        }
    })
    .await;

    let proxy = net.proxy.as_mut().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proxy.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    proxy.wait().unwrap();
    for ip in [&web_ip, &sticky_ip, &empty_ip] {
        assert!(!on_lo(ip), "{ip} is off lo after SIGTERM");
    }
    cluster.stop().await;
}
