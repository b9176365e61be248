//! The exec'd process: `nsenter` into every namespace, the root and the
//! working directory of the container's PID 1, with that process's
//! environment (so `PATH`, `HOME` and the pod's `env` are the container's,
//! not the runtime's), on pipes or, with a TTY, on a new pseudo-terminal
//! that becomes the process's controlling terminal (`setsid --ctty`).
//!
//! Used by `ExecSync` (probes, hooks) and by streaming exec.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A program of the host's, by absolute path: the command runs with the
/// container's environment, whose `PATH` is for the container's root.
fn host_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The environment of process `pid` (`/proc/<pid>/environ`), or `None`
/// when it cannot be read.
pub fn environment(pid: i32) -> Option<Vec<(OsString, OsString)>> {
    use std::os::unix::ffi::OsStrExt;
    let raw = std::fs::read(Path::new("/proc").join(pid.to_string()).join("environ")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter_map(|kv| {
                let at = kv.iter().position(|b| *b == b'=')?;
                Some((
                    std::ffi::OsStr::from_bytes(&kv[..at]).to_os_string(),
                    std::ffi::OsStr::from_bytes(&kv[at + 1..]).to_os_string(),
                ))
            })
            .collect(),
    )
}

/// `cmd` to run inside the container whose PID 1 is `pid`; stdio is the
/// caller's to set.
pub fn command(pid: i32, cmd: &[String], tty: bool) -> tokio::process::Command {
    let nsenter = host_program("nsenter");
    let mut c = if tty {
        // A new session whose controlling terminal is its stdin (the pty).
        let mut c = tokio::process::Command::new(host_program("setsid"));
        c.args(["--ctty", "--wait"]).arg(nsenter);
        c
    } else {
        tokio::process::Command::new(nsenter)
    };
    c.args(["--target", &pid.to_string()]).args([
        "--mount", "--uts", "--ipc", "--net", "--pid", "--root", "--wd",
    ]);
    if in_own_user_namespace(pid) {
        // `hostUsers: false`: root of the container's user namespace (nsenter
        // becomes uid/gid 0 there), not the host's.
        c.arg("--user");
    }
    c.arg("--").args(cmd).kill_on_drop(true);
    if let Some(env) = environment(pid) {
        c.env_clear().envs(env);
        if tty && std::env::var_os("TERM").is_none() {
            c.env("TERM", "xterm");
        }
    }
    c
}

/// Whether process `pid` is in a user namespace other than ours.
pub fn in_own_user_namespace(pid: i32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    match (
        ino(&format!("/proc/{pid}/ns/user")),
        ino("/proc/self/ns/user"),
    ) {
        (Some(theirs), Some(ours)) => theirs != ours,
        _ => false,
    }
}

/// The exit code of a finished process, as a shell reports it
/// (128 + the signal for a killed one).
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255)
}

/// A pseudo-terminal's controlling side, readable and writable without
/// blocking a thread.
pub struct PtyMaster {
    fd: AsyncFd<OwnedFd>,
}

impl PtyMaster {
    /// A new pseudo-terminal in the devpts of the root `root` (a
    /// container's, through `/proc/<pid>/root`, so that `tty` in the
    /// container names it), else the host's: the master, and the slave for
    /// the child's stdin, stdout and stderr.
    pub fn open(root: &Path) -> std::io::Result<(PtyMaster, OwnedFd)> {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        let (master, slave) = match open_in(root) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(root = %root.display(), error = %e, "no devpts there: a host pty");
                let pty = nix::pty::openpty(None, None).map_err(std::io::Error::from)?;
                (pty.master, pty.slave)
            }
        };
        let flags = OFlag::from_bits_truncate(
            fcntl(&master, FcntlArg::F_GETFL).map_err(std::io::Error::from)?,
        );
        fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))
            .map_err(std::io::Error::from)?;
        Ok((
            PtyMaster {
                fd: super::pty_sys::register(master)?,
            },
            slave,
        ))
    }

    /// Sets the terminal's size (what `stty size` then reports).
    pub fn resize(&self, width: u16, height: u16) -> std::io::Result<()> {
        super::pty_sys::set_size(self.fd.get_ref(), width, height)
    }
}

/// A pty from `<root>/dev/ptmx` and its slave `<root>/dev/pts/<N>`.
fn open_in(root: &Path) -> std::io::Result<(OwnedFd, OwnedFd)> {
    use std::os::unix::fs::OpenOptionsExt;
    let open = |path: &Path| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
            .map(OwnedFd::from)
    };
    let master = open(&root.join("dev/ptmx"))?;
    let n = super::pty_sys::unlock(&master)?;
    let slave = open(&root.join("dev/pts").join(n.to_string()))?;
    Ok((master, slave))
}

/// A handle on a shared [`PtyMaster`] as tokio I/O, so that a session
/// moves a terminal's bytes with the same code as a pipe's. Reading ends
/// (`Ok(0)`) once the child is gone: EIO, no slave left open.
pub struct PtyIo(pub Arc<PtyMaster>);

impl AsyncRead for PtyIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            let mut ready = std::task::ready!(self.0.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match ready.try_io(|fd| {
                nix::unistd::read(fd.get_ref().as_fd(), unfilled).map_err(std::io::Error::from)
            }) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PtyIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            let mut ready = std::task::ready!(self.0.fd.poll_write_ready(cx))?;
            match ready.try_io(|fd| {
                nix::unistd::write(fd.get_ref().as_fd(), data).map_err(std::io::Error::from)
            }) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The three stdio handles of a child on the pty's slave side.
pub fn slave_stdio(slave: &OwnedFd) -> std::io::Result<(Stdio, Stdio, Stdio)> {
    Ok((
        Stdio::from(slave.try_clone()?),
        Stdio::from(slave.try_clone()?),
        Stdio::from(slave.try_clone()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_of_a_process_is_read_from_proc() {
        let env = environment(std::process::id() as i32).expect("our own environ");
        let path = std::env::var_os("PATH");
        assert_eq!(
            env.iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.clone()),
            path
        );
        assert!(environment(-1).is_none());
    }

    #[test]
    fn host_programs_resolve_to_absolute_paths() {
        assert!(host_program("sh").is_absolute());
        assert_eq!(
            host_program("no-such-program-skiff"),
            PathBuf::from("no-such-program-skiff")
        );
    }

    #[tokio::test]
    async fn a_pty_carries_both_ways_and_takes_a_size() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (master, slave) = PtyMaster::open(Path::new("/")).unwrap();
        master.resize(100, 30).unwrap();
        let mut master = PtyIo(Arc::new(master));
        let (i, o, e) = slave_stdio(&slave).unwrap();
        drop(slave);
        // `stty size` reads the size from its stdin, the pty.
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "read line; echo \"got $line\"; stty size"])
            .stdin(i)
            .stdout(o)
            .stderr(e)
            .spawn()
            .unwrap();
        master.write_all(b"hello\n").await.unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        loop {
            let n = master.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert!(child.wait().await.unwrap().success());
        let out = String::from_utf8_lossy(&out);
        // The terminal echoes input and turns \n into \r\n.
        assert!(out.contains("got hello\r\n"), "{out:?}");
        assert!(out.contains("30 100"), "{out:?}");
    }
}
