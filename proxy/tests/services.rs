//! The real `skiff-proxy` binary against the real API server and
//! controller manager (EndpointSlices from pods), as root: three backends
//! are busybox httpd processes in network namespaces this test creates;
//! their Pods get those addresses as their status (no kubelet needed). Over
//! the ClusterIP every backend answers; a NodePort on a local address
//! answers; a Service without endpoints is refused at once; an unallocated
//! address in the service range is dropped; deleting a pod takes it out
//! within seconds; cluster DNS answers a "pod" (a namespace with a pod's
//! resolv.conf) for the short, namespaced and full names and a headless
//! Service; SIGTERM removes the table and takes the DNS address off lo.
//!
//! Safety: every name carries this run's id; the backends live on a
//! private test range reached over veths the test made; an nftables fence
//! drops anything to the service range that was not translated, so no
//! packet leaves the machine. Everything is removed on drop, even after a
//! failure.

mod common;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use skiff_tests::{TestCluster, eventually, set_pod_status};

use common::{Net, answers, sh};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: network namespaces, veths and nftables"]
async fn cluster_ips_and_node_ports_reach_every_ready_endpoint() {
    let mut net = Net::new();
    let id = net.id;
    net.fence(false);
    let table = format!("skiff_pxtest_{}", std::process::id());
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
    let svc = |name: &str, app: &str, node_port: bool| -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"type": if node_port { "NodePort" } else { "ClusterIP" },
                     "selector": {"app": app},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
        }))
        .unwrap()
    };
    let web = services
        .create(&PostParams::default(), &svc("web", "web", true))
        .await
        .unwrap();
    let empty = services
        .create(&PostParams::default(), &svc("empty", "nothing", false))
        .await
        .unwrap();
    let web_ip = web.spec.as_ref().unwrap().cluster_ip.clone().unwrap();
    let node_port = web.spec.as_ref().unwrap().ports.as_ref().unwrap()[0]
        .node_port
        .unwrap();
    let empty_ip = empty.spec.unwrap().cluster_ip.unwrap();

    // Cluster DNS on an address of this run's own (the real 10.96.0.10 may
    // be a running cluster's), which the proxy puts on lo; names outside
    // the domain go to a resolver on loopback that never answers.
    let dns_ip = format!("10.96.250.{}", id + 1);
    net.lo_addresses.push(format!("{dns_ip}/32"));
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let upstream = silent.local_addr().unwrap().to_string();
    net.proxy = Some(
        Command::new(env!("CARGO_BIN_EXE_skiff-proxy"))
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args(["--nft-table", &table, "--hostname-override", "n1"])
            .args(["--cluster-cidr", &format!("{}.0/24", net.subnet())])
            .args(["--cluster-dns", &dns_ip])
            .args(["--dns-upstream", &upstream])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );

    // Every backend answers through the ClusterIP (random choice).
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
    // The NodePort, on a local (non-loopback) address of this node.
    let np = format!("{}.1:{node_port}", net.subnet());
    let via_node_port = answers(&np, 10);
    assert!(!via_node_port.is_empty(), "NodePort {np} answered nothing");

    // No endpoints: refused at once, not a timeout.
    let refused = TcpStream::connect_timeout(
        &format!("{empty_ip}:80").parse().unwrap(),
        Duration::from_secs(3),
    )
    .unwrap_err();
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{refused}"
    );
    // An address of the range that is no Service's: dropped.
    let dropped = TcpStream::connect_timeout(
        &"10.111.222.233:80".parse().unwrap(),
        Duration::from_millis(500),
    )
    .unwrap_err();
    assert_eq!(dropped.kind(), std::io::ErrorKind::TimedOut, "{dropped}");

    // Scale down: b2's pod goes, and with it its endpoint.
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

    // DNS from inside a "pod" (backend 0's namespace, with a pod's
    // resolv.conf): the short name, the namespaced name and the FQDN give
    // the ClusterIP; a headless Service gives every pod left.
    let ns0 = format!("spx{}-b0", std::process::id());
    let etc = std::path::PathBuf::from("/etc/netns").join(&ns0);
    std::fs::create_dir_all(&etc).unwrap();
    net.etc.push(etc.clone());
    std::fs::write(
        etc.join("resolv.conf"),
        format!(
            "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver {dns_ip}\noptions ndots:5\n"
        ),
    )
    .unwrap();
    let headless: Service = serde_json::from_value(json!({
        "metadata": {"name": "web-pods"},
        "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &headless)
        .await
        .unwrap();
    // getent: the C library's resolver, as a program in a pod would use
    // it (resolv.conf's search path and ndots turn short names into FQDNs).
    let lookup = |name: &str| {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns0, "getent", "ahostsv4", name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let addresses = |answer: &str| {
        let mut v: Vec<String> = answer
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    for name in ["web", "web.default", "web.default.svc.cluster.local"] {
        let answer = eventually(&format!("DNS for {name}"), Duration::from_secs(15), || {
            let answer = lookup(name);
            async move { (!answer.is_empty()).then_some(answer) }
        })
        .await;
        assert_eq!(
            addresses(&answer),
            std::slice::from_ref(&web_ip),
            "{name}: {answer}"
        );
        assert!(answer.contains("web.default.svc.cluster.local"), "{answer}");
    }
    // b2 was deleted above: b0 and b1 are the pods.
    let mut want = ips[..2].to_vec();
    want.sort();
    let pods_answer = eventually("headless DNS", Duration::from_secs(15), || {
        let answer = lookup("web-pods");
        let found = addresses(&answer) == want;
        async move { found.then_some(answer) }
    })
    .await;
    assert!(!pods_answer.contains(&web_ip), "{pods_answer}");
    assert_eq!(lookup("nothing"), "", "an unknown name resolves to nothing");
    // The kube-dns Service holds the address, as upstream's add-on does.
    let kube_dns: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let kd = kube_dns.get("kube-dns").await.unwrap();
    assert_eq!(
        kd.spec.unwrap().cluster_ip.as_deref(),
        Some(dns_ip.as_str())
    );

    // SIGTERM: the proxy removes its table.
    let proxy = net.proxy.as_mut().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(proxy.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    proxy.wait().unwrap();
    assert!(
        !sh("nft", &["list", "table", "ip", &table]),
        "the table is gone after SIGTERM"
    );
    let lo = Command::new("ip")
        .args(["-o", "addr", "show", "dev", "lo"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&lo.stdout).contains(&format!(" {dns_ip}/32 ")),
        "the DNS address is off lo after SIGTERM"
    );
    cluster.stop().await;
}
