//! A sandbox's network, UTS and IPC namespaces, held WITHOUT a pause
//! process: a short-lived thread unshares them, sets the hostname, and the
//! namespace files under `/proc/thread-self/ns/` are bind-mounted onto files
//! in the sandbox's run dir. The bind mounts keep the namespaces alive after
//! the thread ends, so there is no process per pod to supervise, and the
//! namespaces survive a runtime restart. (The PID namespace is then each
//! container's own, which is Kubernetes' default anyway.)
//!
//! A container joins them with `setns` on these files, CNI plugins get the
//! net one as `CNI_NETNS`, and `nsenter --net=<file>` works for debugging.
//! Unmounting the three files (and the last container leaving) ends them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

/// The three namespace files of a sandbox.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NsPaths {
    pub net: PathBuf,
    pub uts: PathBuf,
    pub ipc: PathBuf,
}

impl NsPaths {
    pub fn in_dir(dir: &Path) -> NsPaths {
        NsPaths {
            net: dir.join("net"),
            uts: dir.join("uts"),
            ipc: dir.join("ipc"),
        }
    }
}

/// The host side effects of namespaces, so sandbox logic is tested without root.
pub trait Namespaces: Send + Sync {
    /// New net+UTS+IPC namespaces with `hostname`, pinned at `paths`.
    fn create(&self, paths: &NsPaths, hostname: &str) -> std::io::Result<()>;
    /// Unpins them (the namespaces go when nothing else uses them).
    fn remove(&self, paths: &NsPaths) -> std::io::Result<()>;
    /// Whether the network namespace is still pinned at its file: not after
    /// a reboot (the bind mount is gone, the file is an empty file).
    fn pinned(&self, _paths: &NsPaths) -> bool {
        true
    }
}

/// The real thing (needs root).
#[derive(Debug, Default)]
pub struct LinuxNamespaces;

fn unpin(path: &Path) -> std::io::Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl Namespaces for LinuxNamespaces {
    fn create(&self, paths: &NsPaths, hostname: &str) -> std::io::Result<()> {
        for p in [&paths.net, &paths.uts, &paths.ipc] {
            std::fs::File::create(p)?;
        }
        let (paths2, hostname) = (paths.clone(), hostname.to_string());
        // unshare() changes the calling thread only (net, UTS and IPC may be
        // unshared per thread), so a thread of its own does it and ends.
        let pinned = std::thread::spawn(move || -> std::io::Result<()> {
            unshare(
                CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC,
            )?;
            nix::unistd::sethostname(&hostname)?;
            // Loopback up, as every pod expects (containers talk to each
            // other over localhost).
            super::loopback::set_lo_up()?;
            for (kind, target) in [
                ("net", &paths2.net),
                ("uts", &paths2.uts),
                ("ipc", &paths2.ipc),
            ] {
                let source = format!("/proc/thread-self/ns/{kind}");
                mount(
                    Some(source.as_str()),
                    target.as_path(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )?;
            }
            Ok(())
        })
        .join()
        .map_err(|_| std::io::Error::other("the namespace thread panicked"))?;
        if pinned.is_err() {
            let _ = self.remove(paths);
        }
        pinned
    }

    fn remove(&self, paths: &NsPaths) -> std::io::Result<()> {
        for p in [&paths.net, &paths.uts, &paths.ipc] {
            unpin(p)?;
        }
        Ok(())
    }

    fn pinned(&self, paths: &NsPaths) -> bool {
        nix::sys::statfs::statfs(&paths.net)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
    }
}

/// Records what would be done; the files are created and removed for real.
#[derive(Debug, Default)]
pub struct FakeNamespaces {
    pub calls: Mutex<Vec<String>>,
}

impl Namespaces for FakeNamespaces {
    fn create(&self, paths: &NsPaths, hostname: &str) -> std::io::Result<()> {
        for p in [&paths.net, &paths.uts, &paths.ipc] {
            std::fs::File::create(p)?;
        }
        self.calls
            .lock()
            .unwrap()
            .push(format!("create {} {hostname}", paths.net.display()));
        Ok(())
    }

    fn remove(&self, paths: &NsPaths) -> std::io::Result<()> {
        for p in [&paths.net, &paths.uts, &paths.ipc] {
            let _ = std::fs::remove_file(p);
        }
        self.calls
            .lock()
            .unwrap()
            .push(format!("remove {}", paths.net.display()));
        Ok(())
    }
}
