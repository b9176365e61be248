//! The parts of an image's config blob the runtime uses: what to run
//! (Entrypoint, Cmd), with what environment, where and as whom, and the
//! layer diff ids that name the unpacked layers.
//!
//! Docker's and OCI's config JSON share these fields (`config.Entrypoint`,
//! `rootfs.diff_ids`, ...), so one tolerant parser serves both; unknown
//! fields are ignored and `null` is read as absent, as Docker writes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{ImageError, Result};

/// An image's run-time defaults, resolved by the container code against the
/// pod's command/args (Kubernetes: `command` replaces Entrypoint, `args`
/// replaces Cmd).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` strings.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`, as in the image.
    pub user: Option<String>,
    /// `80/tcp`-style keys.
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub os: String,
    pub architecture: String,
    /// Digests of the uncompressed layers, bottom first.
    pub diff_ids: Vec<Digest>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    config: Option<RawRunConfig>,
    rootfs: Option<RawRootfs>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawRunConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    volumes: Option<BTreeMap<String, serde_json::Value>>,
    labels: Option<BTreeMap<String, String>>,
    stop_signal: Option<String>,
}

#[derive(Deserialize)]
struct RawRootfs {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

impl ImageConfig {
    /// Parses a config blob (OCI `application/vnd.oci.image.config.v1+json`
    /// or Docker `application/vnd.docker.container.image.v1+json`).
    pub fn parse(data: &[u8], what: &str) -> Result<ImageConfig> {
        let raw: RawConfig =
            serde_json::from_slice(data).map_err(|e| ImageError::json(what.to_owned(), e))?;
        let rootfs = raw
            .rootfs
            .ok_or_else(|| ImageError::format(format!("{what}: no rootfs")))?;
        if rootfs.kind != "layers" {
            return Err(ImageError::format(format!(
                "{what}: rootfs type {:?}, expected \"layers\"",
                rootfs.kind
            )));
        }
        let c = raw.config.unwrap_or_default();
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
        Ok(ImageConfig {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: nonempty(c.working_dir),
            user: nonempty(c.user),
            exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
            volumes: c.volumes.unwrap_or_default().into_keys().collect(),
            labels: c.labels.unwrap_or_default(),
            stop_signal: nonempty(c.stop_signal),
            os: raw.os.unwrap_or_default(),
            architecture: raw.architecture.unwrap_or_default(),
            diff_ids: rootfs.diff_ids,
        })
    }

    /// The process an image runs by default: Entrypoint followed by Cmd.
    pub fn default_argv(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_docker_style_config_with_nulls() {
        let json = format!(
            r#"{{"architecture":"amd64","os":"linux","container_config":{{"Hostname":"x"}},
               "config":{{"Entrypoint":null,"Cmd":["sh"],"Env":["PATH=/bin"],"WorkingDir":"",
                          "User":"1000:1000","ExposedPorts":{{"80/tcp":{{}}}},"Labels":null}},
               "rootfs":{{"type":"layers","diff_ids":["{D}"]}}}}"#
        );
        let c = ImageConfig::parse(json.as_bytes(), "config").unwrap();
        assert_eq!(c.entrypoint, Vec::<String>::new());
        assert_eq!(c.cmd, vec!["sh"]);
        assert_eq!(c.env, vec!["PATH=/bin"]);
        assert_eq!(c.working_dir, None, "an empty WorkingDir means unset");
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.exposed_ports, vec!["80/tcp"]);
        assert_eq!(c.diff_ids.len(), 1);
        assert_eq!(c.default_argv(), vec!["sh"]);
    }

    #[test]
    fn refuses_configs_without_layers_rootfs() {
        let err = ImageConfig::parse(br#"{"os":"linux"}"#, "cfg").unwrap_err();
        assert!(err.to_string().contains("no rootfs"), "{err}");
        let err = ImageConfig::parse(br#"{"rootfs":{"type":"x"}}"#, "cfg").unwrap_err();
        assert!(err.to_string().contains("expected \"layers\""), "{err}");
        let err = ImageConfig::parse(b"not json", "cfg").unwrap_err();
        assert!(err.to_string().contains("cfg: invalid JSON"), "{err}");
    }
}
