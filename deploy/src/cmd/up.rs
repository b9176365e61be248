//! `skiff up`: set up the node's host side (as root), start the supervisor
//! in the background, and return once the node is Ready — or say what
//! failed. A second `up` finds the cluster running and says so; after a
//! `down` it starts the same cluster again from its data dir.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};

use crate::cluster::{Layout, Settings, UpArgs};
use crate::{Error, Result, host, supervise};

fn usage(s: &Settings, l: &Layout) -> String {
    if let Some(server) = &s.join {
        return format!(
            "skiff: this machine is node {} of the cluster at {server} (its kubelet and proxy run here; use kubectl with the server's admin kubeconfig)
skiff: skiff status | skiff logs kubelet | skiff down | skiff reset (leaves the cluster: delete the Node there too)",
            s.node_name.as_deref().unwrap_or("?")
        );
    }
    let k = l.kubeconfig().display().to_string();
    let host = if s.server {
        s.node_ip.clone()
    } else {
        s.api_host()
    };
    let nodes = if s.multi() {
        format!(
            "\nskiff: nodes node1…node{n} on bridge {br}: skiff node stop|start|partition|heal <node>; skiff logs kubelet-node1",
            n = s.nodes,
            br = s.nodes_bridge()
        )
    } else {
        String::new()
    };
    format!(
        "skiff: the API server is https://{host}:{port}; use it with kubectl (or skiffctl):
    export KUBECONFIG={k}
    kubectl get nodes -o wide
    kubectl run web --image=skiff/httpd --image-pull-policy=Never
    kubectl get pods -o wide                   # then: curl http://<pod IP>/
    kubectl logs -f web
skiff: images: skiff/busybox, skiff/httpd, skiff/layers (built here; no public registry is reached)
skiff: skiff status | skiff logs <program> | skiff down (keeps the state) | skiff reset (removes it all){nodes}",
        port = s.port
    )
}

/// The settings: the existing cluster's (its data dir has them), else the flags'.
fn settings(a: &UpArgs, l: &Layout) -> Result<Settings> {
    let mut a = a.clone();
    if let Some(iface) = &a.iface {
        a.node_ip = crate::cluster::iface_address(iface)?;
    }
    let a = &a;
    let s = match l.load_settings() {
        Some(mut s) => {
            let mut given = Settings::from_args(a);
            // --demo is each up's own choice, not a setting of the cluster;
            // a worker's or server's role is the data dir's.
            s.demo = given.demo;
            given.server = s.server;
            given.join = s.join.clone();
            given.node_name = s.node_name.clone();
            if s.join.is_some() {
                given = s.clone();
            }
            if given != s {
                println!(
                    "skiff: {} holds a cluster started with {}; its settings are kept (skiff reset to start afresh)",
                    l.data.display(),
                    s.to_json()
                );
            }
            s
        }
        None => Settings::from_args(a),
    };
    s.validate()?;
    Ok(s)
}

pub fn up(a: &UpArgs) -> Result<ExitCode> {
    let l = a.data.layout()?;
    let s = settings(a, &l)?;
    start(&s, &l, a.foreground)
}

/// Starts (or finds running) the cluster — or the worker — of `l` with
/// settings `s`, and waits for its nodes.
pub fn start(s: &Settings, l: &Layout, foreground: bool) -> Result<ExitCode> {
    let (s, l) = (s.clone(), l.clone());
    if let Some(pid) = l.running() {
        println!(
            "skiff: already running (supervisor pid {pid}, data in {})",
            l.data.display()
        );
        println!("{}", usage(&s, &l));
        return Ok(ExitCode::SUCCESS);
    }
    if s.join.is_none() && std::net::TcpStream::connect(("127.0.0.1", s.port)).is_ok() {
        return Err(Error::Failed(format!(
            "something already listens on 127.0.0.1:{}; choose another port: skiff up --port 16443",
            s.port
        )));
    }
    l.save_settings(&s)?;
    if host::is_root() {
        host::prepare(&s, &l)?;
    } else {
        println!(
            "skiff: not root: the kubelet registers the Node but cannot run pods (its runtime needs root)"
        );
    }
    if foreground {
        println!("{}", usage(&s, &l));
        return supervise_with(&s, &l);
    }
    let started = Instant::now();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(l.log("skiff"))
        .map_err(Error::io("skiff.log"))?;
    let err = log.try_clone().map_err(Error::io("skiff.log"))?;
    let exe = std::env::current_exe().map_err(Error::io("where is skiff"))?;
    let mut child = {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("supervise").arg("--data-dir").arg(&l.data);
        // The supervisor reads the kept settings; --demo is this up's own.
        if s.demo {
            cmd.arg("--demo");
        }
        cmd.stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            // Not in our terminal's process group: closing it does not stop the cluster.
            .process_group(0)
            .spawn()
            .map_err(Error::io("start the supervisor"))?
    };
    println!(
        "skiff: starting (supervisor pid {}, log {})",
        child.id(),
        l.log("skiff").display()
    );
    let rt = tokio::runtime::Runtime::new().map_err(Error::io("tokio"))?;
    let ready = rt.block_on(wait_ready(
        &l,
        &s,
        &mut child,
        k8s_openapi::jiff::Timestamp::now(),
    ))?;
    if s.multi() && host::is_root() {
        host::route_pods(
            &ready
                .iter()
                .map(|n| (n.pod_cidr.clone(), n.ip.clone()))
                .collect::<Vec<_>>(),
        )?;
    }
    let names: Vec<&str> = ready.iter().map(|n| n.name.as_str()).collect();
    println!(
        "skiff: node{} {} {} Ready, {:.1} s after `skiff up`",
        if names.len() > 1 { "s" } else { "" },
        names.join(", "),
        if names.len() > 1 { "are" } else { "is" },
        started.elapsed().as_secs_f64()
    );
    println!("{}", usage(&s, &l));
    Ok(ExitCode::SUCCESS)
}

/// The hidden `skiff supervise`: the cluster in this process, until SIGTERM.
pub fn supervise(a: &UpArgs) -> Result<ExitCode> {
    let l = a.data.layout()?;
    let s = settings(a, &l)?;
    supervise_with(&s, &l)
}

fn supervise_with(s: &Settings, l: &Layout) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().map_err(Error::io("tokio"))?;
    rt.block_on(supervise::run(s, l, &crate::bin_dir()?))?;
    Ok(ExitCode::SUCCESS)
}

/// A Node `up` waited for.
pub struct ReadyNode {
    pub name: String,
    /// Its pod CIDR and InternalIP (with --nodes, where the host routes it).
    pub pod_cidr: String,
    pub ip: String,
}

/// Waits for the cluster's Ready Nodes (one, or each of --nodes N, with its
/// pod CIDR) whose kubelets have posted since `since` (after a `down`, a
/// Node still says Ready from before until the node lifecycle controller
/// notices), or for the supervisor to fail. A node `skiff node stop` holds
/// down is not waited for.
async fn wait_ready(
    l: &Layout,
    s: &Settings,
    supervisor: &mut std::process::Child,
    since: k8s_openapi::jiff::Timestamp,
) -> Result<Vec<ReadyNode>> {
    let mut want: Vec<String> = s
        .sim_nodes()
        .into_iter()
        .filter(|n| !l.node_stopped(&n.name).exists())
        .map(|n| n.name)
        .collect();
    // A worker waits for its own Node, not the server's.
    want.extend(s.join.as_ref().and(s.node_name.clone()));
    // Ready heartbeats have whole seconds: one from the second `up` started
    // in may be the old kubelet's (a `down` just before). The node's Lease
    // has microseconds: renewed after `since`, it is this kubelet's.
    let heartbeat_since = since - k8s_openapi::jiff::SignedDuration::from_secs(1);
    let deadline = Instant::now() + Duration::from_secs(120);
    let tail = || {
        let text = std::fs::read_to_string(l.log("skiff")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    };
    let mut client = None;
    loop {
        if let Ok(Some(status)) = supervisor.try_wait() {
            return Err(Error::Failed(format!(
                "the supervisor exited ({status}):\n{}",
                tail()
            )));
        }
        if Instant::now() > deadline {
            return Err(Error::Failed(format!(
                "not every node Ready within 120 s (the cluster keeps trying; skiff status, skiff logs kubelet):\n{}",
                tail()
            )));
        }
        if client.is_none() && l.client_kubeconfig(s).exists() {
            client = skiff_proto::client::connect(Some(&l.client_kubeconfig(s)))
                .await
                .ok();
        }
        if let Some(c) = &client {
            let nodes: Api<Node> = Api::all(c.clone());
            if let Ok(list) = nodes.list(&ListParams::default()).await {
                let fresh: Vec<&Node> = list
                    .items
                    .iter()
                    .filter(|n| {
                        n.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|cs| {
                                cs.iter().any(|c| {
                                    c.type_ == "Ready"
                                        && c.status == "True"
                                        && c.last_heartbeat_time
                                            .as_ref()
                                            .is_some_and(|t| t.0 >= heartbeat_since)
                                })
                            })
                    })
                    .collect();
                let leases: Api<Lease> = Api::namespaced(c.clone(), "kube-node-lease");
                let mut ready = Vec::new();
                for n in fresh {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    let renewed = leases
                        .get_opt(&name)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|l| l.spec?.renew_time)
                        .is_some_and(|t| t.0 > since);
                    let pod_cidr = n.spec.as_ref().and_then(|s| s.pod_cidr.clone());
                    let ip = n
                        .status
                        .as_ref()
                        .and_then(|s| s.addresses.as_ref())
                        .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
                        .map(|a| a.address.clone());
                    if renewed {
                        ready.push(ReadyNode {
                            name,
                            pod_cidr: pod_cidr.unwrap_or_default(),
                            ip: ip.unwrap_or_default(),
                        });
                    }
                }
                if want.is_empty() && !ready.is_empty() {
                    ready.truncate(1);
                    return Ok(ready);
                }
                // --nodes: each one, with the pod CIDR the host routes to it.
                ready.retain(|n| want.contains(&n.name) && !n.pod_cidr.is_empty());
                if !want.is_empty() && ready.len() == want.len() {
                    return Ok(ready);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
