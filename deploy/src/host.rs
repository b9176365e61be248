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

/// The Services' range (the API server's default): with --nodes the host
/// sends it to the first node, whose proxy translates it.
pub const SERVICE_RANGE: &str = "10.96.0.0/12";

/// The routing protocol number of the host routes `skiff up --nodes` makes
/// (as the proxy's host-gw routes: `ip route show proto 115`).
const PROTO: &str = "static";

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The CNI network list: a bridge, the default route through it, and
/// host-local addresses from the node's pod CIDR (the `ipRanges` capability; no `ranges` of its own,
/// host-local would add them to it).
pub fn conflist(s: &Settings, ipam: &std::path::Path) -> serde_json::Value {
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
             "ipam": {"type": "host-local", "dataDir": ipam.display().to_string()}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ]
    })
}

/// The fence: pod traffic in and out only over the pods' bridge. (No
/// `ip daddr <pods> oifname != <bridge>` in output: a ClusterIP's packet
/// from this machine is translated to a pod after its route was chosen,
/// and nftables still sees the first route's interface there.) With
/// --nodes the pods are behind the nodes' bridge, and the nodes' own
/// addresses and the Service range never leave through the host either.
pub fn fence(s: &Settings) -> String {
    if s.multi() {
        let (t, b, net, nodes) = (
            s.fence_table(),
            s.nodes_bridge(),
            &s.pod_subnet,
            &s.node_subnet,
        );
        return format!(
            "table inet {t} {{
  chain forward {{
    type filter hook forward priority -10; policy accept;
    ip saddr {{ {net}, {nodes} }} oifname != \"{b}\" drop
    ip daddr {{ {net}, {nodes} }} iifname != \"{b}\" drop
    ip daddr {SERVICE_RANGE} drop
  }}
  chain output {{
    type filter hook output priority -10; policy accept;
    ip saddr {net} oifname != \"{b}\" drop
  }}
}}
"
        );
    }
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
    if s.multi() {
        return prepare_nodes(s, l);
    }
    build_images(&l.kubelet_root().join("images"), l)?;
    write_cni(s, &l.cni_dir())?;
    // A server's and its workers' pods talk across machines: no fence (the
    // lab's network is the boundary; see deploy/LAB.md).
    if s.server || s.join.is_some() {
        return Ok(());
    }
    let _ = run("nft", &["delete", "table", "inet", &s.fence_table()], None);
    run("nft", &["-f", "-"], Some(&fence(s)))
}

/// The demo images, built once into `images`.
fn build_images(images: &std::path::Path, l: &Layout) -> Result<()> {
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
    Ok(())
}

fn write_cni(s: &Settings, dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(Error::io("the CNI config dir"))?;
    std::fs::write(
        dir.join("10-skiff.conflist"),
        conflist(s, &dir.join("ipam")).to_string(),
    )
    .map_err(Error::io("the CNI config"))
}

/// `ip` with `args`, its stdout (for the checks that read).
fn ip_out(args: &[&str]) -> Option<String> {
    let out = Command::new("ip").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A --nodes cluster's network: the host bridge with the API server's
/// address; per node a network namespace, a veth pair (`eth0` inside) with
/// the node's address, forwarding on, and a route for the Service range
/// through the host (so the node's own connections to a ClusterIP find a
/// route; its proxy translates them before they leave). No default route:
/// nothing a node sends can leave the node network. On the host: the
/// cluster's pod range blackholed (the nodes' blocks get routes once
/// assigned, [`route_pods`]) and the Service range sent to node1's proxy.
/// Each step is idempotent: a second `up` finds it all in place.
fn prepare_nodes(s: &Settings, l: &Layout) -> Result<()> {
    let shared = l.data.join("images");
    build_images(&shared, l)?;
    let br = s.nodes_bridge();
    let gw = format!("{}/{}", s.gateway(), s.node_subnet_len());
    if ip_out(&["link", "show", &br]).is_none() {
        run("ip", &["link", "add", &br, "type", "bridge"], None)?;
    }
    run("ip", &["addr", "replace", &gw, "dev", &br], None)?;
    run("ip", &["link", "set", &br, "up"], None)?;
    for n in s.sim_nodes() {
        let dir = l.node_dir(&n.name);
        // Each kubelet imports the demo images from its own images dir:
        // hard links to the one built copy.
        let images = dir.join("kubelet").join("images");
        std::fs::create_dir_all(&images).map_err(Error::io("a node's images dir"))?;
        for e in std::fs::read_dir(&shared)
            .map_err(Error::io("the images"))?
            .flatten()
        {
            let to = images.join(e.file_name());
            if !to.exists() {
                std::fs::hard_link(e.path(), &to)
                    .or_else(|_| std::fs::copy(e.path(), &to).map(drop))
                    .map_err(Error::io(format!("image {}", to.display())))?;
            }
        }
        write_cni(s, &dir.join("cni"))?;
        if !std::path::Path::new("/run/netns").join(&n.netns).exists() {
            run("ip", &["netns", "add", &n.netns], None)?;
        }
        if ip_out(&["link", "show", &n.veth]).is_none() {
            run(
                "ip",
                &[
                    "link", "add", &n.veth, "type", "veth", "peer", "name", "eth0", "netns",
                    &n.netns,
                ],
                None,
            )?;
        }
        run("ip", &["link", "set", &n.veth, "master", &br], None)?;
        // Up unless `skiff node stop` or `partition` holds it down.
        if !l.node_stopped(&n.name).exists() && !l.node_partitioned(&n.name).exists() {
            run("ip", &["link", "set", &n.veth, "up"], None)?;
        }
        let addr = format!("{}/{}", n.ip, s.node_subnet_len());
        for args in [
            vec!["-n", &n.netns, "link", "set", "lo", "up"],
            vec!["-n", &n.netns, "addr", "replace", &addr, "dev", "eth0"],
            vec!["-n", &n.netns, "link", "set", "eth0", "up"],
        ] {
            run("ip", &args, None)?;
        }
        let gateway = s.gateway().to_string();
        run(
            "ip",
            &[
                "-n",
                &n.netns,
                "route",
                "replace",
                SERVICE_RANGE,
                "via",
                &gateway,
                "proto",
                PROTO,
            ],
            None,
        )?;
        run(
            "ip",
            &[
                "netns",
                "exec",
                &n.netns,
                "sh",
                "-c",
                "echo 1 > /proc/sys/net/ipv4/ip_forward",
            ],
            None,
        )?;
    }
    let first = s.sim_nodes()[0].ip.to_string();
    for args in [
        vec![
            "route",
            "replace",
            "blackhole",
            &s.pod_subnet,
            "proto",
            PROTO,
        ],
        vec![
            "route",
            "replace",
            SERVICE_RANGE,
            "via",
            &first,
            "proto",
            PROTO,
        ],
    ] {
        run("ip", &args, None)?;
    }
    let _ = run("nft", &["delete", "table", "inet", &s.fence_table()], None);
    run("nft", &["-f", "-"], Some(&fence(s)))
}

/// With --nodes: the host routes each node's pod CIDR to the node, so
/// `curl <pod IP>` works from this machine as on a node.
pub fn route_pods(routes: &[(String, String)]) -> Result<()> {
    for (cidr, via) in routes {
        run(
            "ip",
            &["route", "replace", cidr, "via", via, "proto", PROTO],
            None,
        )?;
    }
    Ok(())
}

/// The bridge and the fence (the pods must be gone first); with --nodes
/// the nodes' namespaces (their veths, nftables and routes go with them),
/// the host bridge and the host routes.
pub fn remove(s: &Settings) -> Vec<String> {
    let mut done = Vec::new();
    for n in s.sim_nodes() {
        if run("ip", &["netns", "del", &n.netns], None).is_ok() {
            done.push(format!("network namespace {}", n.netns));
        }
    }
    if s.multi() {
        if run("ip", &["link", "del", &s.nodes_bridge()], None).is_ok() {
            done.push(format!("bridge {}", s.nodes_bridge()));
        }
        for cidr in [s.pod_subnet.as_str(), SERVICE_RANGE] {
            let _ = run("ip", &["route", "del", cidr, "proto", PROTO], None);
        }
    }
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
            pod_subnet: "10.250.3.0/24".into(),
            name: "lab".into(),
            ..Settings::default()
        };
        let l = Layout::new(std::path::Path::new("/d")).unwrap();
        let c = conflist(&s, &l.cni_dir().join("ipam"));
        assert_eq!(c["plugins"][0]["bridge"], "lab0");
        assert_eq!(c["plugins"][0]["capabilities"]["ipRanges"], true);
        assert!(c["plugins"][0]["ipam"].get("ranges").is_none());
        let f = fence(&s);
        assert!(f.starts_with("table inet lab_up {"));
        assert!(f.contains("ip saddr 10.250.3.0/24 oifname != \"lab0\" drop"));
        assert!(f.contains("ip daddr 10.250.3.0/24 iifname != \"lab0\" drop"));
        // --nodes: pods and nodes only over the nodes' bridge, Services never forwarded.
        let f = fence(&Settings {
            nodes: 3,
            pod_subnet: "10.250.0.0/16".into(),
            ..s
        });
        assert!(
            f.contains("ip saddr { 10.250.0.0/16, 10.245.0.0/24 } oifname != \"labnodes\" drop")
        );
        assert!(f.contains("ip daddr 10.96.0.0/12 drop"));
    }
}
