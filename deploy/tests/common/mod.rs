//! What the root tests of `skiff` share: a cluster named per test run,
//! driven by the `skiff` binary and the real kubectl, reset when dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub data: PathBuf,
    pub port: u16,
    pub name: String,
    pub subnet: String,
    /// More flags for `skiff up` (`--nodes 3`, …).
    pub up_flags: Vec<String>,
}

impl Cluster {
    /// A cluster whose data dir is `<dir>/data`, on a free API port, its
    /// host objects named `<tag><pid>` (unique per test run).
    pub fn new(dir: &std::path::Path, tag: &str, subnet: String, up_flags: &[&str]) -> Cluster {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Cluster {
            data: dir.join("data"),
            port,
            name: format!("{tag}{}", std::process::id() % 100000),
            subnet,
            up_flags: up_flags.iter().map(|f| f.to_string()).collect(),
        }
    }

    pub fn skiff(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skiff"));
        cmd.args(args).arg("--data-dir").arg(&self.data);
        if args[0] == "up" {
            cmd.args(["--port", &self.port.to_string()])
                .args(["--name", &self.name])
                .args(["--pod-subnet", &self.subnet])
                // Another cluster (a developer's) may hold 10250.
                .args(["--kubelet-port", "0"])
                .args(&self.up_flags);
        }
        cmd.output().expect("run skiff")
    }

    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.data.join("admin.kubeconfig"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run kubectl");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Whatever happened: nothing of this run may stay on the machine.
        let _ = self.skiff(&["reset"]);
    }
}

pub fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn eventually<T>(what: &str, secs: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn http_get(addr: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(
        &if addr.contains(':') {
            addr.to_string()
        } else {
            format!("{addr}:80")
        }
        .parse()
        .ok()?,
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// What of this cluster is still on the machine: processes, mounts, the
/// proxy's table and DNS address, bridges, the fence, network namespaces
/// and veths of its nodes, host routes to its pods, the data dir.
pub fn leftovers(c: &Cluster) -> Vec<String> {
    let mut found = Vec::new();
    let data = c.data.display().to_string();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if e.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(&data) {
            found.push(format!("process {}", e.file_name().to_string_lossy()));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    found.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&data))
            .map(|l| format!("mount {l}")),
    );
    let proxy_table = format!("{}_proxy", c.name);
    if Command::new("nft")
        .args(["list", "table", "ip", &proxy_table])
        .output()
        .unwrap()
        .status
        .success()
    {
        found.push(format!("table {proxy_table}"));
    }
    let lo = Command::new("ip")
        .args(["-o", "addr", "show", "dev", "lo"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&lo.stdout).contains(" 10.96.0.10/32 ") {
        found.push("address 10.96.0.10/32 on lo".into());
    }
    let bridge = format!("{}0", c.name);
    if Command::new("ip")
        .args(["link", "show", &bridge])
        .output()
        .unwrap()
        .status
        .success()
    {
        found.push(format!("bridge {bridge}"));
    }
    let table = format!("{}_up", c.name);
    if Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .unwrap()
        .status
        .success()
    {
        found.push(format!("table {table}"));
    }
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    for line in String::from_utf8_lossy(&netns.stdout).lines() {
        if line.starts_with(&format!("{}-node", c.name)) {
            found.push(format!("network namespace {line}"));
        }
    }
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&links.stdout).lines() {
        let name = line.split(':').nth(1).unwrap_or_default().trim();
        if name.starts_with(&format!("{}nodes", c.name))
            || name.starts_with(&format!("{}v", c.name))
        {
            found.push(format!("link {name}"));
        }
    }
    let routes = Command::new("ip").args(["route", "show"]).output().unwrap();
    let pods = c
        .subnet
        .split('/')
        .next()
        .unwrap_or_default()
        .trim_end_matches(".0");
    for line in String::from_utf8_lossy(&routes.stdout).lines() {
        if line.contains(pods) {
            found.push(format!("route {line}"));
        }
    }
    if c.data.exists() {
        found.push(format!("dir {data}"));
    }
    found
}
