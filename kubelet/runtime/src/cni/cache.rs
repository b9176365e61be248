//! The runtime's memory of each attachment, on disk: the ADD result and the
//! network configuration it was made with. CHECK and DEL must be handed the
//! ADD result as `prevResult` (spec 1.0), and a runtime restarted between ADD
//! and DEL has nothing else to get it from; keeping the configuration too
//! means a DEL after the `.conflist` was edited still undoes what was done.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::CniError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cached {
    pub container_id: String,
    pub if_name: String,
    pub netns: String,
    pub args: String,
    #[serde(default)]
    pub runtime_config: Value,
    /// The network list as used for ADD ([`super::NetworkList::to_json`]);
    /// Null in caches written before it was kept.
    #[serde(default)]
    pub config: Value,
    pub result: Value,
}

/// `<dir>/<network>-<container id>.json`.
pub fn path(dir: &Path, network: &str, container_id: &str) -> PathBuf {
    dir.join(format!("{network}-{container_id}.json"))
}

pub fn read(path: &Path) -> Option<Cached> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Written to a temporary file and renamed, so a crash never leaves half.
pub fn write(path: &Path, cached: &Cached) -> Result<(), CniError> {
    let err = |why: String| CniError::Cache {
        path: path.to_path_buf(),
        why,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(cached).map_err(|e| err(e.to_string()))?;
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| err(e.to_string()))
}

pub fn remove(path: &Path) -> Result<(), CniError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CniError::Cache {
            path: path.to_path_buf(),
            why: e.to_string(),
        }),
        _ => Ok(()),
    }
}
