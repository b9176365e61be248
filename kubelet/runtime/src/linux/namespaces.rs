//! The spec's `linux.namespaces`: which to make new and which to join by
//! path (a pod sandbox's net/UTS/IPC files), split into what the parent must
//! do before forking and what the child does itself.
//!
//! Why the split: a new or joined PID namespace applies to a process's
//! *children* only (`pid_for_children`), so the parent switches it and then
//! forks the container's init, which becomes PID 1. Everything else the
//! child does to itself, so the parent keeps the host's mount namespace (it
//! must still see the cgroup files and the state directory afterwards).
//!
//! With a user namespace (OCI `user` with `uidMappings`/`gidMappings`, made
//! new: joining one by path is refused) it goes otherwise, as runc's
//! clone does: the PID namespace must belong to the user namespace (or
//! root inside may not mount its `/proc`), so both are made by the clone
//! of the init itself (`CLONE_NEWUSER | CLONE_NEWPID`: the kernel makes the
//! user namespace first). The namespaces to join (the pod's network, UTS,
//! IPC: they belong to the host's user namespace, which the child cannot
//! join from inside its own) are joined by the *parent* just before the
//! clone and left right after it ([`Saved`]), so the child is born in them.
//! The parent writes the child's `uid_map`/`gid_map` before letting it go;
//! the child becomes root *inside* (uid 0 there, the mapped ID on the host)
//! and makes its new mount, UTS, IPC… namespaces, which then belong to its
//! user namespace.

use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use super::syscalls::Syscalls;
use super::userns::{IdMapping, Mappings};
use super::{Result, SysError};

/// The clone flag of a namespace type.
pub fn flag(kind: LinuxNamespaceType) -> CloneFlags {
    match kind {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // CLONE_NEWTIME has no name in nix; its value is 0x80.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(0x80),
    }
}

/// What to do about namespaces, decided from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Namespaces to join: (flag, path), in the spec's order.
    pub join: Vec<(CloneFlags, PathBuf)>,
    /// Namespaces to create.
    pub new: CloneFlags,
    /// A new user namespace with these mappings.
    pub user: Option<Mappings>,
}

impl Plan {
    /// The plan for a spec without a user namespace.
    pub fn from_spec(namespaces: &[LinuxNamespace]) -> Result<Plan> {
        Plan::from_linux(namespaces, &[], &[])
    }

    /// The plan for the spec's `linux.namespaces`, with its
    /// `uidMappings`/`gidMappings` for a new user namespace.
    pub fn from_linux(
        namespaces: &[LinuxNamespace],
        uid_maps: &[IdMapping],
        gid_maps: &[IdMapping],
    ) -> Result<Plan> {
        let mut plan = Plan {
            join: Vec::new(),
            new: CloneFlags::empty(),
            user: None,
        };
        for ns in namespaces {
            let f = flag(ns.typ());
            if ns.typ() == LinuxNamespaceType::User {
                if ns.path().is_some() {
                    return Err(SysError::other(
                        "namespaces",
                        "joining a user namespace by path is not supported: give mappings",
                    ));
                }
                if uid_maps.is_empty() || gid_maps.is_empty() {
                    return Err(SysError::other(
                        "namespaces",
                        "a user namespace needs uidMappings and gidMappings",
                    ));
                }
                plan.user = Some(Mappings {
                    uids: uid_maps.to_vec(),
                    gids: gid_maps.to_vec(),
                });
                continue;
            }
            match ns.path() {
                Some(p) => plan.join.push((f, p.clone())),
                None => plan.new |= f,
            }
        }
        Ok(plan)
    }

    /// Whether the container gets its own namespace of this kind.
    pub fn is_new(&self, kind: LinuxNamespaceType) -> bool {
        self.new.contains(flag(kind))
    }

    /// The flags of the clone that makes the init: none but SIGCHLD (a
    /// fork) without a user namespace; `CLONE_NEWUSER` and, when the PID
    /// namespace is new, `CLONE_NEWPID` with one.
    pub fn clone_flags(&self) -> CloneFlags {
        match self.user {
            Some(_) => CloneFlags::CLONE_NEWUSER | (self.new & CloneFlags::CLONE_NEWPID),
            None => CloneFlags::empty(),
        }
    }

    /// The namespaces the parent joins for the child (with a user
    /// namespace): the flags of the joined ones.
    pub fn joined_by_parent(&self) -> CloneFlags {
        match self.user {
            Some(_) => self
                .join
                .iter()
                .fold(CloneFlags::empty(), |a, (f, _)| a | *f),
            None => CloneFlags::empty(),
        }
    }

    /// In the parent, before forking: the PID namespace the child will be
    /// born in; with a user namespace, every namespace to join (save them
    /// first with [`Saved::save`] of [`Plan::joined_by_parent`]).
    pub fn enter_before_fork(&self, sys: &dyn Syscalls) -> Result<()> {
        if self.user.is_some() {
            if self
                .join
                .iter()
                .any(|(f, _)| *f == CloneFlags::CLONE_NEWPID)
            {
                // Its /proc could not be mounted from inside.
                return Err(SysError::other(
                    "namespaces",
                    "a container in a user namespace cannot join a PID namespace",
                ));
            }
            for (f, path) in &self.join {
                sys.setns(path, *f)?;
            }
            return Ok(());
        }
        for (f, path) in &self.join {
            if *f == CloneFlags::CLONE_NEWPID {
                sys.setns(path, *f)?;
            }
        }
        if self.new.contains(CloneFlags::CLONE_NEWPID) {
            sys.unshare(CloneFlags::CLONE_NEWPID)?;
        }
        Ok(())
    }

    /// In the child: join the given namespaces, then make the new ones.
    /// Joining first, so that a new mount namespace is made from the
    /// container's own view and not from a joined one's. In a user
    /// namespace (born in it, its maps written by the parent) the joins are
    /// the parent's; the child becomes root inside first.
    pub fn enter_in_child(&self, sys: &dyn Syscalls) -> Result<()> {
        if self.user.is_some() {
            // Still the unmapped host root (shown as 65534): files made now
            // would fail (EOVERFLOW). Root inside is the mapped ID (0 →
            // 131072 with `0 131072 65536`).
            sys.setresgid(0)?;
            sys.setresuid(0)?;
        } else {
            for (f, path) in &self.join {
                if *f != CloneFlags::CLONE_NEWPID {
                    sys.setns(path, *f)?;
                }
            }
        }
        let rest = self.new & !CloneFlags::CLONE_NEWPID;
        if !rest.is_empty() {
            sys.unshare(rest)?;
        }
        Ok(())
    }
}

/// The parent's own namespaces of some kinds, to come back to after
/// joining a container's for its clone.
#[derive(Debug)]
pub struct Saved(Vec<(CloneFlags, std::os::fd::OwnedFd)>);

impl Saved {
    /// Opens this process's namespaces of the kinds in `kinds`.
    pub fn save(kinds: CloneFlags) -> Result<Saved> {
        let mut saved = Vec::new();
        for (name, f) in [
            ("net", CloneFlags::CLONE_NEWNET),
            ("uts", CloneFlags::CLONE_NEWUTS),
            ("ipc", CloneFlags::CLONE_NEWIPC),
            ("mnt", CloneFlags::CLONE_NEWNS),
            ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ] {
            if kinds.contains(f) {
                let path = format!("/proc/thread-self/ns/{name}");
                let file = std::fs::File::open(&path)
                    .map_err(|e| SysError::new(format!("open {path}"), e))?;
                saved.push((f, file.into()));
            }
        }
        Ok(Saved(saved))
    }

    /// Goes back into the saved namespaces.
    pub fn restore(&self) -> Result<()> {
        for (f, fd) in &self.0 {
            nix::sched::setns(fd, *f)
                .map_err(|e| SysError::new(format!("setns back {f:?}"), std::io::Error::from(e)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::syscalls::RecordingSyscalls;
    use oci_spec::runtime::LinuxNamespaceBuilder;

    fn ns(kind: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let b = LinuxNamespaceBuilder::default().typ(kind);
        match path {
            Some(p) => b.path(p).build().unwrap(),
            None => b.build().unwrap(),
        }
    }

    #[test]
    fn pid_in_the_parent_the_rest_in_the_child_joins_first() {
        let plan = Plan::from_spec(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Mount, None),
            ns(LinuxNamespaceType::Network, Some("/run/sb/net")),
            ns(LinuxNamespaceType::Uts, Some("/run/sb/uts")),
            ns(LinuxNamespaceType::Ipc, None),
        ])
        .unwrap();
        assert!(plan.is_new(LinuxNamespaceType::Ipc));
        assert!(!plan.is_new(LinuxNamespaceType::Uts));
        let parent = RecordingSyscalls::new();
        plan.enter_before_fork(&parent).unwrap();
        assert_eq!(parent.calls(), ["unshare CLONE_NEWPID"]);
        let child = RecordingSyscalls::new();
        plan.enter_in_child(&child).unwrap();
        assert_eq!(
            child.calls(),
            [
                "setns /run/sb/net CLONE_NEWNET",
                "setns /run/sb/uts CLONE_NEWUTS",
                "unshare CLONE_NEWNS | CLONE_NEWIPC",
            ]
        );
    }

    #[test]
    fn joined_pid_namespace_is_entered_by_the_parent() {
        let plan =
            Plan::from_spec(&[ns(LinuxNamespaceType::Pid, Some("/proc/42/ns/pid"))]).unwrap();
        let parent = RecordingSyscalls::new();
        plan.enter_before_fork(&parent).unwrap();
        assert_eq!(parent.calls(), ["setns /proc/42/ns/pid CLONE_NEWPID"]);
        let child = RecordingSyscalls::new();
        plan.enter_in_child(&child).unwrap();
        assert!(child.calls().is_empty());
    }

    #[test]
    fn a_user_namespace_needs_mappings_and_is_never_joined_by_path() {
        let user = [ns(LinuxNamespaceType::User, None)];
        assert!(Plan::from_spec(&user).is_err(), "no mappings");
        let maps = [IdMapping::pod(65536)];
        let joined = [ns(LinuxNamespaceType::User, Some("/proc/1/ns/user"))];
        assert!(Plan::from_linux(&joined, &maps, &maps).is_err());
        let with_pid = [
            ns(LinuxNamespaceType::User, None),
            ns(LinuxNamespaceType::Pid, Some("/proc/42/ns/pid")),
        ];
        let plan = Plan::from_linux(&with_pid, &maps, &maps).unwrap();
        assert!(plan.enter_before_fork(&RecordingSyscalls::new()).is_err());
    }

    #[test]
    fn with_a_user_namespace_the_parent_joins_and_the_clone_makes_user_and_pid() {
        let maps = [IdMapping::pod(131072)];
        let plan = Plan::from_linux(
            &[
                ns(LinuxNamespaceType::User, None),
                ns(LinuxNamespaceType::Pid, None),
                ns(LinuxNamespaceType::Mount, None),
                ns(LinuxNamespaceType::Network, Some("/run/sb/net")),
                ns(LinuxNamespaceType::Uts, Some("/run/sb/uts")),
            ],
            &maps,
            &maps,
        )
        .unwrap();
        assert_eq!(
            plan.clone_flags(),
            CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID
        );
        assert_eq!(
            plan.joined_by_parent(),
            CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS
        );
        let parent = RecordingSyscalls::new();
        plan.enter_before_fork(&parent).unwrap();
        // No unshare of the PID namespace by the parent: it would belong to
        // the host's user namespace.
        assert_eq!(
            parent.calls(),
            [
                "setns /run/sb/net CLONE_NEWNET",
                "setns /run/sb/uts CLONE_NEWUTS"
            ]
        );
        let child = RecordingSyscalls::new();
        plan.enter_in_child(&child).unwrap();
        assert_eq!(
            child.calls(),
            ["setresgid 0", "setresuid 0", "unshare CLONE_NEWNS"]
        );
        // Without a user namespace: a plain fork, the child joins.
        let plain = Plan::from_spec(&[ns(LinuxNamespaceType::Network, Some("/n"))]).unwrap();
        assert_eq!(plain.clone_flags(), CloneFlags::empty());
        assert_eq!(plain.joined_by_parent(), CloneFlags::empty());
    }
}
