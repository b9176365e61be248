//! The container's filesystem view, in three steps as runc does them:
//! [`prepare`] (inside the new mount namespace, before pivot_root: make the
//! host's mounts slaves so nothing propagates back, bind the rootfs onto
//! itself, mount every entry of the spec's `mounts` under it — a `cgroup`
//! entry becomes the container's own cgroup directories — and make the
//! minimal `/dev`), [`pivot`] (pivot_root and drop the old root), and
//! [`finish`] (read-only paths, masked paths, a read-only root).
//!
//! Mount destinations are resolved inside the rootfs with [`secure_join`]:
//! a symlink in the image (`/etc -> /`) cannot make a mount land on the
//! host.
//!
//! In a user namespace (`userns`), as runc does: device nodes cannot be
//! made (mknod needs CAP_MKNOD on the host), so the host's are bind-mounted;
//! and a kernel filesystem the namespace may not mount because the
//! namespace it shows belongs to the host's user namespace (the pod's
//! network, for sysfs; its IPC, for mqueue) is replaced: `/sys` by a
//! read-only bind of the host's, `/dev/mqueue` left out.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{SFlag, makedev};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};

use super::Result;
use super::syscalls::{PathKind, Syscalls};

/// The device nodes every container gets: (name, major, minor), mode 0666.
pub const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// OCI mount options, split the way mount(2) wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// rshared, rslave, …: applied with a second mount(2) call.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options (`mode=755`, `size=…`).
    pub data: String,
}

impl MountOptions {
    pub fn parse(options: &[String]) -> MountOptions {
        let mut o = MountOptions {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
        };
        let mut data = Vec::new();
        for opt in options {
            let (set, clear) = match opt.as_str() {
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
                "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
                "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
                p @ ("private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                | "unbindable" | "runbindable") => {
                    let mut f = match p.trim_start_matches('r') {
                        "private" => MsFlags::MS_PRIVATE,
                        "shared" => MsFlags::MS_SHARED,
                        "slave" => MsFlags::MS_SLAVE,
                        _ => MsFlags::MS_UNBINDABLE,
                    };
                    if p.starts_with('r') {
                        f |= MsFlags::MS_REC;
                    }
                    o.propagation.push(f);
                    continue;
                }
                // containerd's hint to copy image content into a tmpfs:
                // not supported, and not a kernel option.
                "tmpcopyup" => continue,
                other => {
                    data.push(other.to_string());
                    continue;
                }
            };
            o.flags = (o.flags | set) & !clear;
        }
        o.data = data.join(",");
        o
    }
}

/// `unsafe_path` inside `root`, following symlinks as if `root` were `/`:
/// the result never leaves `root`.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> PathBuf {
    let mut todo: VecDeque<OsString> = VecDeque::new();
    let push_all = |todo: &mut VecDeque<OsString>, p: &Path, front: bool| {
        let comps: Vec<OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        if front {
            for c in comps.into_iter().rev() {
                todo.push_front(c);
            }
        } else {
            todo.extend(comps);
        }
    };
    push_all(&mut todo, unsafe_path, false);
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&c);
        match std::fs::read_link(root.join(&candidate)) {
            Ok(target) if links < 255 => {
                links += 1;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                push_all(&mut todo, &target, true);
            }
            _ => resolved = candidate,
        }
    }
    root.join(resolved)
}

/// Before pivot_root: everything mounted under `rootfs`.
/// `cgroups` is what a `cgroup` mount shows: (hierarchy name, host dir).
pub fn prepare(
    sys: &dyn Syscalls,
    rootfs: &Path,
    mounts: &[Mount],
    devices: &[LinuxDevice],
    cgroups: &[(String, PathBuf)],
    userns: bool,
) -> Result<()> {
    // Slave, not private (runc's default): mounts the host makes later
    // (a volume appearing) still reach the container, none go back.
    sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
    )?;
    // pivot_root needs the new root to be a mount point.
    sys.mount(
        Some(rootfs),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    for m in mounts {
        match mount_entry(sys, rootfs, m, cgroups) {
            Err(e) if userns && e.source.raw_os_error() == Some(libc::EPERM) => {
                kernel_fs_fallback(sys, rootfs, m, e)?
            }
            r => r?,
        }
    }
    make_devices(sys, rootfs, devices, userns)?;
    Ok(())
}

/// A kernel filesystem a user namespace may not mount (see the module
/// doc): sysfs becomes a read-only bind of the host's `/sys` (runc's
/// answer), mqueue is left out; anything else stays an error.
fn kernel_fs_fallback(
    sys: &dyn Syscalls,
    rootfs: &Path,
    m: &Mount,
    err: super::SysError,
) -> Result<()> {
    let dest = secure_join(rootfs, m.destination());
    match m.typ().as_deref() {
        Some("sysfs") => {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
            sys.mount(Some(Path::new("/sys")), &dest, None, flags, None)?;
            sys.mount(
                None,
                &dest,
                None,
                MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC,
                None,
            )
        }
        Some("mqueue") => Ok(()),
        _ => Err(err),
    }
}

fn mount_entry(
    sys: &dyn Syscalls,
    rootfs: &Path,
    m: &Mount,
    cgroups: &[(String, PathBuf)],
) -> Result<()> {
    let dest = secure_join(rootfs, m.destination());
    let kind = m.typ().as_deref().unwrap_or("");
    let o = MountOptions::parse(m.options().as_deref().unwrap_or_default());
    let data = (!o.data.is_empty()).then_some(o.data.as_str());
    if kind == "cgroup" || kind == "cgroup2" {
        return mount_cgroups(sys, &dest, &o, cgroups);
    }
    let source = m.source().as_deref();
    if kind == "bind" || o.flags.contains(MsFlags::MS_BIND) {
        let source = source.unwrap_or(Path::new(""));
        if sys.path_kind(source) == PathKind::Dir {
            sys.mkdir_all(&dest)?;
        } else {
            sys.touch(&dest)?;
        }
        let bind = MsFlags::MS_BIND | (o.flags & MsFlags::MS_REC);
        sys.mount(Some(source), &dest, None, bind, None)?;
        // A bind ignores every other flag: ro, nosuid… need a remount.
        let rest = o.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !rest.is_empty() {
            sys.mount(
                None,
                &dest,
                None,
                rest | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                None,
            )?;
        }
    } else {
        sys.mkdir_all(&dest)?;
        sys.mount(source, &dest, Some(kind), o.flags, data)?;
    }
    for p in &o.propagation {
        sys.mount(None, &dest, None, *p, None)?;
    }
    Ok(())
}

/// `/sys/fs/cgroup` inside: on v1, a tmpfs with the container's directory
/// of each hierarchy bound at its name (and `cpu`, `cpuacct` links to a
/// co-mounted `cpu,cpuacct`); on v2, the container's directory itself.
/// Without a cgroup namespace this shows the container its own cgroup and
/// nothing of its siblings, as runc does. The tmpfs itself stays writable
/// (runc 1.1 leaves it so; it is the container's own); the binds are
/// read-only when asked.
fn mount_cgroups(
    sys: &dyn Syscalls,
    dest: &Path,
    o: &MountOptions,
    cgroups: &[(String, PathBuf)],
) -> Result<()> {
    sys.mkdir_all(dest)?;
    let flags = o.flags & !MsFlags::MS_RDONLY;
    let bind_ro = |src: &Path, at: &Path| -> Result<()> {
        sys.mount(
            Some(src),
            at,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        sys.mount(
            None,
            at,
            None,
            o.flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
            None,
        )
    };
    if let [(name, dir)] = cgroups
        && name.is_empty()
    {
        return bind_ro(dir, dest);
    }
    sys.mount(
        Some(Path::new("tmpfs")),
        dest,
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )?;
    for (name, dir) in cgroups {
        let at = dest.join(name);
        sys.mkdir_all(&at)?;
        bind_ro(dir, &at)?;
        if name.contains(',') {
            for single in name.split(',') {
                sys.symlink(Path::new(name), &dest.join(single))?;
            }
        }
    }
    Ok(())
}

/// The default device nodes, the spec's own, and the usual links; in a
/// user namespace binds of the host's nodes instead of new ones.
fn make_devices(
    sys: &dyn Syscalls,
    rootfs: &Path,
    devices: &[LinuxDevice],
    userns: bool,
) -> Result<()> {
    let dev = rootfs.join("dev");
    sys.mkdir_all(&dev)?;
    let bind = |host: &Path, at: &Path| -> Result<()> {
        sys.touch(at)?;
        sys.mount(Some(host), at, None, MsFlags::MS_BIND, None)
    };
    for (name, major, minor) in DEFAULT_DEVICES {
        if userns {
            bind(&Path::new("/dev").join(name), &dev.join(name))?;
            continue;
        }
        sys.mknod(
            &dev.join(name),
            SFlag::S_IFCHR,
            0o666,
            makedev(major, minor),
        )?;
    }
    for d in devices {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => continue,
        };
        let path = secure_join(rootfs, d.path());
        if let Some(parent) = path.parent() {
            sys.mkdir_all(parent)?;
        }
        if userns {
            bind(d.path(), &path)?;
            continue;
        }
        sys.mknod(
            &path,
            kind,
            d.file_mode().unwrap_or(0o666),
            makedev(d.major() as u64, d.minor() as u64),
        )?;
    }
    let mut links = vec![
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ];
    // Only where the kernel has one (CONFIG_PROC_KCORE), as runc.
    if sys.path_kind(Path::new("/proc/kcore")) != PathKind::Missing {
        links.push(("core", "/proc/kcore"));
    }
    for (link, target) in links {
        sys.symlink(Path::new(target), &dev.join(link))?;
    }
    Ok(())
}

/// Makes `rootfs` the root and detaches the old one. The `pivot_root(".",
/// ".")` form needs no directory for the old root inside the image: the
/// old root ends up stacked under the new one and is unmounted from there.
pub fn pivot(sys: &dyn Syscalls, rootfs: &Path) -> Result<()> {
    sys.chdir(rootfs)?;
    sys.pivot_root(Path::new("."), Path::new("."))?;
    // Slave first, so the detach does not propagate to the host.
    sys.mount(
        None,
        Path::new("."),
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
    )?;
    sys.umount(Path::new("."), MntFlags::MNT_DETACH)?;
    sys.chdir(Path::new("/"))
}

/// After pivot_root: kernel paths made read-only or hidden, then the root
/// itself read-only when asked.
pub fn finish(
    sys: &dyn Syscalls,
    readonly_paths: &[String],
    masked_paths: &[String],
    readonly_root: bool,
) -> Result<()> {
    for p in readonly_paths.iter().map(Path::new) {
        if sys.path_kind(p) == PathKind::Missing {
            continue;
        }
        sys.mount(Some(p), p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
        // These live under /proc, mounted nosuid,nodev,noexec: a remount
        // must keep those flags or the kernel refuses it.
        sys.mount(
            Some(p),
            p,
            None,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None,
        )?;
    }
    for p in masked_paths.iter().map(Path::new) {
        match sys.path_kind(p) {
            PathKind::Dir => sys.mount(
                Some(Path::new("tmpfs")),
                p,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )?,
            PathKind::File => sys.mount(
                Some(Path::new("/dev/null")),
                p,
                None,
                MsFlags::MS_BIND,
                None,
            )?,
            PathKind::Missing => {}
        }
    }
    if readonly_root {
        sys.mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::syscalls::RecordingSyscalls;
    use oci_spec::runtime::MountBuilder;

    fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> Mount {
        MountBuilder::default()
            .destination(dest)
            .typ(kind)
            .source(source)
            .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    }

    #[test]
    fn options_split_into_flags_propagation_and_data() {
        let o = MountOptions::parse(
            &[
                "nosuid",
                "ro",
                "mode=755",
                "rprivate",
                "size=65536k",
                "rw",
                "rbind",
            ]
            .map(String::from),
        );
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_BIND | MsFlags::MS_REC
        );
        assert_eq!(o.propagation, [MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(o.data, "mode=755,size=65536k");
    }

    #[test]
    fn secure_join_stays_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("usr/lib/up")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        assert_eq!(
            secure_join(root, Path::new("/escape/etc")),
            root.join("etc")
        );
        assert_eq!(
            secure_join(root, Path::new("/usr/lib/up/x")),
            root.join("x")
        );
        assert_eq!(
            secure_join(root, Path::new("/lib/x")),
            root.join("usr/lib/x")
        );
        assert_eq!(secure_join(root, Path::new("/../../etc")), root.join("etc"));
    }

    #[test]
    fn prepare_mounts_in_spec_order_then_makes_dev() {
        let sys = RecordingSyscalls::new().with("/data", PathKind::Dir);
        let mounts = [
            mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755"],
            ),
            mount("/data", "bind", "/data", &["rbind", "rprivate", "ro"]),
            mount(
                "/etc/hosts",
                "bind",
                "/run/sb/hosts",
                &["rbind", "rprivate"],
            ),
        ];
        prepare(&sys, Path::new("/r"), &mounts, &[], &[], false).unwrap();
        let calls = sys.calls();
        assert_eq!(
            &calls[..11],
            [
                "mount - / - rec|slave -",
                "mount /r /r - bind|rec -",
                "mkdir /r/proc",
                "mount proc /r/proc proc nosuid|nodev|noexec -",
                "mkdir /r/dev",
                "mount tmpfs /r/dev tmpfs nosuid|strictatime mode=755",
                "mkdir /r/data",
                "mount /data /r/data - bind|rec -",
                "mount - /r/data - rdonly|remount|bind -",
                "mount - /r/data - rec|private -",
                "touch /r/etc/hosts",
            ]
        );
        assert!(calls.contains(&"mknod /r/dev/null c 1:3 666".to_string()));
        assert!(calls.contains(&"mknod /r/dev/tty c 5:0 666".to_string()));
        assert!(calls.contains(&"symlink /r/dev/ptmx pts/ptmx".to_string()));
        assert!(
            !calls.iter().any(|c| c.contains("/dev/core")),
            "no /proc/kcore"
        );
    }

    #[test]
    fn in_a_user_namespace_devices_are_the_hosts_bound() {
        let sys = RecordingSyscalls::new();
        prepare(&sys, Path::new("/r"), &[], &[], &[], true).unwrap();
        let calls = sys.calls();
        assert!(!calls.iter().any(|c| c.starts_with("mknod")), "{calls:#?}");
        let null = calls.iter().position(|c| c == "touch /r/dev/null").unwrap();
        assert_eq!(calls[null + 1], "mount /dev/null /r/dev/null - bind -");
        assert!(calls.contains(&"mount /dev/tty /r/dev/tty - bind -".to_string()));
    }

    #[test]
    fn in_a_user_namespace_sysfs_falls_back_to_a_read_only_bind_and_mqueue_goes() {
        let mut sys = RecordingSyscalls::new();
        sys.refused_fstypes = ["sysfs", "mqueue", "proc"].map(String::from).into();
        let mounts = [
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            ),
            mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid"]),
        ];
        prepare(&sys, Path::new("/r"), &mounts, &[], &[], true).unwrap();
        let calls = sys.calls();
        assert_eq!(
            &calls[2..6],
            [
                "mkdir /r/sys",
                "mount /sys /r/sys - bind|rec -",
                "mount - /r/sys - rdonly|nosuid|nodev|noexec|remount|bind -",
                "mkdir /r/dev/mqueue",
            ]
        );
        assert!(!calls.iter().any(|c| c.contains("mqueue ")), "{calls:#?}");
        // Other kernel filesystems, and every one outside a user namespace,
        // stay errors.
        let proc = [mount("/proc", "proc", "proc", &[])];
        assert!(prepare(&sys, Path::new("/r"), &proc, &[], &[], true).is_err());
        assert!(prepare(&sys, Path::new("/r"), &mounts, &[], &[], false).is_err());
    }

    #[test]
    fn cgroup_mount_v1_is_a_tmpfs_of_read_only_binds() {
        let sys = RecordingSyscalls::new();
        let cgroups = vec![
            (
                "memory".to_string(),
                PathBuf::from("/sys/fs/cgroup/memory/c1"),
            ),
            (
                "cpu,cpuacct".to_string(),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c1"),
            ),
        ];
        let m = mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "ro"],
        );
        mount_entry(&sys, Path::new("/r"), &m, &cgroups).unwrap();
        assert_eq!(
            sys.calls(),
            [
                "mkdir /r/sys/fs/cgroup",
                "mount tmpfs /r/sys/fs/cgroup tmpfs nosuid|nodev|noexec mode=755",
                "mkdir /r/sys/fs/cgroup/memory",
                "mount /sys/fs/cgroup/memory/c1 /r/sys/fs/cgroup/memory - bind|rec -",
                "mount - /r/sys/fs/cgroup/memory - rdonly|nosuid|nodev|noexec|remount|bind -",
                "mkdir /r/sys/fs/cgroup/cpu,cpuacct",
                "mount /sys/fs/cgroup/cpu,cpuacct/c1 /r/sys/fs/cgroup/cpu,cpuacct - bind|rec -",
                "mount - /r/sys/fs/cgroup/cpu,cpuacct - rdonly|nosuid|nodev|noexec|remount|bind -",
                "symlink /r/sys/fs/cgroup/cpu cpu,cpuacct",
                "symlink /r/sys/fs/cgroup/cpuacct cpu,cpuacct",
            ]
        );
    }

    #[test]
    fn pivot_then_mask_and_protect() {
        let sys = RecordingSyscalls::new()
            .with("/proc/acpi", PathKind::Dir)
            .with("/proc/kcore", PathKind::File)
            .with("/proc/sys", PathKind::Dir);
        pivot(&sys, Path::new("/r")).unwrap();
        finish(
            &sys,
            &["/proc/sys".into(), "/proc/missing".into()],
            &[
                "/proc/acpi".into(),
                "/proc/kcore".into(),
                "/proc/scsi".into(),
            ],
            true,
        )
        .unwrap();
        assert_eq!(
            sys.calls(),
            [
                "chdir /r",
                "pivot_root . .",
                "mount - . - rec|slave -",
                "umount .",
                "chdir /",
                "mount /proc/sys /proc/sys - bind|rec -",
                "mount /proc/sys /proc/sys - rdonly|nosuid|nodev|noexec|remount|bind -",
                "mount tmpfs /proc/acpi tmpfs rdonly -",
                "mount /dev/null /proc/kcore - bind -",
                "mount - / - rdonly|remount|bind -",
            ]
        );
    }
}
