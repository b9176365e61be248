//! A lab of three nodes on one machine, as root: `skiff up --nodes 3
//! --demo` runs each node's kubelet and proxy in its own network namespace
//! with its own address. The test drives it with the real kubectl as a
//! teacher would:
//!
//! - a Deployment of three pods spread over the three nodes, each pod
//!   answering with its own name, behind a ClusterIP Service and a NodePort;
//! - from a client pod on node1, the Service by its DNS name reaches every
//!   replica, two of them on other nodes (pod-to-pod across nodes, no NAT:
//!   the proxies' host-gw routes); a pod IP on another node answers directly;
//! - the NodePort answers on every node's address;
//! - scaling down changes the set of answers; `ClientIP` affinity sticks;
//! - a rolling update under a steady stream of requests fails none;
//! - a Service without endpoints is refused at once;
//! - `skiff node stop node3`: node3 goes NotReady, its pod is replaced on
//!   the others within the demo timers; `skiff node start node3`: it comes
//!   back Ready and the old pod is gone from the API;
//! - `skiff node partition node2` / `heal`: NotReady while cut off, Ready after;
//! - `skiff reset` leaves nothing (namespaces, veths, bridge, routes,
//!   nftables, mounts, processes).
//!
//! Traffic goes only to addresses inside the namespaces the test made.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use common::{Cluster, eventually, http_get, leftovers, ok};

const WHO: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: who}
spec:
  replicas: 3
  selector: {matchLabels: {app: who}}
  template:
    metadata: {labels: {app: who}}
    spec:
      topologySpreadConstraints:
      # Honor: a failed node (tainted) is no domain, so its pods can move.
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
         nodeTaintsPolicy: Honor, labelSelector: {matchLabels: {app: who}}}
      containers:
      - name: httpd
        image: skiff/httpd:latest
        imagePullPolicy: Never
        # Each pod answers with its own name.
        command: [sh, -c, "hostname > /var/www/index.html && exec httpd -f -p 80 -h /var/www"]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 1}
        # Time for every proxy to drop the endpoint before httpd stops.
        lifecycle: {preStop: {exec: {command: [sleep, "3"]}}}
---
apiVersion: v1
kind: Service
metadata: {name: who}
spec:
  selector: {app: who}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: who-np}
spec:
  type: NodePort
  selector: {app: who}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: who-sticky}
spec:
  selector: {app: who}
  sessionAffinity: ClientIP
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: nobody}
spec:
  selector: {app: nobody}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeSelector: {kubernetes.io/hostname: node1}
  containers:
  - {name: sh, image: skiff/busybox:latest, imagePullPolicy: Never, command: [sleep, "3600"]}
"#;

/// `(name, node, ip)` of each Ready `who` pod that is not terminating.
fn who_pods(c: &Cluster) -> Vec<(String, String, String)> {
    let out = c.kubectl(
        &[
            "get", "pods", "-l", "app=who", "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP} {.status.containerStatuses[0].ready} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
        ],
        None,
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() == 5 && f[3] == "true" && f[4].is_empty())
                .then(|| (f[0].into(), f[1].into(), f[2].into()))
        })
        .collect()
}

fn node_ready(c: &Cluster, node: &str) -> String {
    let out = c.kubectl(
        &[
            "get",
            "node",
            node,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ],
        None,
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Who answers `count` requests for `target` sent from the client pod.
fn answers_from_client(c: &Cluster, target: &str, count: u32) -> BTreeSet<String> {
    let script = format!(
        "for i in $(seq {count}); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {target} 80 | tail -1; done"
    );
    let out = c.kubectl(&["exec", "client", "--", "sh", "-c", &script], None);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| l.starts_with("who-"))
        .collect()
}

#[test]
#[ignore = "needs root: runs three nodes in network namespaces with containers, bridges and nftables"]
fn three_nodes_spread_serve_fail_and_heal() {
    let bin = Path::new(env!("CARGO_BIN_EXE_skiff"))
        .parent()
        .unwrap()
        .to_path_buf();
    for b in ["skiff-apiserver", "skiff-kubelet", "skiff-proxy"] {
        assert!(
            bin.join(b).exists(),
            "{b} is not built next to skiff: cargo build --workspace first"
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix("skiff-nodes-")
        .tempdir()
        .unwrap();
    let pid = std::process::id();
    let (pods, nodes) = (
        format!("10.{}.0.0/16", 150 + pid % 50),
        format!("10.245.{}.0/24", pid % 250),
    );
    let c = Cluster::new(
        tmp.path(),
        "sn",
        pods.clone(),
        &["--nodes", "3", "--demo", "--node-subnet", &nodes],
    );
    let node_ip = |i: u32| {
        let base = nodes.trim_end_matches(".0/24");
        format!("{base}.{}", 10 + i)
    };

    let started = Instant::now();
    let out = ok(&c.skiff(&["up"]), "skiff up --nodes 3");
    assert!(out.contains("nodes node1, node2, node3 are Ready"), "{out}");
    println!(
        "three nodes Ready {:.1} s after skiff up",
        started.elapsed().as_secs_f64()
    );
    let wide = ok(
        &c.kubectl(&["get", "nodes", "-o", "wide"], None),
        "get nodes",
    );
    for i in 1..=3 {
        assert!(
            wide.contains(&node_ip(i)),
            "node{i} at {}: {wide}",
            node_ip(i)
        );
    }

    ok(
        &c.kubectl(&["apply", "-f", "-"], Some(WHO)),
        "kubectl apply",
    );
    let spread = eventually("three who pods Ready, one per node", 120, || {
        let p = who_pods(&c);
        let on: BTreeSet<&str> = p.iter().map(|p| p.1.as_str()).collect();
        (p.len() == 3 && on.len() == 3).then_some(p)
    });
    let names: BTreeSet<String> = spread.iter().map(|p| p.0.clone()).collect();
    eventually("the client pod to run", 60, || {
        let out = c.kubectl(&["exec", "client", "--", "true"], None);
        out.status.success().then_some(())
    });

    // Every replica behind the Service name, from node1: two are elsewhere.
    let seen = eventually("every replica to answer through the Service", 60, || {
        let seen = answers_from_client(&c, "who", 30);
        (seen == names).then_some(seen)
    });
    assert_eq!(seen, names);
    // A pod on node3, straight to its IP from node1 (host-gw, no NAT).
    let far = spread.iter().find(|p| p.1 == "node3").unwrap();
    let direct = answers_from_client(&c, &far.2, 1);
    assert_eq!(direct, BTreeSet::from([far.0.clone()]));
    // DNS names for the Service.
    let out = c.kubectl(
        &[
            "exec",
            "client",
            "--",
            "nslookup",
            "who.default.svc.cluster.local",
        ],
        None,
    );
    let cluster_ip = ok(
        &c.kubectl(
            &["get", "svc", "who", "-o", "jsonpath={.spec.clusterIP}"],
            None,
        ),
        "who's ClusterIP",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("Address: {cluster_ip}")),
        "{out:?}"
    );

    // The NodePort on every node's address.
    let node_port = ok(
        &c.kubectl(
            &[
                "get",
                "svc",
                "who-np",
                "-o",
                "jsonpath={.spec.ports[0].nodePort}",
            ],
            None,
        ),
        "the node port",
    );
    for i in 1..=3 {
        let page = eventually(&format!("the NodePort on node{i}"), 30, || {
            http_get(&format!("{}:{node_port}", node_ip(i)))
        });
        assert!(names.iter().any(|n| page.contains(n.as_str())), "{page}");
    }

    // No endpoints: refused at once (a reject, not a silent drop).
    let refused = c.kubectl(
        &[
            "exec",
            "client",
            "--",
            "sh",
            "-c",
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 nobody 80; echo rc=$?",
        ],
        None,
    );
    let text = String::from_utf8_lossy(&refused.stdout).into_owned()
        + &String::from_utf8_lossy(&refused.stderr);
    assert!(text.contains("refused"), "{text}");

    // Scale down: the set of answers follows.
    ok(
        &c.kubectl(&["scale", "deployment", "who", "--replicas=2"], None),
        "scale to 2",
    );
    let two = eventually("two replicas left", 60, || {
        let p = who_pods(&c);
        (p.len() == 2).then_some(p)
    });
    let two_names: BTreeSet<String> = two.iter().map(|p| p.0.clone()).collect();
    eventually("only the two to answer", 30, || {
        (answers_from_client(&c, "who", 20) == two_names).then_some(())
    });
    ok(
        &c.kubectl(&["scale", "deployment", "who", "--replicas=3"], None),
        "scale to 3",
    );
    let three = eventually("three replicas again, one per node", 90, || {
        let p = who_pods(&c);
        let on: BTreeSet<&str> = p.iter().map(|p| p.1.as_str()).collect();
        (p.len() == 3 && on.len() == 3).then_some(p)
    });

    // ClientIP affinity: one replica answers them all.
    let sticky = answers_from_client(&c, "who-sticky", 15);
    assert_eq!(sticky.len(), 1, "{sticky:?}");

    // A rolling update under a steady stream of requests from node1.
    let stream = "ok=0; bad=0; for i in $(seq 150); do \
        if printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 who 80 | grep -q who-; then ok=$((ok+1)); else bad=$((bad+1)); fi; \
        sleep 0.1; done; echo ok=$ok bad=$bad";
    let three = std::thread::scope(|scope| {
        let requests = scope.spawn(|| {
            let out = c.kubectl(&["exec", "client", "--", "sh", "-c", stream], None);
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        });
        std::thread::sleep(std::time::Duration::from_secs(2));
        ok(
            &c.kubectl(&["set", "env", "deployment/who", "ROUND=2"], None),
            "start a rolling update",
        );
        ok(
            &c.kubectl(
                &["rollout", "status", "deployment/who", "--timeout=120s"],
                None,
            ),
            "the rollout",
        );
        let tally = requests.join().unwrap();
        assert!(
            tally.ends_with(" bad=0"),
            "requests during the rollout: {tally}"
        );
        eventually("three new replicas, one per node", 90, || {
            let p = who_pods(&c);
            let on: BTreeSet<&str> = p.iter().map(|p| p.1.as_str()).collect();
            (p.len() == 3 && on.len() == 3 && p.iter().all(|p| !three.iter().any(|o| o.0 == p.0)))
                .then_some(p)
        })
    });

    // node3 powered off: NotReady after the demo grace period (10 s), its
    // pod evicted after the demo tolerations (30 s) and replaced elsewhere.
    let lost = three.iter().find(|p| p.1 == "node3").unwrap().0.clone();
    let out = ok(
        &c.skiff(&["node", "stop", "node3"]),
        "skiff node stop node3",
    );
    assert!(out.contains("node3 is off"), "{out}");
    eventually("node3 NotReady", 60, || {
        (node_ready(&c, "node3") != "True").then_some(())
    });
    let moved = eventually("node3's pod replaced on the other nodes", 120, || {
        let p = who_pods(&c);
        (p.len() == 3 && p.iter().all(|p| p.1 != "node3")).then_some(p)
    });
    assert!(moved.iter().all(|p| p.0 != lost), "{moved:?}");
    // The Service still answers from every live replica.
    let live: BTreeSet<String> = moved.iter().map(|p| p.0.clone()).collect();
    eventually("the replacements to answer", 30, || {
        (answers_from_client(&c, "who", 30) == live).then_some(())
    });

    // Booted again: Ready, and the evicted pod is finally gone.
    ok(
        &c.skiff(&["node", "start", "node3"]),
        "skiff node start node3",
    );
    eventually("node3 Ready again", 60, || {
        (node_ready(&c, "node3") == "True").then_some(())
    });
    eventually("the evicted pod gone from the API", 120, || {
        let out = c.kubectl(&["get", "pod", &lost, "-o", "name"], None);
        (!out.status.success()).then_some(())
    });

    // Cut off and plugged back in.
    ok(&c.skiff(&["node", "partition", "node2"]), "partition node2");
    eventually("node2 NotReady while cut off", 60, || {
        (node_ready(&c, "node2") != "True").then_some(())
    });
    ok(&c.skiff(&["node", "heal", "node2"]), "heal node2");
    eventually("node2 Ready again", 60, || {
        (node_ready(&c, "node2") == "True").then_some(())
    });
    let status = ok(&c.skiff(&["status"]), "skiff status");
    for p in ["kubelet-node1", "proxy-node2", "kubelet-node3"] {
        assert!(
            status
                .lines()
                .any(|l| l.starts_with(p) && l.contains("running")),
            "{p}: {status}"
        );
    }

    ok(&c.skiff(&["reset"]), "skiff reset");
    // The kernel frees a deleted network namespace (and its veths) in the
    // background: give it a few seconds before calling anything left.
    let deadline = Instant::now() + std::time::Duration::from_secs(15);
    let mut left = leftovers(&c);
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(250));
        left = leftovers(&c);
    }
    assert!(left.is_empty(), "left behind: {left:#?}");
}
