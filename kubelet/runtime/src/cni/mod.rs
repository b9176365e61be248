//! CNI: how a sandbox gets its network. The runtime runs the plugins of a
//! network configuration list ([`config`]) in order for ADD (each one handed
//! the previous one's result as `prevResult`), in reverse for DEL, in order
//! for CHECK, as the CNI 1.0 specification says; [`exec`] runs one plugin,
//! [`result`] reads what the chain returns, [`cache`] keeps the ADD result on
//! disk so a DEL after a runtime restart still gets it.
//!
//! Errors follow the spec: the first failing plugin stops the list. A failed
//! ADD is undone with a DEL of the whole list (even the plugins not reached,
//! and past plugins whose DEL fails, so no IP leaks), and a failed DEL keeps
//! the cache, so the retry still has `prevResult`.

pub mod cache;
pub mod config;
pub mod error;
pub mod exec;
pub mod fake;
pub mod result;
pub mod version;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

pub use config::NetworkList;
pub use error::CniError;
use exec::{Call, PluginExec};
pub use result::{CniResult, pod_ip};

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

fn call(
    list: &NetworkList,
    command: &'static str,
    i: usize,
    a: &Attachment,
    prev: Option<&Value>,
) -> Call {
    Call {
        plugin: list.plugins[i]["type"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        command,
        container_id: a.container_id.clone(),
        netns: a.netns.clone(),
        ifname: a.ifname.clone(),
        args: a.args.clone(),
        stdin: list.plugin_input(i, prev, &a.runtime_config),
    }
}

impl Cni {
    fn cache_path(&self, container_id: &str) -> PathBuf {
        cache::path(&self.cache_dir, &self.list.name, container_id)
    }

    /// ADD through the chain; the final result (with the pod IP) is cached.
    /// A failing plugin undoes what was added (DEL through the chain).
    pub fn add(&self, a: &Attachment) -> Result<Value, CniError> {
        let mut prev: Option<Value> = None;
        for i in 0..self.list.plugins.len() {
            match self
                .exec
                .exec(&call(&self.list, "ADD", i, a, prev.as_ref()))
            {
                // Printing nothing is not what the spec asks of a chained
                // plugin, but it cannot mean "forget the previous result".
                Ok(Value::Null) => {}
                Ok(result) => prev = Some(result),
                Err(e) => return Err(self.undo(a, prev.as_ref(), e)),
            }
        }
        let result = prev.unwrap_or(Value::Null);
        let checked = if result.is_null() {
            Err(CniError::BadResult {
                why: "the chain printed no result".into(),
                result: Value::Null,
            })
        } else {
            CniResult::from_value(&result).map(|_| ())
        };
        let cached = checked.and_then(|()| {
            cache::write(
                &self.cache_path(&a.container_id),
                &cache::Cached {
                    container_id: a.container_id.clone(),
                    if_name: a.ifname.clone(),
                    netns: a.netns.clone(),
                    args: a.args.clone(),
                    runtime_config: a.runtime_config.clone(),
                    config: self.list.to_json(),
                    result: result.clone(),
                },
            )
        });
        match cached {
            Ok(()) => Ok(result),
            Err(e) => Err(self.undo(a, Some(&result), e)),
        }
    }

    /// After a failed ADD: DEL through the whole list, as the spec asks.
    /// Best effort, unlike a DEL of its own: a plugin that cannot undo (or
    /// was never found) must not keep the others from releasing what they
    /// hold, or the IP would leak. The ADD error is what the caller sees.
    fn undo(&self, a: &Attachment, prev: Option<&Value>, e: CniError) -> CniError {
        for i in (0..self.list.plugins.len()).rev() {
            if let Err(del) = self.exec.exec(&call(&self.list, "DEL", i, a, prev)) {
                tracing::warn!(container = %a.container_id, error = %del, "CNI DEL after a failed ADD");
            }
        }
        e
    }

    /// The cached ADD result of `container_id`, if any.
    pub fn cached(&self, container_id: &str) -> Option<Value> {
        cache::read(&self.cache_path(container_id)).map(|c| c.result)
    }

    fn del_list(
        &self,
        list: &NetworkList,
        a: &Attachment,
        prev: Option<&Value>,
    ) -> Result<(), CniError> {
        for i in (0..list.plugins.len()).rev() {
            self.exec.exec(&call(list, "DEL", i, a, prev))?;
        }
        Ok(())
    }

    /// DEL through the chain in reverse, with the cached result and the
    /// configuration ADD used; idempotent (plugins treat what is already
    /// gone as done, and without a cache DEL runs without `prevResult`).
    /// On success the cache goes; on failure it stays for the retry.
    pub fn del(&self, a: &Attachment) -> Result<(), CniError> {
        let path = self.cache_path(&a.container_id);
        let cached = cache::read(&path);
        let list = cached
            .as_ref()
            .and_then(|c| NetworkList::parse(&c.config.to_string(), "cached").ok());
        let prev = cached.as_ref().map(|c| &c.result);
        self.del_list(list.as_ref().unwrap_or(&self.list), a, prev)?;
        cache::remove(&path)
    }

    /// CHECK through the chain with the cached result. Skipped where the spec
    /// says the runtime must not call it: `disableCheck`, or a version
    /// before CHECK existed (0.4.0). CHECK of what was never added is an error.
    pub fn check(&self, a: &Attachment) -> Result<(), CniError> {
        if self.list.disable_check || !version::at_least(&self.list.cni_version, "0.4.0") {
            return Ok(());
        }
        let prev = self
            .cached(&a.container_id)
            .ok_or_else(|| CniError::NotAttached {
                command: "CHECK",
                container_id: a.container_id.clone(),
            })?;
        for i in 0..self.list.plugins.len() {
            self.exec
                .exec(&call(&self.list, "CHECK", i, a, Some(&prev)))?;
        }
        Ok(())
    }

    /// VERSION of every plugin of the list: each must speak the list's
    /// version. Worth calling once at start, so a wrong plugin dir or an old
    /// plugin shows up as a clear error rather than at the first pod.
    pub fn check_versions(&self) -> Result<(), CniError> {
        let mut seen = Vec::new();
        for plugin in self.list.types() {
            if seen.contains(&plugin) {
                continue;
            }
            seen.push(plugin);
            let out = self
                .exec
                .exec(&Call::version(plugin, &self.list.cni_version))?;
            let supported: Vec<String> = out["supportedVersions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            let wanted = version::parse(&self.list.cni_version);
            if !supported.iter().any(|v| version::parse(v) == wanted) {
                return Err(CniError::Incompatible {
                    plugin: plugin.to_string(),
                    wanted: self.list.cni_version.clone(),
                    supported,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    /// Records calls; `fail` makes that plugin fail that command.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<Call>>,
        fail: Option<(&'static str, &'static str)>,
    }

    impl Recorder {
        fn seen(&self) -> Vec<(&'static str, String)> {
            let calls = self.calls.lock().unwrap();
            calls
                .iter()
                .map(|c| (c.command, c.plugin.clone()))
                .collect()
        }
    }

    impl PluginExec for Recorder {
        fn exec(&self, call: &Call) -> Result<Value, CniError> {
            self.calls.lock().unwrap().push(call.clone());
            if Some((call.command, call.plugin.as_str())) == self.fail {
                return Err(CniError::Plugin {
                    plugin: call.plugin.clone(),
                    command: call.command,
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
                ("VERSION", "old") => {
                    json!({"cniVersion": "0.4.0", "supportedVersions": ["0.3.1", "0.4.0"]})
                }
                ("VERSION", _) => {
                    json!({"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0"]})
                }
                _ => Value::Null,
            })
        }
    }

    const LIST: &str = r#"{"name": "n", "cniVersion": "1.0.0", "plugins": [{"type": "bridge"}, {"type": "portmap"}]}"#;

    fn cni(rec: Arc<Recorder>, dir: &std::path::Path, list: &str) -> Cni {
        Cni {
            list: NetworkList::parse(list, "t").unwrap(),
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

    fn pairs(v: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        v.iter().map(|(c, p)| (*c, p.to_string())).collect()
    }

    #[test]
    fn add_chains_caches_and_del_goes_in_reverse_with_the_cached_result() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        let c = cni(rec.clone(), dir.path(), LIST);
        let result = c.add(&attachment()).unwrap();
        assert_eq!(pod_ip(&result).unwrap(), "10.244.3.7");
        c.check(&attachment()).unwrap();
        // A restarted runtime: a new Cni on the same cache dir.
        let restarted = cni(rec.clone(), dir.path(), LIST);
        restarted.del(&attachment()).unwrap();
        assert_eq!(
            rec.seen(),
            pairs(&[
                ("ADD", "bridge"),
                ("ADD", "portmap"),
                ("CHECK", "bridge"),
                ("CHECK", "portmap"),
                ("DEL", "portmap"),
                ("DEL", "bridge")
            ])
        );
        let calls = rec.calls.lock().unwrap().clone();
        assert!(calls[0].stdin.get("prevResult").is_none());
        assert_eq!(
            calls[1].stdin["prevResult"], result,
            "portmap gets bridge's result"
        );
        assert_eq!(
            calls[2].stdin["prevResult"], result,
            "CHECK gets the cached result"
        );
        assert_eq!(
            calls[4].stdin["prevResult"], result,
            "DEL gets the cached result"
        );
        assert_eq!(calls[4].stdin["name"], "n");
        assert!(c.cached("sb1").is_none(), "the cache goes with DEL");
        // DEL again (nothing cached): still run, without prevResult, and fine.
        c.del(&attachment()).unwrap();
        let calls = rec.calls.lock().unwrap().clone();
        assert!(calls[6].stdin.get("prevResult").is_none());
        // CHECK of what is not attached is refused without calling anything.
        assert!(matches!(
            c.check(&attachment()),
            Err(CniError::NotAttached { .. })
        ));
        assert_eq!(rec.calls.lock().unwrap().len(), 8);
    }

    #[test]
    fn a_failed_add_is_undone_through_the_whole_list() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder {
            fail: Some(("ADD", "portmap")),
            ..Default::default()
        });
        let three = r#"{"name": "n", "plugins": [{"type": "bridge"}, {"type": "portmap"}, {"type": "loopback"}]}"#;
        let c = cni(rec.clone(), dir.path(), three);
        let err = c.add(&attachment()).unwrap_err();
        assert!(
            err.to_string()
                .contains("portmap ADD failed: code 11 (try again later)"),
            "{err}"
        );
        assert_eq!(
            rec.seen(),
            pairs(&[
                ("ADD", "bridge"),
                ("ADD", "portmap"),
                ("DEL", "loopback"),
                ("DEL", "portmap"),
                ("DEL", "bridge")
            ]),
            "loopback was never reached, and is DELeted all the same"
        );
        assert!(c.cached("sb1").is_none());
    }

    #[test]
    fn a_failed_del_stops_the_list_and_keeps_the_cache_for_the_retry() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder {
            fail: Some(("DEL", "portmap")),
            ..Default::default()
        });
        let c = cni(rec.clone(), dir.path(), LIST);
        let result = c.add(&attachment()).unwrap();
        assert!(c.del(&attachment()).is_err());
        assert_eq!(rec.seen().last().unwrap(), &("DEL", "portmap".to_string()));
        assert_eq!(c.cached("sb1"), Some(result));
    }

    #[test]
    fn del_undoes_what_add_did_even_after_the_list_changed() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        cni(rec.clone(), dir.path(), LIST)
            .add(&attachment())
            .unwrap();
        let edited = r#"{"name": "n", "cniVersion": "1.0.0", "plugins": [{"type": "ptp"}]}"#;
        cni(rec.clone(), dir.path(), edited)
            .del(&attachment())
            .unwrap();
        assert_eq!(
            rec.seen()[2..],
            pairs(&[("DEL", "portmap"), ("DEL", "bridge")])
        );
    }

    #[test]
    fn check_is_skipped_where_the_spec_forbids_it() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        for list in [
            r#"{"name": "n", "disableCheck": true, "plugins": [{"type": "bridge"}]}"#,
            r#"{"name": "n", "cniVersion": "0.3.1", "plugins": [{"type": "bridge"}]}"#,
        ] {
            let c = cni(rec.clone(), dir.path(), list);
            c.add(&attachment()).unwrap();
            c.check(&attachment()).unwrap();
            c.del(&attachment()).unwrap();
        }
        assert!(!rec.seen().iter().any(|(c, _)| *c == "CHECK"));
    }

    #[test]
    fn versions_are_checked_once_per_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        let list = r#"{"name": "n", "cniVersion": "1.0.0", "plugins": [{"type": "bridge"}, {"type": "bridge"}, {"type": "old"}]}"#;
        let err = cni(rec.clone(), dir.path(), list)
            .check_versions()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"CNI plugin old does not speak CNI 1.0.0 (it supports ["0.3.1", "0.4.0"])"#
        );
        assert_eq!(
            rec.seen(),
            pairs(&[("VERSION", "bridge"), ("VERSION", "old")])
        );
        let calls = rec.calls.lock().unwrap();
        assert_eq!(calls[0].stdin, json!({"cniVersion": "1.0.0"}));
    }

    #[test]
    fn a_chain_without_a_result_is_an_error_and_undone() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        let c = cni(
            rec.clone(),
            dir.path(),
            r#"{"name": "n", "plugins": [{"type": "tuning"}]}"#,
        );
        let err = c.add(&attachment()).unwrap_err();
        assert!(err.to_string().contains("printed no result"), "{err}");
        assert_eq!(rec.seen(), pairs(&[("ADD", "tuning"), ("DEL", "tuning")]));
    }
}
