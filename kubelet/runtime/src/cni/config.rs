//! A CNI network configuration list (`*.conflist`): a name, a CNI version and
//! the chain of plugins, each with its own JSON handed to it on stdin.

use std::path::Path;

use serde_json::Value;

use super::CniError;

#[derive(Debug, Clone, PartialEq)]
pub struct NetworkList {
    pub name: String,
    pub cni_version: String,
    /// Each plugin's own configuration (it has at least `type`).
    pub plugins: Vec<Value>,
}

impl NetworkList {
    pub fn parse(text: &str, what: &str) -> Result<NetworkList, CniError> {
        let bad = |why: String| CniError::Config {
            what: what.to_string(),
            why,
        };
        let v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let name = v["name"]
            .as_str()
            .ok_or_else(|| bad("no \"name\"".into()))?;
        let cni_version = v["cniVersion"].as_str().unwrap_or("1.0.0");
        let plugins = v["plugins"]
            .as_array()
            .ok_or_else(|| bad("no \"plugins\" list".into()))?;
        if plugins.is_empty() {
            return Err(bad("\"plugins\" is empty".into()));
        }
        for p in plugins {
            if p["type"].as_str().is_none_or(str::is_empty) {
                return Err(bad(format!("a plugin without \"type\": {p}")));
            }
        }
        Ok(NetworkList {
            name: name.to_string(),
            cni_version: cni_version.to_string(),
            plugins: plugins.clone(),
        })
    }

    /// The first `.conflist` in `dir` by name, as container runtimes choose.
    pub fn load_dir(dir: &Path) -> Result<NetworkList, CniError> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| CniError::Config {
                what: dir.display().to_string(),
                why: e.to_string(),
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conflist"))
            .collect();
        files.sort();
        let first = files.first().ok_or_else(|| CniError::Config {
            what: dir.display().to_string(),
            why: "no .conflist file".into(),
        })?;
        let text = std::fs::read_to_string(first).map_err(|e| CniError::Config {
            what: first.display().to_string(),
            why: e.to_string(),
        })?;
        NetworkList::parse(&text, &first.display().to_string())
    }

    /// What plugin `i` reads on stdin: its config with the list's name and
    /// version, the previous plugin's result, and the runtime config its
    /// capabilities ask for.
    pub fn plugin_input(&self, i: usize, prev: Option<&Value>, runtime_config: &Value) -> Value {
        let mut conf = self.plugins[i].clone();
        conf["name"] = Value::String(self.name.clone());
        conf["cniVersion"] = Value::String(self.cni_version.clone());
        if let Some(prev) = prev {
            conf["prevResult"] = prev.clone();
        }
        // Only the capabilities a plugin declares are handed to it.
        if let Some(caps) = self.plugins[i]["capabilities"].as_object() {
            let mut rc = serde_json::Map::new();
            for (cap, on) in caps {
                if on.as_bool() == Some(true)
                    && let Some(v) = runtime_config.get(cap)
                {
                    rc.insert(cap.clone(), v.clone());
                }
            }
            if !rc.is_empty() {
                conf["runtimeConfig"] = Value::Object(rc);
            }
        }
        if let Some(obj) = conf.as_object_mut() {
            obj.remove("capabilities");
        }
        conf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIST: &str = r#"{"cniVersion": "1.0.0", "name": "skiff", "plugins": [
        {"type": "bridge", "bridge": "skiff0", "ipam": {"type": "host-local"}},
        {"type": "portmap", "capabilities": {"portMappings": true, "bandwidth": true}}
    ]}"#;

    #[test]
    fn parse_and_chain() {
        let l = NetworkList::parse(LIST, "test").unwrap();
        assert_eq!((l.name.as_str(), l.plugins.len()), ("skiff", 2));
        let rc =
            json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]});
        let first = l.plugin_input(0, None, &rc);
        assert_eq!(first["name"], "skiff");
        assert!(first.get("prevResult").is_none() && first.get("runtimeConfig").is_none());
        let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.244.0.5/24"}]});
        let second = l.plugin_input(1, Some(&prev), &rc);
        assert_eq!(second["prevResult"], prev);
        assert_eq!(second["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
        assert!(second.get("capabilities").is_none());
        assert!(
            second["runtimeConfig"].get("bandwidth").is_none(),
            "not given"
        );
    }

    #[test]
    fn bad_lists_say_why() {
        for (text, why) in [
            ("{", "EOF"),
            (r#"{"plugins": []}"#, "no \"name\""),
            (r#"{"name": "x", "plugins": []}"#, "empty"),
            (
                r#"{"name": "x", "plugins": [{"bridge": "b"}]}"#,
                "without \"type\"",
            ),
        ] {
            let err = NetworkList::parse(text, "f.conflist")
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("f.conflist: ") && err.contains(why),
                "{err}"
            );
        }
    }
}
