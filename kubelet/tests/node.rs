//! The real `skiff-kubelet` binary against a real API server (skiff-apiserver
//! in-process over its embedded store): it registers its Node with what the
//! flags and the machine say, heartbeats through its Lease and the status, is
//! shown by the real kubectl, takes its Node over after a restart, and refuses
//! a --node-ip that is not this machine's with a message naming the choices.

mod common;
use common::wait_for;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client};

struct Kubelet(Child);

impl Kubelet {
    fn start(kubeconfig: &Path, root: &Path, labels: &str) -> Kubelet {
        let child = Command::new(env!("CARGO_BIN_EXE_skiff-kubelet"))
            .args(["--kubeconfig", kubeconfig.to_str().unwrap()])
            .args(["--hostname-override", "lab-node-1"])
            .args(["--root-dir", root.to_str().unwrap()])
            .args(["--node-ip", "127.0.0.1"])
            .args(["--port=0", "--address=127.0.0.1"])
            // No CNI network configured: the runtime says so.
            .arg(format!("--cni-conf-dir={}", root.join("no-cni").display()))
            .arg(format!("--node-labels={labels}"))
            .arg("--register-with-taints=dedicated=lab:NoSchedule")
            .arg("--system-reserved=cpu=100m,memory=100Mi")
            .arg("--node-status-update-frequency=500ms")
            .arg("--node-lease-duration-seconds=2")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start skiff-kubelet");
        Kubelet(child)
    }

    /// SIGTERM and wait: a clean stop.
    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = self.0.wait().unwrap();
        assert!(status.success(), "skiff-kubelet exited with {status}");
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_heartbeats_and_takes_its_node_over_after_a_restart() {
    let dir = tempfile::Builder::new()
        .prefix("skiff-kubelet-test-")
        .tempdir()
        .unwrap();
    let server = skiff_apiserver::start(skiff_apiserver::Config::for_dir(dir.path().join("data")))
        .await
        .expect("start skiff-apiserver");
    let kubeconfig = server.admin_kubeconfig.clone();
    let client: Client = skiff_proto::client::connect(Some(&kubeconfig))
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let root = dir.path().join("kubelet");

    let kubelet = Kubelet::start(&kubeconfig, &root, "role=web,zone=a");
    let node = wait_for("the Node", || async {
        let node = nodes.get_opt("lab-node-1").await.ok()??;
        node.status.as_ref()?.conditions.as_ref()?;
        Some(node)
    })
    .await;
    let labels = node.metadata.labels.clone().unwrap();
    assert_eq!(labels["role"], "web");
    assert_eq!(labels["kubernetes.io/hostname"], "lab-node-1");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    let taint = &node.spec.as_ref().unwrap().taints.as_ref().unwrap()[0];
    assert_eq!(
        (
            taint.key.as_str(),
            taint.value.as_deref(),
            taint.effect.as_str()
        ),
        ("dedicated", Some("lab"), "NoSchedule")
    );
    let status = node.status.clone().unwrap();
    let addresses = status.addresses.unwrap();
    assert_eq!(
        (addresses[0].type_.as_str(), addresses[0].address.as_str()),
        ("InternalIP", "127.0.0.1")
    );
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(status.capacity.as_ref().unwrap()["cpu"].0, cpus.to_string());
    assert_eq!(
        status.allocatable.as_ref().unwrap()["cpu"].0,
        format!("{}m", cpus * 1000 - 100)
    );
    let ready = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    // The embedded runtime has no CNI network (and needs root): the Node
    // says which, in the runtime's words, instead of claiming to be Ready.
    assert_eq!(ready.status, "False");
    let want = if nix::unistd::geteuid().is_root() {
        "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:no CNI network configuration"
    } else {
        "container runtime not ready: RuntimeReady=false reason:NotRoot message:the embedded runtime needs root (namespaces, mounts, cgroups)"
    };
    let ready = wait_for("the runtime's own answer", || async {
        let node = nodes.get_opt("lab-node-1").await.ok()??;
        let c = node
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (c.message.as_deref() == Some(want)).then_some(c)
    })
    .await;
    assert_eq!(ready.reason.as_deref(), Some("KubeletNotReady"));
    // Its ImageService answers on the socket in the root dir (owner-only).
    use skiff_kubelet::runtime::Runtime;
    use std::os::unix::fs::PermissionsExt;
    let socket = root.join("runtime.sock");
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let cri = skiff_kubelet::runtime::CriClient::connect_lazy(&socket);
    assert_eq!(cri.list_images().await.unwrap().len(), 0);

    // The Lease is owned by the Node and renewed.
    let renewed = |after: Option<jiff::Timestamp>| {
        let leases = leases.clone();
        async move {
            let lease = leases.get_opt("lab-node-1").await.ok()??;
            let t = lease.spec?.renew_time?.0;
            after
                .is_none_or(|a| t > a)
                .then_some((t, lease.metadata.owner_references))
        }
    };
    let (first, owners) = wait_for("the node Lease", || renewed(None)).await;
    assert_eq!(owners.unwrap()[0].uid, node.metadata.uid.clone().unwrap());
    wait_for("a Lease renewal", || renewed(Some(first))).await;

    // The real kubectl shows it.
    let out = Command::new("kubectl")
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "get",
            "nodes",
            "-o",
            "wide",
        ])
        .output()
        .expect("run kubectl");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("lab-node-1"))
        .expect(&table);
    for column in ["NotReady", "v1.32.0", "127.0.0.1"] {
        assert!(row.contains(column), "{column} in {row}");
    }

    // Restarted with other labels: same Node (uid), labels brought up to date.
    kubelet.stop();
    let kubelet = Kubelet::start(&kubeconfig, &root, "role=db");
    let again = wait_for("the labels of the restarted kubelet", || async {
        let n = nodes.get_opt("lab-node-1").await.ok()??;
        (n.metadata.labels.as_ref()?.get("role")? == "db").then_some(n)
    })
    .await;
    assert_eq!(again.metadata.uid, node.metadata.uid);
    kubelet.stop();
    server.stop().await;
}

#[test]
fn a_node_ip_that_is_not_local_is_refused_with_the_choices() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_skiff-kubelet"))
        .args(["--kubeconfig", "/nonexistent", "--node-ip", "192.0.2.77"])
        .args(["--root-dir", dir.path().to_str().unwrap()])
        .args(["--port=0", "--address=127.0.0.1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--node-ip 192.0.2.77 is not an address of this machine (it has: ")
            && stderr.contains("127.0.0.1 on lo"),
        "{stderr}"
    );
}
