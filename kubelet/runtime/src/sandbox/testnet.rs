//! For tests and benchmarks that create real pod networks: a bridge and a
//! subnet unique to the run, a CNI list for them (the standard chain:
//! `bridge` with `host-local` IPAM, `portmap`, `loopback`), and a guard that
//! fences the subnet in with nftables and removes the table, the bridge and
//! the files at the end — also when the test panics.
//!
//! The fence (table `inet skiff_test_<pid>_<tag>`) goes in *before* anything
//! is created. `ip route add blackhole` would not do: the bridge's connected
//! route is more specific and wins. Instead:
//! - forward: nothing to or from the subnet is routed out of any interface
//!   but the test bridge, and nothing enters the subnet from elsewhere (so
//!   `isGateway` cannot turn the host into the pods' router to the world);
//! - output: the host sends to the subnet, or from a subnet address, only
//!   over the test bridge (or loopback).
//!
//! The pods get no default route either (host-local is given no `routes`):
//! they reach their subnet and nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestNet {
    pub bridge: String,
    /// `10.244.N.0/24`, N in 128..=255, not routed on this host when chosen.
    pub subnet: String,
    /// The bridge's address (`isGateway`): `10.244.N.1`.
    pub gateway: String,
    pub table: String,
    pub conf_dir: PathBuf,
    /// host-local's `dataDir`: one file per allocated IP.
    pub ipam_dir: PathBuf,
    pub dir: PathBuf,
}

fn run(cmd: &str, args: &[&str]) -> std::io::Result<String> {
    let out = Command::new(cmd).args(args).output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(std::io::Error::other(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// A third octet for 10.244.N.0/24 that no route on the host uses yet,
/// starting from one derived from the pid and tag (so concurrent runs start
/// apart).
fn free_octet(pid: u32, tag: u32) -> std::io::Result<u32> {
    let routes = run("ip", &["-4", "route", "show", "table", "all"])?;
    let start = pid.wrapping_mul(31).wrapping_add(tag.wrapping_mul(7)) % 128;
    (0..128)
        .map(|i| 128 + (start + i) % 128)
        .find(|n| !routes.contains(&format!("10.244.{n}.")))
        .ok_or_else(|| std::io::Error::other("no free /24 in 10.244.128.0/17"))
}

impl TestNet {
    /// A network for run `tag` (distinct per process and call) under `dir`.
    pub fn new(dir: &Path, tag: u32) -> std::io::Result<TestNet> {
        let pid = std::process::id();
        let n = free_octet(pid, tag)?;
        let net = TestNet {
            bridge: format!("skb{:x}", (pid << 4) | (tag & 0xf)),
            subnet: format!("10.244.{n}.0/24"),
            gateway: format!("10.244.{n}.1"),
            table: format!("skiff_test_{pid}_{tag}"),
            conf_dir: dir.join("cni-conf"),
            ipam_dir: dir.join("ipam"),
            dir: dir.to_path_buf(),
        };
        // The fence first: nothing from the subnet leaves but over the bridge.
        let rules = format!(
            "table inet {t} {{\n\
               chain forward {{ type filter hook forward priority -10; policy accept;\n\
                 ip saddr {s} oifname != \"{b}\" drop\n\
                 ip daddr {s} oifname != \"{b}\" drop\n\
                 ip daddr {s} iifname != \"{b}\" drop\n\
               }}\n\
               chain output {{ type filter hook output priority -10; policy accept;\n\
                 oifname \"lo\" accept\n\
                 ip daddr {s} oifname != \"{b}\" drop\n\
                 ip saddr {s} oifname != \"{b}\" drop\n\
               }}\n\
             }}\n",
            t = net.table,
            s = net.subnet,
            b = net.bridge
        );
        let rules_file = dir.join("fence.nft");
        std::fs::write(&rules_file, rules)?;
        run("nft", &["-f", &rules_file.display().to_string()])?;
        // From here on, Drop removes the table even if what follows fails.
        std::fs::create_dir_all(&net.conf_dir)?;
        let list = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "skiff-test",
            "plugins": [
                {
                    "type": "bridge", "bridge": net.bridge, "isGateway": true, "ipMasq": false,
                    "ipam": {"type": "host-local", "ranges": [[{"subnet": net.subnet}]],
                             "dataDir": net.ipam_dir.display().to_string()}
                },
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "loopback"}
            ]
        });
        std::fs::write(
            net.conf_dir.join("10-skiff-test.conflist"),
            list.to_string(),
        )?;
        Ok(net)
    }

    /// Rewrites the network so host-local takes its range from the node's
    /// pod CIDR (the `ipRanges` capability) instead of the test subnet, as
    /// a node's network is configured in a cluster (host-local appends
    /// runtime ranges to configured ones, so the configured one goes).
    pub fn take_ranges_from_pod_cidr(&self) -> std::io::Result<()> {
        let path = self.conf_dir.join("10-skiff-test.conflist");
        let mut list: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .map_err(std::io::Error::other)?;
        let bridge = &mut list["plugins"][0];
        bridge["capabilities"] = serde_json::json!({"ipRanges": true});
        if let Some(ipam) = bridge["ipam"].as_object_mut() {
            ipam.remove("ranges");
        }
        std::fs::write(&path, list.to_string())
    }

    /// IPs host-local holds right now (its dataDir has one file per IP).
    pub fn allocated_ips(&self) -> Vec<String> {
        let mut ips: Vec<String> = std::fs::read_dir(self.ipam_dir.join("skiff-test"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("10."))
            .collect();
        ips.sort();
        ips
    }

    /// Whether the fence table is in place.
    pub fn fenced(&self) -> bool {
        run("nft", &["list", "table", "inet", &self.table]).is_ok()
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &self.bridge]);
        let _ = run("nft", &["delete", "table", "inet", &self.table]);
    }
}
