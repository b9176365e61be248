//! User namespaces (Kubernetes' `hostUsers: false`, KEP-127): ID mappings,
//! a user namespace made with them, and idmapped mounts.
//!
//! **Mappings.** An [`IdMapping`] says that IDs `container_id ..
//! container_id + size` inside are `host_id .. host_id + size` outside. The
//! kubelet gives every such pod one mapping of 65536 IDs: with `0 131072
//! 65536`, root inside (0) is 131072 on the host, uid 1000 inside is
//! 132072, and host uid 0 is not mapped at all (the kernel shows unmapped
//! IDs as the overflow ID, 65534, "nobody").
//!
//! **Making one.** A container's is made by cloning its init with
//! `CLONE_NEWUSER` (see [`super::namespaces`]). One only to idmap mounts
//! with ([`create`]): `unshare(CLONE_NEWUSER)` is refused to a
//! multithreaded process, and a process that enters a user namespace
//! cannot leave it, so a forked helper unshares it and waits; the parent,
//! still root on the host, writes the helper's `uid_map`/`gid_map`, opens
//! its namespace file and lets it exit. The namespace lives on as long as
//! that file descriptor does. The helper only makes async-signal-safe
//! system calls, so this is safe in a multithreaded process (the
//! kubelet's).
//!
//! **Idmapped mounts** (`mount_setattr(MOUNT_ATTR_IDMAP)`, Linux 5.12+):
//! [`idmapped_bind`] makes a bind mount through which files are seen
//! through a user namespace's mapping: a file owned by host uid 0 on disk
//! appears, through a mount idmapped with `0 131072 65536`, as owned by
//! 131072 — root of that pod. That is how the image's layers (owned by host
//! root) stay owned by root inside the container without being copied or
//! chowned; overlayfs takes idmapped lower layers since Linux 5.19.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::OFlag;

use super::{Context, Result, SysError};

/// `container_id..container_id+size` inside is `host_id..host_id+size` on
/// the host (one line of `/proc/<pid>/uid_map`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

impl IdMapping {
    /// The whole-pod mapping Kubernetes uses: 0..65535 inside to
    /// `host_id..host_id+65535`.
    pub fn pod(host_id: u32) -> IdMapping {
        IdMapping {
            container_id: 0,
            host_id,
            size: 65536,
        }
    }

    pub fn to_oci(self) -> oci_spec::runtime::LinuxIdMapping {
        oci_spec::runtime::LinuxIdMappingBuilder::default()
            .container_id(self.container_id)
            .host_id(self.host_id)
            .size(self.size)
            .build()
            .unwrap_or_default()
    }

    pub fn from_oci(m: &oci_spec::runtime::LinuxIdMapping) -> IdMapping {
        IdMapping {
            container_id: m.container_id(),
            host_id: m.host_id(),
            size: m.size(),
        }
    }
}

/// A user namespace's mappings, for uids and for gids.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mappings {
    pub uids: Vec<IdMapping>,
    pub gids: Vec<IdMapping>,
}

impl Mappings {
    /// The same whole-pod mapping for uids and gids (see [`IdMapping::pod`]).
    pub fn pod(host_id: u32) -> Mappings {
        Mappings {
            uids: vec![IdMapping::pod(host_id)],
            gids: vec![IdMapping::pod(host_id)],
        }
    }

    /// Root inside as the host sees it: (uid, gid), if mapped.
    pub fn host_root(&self) -> Option<(u32, u32)> {
        Some((to_host(&self.uids, 0)?, to_host(&self.gids, 0)?))
    }
}

/// The host ID of `id` inside, if it is mapped. With `0 131072 65536`:
/// 0 → 131072, 1000 → 132072, 65536 → none.
pub fn to_host(maps: &[IdMapping], id: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        let offset = id.checked_sub(m.container_id)?;
        (offset < m.size).then(|| m.host_id.checked_add(offset))?
    })
}

/// The text of a `uid_map`/`gid_map` file: `container host size` per line.
pub fn map_file(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// Checks mappings before the kernel sees them: at least one, none empty,
/// no range running past 2^32, and at most 340 lines (the kernel's limit).
pub fn validate(maps: &[IdMapping]) -> Result<()> {
    let bad = |why: &str| Err(SysError::other("user namespace mappings", why.to_string()));
    if maps.is_empty() {
        return bad("no mapping");
    }
    if maps.len() > 340 {
        return bad("more than 340 mappings");
    }
    for m in maps {
        let end = |start: u32| u64::from(start) + u64::from(m.size);
        if m.size == 0 || end(m.container_id) > 1 << 32 || end(m.host_id) > 1 << 32 {
            return bad(&format!("bad mapping {m:?}"));
        }
    }
    Ok(())
}

/// Writes the `uid_map` and `gid_map` of process `pid`, just made in a
/// new user namespace (by a root on the host, so `setgroups` stays
/// allowed inside).
pub fn write_maps(pid: i32, maps: &Mappings) -> Result<()> {
    for (file, m) in [("uid_map", &maps.uids), ("gid_map", &maps.gids)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, map_file(m)).ctx(|| format!("write {path}"))?;
    }
    Ok(())
}

fn pipe() -> Result<(std::fs::File, std::fs::File)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

/// Reaps the helper whatever happens: it is told to go (its pipe closed)
/// and killed, in case it is stuck.
struct Helper(libc::pid_t);

impl Drop for Helper {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    }
}

/// A new user namespace with these mappings, held by the returned
/// descriptor. See the module doc.
pub fn create(maps: &Mappings) -> Result<OwnedFd> {
    validate(&maps.uids)?;
    validate(&maps.gids)?;
    let (mut ready_r, ready_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let (ready_fd, go_fd) = (ready_w.as_raw_fd(), go_r.as_raw_fd());
    // SAFETY: the child makes only async-signal-safe calls (unshare, read,
    // write, _exit) on descriptors it owns a copy of, and never returns, so
    // a lock another thread of this process held at fork time is never
    // touched.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SysError::new("fork", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        unsafe {
            let mut byte = 0u8;
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                libc::_exit(1);
            }
            libc::write(ready_fd, b"u".as_ptr().cast(), 1);
            // Until the parent closes its end (or kills us).
            libc::read(go_fd, (&raw mut byte).cast(), 1);
            libc::_exit(0);
        }
    }
    let helper = Helper(pid);
    drop((ready_w, go_r));
    let mut step = |want: u8, what: &str| -> Result<()> {
        let mut byte = [0u8];
        match ready_r.read(&mut byte) {
            Ok(1) if byte[0] == want => Ok(()),
            _ => Err(SysError::other(
                "user namespace helper",
                format!("it failed to {what}"),
            )),
        }
    };
    step(b'u', "unshare a user namespace")?;
    write_maps(pid, maps)?;
    let path = format!("/proc/{pid}/ns/user");
    let user = nix::fcntl::open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open {path}"))?;
    drop(go_w);
    drop(helper);
    Ok(user)
}

// From <linux/mount.h>; not (all) in the libc crate.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|e| SysError::other(format!("path {}", p.display()), e.to_string()))
}

/// Binds `source` on `target` (recursively with `recursive`) as an
/// idmapped mount: files are seen through `userns`'s mappings (on-disk
/// owner 0 appears as the namespace's host ID for 0, and a file created
/// through it by that host ID is written as 0).
pub fn idmapped_bind(
    source: &Path,
    target: &Path,
    userns: BorrowedFd<'_>,
    recursive: bool,
) -> Result<()> {
    let what = || {
        format!(
            "idmapped bind of {} on {}",
            source.display(),
            target.display()
        )
    };
    let (src, dst) = (cpath(source)?, cpath(target)?);
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: plain system calls on valid C strings and a struct of the
    // size passed; the returned descriptor is owned right away.
    let tree = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, src.as_ptr(), flags) };
    if tree < 0 {
        return Err(SysError::new(
            format!("{} (open_tree)", what()),
            std::io::Error::last_os_error(),
        ));
    }
    let tree = unsafe { OwnedFd::from_raw_fd(tree as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let mut setattr_flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        setattr_flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_fd().as_raw_fd(),
            c"".as_ptr(),
            setattr_flags,
            &raw const attr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(SysError::new(
            format!("{} (mount_setattr MOUNT_ATTR_IDMAP)", what()),
            std::io::Error::last_os_error(),
        ));
    }
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(SysError::new(
            format!("{} (move_mount)", what()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_the_host_within_their_range_only() {
        // The pod with the second block of 65536: 0 → 131072.
        let maps = [IdMapping::pod(131072)];
        assert_eq!(to_host(&maps, 0), Some(131072));
        assert_eq!(to_host(&maps, 1000), Some(132072));
        assert_eq!(to_host(&maps, 65535), Some(196607));
        assert_eq!(to_host(&maps, 65536), None);
        // Two ranges: 0 → 1000 (one ID), 1..=10 → 2001..=2010.
        let split = [
            IdMapping {
                container_id: 0,
                host_id: 1000,
                size: 1,
            },
            IdMapping {
                container_id: 1,
                host_id: 2001,
                size: 10,
            },
        ];
        assert_eq!(to_host(&split, 0), Some(1000));
        assert_eq!(to_host(&split, 5), Some(2005));
        assert_eq!(to_host(&split, 11), None);
        // A range at the top of the ID space does not overflow.
        let top = [IdMapping {
            container_id: 0,
            host_id: u32::MAX,
            size: 1,
        }];
        assert_eq!(to_host(&top, 0), Some(u32::MAX));
        assert_eq!(to_host(&top, 1), None);
    }

    #[test]
    fn map_files_and_validation() {
        assert_eq!(map_file(&[IdMapping::pod(65536 * 3)]), "0 196608 65536\n");
        assert!(validate(&[IdMapping::pod(65536)]).is_ok());
        assert!(validate(&[]).is_err());
        let empty = IdMapping {
            size: 0,
            ..IdMapping::pod(65536)
        };
        assert!(validate(&[empty]).is_err());
        // 4294901760 + 65536 = 2^32: the last whole block fits, one more does not.
        assert!(validate(&[IdMapping::pod(u32::MAX - 65535)]).is_ok());
        assert!(validate(&[IdMapping::pod(u32::MAX - 65534)]).is_err());
    }

    #[test]
    fn oci_round_trip() {
        let m = IdMapping::pod(65536);
        let oci = m.to_oci();
        assert_eq!(
            (oci.container_id(), oci.host_id(), oci.size()),
            (0, 65536, 65536)
        );
        assert_eq!(IdMapping::from_oci(&oci), m);
        let json = serde_json::to_value(oci).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"containerID": 0, "hostID": 65536, "size": 65536})
        );
    }
}
