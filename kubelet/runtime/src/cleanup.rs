//! Removing everything a node left on the machine — for `skiff reset` and
//! for tests that fail half-way. Containers outlive the kubelet by design
//! (each has its shim), so stopping the kubelet stops nothing; this ends
//! them and undoes the host state of one kubelet root dir: the containers'
//! processes and shims, the sandboxes' namespace mounts (and with them
//! their network namespaces and veths) and the pods' cgroups. Only what
//! belongs to `root` is touched: Skiff's own processes (`skiff*`) whose
//! command line names it,
//! pids from its containers' pid files, mounts under it (the sandboxes'
//! namespaces, the containers' rootfs, and the kubelet's tmpfs volumes in
//! `<root>/pods/<uid>/volumes`), cgroups of the pods whose log dirs are in
//! it.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// What [`remove_all`] did, for the caller's report.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub processes: usize,
    pub mounts: usize,
    pub cgroups: usize,
}

/// Ends and unmounts everything of the kubelet whose `--root-dir` is `root`.
pub fn remove_all(root: &Path) -> Removed {
    let mut removed = Removed::default();
    let root_text = root.display().to_string();
    let me = std::process::id() as i32;
    let mut pids: Vec<i32> = std::fs::read_dir(root.join("runtime/containers"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("pid")).ok())
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        // Only our own programs (shims, `runtime run`, the kubelet): a
        // user's `tail -f <root>/…` names the root too and is not ours.
        let program = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        let ours = Path::new(&*String::from_utf8_lossy(program))
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("skiff"));
        if pid != me && ours && String::from_utf8_lossy(&cmdline).contains(&root_text) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    for pid in pids {
        if pid > 1 && kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
            removed.processes += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<&str> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(root))
        .collect();
    // Deepest first: a mount under another must go before it.
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        if nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH).is_ok() {
            removed.mounts += 1;
        }
    }
    // `<hierarchy>/<parent>/<qos>/pod<uid>`; uids from `logs/<ns>_<pod>_<uid>`.
    let uids: Vec<String> = std::fs::read_dir(root.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.rsplit('_').next().map(String::from)
        })
        .collect();
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        for parent in std::fs::read_dir(hierarchy.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for qos in std::fs::read_dir(parent.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                for uid in &uids {
                    let dir = qos.path().join(format!("pod{uid}"));
                    if dir.is_dir() {
                        remove_cgroup(&dir);
                        removed.cgroups += 1;
                    }
                }
            }
        }
    }
    removed
}

/// A cgroup and its children, deepest first (empty once their processes
/// are gone).
fn remove_cgroup(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            remove_cgroup(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}
