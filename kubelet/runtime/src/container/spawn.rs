//! Forking the container's init — the one place this crate's engine needs
//! `unsafe` — and the two channels around it:
//!
//! - a pipe parent → child: "you are in your cgroup, go on" (so every page
//!   and every fork of the set-up is accounted to the container);
//! - a pipe child → parent: `R` when the set-up is done and the init waits
//!   for `start`, or `E` and the error. Both ends are close-on-exec.
//!
//! The init then blocks opening the exec FIFO for writing; `start` opens it
//! for reading, which lets it through to exec. The FIFO is reached through
//! a directory handle opened before pivot_root, so it works whatever the
//! container's root holds.
//!
//! Call from a single-threaded process: after fork only the calling thread
//! exists, and a lock another thread held (the allocator's, stdio's) would
//! stay locked forever in the child.

#![allow(unsafe_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Pid};

use super::Error;
use super::init::Init;
use nix::sched::CloneFlags;

use crate::linux::cgroups::Cgroup;
use crate::linux::namespaces::Saved;
use crate::linux::syscalls::LinuxSyscalls;
use crate::linux::userns::{self, Mappings};
use crate::linux::{Context, SysError};

/// Exit status of an init that failed after `start` (the error is on its
/// stderr), as a shell's "cannot execute".
pub const EXIT_INIT_FAILED: i32 = 127;

fn pipe() -> Result<(File, File), Error> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .ctx(|| "pipe".into())
        .map_err(Error::Sys)?;
    Ok((File::from(r), File::from(w)))
}

/// Marks every inherited descriptor above stderr close-on-exec, so nothing
/// of the runtime's (a log file, a socket) leaks into the container.
fn cloexec_inherited() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: `fd` was listed in /proc/self/fd a moment ago and only
        // this thread exists; the borrow lasts for one fcntl call, and one
        // that was closed meanwhile (the read_dir handle) just fails.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    }
}

/// Forks the init of `init` into `cgroup`; returns its PID once it waits
/// for `start` on `state_dir/exec.fifo` (made here).
pub fn spawn(init: &Init, state_dir: &Path, cgroup: &dyn Cgroup) -> Result<Pid, Error> {
    let fifo = state_dir.join("exec.fifo");
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600))
        .ctx(|| format!("mkfifo {}", fifo.display()))?;
    if let Some((uid, gid)) = init.namespaces.user.as_ref().and_then(|m| m.host_root()) {
        // The init opens it as root of its user namespace, which is not
        // the host's root (as runc chowns its exec fifo).
        nix::unistd::chown(
            &fifo,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .ctx(|| format!("chown {}", fifo.display()))?;
    }
    let dir: OwnedFd = nix::fcntl::open(
        state_dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", state_dir.display()))?;
    let supported = caps::runtime::thread_all_supported();
    let (go_r, go_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    // With a user namespace the parent joins the namespaces the child
    // must be born in, and comes back right after the clone (see
    // linux/namespaces.rs).
    let saved = Saved::save(init.namespaces.joined_by_parent())?;
    let entered = init.namespaces.enter_before_fork(&LinuxSyscalls);
    let forked = entered
        .map_err(Error::from)
        .and_then(|()| clone_init(init.namespaces.clone_flags()));
    if let Ok(ForkResult::Child) = forked {
        drop((go_w, status_r));
        let code = child(init, &supported, go_r, status_w, dir);
        std::process::exit(code)
    }
    let back = saved.restore();
    match forked? {
        ForkResult::Child => unreachable!("the child has exited"),
        ForkResult::Parent { child } => {
            drop((go_r, status_w, dir));
            let maps = init.namespaces.user.as_ref();
            if let Err(e) = back {
                return Err(kill(child, e.into()));
            }
            parent(child, cgroup, maps, go_w, status_r)
        }
    }
}

/// Kills and reaps a child that will not become the container.
fn kill(child: Pid, e: Error) -> Error {
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(child, None);
    e
}

/// fork(), or with flags a clone into new namespaces (`CLONE_NEWUSER`,
/// `CLONE_NEWPID`) that otherwise behaves as fork: no new stack (the child
/// runs on its copy of this one), SIGCHLD at its exit.
fn clone_init(flags: CloneFlags) -> Result<ForkResult, Error> {
    if flags.is_empty() {
        // SAFETY: as for the fork in `spawn` (single-threaded caller).
        return Ok(unsafe { nix::unistd::fork() }.ctx(|| "fork".into())?);
    }
    let raw = flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: clone without CLONE_VM and with a null stack is fork with
    // namespace flags: the child gets a copy of this (single-threaded)
    // process and returns here with 0.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            raw,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match pid {
        -1 => Err(Error::Sys(SysError::new(
            format!("clone {flags:?}"),
            std::io::Error::last_os_error(),
        ))),
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

fn parent(
    child: Pid,
    cgroup: &dyn Cgroup,
    maps: Option<&Mappings>,
    mut go: File,
    mut status: File,
) -> Result<Pid, Error> {
    let fail = |e: Error| kill(child, e);
    if let Err(e) = cgroup.apply(child.as_raw()) {
        return Err(fail(e.into()));
    }
    // Before the child goes on: it becomes root inside first thing.
    if let Some(m) = maps
        && let Err(e) = userns::write_maps(child.as_raw(), m)
    {
        return Err(fail(e.into()));
    }
    if let Err(e) = go.write_all(b"g") {
        return Err(fail(Error::Sys(SysError::new("signal the init", e))));
    }
    drop(go);
    let mut reply = Vec::new();
    let _ = status.read_to_end(&mut reply);
    match reply.split_first() {
        Some((b'R', _)) => Ok(child),
        Some((b'E', msg)) => Err(fail(Error::Init(String::from_utf8_lossy(msg).into_owned()))),
        _ => Err(fail(Error::Init("the init exited during set-up".into()))),
    }
}

/// The child's side; returns the exit status if it does not exec.
fn child(
    init: &Init,
    supported: &caps::CapsHashSet,
    mut go: File,
    status: File,
    dir: OwnedFd,
) -> i32 {
    let mut byte = [0u8; 1];
    if go.read(&mut byte).unwrap_or(0) != 1 {
        return 1; // the parent gave up
    }
    drop(go);
    cloexec_inherited();
    let mut status = Some(status);
    let mut wait_for_start = || -> crate::linux::Result<()> {
        if let Some(mut s) = status.take() {
            s.write_all(b"R").ctx(|| "report ready".into())?;
        }
        // Blocks until `start` opens the other end.
        let fifo = nix::fcntl::openat(
            dir.as_fd(),
            "exec.fifo",
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "open exec.fifo".into())?;
        File::from(fifo)
            .write_all(b"0")
            .ctx(|| "write exec.fifo".into())
    };
    let err = init.run(&LinuxSyscalls, supported, &mut wait_for_start);
    match status.take() {
        Some(mut s) => {
            let _ = s.write_all(format!("E{err}").as_bytes());
            1
        }
        None => {
            let _ = writeln!(std::io::stderr(), "skiff-runtime init: {err}");
            EXIT_INIT_FAILED
        }
    }
}
