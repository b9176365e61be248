//! For tests and benchmarks that create real pod networks: a bridge and a
//! subnet unique to the run, a CNI list for them, and a guard that fences the
//! subnet in with nftables (no packet from it leaves except over the test's
//! own bridge) and removes the table, the bridge and the files at the end.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TestNet {
    pub bridge: String,
    pub subnet: String,
    pub table: String,
    pub conf_dir: PathBuf,
    pub dir: PathBuf,
}

fn run(cmd: &str, args: &[&str]) -> std::io::Result<()> {
    let out = Command::new(cmd).args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl TestNet {
    /// A network for run `tag` (distinct per process and call) under `dir`.
    pub fn new(dir: &Path, tag: u32) -> std::io::Result<TestNet> {
        let pid = std::process::id();
        let n = (pid.wrapping_mul(31).wrapping_add(tag)) % 100;
        let net = TestNet {
            bridge: format!("skb{:x}", (pid << 4) | (tag & 0xf)),
            subnet: format!("10.244.{}.0/24", 128 + n),
            table: format!("skiff_test_{pid}_{tag}"),
            conf_dir: dir.join("cni-conf"),
            dir: dir.to_path_buf(),
        };
        // The fence first: nothing from the subnet leaves but over the bridge.
        let rules = format!(
            "table inet {t} {{\n\
               chain forward {{ type filter hook forward priority -10; policy accept;\n\
                 ip saddr {s} oifname != \"{b}\" drop\n\
                 ip daddr {s} iifname != \"{b}\" drop\n\
               }}\n\
               chain output {{ type filter hook output priority -10; policy accept;\n\
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
        std::fs::create_dir_all(&net.conf_dir)?;
        let list = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "skiff-test",
            "plugins": [{
                "type": "bridge", "bridge": net.bridge, "isGateway": true, "ipMasq": false,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": net.subnet}]],
                         "dataDir": dir.join("ipam").display().to_string()}
            }]
        });
        std::fs::write(
            net.conf_dir.join("10-skiff-test.conflist"),
            list.to_string(),
        )?;
        Ok(net)
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &self.bridge]);
        let _ = run("nft", &["delete", "table", "inet", &self.table]);
    }
}
