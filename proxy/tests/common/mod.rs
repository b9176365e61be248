//! Helpers of the root tests with real backends in network namespaces
//! (`services.rs`, `userspace.rs`): the host-side objects of a run, named
//! by its id and removed on drop, and HTTP/1.0 GETs.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn sh(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn must(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test's host-side objects, removed on drop.
pub struct Net {
    pub id: u32,
    pub namespaces: Vec<String>,
    pub veths: Vec<String>,
    pub servers: Vec<Child>,
    pub proxy: Option<Child>,
    pub tables: Vec<(String, String)>,
    pub www: tempfile::TempDir,
    /// `/etc/netns/<ns>` directories (the namespaces' resolv.conf).
    pub etc: Vec<std::path::PathBuf>,
    /// Addresses the proxy puts on lo (taken off if it could not).
    pub lo_addresses: Vec<String>,
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(p) = &mut self.proxy {
            let _ = p.kill();
            let _ = p.wait();
        }
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        for v in &self.veths {
            sh("ip", &["link", "del", v]);
        }
        for ns in &self.namespaces {
            sh("ip", &["netns", "del", ns]);
        }
        for dir in &self.etc {
            let _ = std::fs::remove_dir_all(dir);
        }
        for a in &self.lo_addresses {
            sh("ip", &["addr", "del", a, "dev", "lo"]);
        }
        for (family, t) in &self.tables {
            sh("nft", &["delete", "table", family, t]);
        }
    }
}

impl Net {
    /// An empty run for this process.
    pub fn new() -> Net {
        Net {
            id: std::process::id() % 250,
            namespaces: vec![],
            veths: vec![],
            servers: vec![],
            proxy: None,
            tables: vec![],
            www: tempfile::tempdir().unwrap(),
            etc: vec![],
            lo_addresses: vec![],
        }
    }

    /// The fence: whatever goes to the service range untranslated is
    /// dropped, so no test packet leaves the machine. `but_lo`: except
    /// to `lo`, where the userspace mode puts the ClusterIPs.
    pub fn fence(&mut self, but_lo: bool) {
        let fence = format!("skiff_pxfence_{}", std::process::id());
        must("nft", &["add", "table", "inet", &fence]);
        self.tables.push(("inet".into(), fence.clone()));
        must(
            "nft",
            &[
                "add",
                "chain",
                "inet",
                &fence,
                "out",
                "{ type filter hook output priority 0; policy accept; }",
            ],
        );
        let mut rule = vec![
            "add",
            "rule",
            "inet",
            &fence,
            "out",
            "ip",
            "daddr",
            "10.96.0.0/12",
        ];
        if but_lo {
            rule.extend(["oifname", "!=", "lo"]);
        }
        rule.push("drop");
        must("nft", &rule);
    }

    pub fn subnet(&self) -> String {
        format!("10.251.{}", self.id)
    }

    /// Backend `i`: a namespace with httpd answering "backend-i" at
    /// 10.251.<id>.(4i+2), its host side at .(4i+1).
    pub fn backend(&mut self, i: u32) -> String {
        let ns = format!("spx{}-b{i}", std::process::id());
        let (host_if, ns_if) = (format!("spx{}h{i}", self.id), format!("spx{}n{i}", self.id));
        let (host_ip, ip) = (
            format!("{}.{}", self.subnet(), 4 * i + 1),
            format!("{}.{}", self.subnet(), 4 * i + 2),
        );
        must("ip", &["netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        must(
            "ip",
            &[
                "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
            ],
        );
        self.veths.push(host_if.clone());
        must("ip", &["link", "set", &ns_if, "netns", &ns]);
        must(
            "ip",
            &["addr", "add", &format!("{host_ip}/30"), "dev", &host_if],
        );
        must("ip", &["link", "set", &host_if, "up"]);
        let exec = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns];
            all.extend_from_slice(args);
            must("ip", &all);
        };
        exec(&["ip", "addr", "add", &format!("{ip}/30"), "dev", &ns_if]);
        exec(&["ip", "link", "set", &ns_if, "up"]);
        exec(&["ip", "link", "set", "lo", "up"]);
        exec(&["ip", "route", "add", "default", "via", &host_ip]);
        let dir = self.www.path().join(format!("b{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), format!("backend-{i}\n")).unwrap();
        let server = Command::new("ip")
            .args([
                "netns", "exec", &ns, "busybox", "httpd", "-f", "-p", "80", "-h",
            ])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.servers.push(server);
        ip
    }
}

pub fn get(addr: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body.lines().last().unwrap_or_default().trim().to_string())
}

/// Which backends answer over `n` new connections.
pub fn answers(addr: &str, n: usize) -> std::collections::BTreeSet<String> {
    (0..n).filter_map(|_| get(addr).ok()).collect()
}
