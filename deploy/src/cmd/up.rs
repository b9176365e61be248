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
    let k = l.kubeconfig().display().to_string();
    format!(
        "skiff: the API server is https://127.0.0.1:{port}; use it with kubectl (or skiffctl):
    export KUBECONFIG={k}
    kubectl get nodes -o wide
    kubectl run web --image=skiff/httpd --image-pull-policy=Never
    kubectl get pods -o wide                   # then: curl http://<pod IP>/
    kubectl logs -f web
skiff: images: skiff/busybox, skiff/httpd, skiff/layers (built here; no public registry is reached)
skiff: skiff status | skiff logs <program> | skiff down (keeps the state) | skiff reset (removes it all)",
        port = s.port
    )
}

/// The settings: the existing cluster's (its data dir has them), else the flags'.
fn settings(a: &UpArgs, l: &Layout) -> Result<Settings> {
    let s = match l.load_settings() {
        Some(mut s) => {
            let given = Settings::from_args(a);
            // --demo is each up's own choice, not a setting of the cluster.
            s.demo = given.demo;
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
    if let Some(pid) = l.running() {
        let s = settings(a, &l)?;
        println!(
            "skiff: already running (supervisor pid {pid}, data in {})",
            l.data.display()
        );
        println!("{}", usage(&s, &l));
        return Ok(ExitCode::SUCCESS);
    }
    let s = settings(a, &l)?;
    if std::net::TcpStream::connect(("127.0.0.1", s.port)).is_ok() {
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
    if a.foreground {
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
    let node = rt.block_on(wait_ready(
        &l,
        &mut child,
        k8s_openapi::jiff::Timestamp::now(),
    ))?;
    println!(
        "skiff: node {node} is Ready, {:.1} s after `skiff up`",
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

/// Waits for a Ready Node whose kubelet has posted since `since` (after a
/// `down`, the Node still says Ready from before until the node lifecycle
/// controller notices), or for the supervisor to fail.
async fn wait_ready(
    l: &Layout,
    supervisor: &mut std::process::Child,
    since: k8s_openapi::jiff::Timestamp,
) -> Result<String> {
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
                "no Ready node within 120 s (the cluster keeps trying; skiff status, skiff logs kubelet):\n{}",
                tail()
            )));
        }
        if client.is_none() && l.kubeconfig().exists() {
            client = skiff_proto::client::connect(Some(&l.kubeconfig()))
                .await
                .ok();
        }
        if let Some(c) = &client {
            let nodes: Api<Node> = Api::all(c.clone());
            if let Ok(list) = nodes.list(&ListParams::default()).await {
                let ready = list.items.iter().find(|n| {
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
                });
                if let Some(n) = ready {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    let leases: Api<Lease> = Api::namespaced(c.clone(), "kube-node-lease");
                    let renewed = leases
                        .get_opt(&name)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|l| l.spec?.renew_time)
                        .is_some_and(|t| t.0 > since);
                    if renewed {
                        return Ok(name);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
