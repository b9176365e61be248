//! The cluster DNS address on the node: pods send their queries to the
//! `kube-dns` Service IP (10.96.0.10), which the proxy makes a local
//! address of this node and serves there. Every node does the same, so
//! each pod's queries stay on its node.
//!
//! The address goes on `lo` by default (`--dns-interface lo`): that works
//! on every kernel, including ones without the `dummy` module (containers,
//! this CI's machine); any other name is a dummy interface the proxy makes
//! and deletes.
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

/// Puts an address on an interface, and later takes it off.
pub trait Links: Send + Sync + 'static {
    /// `ip`/32 on `name` (`lo`, or a dummy interface made if missing).
    fn add(&self, name: &str, ip: IpAddr) -> Result<(), LinkError>;
    /// Takes `ip` off `name` (a dummy interface is deleted); missing is fine.
    fn remove(&self, name: &str, ip: IpAddr) -> Result<(), LinkError>;
}

fn host_cidr(address: IpAddr) -> String {
    let prefix = if address.is_ipv4() { 32 } else { 128 };
    format!("{address}/{prefix}")
}

/// The real thing, with iproute2's `ip`.
#[derive(Debug, Default)]
pub struct IpLink;

/// Runs `ip` with `args`; its stdout, or its stderr as the error.
pub(crate) fn ip(args: &[&str]) -> Result<String, LinkError> {
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
        if name != "lo" && ip(&["link", "show", "dev", name]).is_err() {
            ip(&["link", "add", name, "type", "dummy"])?;
        }
        // `replace`: already there is fine (a restarted proxy).
        ip(&["addr", "replace", &host_cidr(address), "dev", name])?;
        ip(&["link", "set", name, "up"])?;
        Ok(())
    }

    fn remove(&self, name: &str, address: IpAddr) -> Result<(), LinkError> {
        if ip(&["link", "show", "dev", name]).is_err() {
            return Ok(());
        }
        if name == "lo" {
            let shown = ip(&["-o", "addr", "show", "dev", "lo"])?;
            if shown.contains(&format!(" {} ", host_cidr(address))) {
                ip(&["addr", "del", &host_cidr(address), "dev", "lo"])?;
            }
            Ok(())
        } else {
            ip(&["link", "del", name]).map(drop)
        }
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

    fn remove(&self, name: &str, ip: IpAddr) -> Result<(), LinkError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("remove {name} {ip}"));
        Ok(())
    }
}
