//! `skiff reset`: stop the cluster and remove everything it created — the
//! pods' containers (they outlive the kubelet), their mounts, network
//! namespaces and cgroups, the bridge, the nftables fence, the data dir.

use std::process::ExitCode;

use crate::cluster::Layout;
use crate::{Error, Result, host};

pub fn reset(l: &Layout) -> Result<ExitCode> {
    if let Some(pid) = l.running() {
        super::down::stop_supervisor(l, pid)?;
        println!("skiff: stopped");
    }
    let removed = skiff_runtime::cleanup::remove_all(&l.kubelet_root());
    println!(
        "skiff: removed {} processes, {} mounts, {} pod cgroups",
        removed.processes, removed.mounts, removed.cgroups
    );
    if let Some(s) = l.load_settings() {
        for what in host::remove(&s) {
            println!("skiff: removed {what}");
        }
    }
    if l.data.exists() {
        std::fs::remove_dir_all(&l.data).map_err(Error::io(l.data.display().to_string()))?;
        println!("skiff: removed {}", l.data.display());
    }
    Ok(ExitCode::SUCCESS)
}
