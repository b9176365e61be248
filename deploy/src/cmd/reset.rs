//! `skiff reset`: stop the cluster and remove everything it created — the
//! pods' containers (they outlive the kubelet), their mounts, network
//! namespaces and cgroups, the bridge, the nftables fence, the data dir;
//! with --nodes each node's (and the nodes' network namespaces, the host
//! bridge and routes).

use std::process::ExitCode;

use crate::cluster::Layout;
use crate::{Error, Result, host};

pub fn reset(l: &Layout) -> Result<ExitCode> {
    if let Some(pid) = l.running() {
        super::down::stop_supervisor(l, pid)?;
        println!("skiff: stopped");
    }
    // Programs a dead supervisor left behind (their pid files remain).
    for e in std::fs::read_dir(l.data.join("run"))
        .into_iter()
        .flatten()
        .flatten()
    {
        // Only a process that names this data dir: a pid may have been reused.
        if e.path().extension().is_some_and(|x| x == "pid")
            && let Some(pid) = crate::cluster::alive(&e.path())
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*l.data.to_string_lossy()))
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            println!(
                "skiff: ended {} (pid {pid})",
                e.file_name().to_string_lossy()
            );
        }
    }
    let settings = l.load_settings();
    let roots = match &settings {
        Some(s) => l.kubelet_roots(s),
        None => vec![l.kubelet_root()],
    };
    for root in roots {
        let removed = skiff_runtime::cleanup::remove_all(&root);
        println!(
            "skiff: removed {} processes, {} mounts, {} pod cgroups ({})",
            removed.processes,
            removed.mounts,
            removed.cgroups,
            root.display()
        );
    }
    if let Some(s) = settings {
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
