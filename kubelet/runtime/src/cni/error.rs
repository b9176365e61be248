//! What can go wrong talking CNI: a bad configuration, a plugin that cannot
//! be found or run, a plugin that reports an error object (with the spec's
//! well-known codes named, so a log line says *why* and not just "code 7"),
//! and the runtime's own cache of ADD results.

use std::path::PathBuf;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("{what}: {why}")]
    Config { what: String, why: String },
    #[error("CNI plugin {plugin:?} not found in {dirs:?}")]
    NoPlugin { plugin: String, dirs: Vec<PathBuf> },
    #[error("CNI plugin {plugin}: {why}")]
    Exec { plugin: String, why: String },
    #[error(
        "CNI plugin {plugin} {command} failed: code {code} ({}): {msg}{}",
        code_name(*code),
        if details.is_empty() { String::new() } else { format!(" ({details})") }
    )]
    Plugin {
        plugin: String,
        command: &'static str,
        code: u64,
        msg: String,
        details: String,
    },
    #[error("CNI plugin {plugin} does not speak CNI {wanted} (it supports {supported:?})")]
    Incompatible {
        plugin: String,
        wanted: String,
        supported: Vec<String>,
    },
    #[error(
        "CNI {command} of {container_id}: no ADD result cached, the network was never attached"
    )]
    NotAttached {
        command: &'static str,
        container_id: String,
    },
    #[error("CNI cache {path}: {why}")]
    Cache { path: PathBuf, why: String },
    #[error("CNI result: {why}: {result}")]
    BadResult { why: String, result: Value },
    #[error("CNI result has no IP address: {0}")]
    NoIp(Value),
}

/// The meaning of the error codes CNI 1.0/1.1 reserve (0-99); 100 and up
/// belong to the plugin.
pub fn code_name(code: u64) -> &'static str {
    match code {
        1 => "incompatible CNI version",
        2 => "unsupported field in network configuration",
        3 => "container unknown or does not exist",
        4 => "invalid necessary environment variables",
        5 => "I/O failure",
        6 => "failed to decode content",
        7 => "invalid network config",
        11 => "try again later",
        50 => "plugin not available",
        51 => "plugin not available, existing containers may have limited connectivity",
        0..=99 => "reserved code",
        _ => "plugin-specific code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_errors_name_their_code() {
        let e = CniError::Plugin {
            plugin: "bridge".into(),
            command: "ADD",
            code: 7,
            msg: "bad bridge name".into(),
            details: "too long".into(),
        };
        assert_eq!(
            e.to_string(),
            "CNI plugin bridge ADD failed: code 7 (invalid network config): bad bridge name (too long)"
        );
        assert_eq!(code_name(120), "plugin-specific code");
    }
}
