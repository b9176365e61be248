//! The cluster DNS address on the node: pods send their queries to the
//! `kube-dns` Service IP (10.96.0.10), which the proxy makes a local
//! address of this node by putting it on a dummy interface of its own
//! (`--dns-interface`, default `skiff-dns`) and serves there. Every node
//! does the same, so each pod's queries stay on its node.
//!
//! Behind a trait: [`IpLink`] runs `ip`; [`RecordingLinks`] records.

use std::net::IpAddr;
use std::process::Command;
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
#[error("ip {args}: {message}")]
pub struct LinkError {
    pub args: String,
    pub message: String,
}

/// Puts an address on, and later removes, a dummy interface.
pub trait Links: Send + Sync + 'static {
    /// Creates dummy `name` (if missing), up, with `ip`/32 on it.
    fn add(&self, name: &str, ip: IpAddr) -> Result<(), LinkError>;
    /// Deletes `name` (and with it the address); missing is fine.
    fn remove(&self, name: &str) -> Result<(), LinkError>;
}

/// The real thing, with iproute2's `ip`.
#[derive(Debug, Default)]
pub struct IpLink;

fn ip(args: &[&str]) -> Result<String, LinkError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| LinkError {
            args: args.join(" "),
            message: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(LinkError {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl Links for IpLink {
    fn add(&self, name: &str, address: IpAddr) -> Result<(), LinkError> {
        if ip(&["link", "show", "dev", name]).is_err() {
            ip(&["link", "add", name, "type", "dummy"])?;
        }
        let prefix = if address.is_ipv4() { 32 } else { 128 };
        let cidr = format!("{address}/{prefix}");
        // `replace`: already there is fine (a restarted proxy).
        ip(&["addr", "replace", &cidr, "dev", name])?;
        ip(&["link", "set", name, "up"])?;
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<(), LinkError> {
        if ip(&["link", "show", "dev", name]).is_ok() {
            ip(&["link", "del", name])?;
        }
        Ok(())
    }
}

/// Records calls (tests).
#[derive(Debug, Default)]
pub struct RecordingLinks {
    pub calls: Mutex<Vec<String>>,
}

impl Links for RecordingLinks {
    fn add(&self, name: &str, ip: IpAddr) -> Result<(), LinkError> {
        self.calls.lock().unwrap().push(format!("add {name} {ip}"));
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<(), LinkError> {
        self.calls.lock().unwrap().push(format!("remove {name}"));
        Ok(())
    }
}
