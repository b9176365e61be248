//! A recording fake of plugin execution, for tests that need a pod network
//! without root or plugins (the sandbox logic here, the CRI layer above):
//! every call is recorded, ADD of the first plugin hands out the next IP of
//! a /24 like host-local would, chained plugins echo `prevResult` as the
//! spec asks, VERSION speaks every version this runtime does, and any
//! command of any plugin can be made to fail.

use std::sync::Mutex;

use serde_json::{Value, json};

use super::CniError;
use super::exec::{Call, PluginExec};
use super::version;

#[derive(Debug)]
pub struct FakeExec {
    /// Every call, in order.
    pub calls: Mutex<Vec<Call>>,
    /// `(command, plugin)` that fails with code 11 ("try again later").
    pub fail: Mutex<Option<(String, String)>>,
    /// `10.244.9.` — addresses are this plus 2, 3, …
    prefix: String,
    next: Mutex<u32>,
}

impl FakeExec {
    /// A fake whose pods get `<prefix>2`, `<prefix>3`, … (`prefix` like `10.244.9.`).
    pub fn new(prefix: &str) -> FakeExec {
        FakeExec {
            calls: Mutex::default(),
            fail: Mutex::default(),
            prefix: prefix.to_string(),
            next: Mutex::new(2),
        }
    }

    /// Makes `command` of `plugin` fail from now on.
    pub fn fail(&self, command: &str, plugin: &str) {
        *self.fail.lock().unwrap() = Some((command.into(), plugin.into()));
    }

    /// The calls as `"ADD bridge sb1"`.
    pub fn seen(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| format!("{} {} {}", c.command, c.plugin, c.container_id))
            .collect()
    }
}

impl PluginExec for FakeExec {
    fn exec(&self, call: &Call) -> Result<Value, CniError> {
        self.calls.lock().unwrap().push(call.clone());
        let fails = self
            .fail
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|(c, p)| c == call.command && *p == call.plugin);
        if fails {
            return Err(CniError::Plugin {
                plugin: call.plugin.clone(),
                command: call.command,
                code: 11,
                msg: "told to fail".into(),
                details: String::new(),
            });
        }
        Ok(match call.command {
            "ADD" => match call.stdin.get("prevResult") {
                Some(prev) => prev.clone(),
                None => {
                    let mut next = self.next.lock().unwrap();
                    let ip = format!("{}{}", self.prefix, *next);
                    *next += 1;
                    json!({
                        "cniVersion": call.stdin["cniVersion"],
                        "interfaces": [{"name": call.ifname, "sandbox": call.netns}],
                        "ips": [{"address": format!("{ip}/24"), "interface": 0}],
                    })
                }
            },
            "VERSION" => json!({
                "cniVersion": call.stdin["cniVersion"],
                "supportedVersions": version::SUPPORTED,
            }),
            _ => Value::Null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::{Attachment, Cni, NetworkList, pod_ip};
    use std::sync::Arc;

    #[test]
    fn hands_out_ips_echoes_prev_results_and_speaks_every_version() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(FakeExec::new("10.1.2."));
        let cni = Cni {
            list: NetworkList::parse(
                r#"{"name": "n", "plugins": [{"type": "bridge"}, {"type": "portmap"}]}"#,
                "t",
            )
            .unwrap(),
            exec: fake.clone(),
            cache_dir: dir.path().to_path_buf(),
        };
        cni.check_versions().unwrap();
        let attach = |id: &str| Attachment {
            container_id: id.into(),
            netns: format!("/run/{id}/net"),
            ifname: "eth0".into(),
            args: String::new(),
            runtime_config: json!({}),
        };
        assert_eq!(pod_ip(&cni.add(&attach("a")).unwrap()).unwrap(), "10.1.2.2");
        assert_eq!(pod_ip(&cni.add(&attach("b")).unwrap()).unwrap(), "10.1.2.3");
        fake.fail("DEL", "portmap");
        assert!(cni.del(&attach("a")).is_err());
        assert_eq!(
            fake.seen()[2..],
            [
                "ADD bridge a",
                "ADD portmap a",
                "ADD bridge b",
                "ADD portmap b",
                "DEL portmap a"
            ]
        );
    }
}
