//! Bringing `lo` up in a fresh network namespace, with one rtnetlink message
//! rather than running `ip link set lo up`: no process to fork and exec per
//! sandbox (a few milliseconds each), and no dependency on iproute2.
//!
//! The message is `RTM_NEWLINK` for interface index 1 — the loopback device
//! is always the first device of a network namespace (the kernel's
//! `LOOPBACK_IFINDEX`) — with `IFF_UP` set in both the flags and the change
//! mask, and `NLM_F_ACK` so the kernel answers with an error code (0: done).
//! A netlink socket talks to the namespace of the thread that opened it, so
//! this must run on the thread that unshared the namespace.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

const RTM_NEWLINK: u16 = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const IFF_UP: u32 = 1;
const LOOPBACK_IFINDEX: i32 = 1;

/// `struct nlmsghdr` (16 bytes) + `struct ifinfomsg` (16 bytes), native endian.
fn set_lo_up_message(seq: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(32);
    m.extend_from_slice(&32u32.to_ne_bytes()); // nlmsg_len
    m.extend_from_slice(&RTM_NEWLINK.to_ne_bytes()); // nlmsg_type
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes()); // nlmsg_flags
    m.extend_from_slice(&seq.to_ne_bytes()); // nlmsg_seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it
    m.push(libc::AF_UNSPEC as u8); // ifi_family
    m.push(0); // padding
    m.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    m.extend_from_slice(&LOOPBACK_IFINDEX.to_ne_bytes()); // ifi_index
    m.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_flags
    m.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_change
    m
}

/// The kernel's answer: an `NLMSG_ERROR` whose error is 0 (an ACK) or a
/// negative errno.
fn read_ack(reply: &[u8], seq: u32) -> std::io::Result<()> {
    let bad = |why: &str| std::io::Error::other(format!("netlink: {why}"));
    if reply.len() < 20 {
        return Err(bad("short reply"));
    }
    let u16_at = |i: usize| u16::from_ne_bytes([reply[i], reply[i + 1]]);
    let u32_at =
        |i: usize| u32::from_ne_bytes([reply[i], reply[i + 1], reply[i + 2], reply[i + 3]]);
    if u16_at(4) != NLMSG_ERROR {
        return Err(bad("reply is not an ACK"));
    }
    if u32_at(8) != seq {
        return Err(bad("reply to another request"));
    }
    match u32_at(16) as i32 {
        0 => Ok(()),
        e => Err(std::io::Error::from_raw_os_error(-e)),
    }
}

/// Sets `lo` up in the calling thread's network namespace.
pub fn set_lo_up() -> std::io::Result<()> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    let seq = 1;
    sendto(
        fd.as_raw_fd(),
        &set_lo_up_message(seq),
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut reply = [0u8; 1024];
    let n = loop {
        match recv(fd.as_raw_fd(), &mut reply, MsgFlags::empty()) {
            Err(Errno::EINTR) => continue,
            other => break other?,
        }
    };
    read_ack(&reply[..n], seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_and_its_answers() {
        let m = set_lo_up_message(7);
        assert_eq!(m.len(), 32);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 32);
        assert_eq!(i32::from_ne_bytes(m[20..24].try_into().unwrap()), 1);
        let reply = |err: i32, seq: u32| {
            let mut r = Vec::new();
            r.extend_from_slice(&36u32.to_ne_bytes());
            r.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
            r.extend_from_slice(&0u16.to_ne_bytes());
            r.extend_from_slice(&seq.to_ne_bytes());
            r.extend_from_slice(&0u32.to_ne_bytes());
            r.extend_from_slice(&err.to_ne_bytes());
            r
        };
        assert!(read_ack(&reply(0, 7), 7).is_ok());
        let e = read_ack(&reply(-libc::EPERM, 7), 7).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        assert!(read_ack(&reply(0, 8), 7).is_err());
        assert!(read_ack(&[0; 4], 7).is_err());
    }
}
