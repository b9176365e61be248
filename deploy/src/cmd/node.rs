//! `skiff node stop|start|partition|heal <node>`: what happens to a VM in a
//! lab, done to one node of a `skiff up --nodes N` cluster, for showing how
//! Kubernetes heals.
//!
//! - `stop` powers the node off: its kubelet and proxy are killed, then its
//!   containers, mounts and pod cgroups go (as in a reboot, the state on
//!   disk stays), and its link goes down. The supervisor leaves it down.
//!   The node lifecycle controller marks it NotReady after the grace
//!   period, and its pods are replaced elsewhere once their tolerations
//!   (300 s, 30 s under `--demo`) run out.
//! - `start` boots it again: link up, and the supervisor starts its kubelet
//!   and proxy, which find the pods' containers gone and act as a kubelet
//!   does after a reboot.
//! - `partition` cuts the node off the network (its link down) and leaves
//!   it running: its pods keep running, unseen; `heal` plugs it back in.

use std::process::{Command, ExitCode};

use crate::cluster::{DataDir, Layout, SimNode, alive};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    Stop,
    Start,
    Partition,
    Heal,
}

#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    pub action: Action,
    /// The node: node1, node2, …
    pub node: String,
    #[command(flatten)]
    pub data: DataDir,
}

fn link(veth: &str, up: bool) -> Result<()> {
    let state = if up { "up" } else { "down" };
    let out = Command::new("ip")
        .args(["link", "set", veth, state])
        .output()
        .map_err(Error::io("run ip"))?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "ip link set {veth} {state}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn mark(path: &std::path::Path, on: bool) -> Result<()> {
    if on {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io(dir.display().to_string()))?;
        }
        std::fs::write(path, "").map_err(Error::io(path.display().to_string()))
    } else {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io(path.display().to_string())(e))
            }
            _ => Ok(()),
        }
    }
}

/// The node called `name`, or what the cluster's nodes are.
fn find(l: &Layout, name: &str) -> Result<SimNode> {
    let s = l
        .load_settings()
        .ok_or_else(|| Error::Failed(format!("no cluster in {}", l.data.display())))?;
    if !s.multi() {
        return Err(Error::Failed(
            "this cluster has one node, on this machine: skiff node needs a cluster started with skiff up --nodes N".into(),
        ));
    }
    let nodes = s.sim_nodes();
    nodes
        .iter()
        .find(|n| n.name == name)
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            Error::Failed(format!(
                "no node {name:?} in this cluster; its nodes are {}",
                names.join(", ")
            ))
        })
}

pub fn node(a: &NodeArgs) -> Result<ExitCode> {
    let l = a.data.layout()?;
    let n = find(&l, &a.node)?;
    if !crate::host::is_root() {
        return Err(Error::Failed(
            "skiff node needs root (it changes links and ends processes)".into(),
        ));
    }
    let (stopped, cut) = (l.node_stopped(&n.name), l.node_partitioned(&n.name));
    match a.action {
        Action::Stop => {
            // The marker first: the supervisor must not restart what dies.
            mark(&stopped, true)?;
            for program in ["kubelet", "proxy"] {
                let name = format!("{program}-{}", n.name);
                if let Some(pid) = alive(&l.program_pid(&name)) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    println!("skiff: {name} (pid {pid}) killed");
                }
            }
            let gone = skiff_runtime::cleanup::remove_all(&l.node_dir(&n.name).join("kubelet"));
            link(&n.veth, false)?;
            println!(
                "skiff: {} is off: {} processes ended, {} mounts and {} pod cgroups gone, link down",
                n.name, gone.processes, gone.mounts, gone.cgroups
            );
            println!(
                "skiff: watch it go NotReady: kubectl get nodes -w   (skiff node start {} boots it)",
                n.name
            );
        }
        Action::Start => {
            if !cut.exists() {
                link(&n.veth, true)?;
            }
            mark(&stopped, false)?;
            if l.running().is_some() {
                println!(
                    "skiff: {} is booting: its kubelet and proxy start now",
                    n.name
                );
            } else {
                println!("skiff: {} will start with the cluster (skiff up)", n.name);
            }
        }
        Action::Partition => {
            mark(&cut, true)?;
            link(&n.veth, false)?;
            println!(
                "skiff: {} is cut off the network (still running); skiff node heal {} plugs it back in",
                n.name, n.name
            );
        }
        Action::Heal => {
            mark(&cut, false)?;
            if !stopped.exists() {
                link(&n.veth, true)?;
            }
            println!("skiff: {} is back on the network", n.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
