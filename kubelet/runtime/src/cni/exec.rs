//! Running one CNI plugin: the binary found in the plugin dirs, the request
//! in environment variables, its configuration on stdin, its result (or its
//! error object) on stdout. Behind a trait so the chaining logic is tested
//! without running anything.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::CniError;

/// One plugin call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub plugin: String,
    pub command: &'static str,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub stdin: Value,
}

pub trait PluginExec: Send + Sync {
    /// Runs the call; `Ok` with the parsed stdout (Null when empty).
    fn exec(&self, call: &Call) -> Result<Value, CniError>;
}

/// Executes plugins from `dirs` (the first that has the binary).
#[derive(Debug, Clone)]
pub struct RealExec {
    pub dirs: Vec<PathBuf>,
}

impl PluginExec for RealExec {
    fn exec(&self, call: &Call) -> Result<Value, CniError> {
        let binary = self
            .dirs
            .iter()
            .map(|d| d.join(&call.plugin))
            .find(|p| p.is_file())
            .ok_or_else(|| CniError::NoPlugin {
                plugin: call.plugin.clone(),
                dirs: self.dirs.clone(),
            })?;
        let path = std::env::join_paths(&self.dirs).unwrap_or_default();
        let mut child = Command::new(&binary)
            .env_clear()
            .env("CNI_COMMAND", call.command)
            .env("CNI_CONTAINERID", &call.container_id)
            .env("CNI_NETNS", &call.netns)
            .env("CNI_IFNAME", &call.ifname)
            .env("CNI_ARGS", &call.args)
            .env("CNI_PATH", path)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| CniError::Exec {
                plugin: call.plugin.clone(),
                why: e.to_string(),
            })?;
        let input = serde_json::to_vec(&call.stdin).unwrap_or_default();
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&input);
        }
        let out = child.wait_with_output().map_err(|e| CniError::Exec {
            plugin: call.plugin.clone(),
            why: e.to_string(),
        })?;
        let stdout: Value = if out.stdout.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&out.stdout).map_err(|e| CniError::Exec {
                plugin: call.plugin.clone(),
                why: format!(
                    "unreadable output ({e}): {}",
                    String::from_utf8_lossy(&out.stdout)
                ),
            })?
        };
        if out.status.success() {
            return Ok(stdout);
        }
        // The CNI error object: {"code": N, "msg": "...", "details": "..."}.
        Err(CniError::Plugin {
            plugin: call.plugin.clone(),
            command: call.command,
            code: stdout["code"].as_u64().unwrap_or(0),
            msg: stdout["msg"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_string()),
            details: stdout["details"].as_str().unwrap_or_default().to_string(),
        })
    }
}
