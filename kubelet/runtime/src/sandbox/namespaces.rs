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
//!
//! A `hostNetwork` sandbox gets only its IPC namespace: its network and UTS
//! are the node's (as containerd leaves them out of the sandbox's spec), so
//! no `net` or `uts` file is made.

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

    /// The namespaces a sandbox has of its own, by kind (`net`, `uts`,
    /// `ipc`): all three, or only IPC when its network is the node's.
    pub fn owned(&self, host_network: bool) -> Vec<(&'static str, &Path)> {
        let all = [
            ("net", self.net.as_path()),
            ("uts", self.uts.as_path()),
            ("ipc", self.ipc.as_path()),
        ];
        all.into_iter()
            .filter(|(kind, _)| !host_network || *kind == "ipc")
            .collect()
    }

    /// The file whose pin says the sandbox's namespaces still exist: the
    /// network one, or the IPC one when the network is the node's.
    pub fn witness(&self, host_network: bool) -> &Path {
        if host_network { &self.ipc } else { &self.net }
    }
}

/// The host side effects of namespaces, so sandbox logic is tested without root.
pub trait Namespaces: Send + Sync {
    /// New net+UTS+IPC namespaces with `hostname`, pinned at `paths`; with
    /// `host_network` only the IPC one (network and hostname are the node's).
    fn create(&self, paths: &NsPaths, hostname: &str, host_network: bool) -> std::io::Result<()>;
    /// Unpins them (the namespaces go when nothing else uses them); files
    /// that were never made are no error.
    fn remove(&self, paths: &NsPaths) -> std::io::Result<()>;
    /// Whether a namespace is still pinned at `file`: not after a reboot
    /// (the bind mount is gone, the file is an empty file).
    fn pinned(&self, file: &Path) -> bool;
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
    fn create(&self, paths: &NsPaths, hostname: &str, host_network: bool) -> std::io::Result<()> {
        let owned: Vec<(&'static str, PathBuf)> = paths
            .owned(host_network)
            .into_iter()
            .map(|(kind, p)| (kind, p.to_path_buf()))
            .collect();
        for (_, p) in &owned {
            std::fs::File::create(p)?;
        }
        let hostname = hostname.to_string();
        // unshare() changes the calling thread only (net, UTS and IPC may be
        // unshared per thread), so a thread of its own does it and ends.
        let pinned = std::thread::spawn(move || -> std::io::Result<()> {
            if host_network {
                unshare(CloneFlags::CLONE_NEWIPC)?;
            } else {
                unshare(
                    CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC,
                )?;
                nix::unistd::sethostname(&hostname)?;
                // Loopback up, as every pod expects (containers talk to each
                // other over localhost).
                super::loopback::set_lo_up()?;
            }
            for (kind, target) in &owned {
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

    fn pinned(&self, file: &Path) -> bool {
        nix::sys::statfs::statfs(file)
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
    }
}

/// Records what would be done; the files are created and removed for real,
/// and a namespace is "pinned" while its file exists (a test deletes it to
/// play a reboot).
#[derive(Debug, Default)]
pub struct FakeNamespaces {
    pub calls: Mutex<Vec<String>>,
}

impl Namespaces for FakeNamespaces {
    fn create(&self, paths: &NsPaths, hostname: &str, host_network: bool) -> std::io::Result<()> {
        for (_, p) in paths.owned(host_network) {
            std::fs::File::create(p)?;
        }
        self.calls.lock().unwrap().push(if host_network {
            format!("create {} (host network)", paths.ipc.display())
        } else {
            format!("create {} {hostname}", paths.net.display())
        });
        Ok(())
    }

    fn pinned(&self, file: &Path) -> bool {
        file.exists()
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
