//! The part of a bundle's `config.json` the executor acts on, read with
//! serde (fields it does not know are ignored, as the OCI spec allows).

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Config {
    pub process: Process,
    pub root: Root,
    pub hostname: String,
    pub mounts: Vec<Mount>,
    pub linux: Linux,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: User,
    pub capabilities: Capabilities,
    pub no_new_privileges: bool,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Capabilities {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub permitted: Vec<String>,
    pub inheritable: Vec<String>,
    pub ambient: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Root {
    pub path: String,
    pub readonly: bool,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(default)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Linux {
    pub namespaces: Vec<Namespace>,
    pub resources: Resources,
    pub cgroups_path: String,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Resources {
    pub memory: Option<Memory>,
    pub cpu: Option<Cpu>,
    pub pids: Option<Pids>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Memory {
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Cpu {
    pub shares: Option<u64>,
    pub quota: Option<i64>,
    pub period: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Pids {
    pub limit: Option<i64>,
}

impl Config {
    pub fn load(bundle: &Path) -> std::io::Result<Config> {
        let text = std::fs::read(bundle.join("config.json"))?;
        serde_json::from_slice(&text).map_err(std::io::Error::other)
    }

    /// The rootfs, relative paths taken from the bundle.
    pub fn rootfs(&self, bundle: &Path) -> PathBuf {
        let p = Path::new(&self.root.path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            bundle.join(p)
        }
    }
}
