//! What the container's init does, in order, from the moment its parent
//! has put it in its cgroup until exec — written against
//! [`Syscalls`](crate::linux::syscalls::Syscalls) so the whole sequence is
//! unit-tested with the recording fake:
//!
//! 1. join the sandbox's namespaces, make the new ones;
//! 2. mounts under the rootfs, `/dev`, pivot_root;
//! 3. hostname; read-only and masked paths; read-only root;
//! 4. rlimits, the bounding set; the program looked up; with a terminal,
//!    a new session whose controlling terminal is stdin;
//! 5. **wait for `start`** (the caller's hook: report "ready", block on
//!    the exec FIFO) — everything that can fail has been tried by now;
//! 6. user and groups, capabilities, no_new_privs, cwd, exec.

use std::path::PathBuf;

use caps::CapsHashSet;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::linux::namespaces::Plan;
use crate::linux::rootfs::{self, secure_join};
use crate::linux::syscalls::Syscalls;
use crate::linux::userns::IdMapping;
use crate::linux::{Result, SysError, capabilities, process};

/// Everything the init needs, decided by the parent before forking.
#[derive(Debug, Clone)]
pub struct Init {
    pub spec: Spec,
    pub rootfs: PathBuf,
    pub namespaces: Plan,
    /// What `/sys/fs/cgroup` shows: the container's cgroup directories.
    pub cgroup_mounts: Vec<(String, PathBuf)>,
}

impl Init {
    pub fn new(spec: Spec, rootfs: PathBuf, cgroup_mounts: Vec<(String, PathBuf)>) -> Result<Init> {
        let linux = spec.linux().clone().unwrap_or_default();
        let maps = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<IdMapping> {
            m.iter().flatten().map(IdMapping::from_oci).collect()
        };
        let namespaces = Plan::from_linux(
            linux.namespaces().as_deref().unwrap_or_default(),
            &maps(linux.uid_mappings()),
            &maps(linux.gid_mappings()),
        )?;
        if !namespaces.is_new(LinuxNamespaceType::Mount) {
            // pivot_root in the host's mount namespace would move the host.
            return Err(SysError::other(
                "namespaces",
                "the container needs a new mount namespace",
            ));
        }
        if spec.process().is_none() {
            return Err(SysError::other("config", "no process"));
        }
        Ok(Init {
            spec,
            rootfs,
            namespaces,
            cgroup_mounts,
        })
    }

    /// Steps 1–6. `wait_for_start` runs between the set-up and the user
    /// switch; returns only on failure (exec replaced the process
    /// otherwise).
    pub fn run(
        &self,
        sys: &dyn Syscalls,
        supported_caps: &CapsHashSet,
        wait_for_start: &mut dyn FnMut() -> Result<()>,
    ) -> SysError {
        match self.setup(sys, supported_caps, wait_for_start) {
            Ok(e) | Err(e) => e,
        }
    }

    fn setup(
        &self,
        sys: &dyn Syscalls,
        supported_caps: &CapsHashSet,
        wait_for_start: &mut dyn FnMut() -> Result<()>,
    ) -> Result<SysError> {
        let spec = &self.spec;
        let linux = spec.linux().clone().unwrap_or_default();
        let proc = spec.process().clone().unwrap_or_default();
        self.namespaces.enter_in_child(sys)?;
        rootfs::prepare(
            sys,
            &self.rootfs,
            spec.mounts().as_deref().unwrap_or_default(),
            linux.devices().as_deref().unwrap_or_default(),
            &self.cgroup_mounts,
            self.namespaces.user.is_some(),
        )?;
        // The working directory may be missing from the image (runc makes it).
        sys.mkdir_all(&secure_join(&self.rootfs, proc.cwd()))?;
        rootfs::pivot(sys, &self.rootfs)?;
        if let Some(name) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            if !self.namespaces.is_new(LinuxNamespaceType::Uts) {
                return Err(SysError::other(
                    "hostname",
                    "cannot set a hostname without a new UTS namespace",
                ));
            }
            sys.sethostname(name)?;
        }
        let readonly_root = spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false);
        rootfs::finish(
            sys,
            linux.readonly_paths().as_deref().unwrap_or_default(),
            linux.masked_paths().as_deref().unwrap_or_default(),
            readonly_root,
        )?;
        process::set_rlimits(sys, &proc)?;
        let caps = proc.capabilities().clone();
        if let Some(c) = &caps {
            capabilities::drop_bounding(sys, c, supported_caps)?;
        }
        let cmd = process::command(sys, &proc)?;
        if proc.terminal().unwrap_or(false) {
            // As runc: the TTY is the session's, so ^C reaches the
            // foreground job and a shell has job control.
            sys.setsid_ctty()?;
        }
        wait_for_start()?;
        process::set_user(sys, proc.user())?;
        if let Some(c) = &caps {
            capabilities::apply(sys, c)?;
        }
        Ok(process::exec(sys, &proc, &cmd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::syscalls::{PathKind, RecordingSyscalls};
    use crate::oci::spec::{ContainerConfig, build};

    fn spec() -> Spec {
        build(&ContainerConfig {
            args: vec!["sh".into(), "-c".into(), "exit 0".into()],
            hostname: "box".into(),
            uid: 1000,
            gid: 1000,
            no_new_privileges: true,
            join: vec![("network".into(), "/run/sb/net".into())],
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn the_whole_sequence_in_order_with_start_before_the_user_switch() {
        let mut sys = RecordingSyscalls::new()
            .with("/proc/sys", PathKind::Dir)
            .with("/proc/kcore", PathKind::File);
        sys.executables.insert("/bin/sh".into());
        let init = Init::new(spec(), "/r".into(), vec![]).unwrap();
        let all: CapsHashSet = caps::all();
        let started = std::cell::Cell::new(0usize);
        let err = init.run(&sys, &all, &mut || {
            started.set(sys.calls().len());
            Ok(())
        });
        assert!(err.to_string().contains("recorded"), "{err}");
        let calls = sys.calls();
        let at = |prefix: &str| {
            calls
                .iter()
                .position(|c| c.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {calls:#?}"))
        };
        assert_eq!(calls[0], "setns /run/sb/net CLONE_NEWNET");
        assert!(calls[1].starts_with("unshare") && calls[1].contains("CLONE_NEWNS"));
        assert!(at("mount proc /r/proc") < at("pivot_root"));
        assert!(at("mkdir /r/sys/fs/cgroup") < at("pivot_root"));
        assert!(at("pivot_root") < at("sethostname box"));
        assert!(at("sethostname") < at("mount /proc/sys /proc/sys"));
        assert!(at("mount /dev/null /proc/kcore") < at("drop-bounding"));
        // Start comes after the set-up, before the user switch.
        let start = started.get();
        assert!(at("drop-bounding") < start && start <= at("keepcaps"));
        assert!(at("setresuid 1000") < at("caps Effective"));
        assert!(at("caps Permitted") < at("no_new_privs"));
        assert!(calls.last().unwrap().starts_with("execve /bin/sh"));
        // 14 kept, the rest of what the kernel knows dropped.
        let dropped = calls
            .iter()
            .filter(|c| c.starts_with("drop-bounding"))
            .count();
        assert_eq!(dropped, all.len() - 14);
    }

    #[test]
    fn a_terminal_becomes_the_controlling_one_before_start() {
        let run = |terminal: bool| {
            let mut sys = RecordingSyscalls::new();
            sys.executables.insert("/bin/sh".into());
            let mut spec = spec();
            let mut process = spec.process().clone().unwrap();
            process.set_terminal(Some(terminal));
            spec.set_process(Some(process));
            let init = Init::new(spec, "/r".into(), vec![]).unwrap();
            let started = std::cell::Cell::new(0usize);
            init.run(&sys, &caps::all(), &mut || {
                started.set(sys.calls().len());
                Ok(())
            });
            let calls = sys.calls();
            (calls.iter().position(|c| c == "setsid-ctty"), started.get())
        };
        let (ctty, start) = run(true);
        assert!(ctty.is_some_and(|at| at < start), "{ctty:?} {start}");
        assert_eq!(run(false).0, None);
    }

    #[test]
    fn a_missing_program_fails_before_start() {
        let sys = RecordingSyscalls::new();
        let init = Init::new(spec(), "/r".into(), vec![]).unwrap();
        let mut started = false;
        let err = init.run(&sys, &caps::all(), &mut || {
            started = true;
            Ok(())
        });
        assert!(err.to_string().contains("not found"), "{err}");
        assert!(!started);
    }
}
