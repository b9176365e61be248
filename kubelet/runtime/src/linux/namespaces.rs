//! The spec's `linux.namespaces`: which to make new and which to join by
//! path (a pod sandbox's net/UTS/IPC files), split into what the parent must
//! do before forking and what the child does itself.
//!
//! Why the split: a new or joined PID namespace applies to a process's
//! *children* only (`pid_for_children`), so the parent switches it and then
//! forks the container's init, which becomes PID 1. Everything else the
//! child does to itself, so the parent keeps the host's mount namespace (it
//! must still see the cgroup files and the state directory afterwards).

use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use super::syscalls::Syscalls;
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
}

impl Plan {
    pub fn from_spec(namespaces: &[LinuxNamespace]) -> Result<Plan> {
        let mut plan = Plan {
            join: Vec::new(),
            new: CloneFlags::empty(),
        };
        for ns in namespaces {
            let f = flag(ns.typ());
            if ns.typ() == LinuxNamespaceType::User {
                // Needs uid/gid maps written by the parent; not done here.
                return Err(SysError::other(
                    "namespaces",
                    "user namespaces are not supported by skiff-runtime yet",
                ));
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

    /// In the parent, before forking: the PID namespace the child will be
    /// born in.
    pub fn enter_before_fork(&self, sys: &dyn Syscalls) -> Result<()> {
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
    /// container's own view and not from a joined one's.
    pub fn enter_in_child(&self, sys: &dyn Syscalls) -> Result<()> {
        for (f, path) in &self.join {
            if *f != CloneFlags::CLONE_NEWPID {
                sys.setns(path, *f)?;
            }
        }
        let rest = self.new & !CloneFlags::CLONE_NEWPID;
        if !rest.is_empty() {
            sys.unshare(rest)?;
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
    fn user_namespaces_are_refused_not_ignored() {
        assert!(Plan::from_spec(&[ns(LinuxNamespaceType::User, None)]).is_err());
    }
}
