//! The last steps before the container's program runs: resource limits,
//! the user and groups, then (after capabilities) `no_new_privs`, the
//! working directory and exec with the spec's environment. The program is
//! looked up on the container's own `PATH`, inside the new root.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{PosixRlimitType, Process, User};

use super::syscalls::Syscalls;
use super::{Result, SysError};

/// The default `PATH` when the spec's environment has none (runc's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Switches to the spec's user: groups first (setgroups needs root), then
/// gid, then uid. keepcaps keeps the permitted set across setuid so the
/// spec's capabilities can be applied after.
pub fn set_user(sys: &dyn Syscalls, user: &User) -> Result<()> {
    sys.set_keepcaps(true)?;
    let groups = user.additional_gids().clone().unwrap_or_default();
    sys.setgroups(&groups)?;
    sys.setresgid(user.gid())?;
    sys.setresuid(user.uid())?;
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as R;
    #[allow(unreachable_patterns)] // oci-spec may grow limits nix lacks
    Some(match t {
        PosixRlimitType::RlimitCpu => R::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => R::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => R::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => R::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => R::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => R::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => R::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => R::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => R::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => R::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => R::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => R::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => R::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => R::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => R::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => R::RLIMIT_RTTIME,
        _ => return None,
    })
}

/// The spec's `process.rlimits` (done while still root: raising a hard
/// limit needs CAP_SYS_RESOURCE).
pub fn set_rlimits(sys: &dyn Syscalls, process: &Process) -> Result<()> {
    for r in process.rlimits().iter().flatten() {
        let res = rlimit_resource(r.typ())
            .ok_or_else(|| SysError::other("rlimits", format!("unsupported {:?}", r.typ())))?;
        sys.setrlimit(res, r.soft(), r.hard())?;
    }
    Ok(())
}

/// The environment the program gets: the spec's, plus `HOME=/` when it
/// has none (runc's fallback when the image has no passwd entry).
pub fn environment(process: &Process) -> Vec<String> {
    let mut env = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push("HOME=/".into());
    }
    env
}

/// `arg0` as a path, or its first match on the environment's `PATH`.
pub fn resolve(sys: &dyn Syscalls, arg0: &str, env: &[String]) -> Option<PathBuf> {
    if arg0.contains('/') {
        return Some(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(arg0))
        .find(|p| sys.is_executable(p))
}

/// What to exec, resolved inside the container before it is started (so
/// `create` fails on a missing program, as runc's does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
}

/// The program on the container's `PATH`, its arguments and environment.
pub fn command(sys: &dyn Syscalls, process: &Process) -> Result<Command> {
    let args = process.args().clone().unwrap_or_default();
    let arg0 = args
        .first()
        .ok_or_else(|| SysError::other("exec", "process.args is empty"))?;
    let env = environment(process);
    let program = resolve(sys, arg0, &env).ok_or_else(|| {
        SysError::other(
            format!("exec {arg0:?}"),
            "executable file not found in $PATH",
        )
    })?;
    Ok(Command { program, args, env })
}

/// no_new_privs if asked, the working directory, and exec. Returns only
/// on failure.
pub fn exec(sys: &dyn Syscalls, process: &Process, cmd: &Command) -> SysError {
    let run = || -> Result<SysError> {
        if process.no_new_privileges() == Some(true) {
            sys.set_no_new_privs()?;
        }
        sys.chdir(process.cwd())?;
        Ok(sys.execve(&cmd.program, &cmd.args, &cmd.env))
    };
    match run() {
        Ok(e) | Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::syscalls::RecordingSyscalls;
    use oci_spec::runtime::{PosixRlimitBuilder, ProcessBuilder, UserBuilder};

    #[test]
    fn user_groups_gid_then_uid() {
        let sys = RecordingSyscalls::new();
        let user = UserBuilder::default()
            .uid(1000u32)
            .gid(100u32)
            .additional_gids(vec![10u32, 20])
            .build()
            .unwrap();
        set_user(&sys, &user).unwrap();
        assert_eq!(
            sys.calls(),
            [
                "keepcaps true",
                "setgroups [10, 20]",
                "setresgid 100",
                "setresuid 1000"
            ]
        );
    }

    #[test]
    fn exec_resolves_on_the_containers_path_and_adds_home() {
        let mut sys = RecordingSyscalls::new();
        sys.executables.insert("/bin/sh".into());
        let p = ProcessBuilder::default()
            .args(vec!["sh".to_string(), "-c".into(), "true".into()])
            .env(vec!["PATH=/usr/bin:/bin".to_string()])
            .cwd("/work")
            .no_new_privileges(true)
            .rlimits(vec![
                PosixRlimitBuilder::default()
                    .typ(PosixRlimitType::RlimitNofile)
                    .soft(1024u64)
                    .hard(4096u64)
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        set_rlimits(&sys, &p).unwrap();
        let cmd = command(&sys, &p).unwrap();
        let e = exec(&sys, &p, &cmd);
        assert!(e.to_string().contains("recorded"), "{e}");
        assert_eq!(
            sys.calls(),
            [
                "setrlimit RLIMIT_NOFILE 1024 4096",
                "no_new_privs",
                "chdir /work",
                r#"execve /bin/sh ["sh", "-c", "true"] ["PATH=/usr/bin:/bin", "HOME=/"]"#,
            ]
        );
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let sys = RecordingSyscalls::new();
        let p = ProcessBuilder::default()
            .args(vec!["nope".to_string()])
            .build()
            .unwrap();
        let e = command(&sys, &p).unwrap_err().to_string();
        assert!(e.contains("\"nope\"") && e.contains("not found"), "{e}");
    }
}
