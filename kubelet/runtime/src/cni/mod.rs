//! CNI: how a sandbox gets its network. The runtime runs the plugins of a
//! network configuration list ([`config`]) in order for ADD (each one handed
//! the previous one's result), in reverse for DEL, in order for CHECK, as
//! the CNI 1.0 specification says ([`exec`] runs one plugin). The ADD result
//! is cached on disk so a DEL after a runtime restart still gets it.

pub mod config;
pub mod exec;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

pub use config::NetworkList;
use exec::{Call, PluginExec};

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("{what}: {why}")]
    Config { what: String, why: String },
    #[error("CNI plugin {plugin:?} not found in {dirs:?}")]
    NoPlugin { plugin: String, dirs: Vec<PathBuf> },
    #[error("CNI plugin {plugin}: {why}")]
    Exec { plugin: String, why: String },
    #[error("CNI plugin {plugin} {command} failed (code {code}): {msg} {details}")]
    Plugin {
        plugin: String,
        command: &'static str,
        code: u64,
        msg: String,
        details: String,
    },
    #[error("CNI cache {path}: {why}")]
    Cache { path: PathBuf, why: String },
    #[error("CNI result has no IP address: {0}")]
    NoIp(Value),
}

/// One attachment: which sandbox, in which namespace, under which name.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// `K8S_POD_NAMESPACE=…;K8S_POD_NAME=…`, as the kubelet passes it.
    pub args: String,
    /// Capability arguments (`portMappings`).
    pub runtime_config: Value,
}

pub struct Cni {
    pub list: NetworkList,
    pub exec: Arc<dyn PluginExec>,
    /// Where ADD results are kept for DEL and CHECK.
    pub cache_dir: PathBuf,
}

impl Cni {
    fn call(&self, command: &'static str, i: usize, a: &Attachment, prev: Option<&Value>) -> Call {
        Call {
            plugin: self.list.plugins[i]["type"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            command,
            container_id: a.container_id.clone(),
            netns: a.netns.clone(),
            ifname: a.ifname.clone(),
            args: a.args.clone(),
            stdin: self.list.plugin_input(i, prev, &a.runtime_config),
        }
    }

    fn cache_path(&self, container_id: &str) -> PathBuf {
        self.cache_dir
            .join(format!("{}-{container_id}.json", self.list.name))
    }

    /// ADD through the chain; the final result (with the pod IP) is cached.
    /// A failing plugin undoes what was added (DEL through the chain).
    pub fn add(&self, a: &Attachment) -> Result<Value, CniError> {
        let mut prev: Option<Value> = None;
        for i in 0..self.list.plugins.len() {
            match self.exec.exec(&self.call("ADD", i, a, prev.as_ref())) {
                Ok(result) if result.is_null() => {}
                Ok(result) => prev = Some(result),
                Err(e) => {
                    let _ = self.del_with(a, prev.as_ref());
                    return Err(e);
                }
            }
        }
        let result = prev.unwrap_or(Value::Null);
        let path = self.cache_path(&a.container_id);
        let cache_err = |why: String| CniError::Cache {
            path: path.clone(),
            why,
        };
        std::fs::create_dir_all(&self.cache_dir).map_err(|e| cache_err(e.to_string()))?;
        let cached = json!({"result": result, "netns": a.netns, "ifname": a.ifname,
                            "args": a.args, "runtimeConfig": a.runtime_config});
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&cached).unwrap_or_default())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| cache_err(e.to_string()))?;
        Ok(result)
    }

    /// The cached ADD result of `container_id`, if any.
    pub fn cached(&self, container_id: &str) -> Option<Value> {
        let text = std::fs::read(self.cache_path(container_id)).ok()?;
        let v: Value = serde_json::from_slice(&text).ok()?;
        Some(v["result"].clone())
    }

    fn del_with(&self, a: &Attachment, prev: Option<&Value>) -> Result<(), CniError> {
        let mut first_err = None;
        for i in (0..self.list.plugins.len()).rev() {
            if let Err(e) = self.exec.exec(&self.call("DEL", i, a, prev)) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// DEL through the chain in reverse, with the cached result; idempotent
    /// (plugins treat what is already gone as done), and the cache goes.
    pub fn del(&self, a: &Attachment) -> Result<(), CniError> {
        let prev = self.cached(&a.container_id);
        self.del_with(a, prev.as_ref())?;
        let _ = std::fs::remove_file(self.cache_path(&a.container_id));
        Ok(())
    }

    /// CHECK through the chain with the cached result.
    pub fn check(&self, a: &Attachment) -> Result<(), CniError> {
        let prev = self.cached(&a.container_id);
        for i in 0..self.list.plugins.len() {
            self.exec.exec(&self.call("CHECK", i, a, prev.as_ref()))?;
        }
        Ok(())
    }
}

/// The first IPv4 address of a CNI result, without its prefix length.
pub fn pod_ip(result: &Value) -> Result<String, CniError> {
    result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ip| ip["address"].as_str())
        .find_map(|a| a.split('/').next().filter(|ip| ip.contains('.')))
        .map(String::from)
        .ok_or_else(|| CniError::NoIp(result.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records calls; `fail` makes that plugin's ADD fail.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<Call>>,
        fail: Option<&'static str>,
    }

    impl PluginExec for Recorder {
        fn exec(&self, call: &Call) -> Result<Value, CniError> {
            self.calls.lock().unwrap().push(call.clone());
            if call.command == "ADD" && Some(call.plugin.as_str()) == self.fail {
                return Err(CniError::Plugin {
                    plugin: call.plugin.clone(),
                    command: "ADD",
                    code: 11,
                    msg: "no".into(),
                    details: String::new(),
                });
            }
            Ok(match (call.command, call.plugin.as_str()) {
                ("ADD", "bridge") => {
                    json!({"cniVersion": "1.0.0", "ips": [{"address": "10.244.3.7/24"}]})
                }
                ("ADD", _) => call.stdin["prevResult"].clone(),
                _ => Value::Null,
            })
        }
    }

    fn cni(rec: Arc<Recorder>, dir: &std::path::Path) -> Cni {
        Cni {
            list: NetworkList::parse(
                r#"{"name": "n", "cniVersion": "1.0.0", "plugins": [{"type": "bridge"}, {"type": "portmap"}]}"#,
                "t",
            )
            .unwrap(),
            exec: rec,
            cache_dir: dir.to_path_buf(),
        }
    }

    fn attachment() -> Attachment {
        Attachment {
            container_id: "sb1".into(),
            netns: "/run/skiff/netns/sb1".into(),
            ifname: "eth0".into(),
            args: "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web".into(),
            runtime_config: json!({}),
        }
    }

    #[test]
    fn add_chains_caches_and_del_goes_in_reverse_with_the_cached_result() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        let c = cni(rec.clone(), dir.path());
        let result = c.add(&attachment()).unwrap();
        assert_eq!(pod_ip(&result).unwrap(), "10.244.3.7");
        c.check(&attachment()).unwrap();
        c.del(&attachment()).unwrap();
        let calls = rec.calls.lock().unwrap().clone();
        let seen: Vec<(&str, &str)> = calls
            .iter()
            .map(|c| (c.command, c.plugin.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("ADD", "bridge"),
                ("ADD", "portmap"),
                ("CHECK", "bridge"),
                ("CHECK", "portmap"),
                ("DEL", "portmap"),
                ("DEL", "bridge")
            ]
        );
        assert_eq!(
            calls[1].stdin["prevResult"], result,
            "portmap gets bridge's result"
        );
        assert_eq!(
            calls[4].stdin["prevResult"], result,
            "DEL gets the cached result"
        );
        assert!(c.cached("sb1").is_none(), "the cache goes with DEL");
        // DEL again (after a restart, nothing cached): still fine.
        c.del(&attachment()).unwrap();
    }

    #[test]
    fn a_failed_add_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder {
            fail: Some("portmap"),
            ..Default::default()
        });
        let c = cni(rec.clone(), dir.path());
        let err = c.add(&attachment()).unwrap_err();
        assert!(
            err.to_string().contains("portmap ADD failed (code 11)"),
            "{err}"
        );
        let calls = rec.calls.lock().unwrap();
        assert_eq!(
            calls.last().map(|c| (c.command, c.plugin.as_str())),
            Some(("DEL", "bridge"))
        );
        assert!(c.cached("sb1").is_none());
    }

    #[test]
    fn pod_ip_of_a_result() {
        assert_eq!(
            pod_ip(&json!({"ips": [{"address": "fd00::5/64"}, {"address": "10.1.2.3/16"}]}))
                .unwrap(),
            "10.1.2.3"
        );
        assert!(pod_ip(&json!({"ips": []})).is_err());
    }
}
