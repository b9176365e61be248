//! Runs a bundle the way `runc run` does: namespaces (new, or the sandbox's
//! joined by path), the cgroup with its limits, then a child that becomes
//! PID 1 of its own PID namespace, mounts what the spec lists, pivots into
//! the rootfs, masks and read-only-mounts the kernel paths, drops to the
//! configured user and capabilities, and execs. The calling process stays
//! outside as the child's parent (the shim's role): it waits, reports the
//! exit code (128 + signal when killed) and OOM kills, and removes the cgroup.
//!
//! Must be called from a single-threaded process (the `skiff-runtime run`
//! command): it forks.

#![allow(unsafe_code)]

use std::collections::HashSet;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Uid, fork};

use super::bundle::{Config, Mount};
use super::cgroups::{self, Cgroup};

/// How a container ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Exit {
    pub code: i32,
    /// "OOMKilled" when the cgroup's OOM killer ended it.
    pub reason: String,
}

fn ns_flag(kind: &str) -> Option<CloneFlags> {
    Some(match kind {
        "pid" => CloneFlags::CLONE_NEWPID,
        "mount" => CloneFlags::CLONE_NEWNS,
        "network" => CloneFlags::CLONE_NEWNET,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        _ => return None,
    })
}

/// Runs the bundle in `bundle` as container `id`, with its cgroup under the
/// spec's `cgroupsPath` (or `skiff/<id>`), until it exits.
pub fn run(bundle: &Path, id: &str) -> std::io::Result<Exit> {
    run_with_pid_file(bundle, id, None)
}

/// [`run`], writing the container's PID 1 (as the host sees it) to
/// `pid_file` once it is in its cgroup: what `stop` signals.
pub fn run_with_pid_file(
    bundle: &Path,
    id: &str,
    pid_file: Option<&Path>,
) -> std::io::Result<Exit> {
    let config = Config::load(bundle)?;
    let rootfs = config.rootfs(bundle).canonicalize()?;
    let path = if config.linux.cgroups_path.is_empty() {
        format!("skiff/{id}")
    } else {
        config.linux.cgroups_path.clone()
    };
    let cgroup = Cgroup::create(&cgroups::detect(), &path, &config.linux.resources)?;

    // Join the namespaces given by path. A new PID namespace is made here,
    // for the child forked below (its PID 1); the child makes the other new
    // ones itself — above all its mount namespace, since pivot_root moves
    // every process of a mount namespace into the new root, and this
    // process must keep the host's view to read and remove the cgroup.
    let mut new = CloneFlags::empty();
    let mut new_uts = false;
    for ns in &config.linux.namespaces {
        let Some(flag) = ns_flag(&ns.kind) else {
            continue;
        };
        match &ns.path {
            Some(p) => setns(File::open(p)?, flag)?,
            None => {
                new |= flag;
                new_uts |= ns.kind == "uts";
            }
        }
    }
    if new.contains(CloneFlags::CLONE_NEWPID) {
        unshare(CloneFlags::CLONE_NEWPID)?;
    }
    let child_new = new & !CloneFlags::CLONE_NEWPID;

    let (ready_r, ready_w) = nix::unistd::pipe()?;
    // SAFETY: the caller is single-threaded (the `run` command), so the
    // child may allocate and do ordinary work before it execs.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(ready_w);
            let mut byte = [0u8; 1];
            let _ = File::from(ready_r).read(&mut byte);
            let err = match unshare(child_new) {
                Ok(()) => init(&config, &rootfs, new_uts),
                Err(e) => std::io::Error::other(format!("unshare: {e}")),
            };
            let _ = writeln!(std::io::stderr(), "skiff-runtime: {err}");
            std::process::exit(125);
        }
        ForkResult::Parent { child } => {
            drop(ready_r);
            let entered = cgroup.enter(child.as_raw());
            if let Some(p) = pid_file {
                let tmp = p.with_extension("tmp");
                let _ = std::fs::write(&tmp, child.as_raw().to_string())
                    .and_then(|()| std::fs::rename(&tmp, p));
            }
            let _ = File::from(ready_w).write_all(b"x");
            let status = waitpid(child, None);
            let oom = cgroup.oom_killed();
            // The PID namespace's last processes are reaped by the kernel
            // once PID 1 is gone; the directory empties shortly after.
            for _ in 0..50 {
                cgroup.remove();
                if cgroup.dirs.iter().all(|(_, d)| !d.exists()) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            entered?;
            let code = match status? {
                WaitStatus::Exited(_, code) => code,
                WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
                _ => 255,
            };
            Ok(Exit {
                code,
                reason: if oom {
                    "OOMKilled".into()
                } else if code == 0 {
                    "Completed".into()
                } else {
                    "Error".into()
                },
            })
        }
    }
}

/// Mount flags and data from OCI mount options.
fn mount_options(options: &[String]) -> (MsFlags, String, bool) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut ro = false;
    for o in options {
        match o.as_str() {
            "ro" => ro = true,
            "rw" => {}
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" => {}
            other => data.push(other.to_string()),
        }
    }
    (flags, data.join(","), ro)
}

/// A path inside the rootfs, refusing to leave it through `..`.
fn inside(rootfs: &Path, dest: &str) -> PathBuf {
    let clean: PathBuf = Path::new(dest)
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    rootfs.join(clean)
}

fn do_mount(rootfs: &Path, m: &Mount) -> std::io::Result<()> {
    let target = inside(rootfs, &m.destination);
    let (mut flags, data, ro) = mount_options(&m.options);
    let is_bind = m.kind == "bind" || flags.contains(MsFlags::MS_BIND);
    if is_bind {
        flags |= MsFlags::MS_BIND;
        if Path::new(&m.source).is_dir() {
            std::fs::create_dir_all(&target)?;
        } else {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if !target.exists() {
                File::create(&target)?;
            }
        }
    } else {
        std::fs::create_dir_all(&target)?;
    }
    let data = (!data.is_empty()).then_some(data.as_str());
    let kind = (!is_bind).then_some(m.kind.as_str());
    // sysfs and friends take read-only at mount time; binds need a remount.
    let first = if ro && !is_bind {
        flags | MsFlags::MS_RDONLY
    } else {
        flags
    };
    mount(Some(m.source.as_str()), &target, kind, first, data).map_err(|e| {
        std::io::Error::other(format!("mount {} on {}: {e}", m.kind, m.destination))
    })?;
    if ro && is_bind {
        mount(
            None::<&str>,
            &target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )?;
    }
    Ok(())
}

/// The minimal device nodes (made with mknod, 0666, as runc does as root)
/// and the usual links.
fn devices(rootfs: &Path) -> std::io::Result<()> {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    let dev = rootfs.join("dev");
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let target = dev.join(name);
        let _ = std::fs::remove_file(&target);
        mknod(
            &target,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )?;
        // mknod's mode passes through the umask; the node must be 0666.
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o666))?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let _ = std::os::unix::fs::symlink(to, dev.join(link));
    }
    Ok(())
}

fn mask(masked: &[String], readonly: &[String]) {
    for p in masked {
        let path = Path::new(p);
        let r = if path.is_dir() {
            mount(
                Some("tmpfs"),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else if path.exists() {
            mount(
                Some("/dev/null"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        } else {
            Ok(())
        };
        let _ = r;
    }
    for p in readonly.iter().map(Path::new).filter(|p| p.exists()) {
        let _ = mount(
            Some(p),
            p,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        );
        let _ = mount(
            None::<&str>,
            p,
            None::<&str>,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None::<&str>,
        );
    }
}

fn capabilities(config: &Config) -> std::io::Result<()> {
    use caps::{CapSet, Capability};
    let set = |names: &[String]| -> HashSet<Capability> {
        names
            .iter()
            .filter_map(|n| Capability::from_str(n).ok())
            .collect()
    };
    let c = &config.process.capabilities;
    let bounding = set(&c.bounding);
    for cap in caps::all() {
        if !bounding.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(std::io::Error::other)?;
        }
    }
    let u = &config.process.user;
    nix::sys::prctl::set_keepcaps(true)?;
    let groups: Vec<Gid> = u
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&groups)?;
    nix::unistd::setgid(Gid::from_raw(u.gid))?;
    nix::unistd::setuid(Uid::from_raw(u.uid))?;
    let err = std::io::Error::other;
    // Effective first: it must stay a subset of permitted at every step.
    caps::set(None, CapSet::Effective, &set(&c.effective)).map_err(err)?;
    caps::set(None, CapSet::Permitted, &set(&c.permitted)).map_err(err)?;
    caps::set(None, CapSet::Inheritable, &set(&c.inheritable)).map_err(err)?;
    // Ambient needs each cap permitted and inheritable; like runc, raise
    // what can be raised and go on without the rest.
    let inheritable = set(&c.inheritable);
    let permitted = set(&c.permitted);
    for cap in set(&c.ambient) {
        if inheritable.contains(&cap) && permitted.contains(&cap) {
            let _ = caps::raise(None, CapSet::Ambient, cap);
        }
    }
    Ok(())
}

/// The program to exec: a path, or the first match on the container's PATH.
fn resolve(arg0: &str, env: &[String]) -> Option<PathBuf> {
    if arg0.contains('/') {
        return Some(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':').map(|d| Path::new(d).join(arg0)).find(|p| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Inside the new namespaces: everything up to exec. Returns only on error.
fn init(config: &Config, rootfs: &Path, new_uts: bool) -> std::io::Error {
    match setup(config, rootfs, new_uts) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

fn setup(config: &Config, rootfs: &Path, new_uts: bool) -> std::io::Result<Never> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )?;
    for m in &config.mounts {
        // A cgroup filesystem view needs a cgroup namespace to be safe to
        // show; the configs Skiff writes have none, and others get none.
        if m.kind == "cgroup" || m.kind == "cgroup2" {
            continue;
        }
        do_mount(rootfs, m)?;
    }
    devices(rootfs)?;
    std::env::set_current_dir(rootfs)?;
    nix::unistd::pivot_root(".", ".")?;
    umount2(".", MntFlags::MNT_DETACH)?;
    std::env::set_current_dir("/")?;
    mask(&config.linux.masked_paths, &config.linux.readonly_paths);
    if config.root.readonly {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )?;
    }
    if new_uts && !config.hostname.is_empty() {
        nix::unistd::sethostname(&config.hostname)?;
    }
    capabilities(config)?;
    if config.process.no_new_privileges {
        nix::sys::prctl::set_no_new_privs()?;
    }
    let p = &config.process;
    std::env::set_current_dir(if p.cwd.is_empty() { "/" } else { &p.cwd })?;
    let arg0 = p
        .args
        .first()
        .ok_or_else(|| std::io::Error::other("process.args is empty"))?;
    let program = resolve(arg0, &p.env).ok_or_else(|| {
        std::io::Error::other(format!("exec {arg0:?}: not found in the container's PATH"))
    })?;
    let c = |s: &str| CString::new(s).map_err(std::io::Error::other);
    let argv: Vec<CString> = p.args.iter().map(|a| c(a)).collect::<Result<_, _>>()?;
    let mut env = p.env.clone();
    // As runc: a process without HOME gets "/".
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push("HOME=/".into());
    }
    let envp: Vec<CString> = env.iter().map(|e| c(e)).collect::<Result<_, _>>()?;
    let program = c(&program.to_string_lossy())?;
    nix::unistd::execve(&program, &argv, &envp)
        .map_err(|e| std::io::Error::other(format!("exec {arg0:?}: {e}")))?;
    unreachable!("execve returned without an error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_paths() {
        let (flags, data, ro) = mount_options(&[
            "nosuid".into(),
            "ro".into(),
            "mode=755".into(),
            "size=65536k".into(),
        ]);
        assert!(flags.contains(MsFlags::MS_NOSUID) && ro);
        assert_eq!(data, "mode=755,size=65536k");
        assert_eq!(
            inside(Path::new("/r"), "/../../etc/x"),
            PathBuf::from("/r/etc/x")
        );
        assert_eq!(resolve("/bin/sh", &[]), Some(PathBuf::from("/bin/sh")));
    }
}
