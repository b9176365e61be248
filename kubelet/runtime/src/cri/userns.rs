//! CRI user namespaces (`NamespaceOption.userns_options`, what the kubelet
//! sends for a pod with `hostUsers: false`) → the runtime's
//! [`Mappings`], and what the pod's sandbox needs for one.
//!
//! What differs from upstream runtimes: containerd makes the pod's network
//! namespace inside the pod's user namespace (one per pod). Here the
//! sandbox's network, UTS and IPC namespaces belong to the host's user
//! namespace (CNI and the sandbox code stay as they are), and each
//! container gets its own user namespace with the pod's mappings. Root in
//! the container is therefore not root over the pod's network: it cannot
//! change addresses or routes (safer), and it could not bind a port below
//! 1024 — so the sandbox's `net.ipv4.ip_unprivileged_port_start` is set to
//! 0 ([`allow_low_ports`], a per-network-namespace sysctl Kubernetes counts
//! as safe), which gives back what root in an owned namespace has. `/sys`
//! is then a read-only bind of the host's, and `/dev/mqueue` is left out
//! (see [`crate::linux::rootfs`]).

use std::path::Path;

use skiff_proto::cri;
use tonic::Status;

use crate::linux::userns::{IdMapping, Mappings};

/// The mappings asked for, if any: `None` for no options or mode `NODE`
/// (the host's user namespace); mode `POD` needs uid and gid mappings.
pub fn mappings(options: Option<&cri::NamespaceOption>) -> Result<Option<Mappings>, Status> {
    let Some(u) = options.and_then(|o| o.userns_options.as_ref()) else {
        return Ok(None);
    };
    let maps = |ms: &[cri::IdMapping]| -> Vec<IdMapping> {
        ms.iter()
            .map(|m| IdMapping {
                container_id: m.container_id,
                host_id: m.host_id,
                size: m.length,
            })
            .collect()
    };
    match cri::NamespaceMode::try_from(u.mode) {
        Ok(cri::NamespaceMode::Node) => Ok(None),
        Ok(cri::NamespaceMode::Pod) => {
            let m = Mappings {
                uids: maps(&u.uids),
                gids: maps(&u.gids),
            };
            for (what, ms) in [("uid", &m.uids), ("gid", &m.gids)] {
                crate::linux::userns::validate(ms).map_err(|e| {
                    Status::invalid_argument(format!("user namespace {what} mappings: {e}"))
                })?;
            }
            if m.host_root().is_none() {
                return Err(Status::invalid_argument(
                    "user namespace mappings must map root (0) inside",
                ));
            }
            Ok(Some(m))
        }
        _ => Err(Status::invalid_argument(
            "user namespace mode must be POD or NODE",
        )),
    }
}

/// Lets every user of the network namespace pinned at `netns` bind ports
/// below 1024 (see the module doc). A thread of its own enters the
/// namespace: `/proc/sys/net` is the opener's network namespace's.
pub fn allow_low_ports(netns: &Path) -> std::io::Result<()> {
    let netns = std::fs::File::open(netns)?;
    std::thread::spawn(move || -> std::io::Result<()> {
        nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)?;
        std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")
    })
    .join()
    .map_err(|_| std::io::Error::other("the sysctl thread panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(mode: cri::NamespaceMode, uids: &[(u32, u32, u32)]) -> cri::NamespaceOption {
        let m = |v: &[(u32, u32, u32)]| {
            v.iter()
                .map(|&(container_id, host_id, length)| cri::IdMapping {
                    host_id,
                    container_id,
                    length,
                })
                .collect()
        };
        cri::NamespaceOption {
            userns_options: Some(cri::UserNamespace {
                mode: mode as i32,
                uids: m(uids),
                gids: m(uids),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pod_mode_gives_mappings_node_mode_and_none_give_none() {
        let pod = options(cri::NamespaceMode::Pod, &[(0, 131072, 65536)]);
        assert_eq!(mappings(Some(&pod)).unwrap(), Some(Mappings::pod(131072)));
        let node = options(cri::NamespaceMode::Node, &[]);
        assert_eq!(mappings(Some(&node)).unwrap(), None);
        assert_eq!(mappings(Some(&Default::default())).unwrap(), None);
        assert_eq!(mappings(None).unwrap(), None);
    }

    #[test]
    fn bad_requests_are_refused() {
        for bad in [
            options(cri::NamespaceMode::Pod, &[]),
            options(cri::NamespaceMode::Pod, &[(0, 65536, 0)]),
            // Root unmapped: the container could not even be set up.
            options(cri::NamespaceMode::Pod, &[(1, 65536, 65535)]),
            options(cri::NamespaceMode::Container, &[(0, 65536, 65536)]),
        ] {
            let e = mappings(Some(&bad)).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad:?}");
        }
    }
}
