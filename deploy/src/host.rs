//! The node's host set-up, as root: the demo images (built from
//! busybox-static: no registry is reached), the CNI bridge network whose
//! addresses come from the node's pod CIDR, and an nftables table that
//! keeps pod packets on this machine. Undone by [`remove`].

use std::io::Write;
use std::process::{Command, Stdio};

use crate::cluster::{Layout, Settings};
use crate::{Error, Result};

/// The image build script, carried in the binary so `skiff` needs no
/// checkout of the repository.
const BUILD_IMAGES: &str = include_str!("../../kubelet/images/build.sh");

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The CNI network list: a bridge, the default route through it, and
/// host-local addresses from the node's pod CIDR (the `ipRanges` capability; no `ranges` of its own,
/// host-local would add them to it).
pub fn conflist(s: &Settings, l: &Layout) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": s.name,
        "plugins": [
            // isDefaultGateway: pods route everything through the node, where
            // ClusterIPs are translated and the cluster DNS answers (the
            // fence keeps anything else from leaving). hairpinMode: a pod
            // that reaches its own Service may get itself back.
            {"type": "bridge", "bridge": s.bridge(), "isGateway": true, "isDefaultGateway": true,
             "hairpinMode": true, "ipMasq": false,
             "capabilities": {"ipRanges": true},
             "ipam": {"type": "host-local", "dataDir": l.cni_dir().join("ipam").display().to_string()}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ]
    })
}

/// The fence: pod traffic in and out only over the pods' bridge.
pub fn fence(s: &Settings) -> String {
    let (t, b, net) = (s.fence_table(), s.bridge(), &s.pod_subnet);
    format!(
        "table inet {t} {{
  chain forward {{
    type filter hook forward priority -10; policy accept;
    ip saddr {net} oifname != \"{b}\" drop
    ip daddr {net} iifname != \"{b}\" drop
  }}
  chain output {{
    type filter hook output priority -10; policy accept;
    ip saddr {net} oifname != \"{b}\" drop
  }}
}}
"
    )
}

fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<()> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::io(format!("run {program}")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(Error::io(format!("write to {program}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(Error::io(format!("run {program}")))?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Images, network and fence; the images only once.
pub fn prepare(s: &Settings, l: &Layout) -> Result<()> {
    let images = l.kubelet_root().join("images");
    if !images.join("skiff-httpd.tar").exists() {
        let script = l.data.join("build-images.sh");
        std::fs::write(&script, BUILD_IMAGES).map_err(Error::io("write build-images.sh"))?;
        run(
            "bash",
            &[&script.display().to_string(), &images.display().to_string()],
            None,
        )
        .map_err(|e| Error::Failed(format!("building the demo images: {e}")))?;
    }
    std::fs::create_dir_all(l.cni_dir()).map_err(Error::io("the CNI config dir"))?;
    std::fs::write(
        l.cni_dir().join("10-skiff.conflist"),
        conflist(s, l).to_string(),
    )
    .map_err(Error::io("the CNI config"))?;
    let _ = run("nft", &["delete", "table", "inet", &s.fence_table()], None);
    run("nft", &["-f", "-"], Some(&fence(s)))
}

/// The bridge and the fence (the pods must be gone first).
pub fn remove(s: &Settings) -> Vec<String> {
    let mut done = Vec::new();
    if run("ip", &["link", "del", &s.bridge()], None).is_ok() {
        done.push(format!("bridge {}", s.bridge()));
    }
    if run("nft", &["delete", "table", "inet", &s.fence_table()], None).is_ok() {
        done.push(format!("nftables table inet {}", s.fence_table()));
    }
    // The proxy removes its own on a clean stop; not after a kill.
    let proxy = format!("{}_proxy", s.name);
    if run("nft", &["delete", "table", "ip", &proxy], None).is_ok() {
        done.push(format!("nftables table ip {proxy}"));
    }
    // Likewise the cluster DNS address the proxy puts on lo.
    let dns = format!("{}/32", crate::programs::CLUSTER_DNS);
    let on_lo = Command::new("ip")
        .args(["-o", "addr", "show", "dev", "lo"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {dns} ")));
    if on_lo && run("ip", &["addr", "del", &dns, "dev", "lo"], None).is_ok() {
        done.push(format!("address {dns} on lo"));
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_and_fence_follow_the_settings() {
        let s = Settings {
            port: 6443,
            node_ip: "127.0.0.1".into(),
            pod_subnet: "10.250.3.0/24".into(),
            name: "lab".into(),
            etcd_servers: None,
            kubelet_port: 10250,
            demo: false,
        };
        let l = Layout::new(std::path::Path::new("/d")).unwrap();
        let c = conflist(&s, &l);
        assert_eq!(c["plugins"][0]["bridge"], "lab0");
        assert_eq!(c["plugins"][0]["capabilities"]["ipRanges"], true);
        assert!(c["plugins"][0]["ipam"].get("ranges").is_none());
        let f = fence(&s);
        assert!(f.starts_with("table inet lab_up {"));
        assert!(f.contains("ip saddr 10.250.3.0/24 oifname != \"lab0\" drop"));
        assert!(f.contains("ip daddr 10.250.3.0/24 iifname != \"lab0\" drop"));
    }
}
