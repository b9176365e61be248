//! A cluster is its data dir: state, logs, kubeconfig, and the settings it
//! was first started with (`cluster.json`), which later commands reuse.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::{Error, Result};

/// `--data-dir`, shared by every command.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDir {
    /// Where the cluster keeps its state and logs.
    #[arg(long, env = "SKIFF_DATA_DIR", default_value = ".skiff")]
    pub data_dir: PathBuf,
}

impl DataDir {
    pub fn layout(&self) -> Result<Layout> {
        Layout::new(&self.data_dir)
    }
}

/// `skiff up`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// The API server's port on 127.0.0.1.
    #[arg(long, env = "SKIFF_API_PORT", default_value_t = 6443)]
    pub port: u16,
    /// The address the node reports (and its kubelet API listens on).
    #[arg(long, env = "SKIFF_NODE_IP", default_value = "127.0.0.1")]
    pub node_ip: String,
    /// The pods' addresses: the node's pod CIDR, fenced in on this machine.
    #[arg(long, env = "SKIFF_POD_SUBNET", default_value = "10.244.0.0/24")]
    pub pod_subnet: String,
    /// Names the host objects: bridge `<name>0`, nftables table `inet <name>_up`.
    #[arg(long, default_value = "skiff")]
    pub name: String,
    /// A real etcd (comma-separated URLs) instead of the embedded store.
    #[arg(long)]
    pub etcd_servers: Option<String>,
    /// The kubelet API's port (0: any free one, for a second cluster on the machine).
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Stay in the foreground (the supervisor itself); Ctrl-C stops the cluster.
    #[arg(long)]
    pub foreground: bool,
    /// Short timers for teaching: a silent node is NotReady after 10 s (not
    /// 40 s) and its pods are evicted 30 s later (not 300 s), a crashing
    /// container waits at most 20 s between restarts (not 5 min). Applies
    /// to each `up` (`skiff down` then `skiff up` without it goes back).
    #[arg(long)]
    pub demo: bool,
}

/// The settings a cluster keeps: the first `up`'s, reused by the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub port: u16,
    pub node_ip: String,
    pub pod_subnet: String,
    pub name: String,
    pub etcd_servers: Option<String>,
    pub kubelet_port: u16,
    /// `--demo`: the short timers (taken from each `up`, not kept).
    pub demo: bool,
}

impl Settings {
    pub fn from_args(a: &UpArgs) -> Settings {
        Settings {
            port: a.port,
            node_ip: a.node_ip.clone(),
            pod_subnet: a.pod_subnet.clone(),
            name: a.name.clone(),
            etcd_servers: a.etcd_servers.clone(),
            kubelet_port: a.kubelet_port,
            demo: a.demo,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"port": self.port, "nodeIP": self.node_ip, "podSubnet": self.pod_subnet,
               "name": self.name, "etcdServers": self.etcd_servers,
               "kubeletPort": self.kubelet_port, "demo": self.demo})
    }

    pub fn from_json(v: &Value) -> Option<Settings> {
        Some(Settings {
            port: u16::try_from(v["port"].as_u64()?).ok()?,
            node_ip: v["nodeIP"].as_str()?.into(),
            pod_subnet: v["podSubnet"].as_str()?.into(),
            name: v["name"].as_str()?.into(),
            etcd_servers: v["etcdServers"].as_str().map(String::from),
            kubelet_port: v["kubeletPort"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(10250),
            demo: v["demo"].as_bool().unwrap_or(false),
        })
    }

    /// The CNI bridge (at most 15 characters, as Linux requires).
    pub fn bridge(&self) -> String {
        let mut b = format!("{}0", self.name);
        b.truncate(15);
        b
    }

    /// The nftables table (family inet) that fences the pods in.
    pub fn fence_table(&self) -> String {
        format!("{}_up", self.name)
    }

    /// Checks what would otherwise fail later, deep in a program's log.
    pub fn validate(&self) -> Result<()> {
        let (ip, len) = self.pod_subnet.split_once('/').ok_or_else(|| {
            Error::Failed(format!("--pod-subnet {}: not a CIDR", self.pod_subnet))
        })?;
        let ok = ip.parse::<std::net::Ipv4Addr>().is_ok()
            && len.parse::<u8>().is_ok_and(|l| (8..=30).contains(&l));
        if !ok {
            return Err(Error::Failed(format!(
                "--pod-subnet {}: an IPv4 CIDR from /8 to /30",
                self.pod_subnet
            )));
        }
        if self.node_ip.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::Failed(format!(
                "--node-ip {}: not an IP address",
                self.node_ip
            )));
        }
        if self.name.is_empty()
            || self.name.len() > 14
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(Error::Failed(format!(
                "--name {:?}: 1 to 14 lower-case letters or digits",
                self.name
            )));
        }
        Ok(())
    }
}

/// Paths in the data dir.
#[derive(Debug, Clone)]
pub struct Layout {
    pub data: PathBuf,
}

impl Layout {
    /// The data dir, made absolute (programs run with other working dirs).
    pub fn new(data: &Path) -> Result<Layout> {
        let data = if data.is_absolute() {
            data.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(Error::io("the current directory"))?
                .join(data)
        };
        Ok(Layout { data })
    }
    pub fn settings(&self) -> PathBuf {
        self.data.join("cluster.json")
    }
    pub fn supervisor_pid(&self) -> PathBuf {
        self.data.join("skiff.pid")
    }
    pub fn program_pid(&self, program: &str) -> PathBuf {
        self.data.join("run").join(format!("{program}.pid"))
    }
    pub fn log(&self, program: &str) -> PathBuf {
        self.data.join(format!("{program}.log"))
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.data.join("admin.kubeconfig")
    }
    pub fn kubelet_root(&self) -> PathBuf {
        self.data.join("kubelet")
    }
    pub fn cni_dir(&self) -> PathBuf {
        self.data.join("cni")
    }

    /// The settings of an existing cluster.
    pub fn load_settings(&self) -> Option<Settings> {
        let text = std::fs::read_to_string(self.settings()).ok()?;
        Settings::from_json(&serde_json::from_str(&text).ok()?)
    }

    pub fn save_settings(&self, s: &Settings) -> Result<()> {
        std::fs::create_dir_all(&self.data).map_err(Error::io(self.data.display().to_string()))?;
        std::fs::write(self.settings(), s.to_json().to_string())
            .map_err(Error::io(self.settings().display().to_string()))
    }

    /// The supervisor's pid, when it runs.
    pub fn running(&self) -> Option<i32> {
        alive(&self.supervisor_pid())
    }
}

/// The pid in `file`, when that process exists.
pub fn alive(file: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    (pid > 1 && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok())
        .then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            port: 6443,
            node_ip: "127.0.0.1".into(),
            pod_subnet: "10.244.0.0/24".into(),
            name: "skiff".into(),
            etcd_servers: None,
            kubelet_port: 10250,
            demo: false,
        }
    }

    #[test]
    fn settings_round_trip_and_name_host_objects() {
        let s = settings();
        assert_eq!(Settings::from_json(&s.to_json()), Some(s.clone()));
        assert_eq!(s.bridge(), "skiff0");
        assert_eq!(s.fence_table(), "skiff_up");
        assert!(s.validate().is_ok());
    }

    #[test]
    fn bad_settings_say_which_flag() {
        for (change, want) in [
            (
                Settings {
                    pod_subnet: "10.244.0.0".into(),
                    ..settings()
                },
                "--pod-subnet",
            ),
            (
                Settings {
                    pod_subnet: "10.244.0.0/31".into(),
                    ..settings()
                },
                "--pod-subnet",
            ),
            (
                Settings {
                    node_ip: "localhost".into(),
                    ..settings()
                },
                "--node-ip",
            ),
            (
                Settings {
                    name: "Skiff-Lab".into(),
                    ..settings()
                },
                "--name",
            ),
        ] {
            let err = change.validate().unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
        }
    }
}
