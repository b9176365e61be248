//! The host operations the container's init performs, behind one trait:
//! [`LinuxSyscalls`] does them, [`RecordingSyscalls`] writes each call down
//! as a line of text (and answers path queries from what it was told), so
//! tests can assert "these mounts, in this order" without root.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use caps::{CapSet, Capability, CapsHashSet};
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};

use super::{Context, Result, SysError};

/// What a path is, for the decisions that depend on it (a masked directory
/// gets a tmpfs, a masked file `/dev/null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Dir,
    File,
    Missing,
}

/// Every side effect of setting up a container, as the kernel sees it.
pub trait Syscalls {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()>;
    fn umount(&self, target: &Path, flags: MntFlags) -> Result<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()>;
    fn chdir(&self, dir: &Path) -> Result<()>;
    fn mkdir_all(&self, dir: &Path) -> Result<()>;
    /// Creates an empty file (a bind mount target) if it is missing.
    fn touch(&self, file: &Path) -> Result<()>;
    fn symlink(&self, target: &Path, link: &Path) -> Result<()>;
    /// A character or block device node with exactly `mode`.
    fn mknod(&self, path: &Path, kind: nix::sys::stat::SFlag, mode: u32, dev: u64) -> Result<()>;
    fn path_kind(&self, path: &Path) -> PathKind;
    fn sethostname(&self, name: &str) -> Result<()>;
    fn setns(&self, path: &Path, kind: CloneFlags) -> Result<()>;
    fn unshare(&self, kinds: CloneFlags) -> Result<()>;
    fn set_keepcaps(&self, keep: bool) -> Result<()>;
    fn setgroups(&self, gids: &[u32]) -> Result<()>;
    fn setresgid(&self, gid: u32) -> Result<()>;
    fn setresuid(&self, uid: u32) -> Result<()>;
    fn drop_bounding(&self, cap: Capability) -> Result<()>;
    fn set_caps(&self, set: CapSet, caps: &CapsHashSet) -> Result<()>;
    fn raise_ambient(&self, cap: Capability) -> Result<()>;
    fn set_no_new_privs(&self) -> Result<()>;
    /// A new session whose controlling terminal is stdin (a TTY container).
    fn setsid_ctty(&self) -> Result<()>;
    fn setrlimit(&self, resource: nix::sys::resource::Resource, soft: u64, hard: u64)
    -> Result<()>;
    /// Whether `path` is an executable regular file (PATH lookup).
    fn is_executable(&self, path: &Path) -> bool;
    /// Replaces the process; returns only on failure.
    fn execve(&self, program: &Path, argv: &[String], env: &[String]) -> SysError;
}

/// The real thing.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSyscalls;

fn cstrings(items: &[String]) -> Result<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_str()).map_err(|e| SysError::other("exec", e.to_string())))
        .collect()
}

impl Syscalls for LinuxSyscalls {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        nix::mount::mount(source, target, fstype, flags, data).ctx(|| {
            format!(
                "mount {} on {} (type {}, {flags:?}, {})",
                source.map(|s| s.display().to_string()).unwrap_or_default(),
                target.display(),
                fstype.unwrap_or("-"),
                data.unwrap_or("")
            )
        })
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> Result<()> {
        nix::mount::umount2(target, flags).ctx(|| format!("umount {}", target.display()))
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        nix::unistd::pivot_root(new_root, put_old)
            .ctx(|| format!("pivot_root {}", new_root.display()))
    }

    fn chdir(&self, dir: &Path) -> Result<()> {
        nix::unistd::chdir(dir).ctx(|| format!("chdir {}", dir.display()))
    }

    fn mkdir_all(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).ctx(|| format!("mkdir {}", dir.display()))
    }

    fn touch(&self, file: &Path) -> Result<()> {
        if let Some(parent) = file.parent() {
            self.mkdir_all(parent)?;
        }
        if file.symlink_metadata().is_err() {
            std::fs::File::create(file).ctx(|| format!("create {}", file.display()))?;
        }
        Ok(())
    }

    fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        match std::os::unix::fs::symlink(target, link) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            r => r.ctx(|| format!("symlink {} -> {}", link.display(), target.display())),
        }
    }

    fn mknod(&self, path: &Path, kind: nix::sys::stat::SFlag, mode: u32, dev: u64) -> Result<()> {
        let _ = std::fs::remove_file(path);
        nix::sys::stat::mknod(
            path,
            kind,
            nix::sys::stat::Mode::from_bits_truncate(mode),
            dev,
        )
        .ctx(|| format!("mknod {}", path.display()))?;
        // mknod's mode passes through the umask; set it exactly.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .ctx(|| format!("chmod {}", path.display()))
    }

    fn path_kind(&self, path: &Path) -> PathKind {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => PathKind::Dir,
            Ok(_) => PathKind::File,
            Err(_) => PathKind::Missing,
        }
    }

    fn sethostname(&self, name: &str) -> Result<()> {
        nix::unistd::sethostname(name).ctx(|| format!("sethostname {name}"))
    }

    fn setns(&self, path: &Path, kind: CloneFlags) -> Result<()> {
        let file = std::fs::File::open(path).ctx(|| format!("open {}", path.display()))?;
        nix::sched::setns(file, kind).ctx(|| format!("setns {}", path.display()))
    }

    fn unshare(&self, kinds: CloneFlags) -> Result<()> {
        nix::sched::unshare(kinds).ctx(|| format!("unshare {kinds:?}"))
    }

    fn set_keepcaps(&self, keep: bool) -> Result<()> {
        nix::sys::prctl::set_keepcaps(keep).ctx(|| "prctl(PR_SET_KEEPCAPS)".into())
    }

    fn setgroups(&self, gids: &[u32]) -> Result<()> {
        let gids: Vec<Gid> = gids.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&gids).ctx(|| format!("setgroups {gids:?}"))
    }

    fn setresgid(&self, gid: u32) -> Result<()> {
        let g = Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g).ctx(|| format!("setresgid {gid}"))
    }

    fn setresuid(&self, uid: u32) -> Result<()> {
        let u = Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u).ctx(|| format!("setresuid {uid}"))
    }

    fn drop_bounding(&self, cap: Capability) -> Result<()> {
        caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
            SysError::other(format!("drop {cap} from the bounding set"), e.to_string())
        })
    }

    fn set_caps(&self, set: CapSet, caps: &CapsHashSet) -> Result<()> {
        caps::set(None, set, caps)
            .map_err(|e| SysError::other(format!("set {set:?} capabilities"), e.to_string()))
    }

    fn raise_ambient(&self, cap: Capability) -> Result<()> {
        caps::raise(None, CapSet::Ambient, cap)
            .map_err(|e| SysError::other(format!("raise ambient {cap}"), e.to_string()))
    }

    fn set_no_new_privs(&self) -> Result<()> {
        nix::sys::prctl::set_no_new_privs().ctx(|| "prctl(PR_SET_NO_NEW_PRIVS)".into())
    }

    fn setsid_ctty(&self) -> Result<()> {
        nix::unistd::setsid().ctx(|| "setsid".into())?;
        crate::stream::pty_sys::control_stdin()
            .map_err(|e| SysError::new("make stdin the controlling terminal (TIOCSCTTY)", e))
    }

    fn setrlimit(
        &self,
        resource: nix::sys::resource::Resource,
        soft: u64,
        hard: u64,
    ) -> Result<()> {
        nix::sys::resource::setrlimit(resource, soft, hard)
            .ctx(|| format!("setrlimit {resource:?}"))
    }

    fn is_executable(&self, path: &Path) -> bool {
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }

    fn execve(&self, program: &Path, argv: &[String], env: &[String]) -> SysError {
        let run = || -> Result<std::convert::Infallible> {
            let path = CString::new(program.as_os_str().as_encoded_bytes())
                .map_err(|e| SysError::other("exec", e.to_string()))?;
            let (argv, env) = (cstrings(argv)?, cstrings(env)?);
            nix::unistd::execve(&path, &argv, &env).ctx(|| format!("exec {}", program.display()))
        };
        match run() {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }
}

/// A fake that records every call as one line of text.
#[derive(Debug, Default)]
pub struct RecordingSyscalls {
    calls: Mutex<Vec<String>>,
    /// What `path_kind` answers; anything else is missing.
    pub kinds: HashMap<PathBuf, PathKind>,
    /// What `is_executable` answers yes to.
    pub executables: HashSet<PathBuf>,
    /// Filesystem types whose mount fails with EPERM (as in a user
    /// namespace that does not own the namespace they show).
    pub refused_fstypes: HashSet<String>,
}

impl RecordingSyscalls {
    pub fn new() -> RecordingSyscalls {
        RecordingSyscalls::default()
    }

    /// Tells the fake that `path` exists as `kind`.
    pub fn with(mut self, path: &str, kind: PathKind) -> RecordingSyscalls {
        self.kinds.insert(PathBuf::from(path), kind);
        self
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, line: String) -> Result<()> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(line);
        }
        Ok(())
    }
}

fn flag_names(flags: MsFlags) -> String {
    let names: Vec<String> = flags
        .iter_names()
        .map(|(n, _)| n.trim_start_matches("MS_").to_lowercase())
        .collect();
    names.join("|")
}

fn clone_names(flags: CloneFlags) -> String {
    let names: Vec<&str> = flags.iter_names().map(|(n, _)| n).collect();
    names.join(" | ")
}

impl Syscalls for RecordingSyscalls {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        if fstype.is_some_and(|t| self.refused_fstypes.contains(t)) {
            return Err(SysError::new(
                format!("mount {}", target.display()),
                std::io::Error::from_raw_os_error(libc::EPERM),
            ));
        }
        self.record(format!(
            "mount {} {} {} {} {}",
            source
                .map(|s| s.display().to_string())
                .unwrap_or("-".into()),
            target.display(),
            fstype.unwrap_or("-"),
            flag_names(flags),
            data.unwrap_or("-")
        ))
    }
    fn umount(&self, target: &Path, _flags: MntFlags) -> Result<()> {
        self.record(format!("umount {}", target.display()))
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> Result<()> {
        self.record(format!(
            "pivot_root {} {}",
            new_root.display(),
            put_old.display()
        ))
    }
    fn chdir(&self, dir: &Path) -> Result<()> {
        self.record(format!("chdir {}", dir.display()))
    }
    fn mkdir_all(&self, dir: &Path) -> Result<()> {
        self.record(format!("mkdir {}", dir.display()))
    }
    fn touch(&self, file: &Path) -> Result<()> {
        self.record(format!("touch {}", file.display()))
    }
    fn symlink(&self, target: &Path, link: &Path) -> Result<()> {
        self.record(format!("symlink {} {}", link.display(), target.display()))
    }
    fn mknod(&self, path: &Path, kind: nix::sys::stat::SFlag, mode: u32, dev: u64) -> Result<()> {
        let t = if kind == nix::sys::stat::SFlag::S_IFBLK {
            'b'
        } else {
            'c'
        };
        self.record(format!(
            "mknod {} {t} {}:{} {mode:o}",
            path.display(),
            nix::sys::stat::major(dev),
            nix::sys::stat::minor(dev)
        ))
    }
    fn path_kind(&self, path: &Path) -> PathKind {
        self.kinds.get(path).copied().unwrap_or(PathKind::Missing)
    }
    fn sethostname(&self, name: &str) -> Result<()> {
        self.record(format!("sethostname {name}"))
    }
    fn setns(&self, path: &Path, kind: CloneFlags) -> Result<()> {
        self.record(format!("setns {} {}", path.display(), clone_names(kind)))
    }
    fn unshare(&self, kinds: CloneFlags) -> Result<()> {
        self.record(format!("unshare {}", clone_names(kinds)))
    }
    fn set_keepcaps(&self, keep: bool) -> Result<()> {
        self.record(format!("keepcaps {keep}"))
    }
    fn setgroups(&self, gids: &[u32]) -> Result<()> {
        self.record(format!("setgroups {gids:?}"))
    }
    fn setresgid(&self, gid: u32) -> Result<()> {
        self.record(format!("setresgid {gid}"))
    }
    fn setresuid(&self, uid: u32) -> Result<()> {
        self.record(format!("setresuid {uid}"))
    }
    fn drop_bounding(&self, cap: Capability) -> Result<()> {
        self.record(format!("drop-bounding {cap}"))
    }
    fn set_caps(&self, set: CapSet, caps: &CapsHashSet) -> Result<()> {
        let mut names: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
        names.sort();
        self.record(format!("caps {set:?} {}", names.join(",")))
    }
    fn raise_ambient(&self, cap: Capability) -> Result<()> {
        self.record(format!("ambient {cap}"))
    }
    fn set_no_new_privs(&self) -> Result<()> {
        self.record("no_new_privs".into())
    }
    fn setsid_ctty(&self) -> Result<()> {
        self.record("setsid-ctty".into())
    }
    fn setrlimit(
        &self,
        resource: nix::sys::resource::Resource,
        soft: u64,
        hard: u64,
    ) -> Result<()> {
        self.record(format!("setrlimit {resource:?} {soft} {hard}"))
    }
    fn is_executable(&self, path: &Path) -> bool {
        self.executables.contains(path)
    }
    fn execve(&self, program: &Path, argv: &[String], env: &[String]) -> SysError {
        let _ = self.record(format!("execve {} {argv:?} {env:?}", program.display()));
        SysError::other("execve", "recorded, not run")
    }
}
