//! The container lifecycle, as runc's commands: create, start, state,
//! kill, delete, and run. Each is a function of the state root, so separate
//! processes (the `skiff-runtime` commands, a restarted kubelet) act on the
//! same containers.
//!
//! `create` forks (see [`super::spawn`]): call it, and `run`, from a
//! single-threaded process. Only the process that created a container can
//! [`Engine::wait`] for its exit code; anyone else sees it stop.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::init::Init;
use super::state::{Exit, State, StateDir, Status, now, proc_stat};
use super::{Error, spawn};
use crate::linux::cgroups::{self, Cgroup, Host};
use crate::oci;

/// How long `delete` waits for the kernel to empty a cgroup.
const CGROUP_DRAIN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Engine {
    pub states: StateDir,
}

/// Undoes a half-made container (its cgroup, its state directory) unless
/// disarmed.
struct Undo<'a> {
    engine: &'a Engine,
    id: &'a str,
    cgroup: Option<Box<dyn Cgroup>>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Some(cg) = &self.cgroup {
                let _ = cg.remove(Duration::from_secs(1));
            }
            let _ = self.engine.states.remove(self.id);
        }
    }
}

fn write_pid_file(path: &Path, pid: i32) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, pid.to_string())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::io(path, e))
}

/// The exit code a shell would report for `status`.
pub fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 255,
    }
}

impl Engine {
    /// Containers' state under `root` (runc's `--root`).
    pub fn new(root: impl Into<PathBuf>) -> Engine {
        Engine {
            states: StateDir::new(root),
        }
    }

    /// Sets container `id` up from the bundle: cgroup with its limits,
    /// namespaces, mounts, pivot_root; its init then waits for
    /// [`Engine::start`]. Writes the init's PID to `pid_file` if given.
    pub fn create(&self, id: &str, bundle: &Path, pid_file: Option<&Path>) -> Result<State, Error> {
        let bundle = bundle.canonicalize().map_err(|e| Error::io(bundle, e))?;
        let spec = oci::load(&bundle)?;
        let rootfs = oci::rootfs(&bundle, &spec);
        let rootfs = rootfs.canonicalize().map_err(|e| Error::io(&rootfs, e))?;
        let dir = self.states.claim(id)?;
        let mut undo = Undo {
            engine: self,
            id,
            cgroup: None,
            armed: true,
        };
        let linux = spec.linux().clone().unwrap_or_default();
        // runc's default for a spec without one, under our own name.
        let path = linux
            .cgroups_path()
            .clone()
            .unwrap_or_else(|| PathBuf::from("skiff-runtime").join(id));
        let mut cg = Host::detect()?.cgroup(&path);
        cg.create()?;
        let cg = undo.cgroup.insert(cg);
        if let Some(r) = linux.resources() {
            cg.set(r)?;
        }
        let init = Init::new(spec, rootfs.clone(), cg.mounts())?;
        let pid = spawn::spawn(&init, &dir, cg.as_ref())?.as_raw();
        let state = State {
            oci_version: "1.0.2".into(),
            id: id.into(),
            status: Status::Created,
            pid,
            pid_start: proc_stat(pid).map(|(_, s)| s).unwrap_or(0),
            bundle,
            rootfs,
            created: now(),
            cgroup: cg.state(),
            exit: None,
        };
        self.states.save(&state)?;
        if let Some(p) = pid_file {
            write_pid_file(p, pid)?;
        }
        undo.armed = false;
        Ok(state)
    }

    /// Lets a created container's init exec its program.
    pub fn start(&self, id: &str) -> Result<State, Error> {
        let mut state = self.states.load(id)?;
        if state.status != Status::Created {
            return Err(Error::BadState {
                id: id.into(),
                status: state.status,
                action: "start",
            });
        }
        let fifo = self.states.fifo(id);
        // Non-blocking: should the init be gone, do not hang on it.
        let fd = nix::fcntl::open(
            &fifo,
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_NONBLOCK
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::io(&fifo, e.into()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut byte = [0u8; 1];
        loop {
            match nix::unistd::read(&fd, &mut byte) {
                Ok(1) => break,
                Ok(_) | Err(Errno::EAGAIN) if Instant::now() < deadline && state.alive() => {
                    let mut fds = [nix::poll::PollFd::new(
                        std::os::fd::AsFd::as_fd(&fd),
                        nix::poll::PollFlags::POLLIN,
                    )];
                    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10u16));
                }
                Ok(_) | Err(Errno::EAGAIN) => {
                    return Err(Error::Init(format!(
                        "container {id:?} did not take the start signal (its init is gone)"
                    )));
                }
                Err(e) => return Err(Error::io(&fifo, e.into())),
            }
        }
        let _ = std::fs::remove_file(&fifo);
        state.status = Status::Running;
        self.states.save(&state)?;
        Ok(state)
    }

    /// The container's state, refreshed from the kernel.
    pub fn state(&self, id: &str) -> Result<State, Error> {
        self.states.load(id)
    }

    /// Every container under the state root.
    pub fn list(&self) -> Result<Vec<State>, Error> {
        self.states.list()
    }

    /// Sends `signal` to the container's init.
    pub fn kill(&self, id: &str, signal: Signal) -> Result<(), Error> {
        let state = self.states.load(id)?;
        if state.status == Status::Stopped {
            return Err(Error::BadState {
                id: id.into(),
                status: state.status,
                action: "kill",
            });
        }
        nix::sys::signal::kill(Pid::from_raw(state.pid), signal)
            .map_err(|e| Error::io(Path::new(&format!("kill {}", state.pid)), e.into()))
    }

    /// `signal`, then SIGKILL if it still runs after `timeout`; returns once
    /// it has stopped.
    pub fn stop(&self, id: &str, signal: Signal, timeout: Duration) -> Result<State, Error> {
        match self.kill(id, signal) {
            Err(Error::BadState { .. }) => return self.states.load(id),
            r => r?,
        }
        if self.wait_stopped(id, timeout)? {
            return self.states.load(id);
        }
        match self.kill(id, Signal::SIGKILL) {
            Err(Error::BadState { .. }) => {}
            r => r?,
        }
        if !self.wait_stopped(id, Duration::from_secs(10))? {
            return Err(Error::Timeout(format!("{id} survived SIGKILL")));
        }
        self.states.load(id)
    }

    fn wait_stopped(&self, id: &str, timeout: Duration) -> Result<bool, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.states.load(id)?.status == Status::Stopped {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits for the container to end and records how (exit code, and
    /// OOMKilled when its cgroup's OOM killer struck). The exit code is
    /// known only to the process that created it; others get 255.
    pub fn wait(&self, id: &str) -> Result<Exit, Error> {
        let mut state = self.states.load(id)?;
        if let Some(exit) = &state.exit {
            return Ok(exit.clone());
        }
        let code = match waitpid(Pid::from_raw(state.pid), None) {
            Ok(status) => exit_code(status),
            Err(Errno::ECHILD) => {
                while state.alive() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                255
            }
            Err(e) => return Err(Error::io(Path::new("waitpid"), e.into())),
        };
        let oom = cgroups::from_state(&state.cgroup).oom_kills() > 0;
        let exit = Exit::new(code, oom);
        state.status = Status::Stopped;
        state.exit = Some(exit.clone());
        self.states.save(&state)?;
        Ok(exit)
    }

    /// Removes a container: a created one is killed first, a running one
    /// only with `force`; then its cgroup and state go. Returns its exit if
    /// it was recorded.
    pub fn delete(&self, id: &str, force: bool) -> Result<Option<Exit>, Error> {
        let state = match self.states.load(id) {
            Err(Error::NotFound(_)) if self.states.dir(id).is_dir() => {
                // A create that died before saving anything.
                self.states.remove(id)?;
                return Ok(None);
            }
            r => r?,
        };
        match state.status {
            Status::Running if !force => {
                return Err(Error::BadState {
                    id: id.into(),
                    status: state.status,
                    action: "delete without --force",
                });
            }
            Status::Stopped => {}
            _ => {
                let _ = nix::sys::signal::kill(Pid::from_raw(state.pid), Signal::SIGKILL);
                if !self.wait_stopped(id, Duration::from_secs(10))? {
                    return Err(Error::Timeout(format!("{id} survived SIGKILL")));
                }
                // Ours to reap if we made it; otherwise someone else's.
                let _ = waitpid(
                    Pid::from_raw(state.pid),
                    Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                );
            }
        }
        // Mounts went with the container's mount namespace; the cgroup and
        // the state are what is left on the host.
        cgroups::from_state(&state.cgroup).remove(CGROUP_DRAIN)?;
        self.states.remove(id)?;
        Ok(state.exit)
    }

    /// create + start + wait + delete, as `runc run`: the exit of the
    /// container's process.
    pub fn run(&self, id: &str, bundle: &Path, pid_file: Option<&Path>) -> Result<Exit, Error> {
        self.create(id, bundle, pid_file)?;
        let result = self.start(id).and_then(|_| self.wait(id));
        let deleted = self.delete(id, true);
        let exit = result?;
        deleted?;
        Ok(exit)
    }
}
