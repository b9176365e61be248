//! skiff-runtime: the kubelet's embedded container runtime.
//!
//! Where to start:
//! - [`image`]: image references, the content-addressed blob store, imports
//!   (OCI layout, `docker save`), registry pulls, and layers unpacked once
//!   into overlayfs-ready directories.
//! - [`sandbox`]: pod sandboxes — net/UTS/IPC namespaces pinned by bind
//!   mounts (no pause process), the pod network through [`cni`], and the
//!   pod's `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
//! - [`container`]: the container engine — an OCI `config.json` per
//!   container and a runc-like executor for it.
//! - [`cri`]: the CRI served on a unix socket (ImageService and RuntimeService).
//! - [`stream`]: the streaming server behind CRI `Exec` (`kubectl exec`).
//!
//! Every host side effect (mounts, namespaces, cgroups, CNI) sits behind a
//! trait with a recording fake, so most tests run unprivileged; the real
//! implementations are tested as root.
pub mod cleanup;
pub mod cli;
pub mod cni;
pub mod container;
pub mod cri;
pub mod image;
pub mod linux;
pub mod oci;
pub mod sandbox;
pub mod stream;
