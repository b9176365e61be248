//! The calls a pseudo-terminal needs that only come as `unsafe`: the pty
//! ioctls (nix makes them with macros) and registering the master with
//! tokio's reactor.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(tiocsptlck, libc::TIOCSPTLCK, libc::c_int);
nix::ioctl_read_bad!(tiocgptn, libc::TIOCGPTN, libc::c_uint);
nix::ioctl_write_int_bad!(tiocsctty, libc::TIOCSCTTY);

/// Unlocks the slave of the pty master `fd` and returns its number (the
/// `N` of `/dev/pts/N` in the master's devpts instance).
pub fn unlock(fd: &OwnedFd) -> std::io::Result<u32> {
    let unlocked: libc::c_int = 0;
    let mut number: libc::c_uint = 0;
    // SAFETY: `fd` is open for both calls (borrowed); TIOCSPTLCK reads the
    // int `unlocked` points at, TIOCGPTN writes one uint into `number`,
    // both alive across the calls.
    unsafe {
        tiocsptlck(fd.as_raw_fd(), &unlocked).map_err(std::io::Error::from)?;
        tiocgptn(fd.as_raw_fd(), &mut number).map_err(std::io::Error::from)?;
    }
    Ok(number)
}

/// Sets the size of the terminal `fd` (a pty master).
pub fn set_size(fd: &OwnedFd, width: u16, height: u16) -> std::io::Result<()> {
    let size = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `fd` is open for the whole call (borrowed), and `size` is a
    // valid winsize that outlives it; TIOCSWINSZ only reads it.
    unsafe { tiocswinsz(fd.as_raw_fd(), &size) }
        .map(drop)
        .map_err(std::io::Error::from)
}

/// Makes the terminal on stdin the controlling terminal of the calling
/// process, which must lead a session that has none (a container's init
/// with a TTY, after `setsid`).
pub fn control_stdin() -> std::io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal it from
    // another session) and no memory; fd 0 is only named, not owned.
    unsafe { tiocsctty(0, 0) }
        .map(drop)
        .map_err(std::io::Error::from)
}

/// `fd` (non-blocking) watched by the reactor of the current runtime.
pub fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd takes the OwnedFd and owns it until it is
    // dropped, so the descriptor stays open and means the same file for the
    // registration's whole life; OwnedFd::as_raw_fd always returns it.
    unsafe { AsyncFd::register(fd) }.map_err(std::io::Error::from)
}
