//! A CNI network configuration list (`*.conflist`): a name, a CNI version and
//! the chain of plugins, each with its own JSON handed to it on stdin.

use std::path::Path;

use serde_json::{Value, json};

use super::{CniError, version};

#[derive(Debug, Clone, PartialEq)]
pub struct NetworkList {
    pub name: String,
    /// The spec version every plugin of the list is called with (the list's
    /// `cniVersion`, or the highest of its `cniVersions` this runtime speaks).
    pub cni_version: String,
    /// Each plugin's own configuration (it has at least `type`).
    pub plugins: Vec<Value>,
    /// `disableCheck`: the administrator knows CHECK gives spurious errors
    /// for this list, so the runtime must not call it.
    pub disable_check: bool,
}

/// Network names as the spec allows them: alphanumeric first, then
/// alphanumerics, `_`, `.` or `-`. (They end up in file names.)
fn valid_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl NetworkList {
    /// A `.conflist`, or a single plugin's `.conf` (a list of one, as
    /// runtimes have always accepted).
    pub fn parse(text: &str, what: &str) -> Result<NetworkList, CniError> {
        let bad = |why: String| CniError::Config {
            what: what.to_string(),
            why,
        };
        let v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let name = v["name"]
            .as_str()
            .ok_or_else(|| bad("no \"name\"".into()))?;
        if !valid_name(name) {
            return Err(bad(format!(
                "network name {name:?}: letters, digits, '_', '.', '-'"
            )));
        }
        let cni_version = match v["cniVersions"].as_array() {
            // CNI 1.1: several versions offered; the highest we speak wins.
            Some(offered) => version::choose(offered.iter().filter_map(Value::as_str))
                .ok_or_else(|| bad(format!("none of cniVersions {offered:?} is supported")))?,
            None => v["cniVersion"].as_str().unwrap_or(version::DEFAULT),
        };
        if version::parse(cni_version).is_none() {
            return Err(bad(format!("cniVersion {cni_version:?} is not a version")));
        }
        let plugins = match (v["plugins"].as_array(), v.get("type")) {
            (Some(plugins), _) => plugins.clone(),
            (None, Some(_)) => {
                let mut single = v.clone();
                if let Some(o) = single.as_object_mut() {
                    o.remove("cniVersions");
                }
                vec![single]
            }
            (None, None) => return Err(bad("no \"plugins\" list".into())),
        };
        if plugins.is_empty() {
            return Err(bad("\"plugins\" is empty".into()));
        }
        for p in &plugins {
            // `type` names an executable in the plugin dirs: a bare file name.
            match p["type"].as_str() {
                Some(t) if !t.is_empty() && !t.contains('/') && t != "." && t != ".." => {}
                _ => return Err(bad(format!("a plugin without a valid \"type\": {p}"))),
            }
        }
        let disable_check = match &v["disableCheck"] {
            Value::Bool(b) => *b,
            // The 1.0 spec wrote it as a string.
            Value::String(s) => s == "true",
            _ => false,
        };
        Ok(NetworkList {
            name: name.to_string(),
            cni_version: cni_version.to_string(),
            plugins,
            disable_check,
        })
    }

    /// The first valid network configuration in `dir` by file name
    /// (`.conflist`, `.conf`, `.json`), as container runtimes choose.
    pub fn load_dir(dir: &Path) -> Result<NetworkList, CniError> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| CniError::Config {
                what: dir.display().to_string(),
                why: e.to_string(),
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "conflist" || x == "conf" || x == "json")
            })
            .collect();
        files.sort();
        let mut first_err = None;
        for file in &files {
            let loaded = std::fs::read_to_string(file)
                .map_err(|e| CniError::Config {
                    what: file.display().to_string(),
                    why: e.to_string(),
                })
                .and_then(|text| NetworkList::parse(&text, &file.display().to_string()));
            match loaded {
                Ok(list) => return Ok(list),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping CNI configuration");
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| CniError::Config {
            what: dir.display().to_string(),
            why: "no .conflist, .conf or .json file".into(),
        }))
    }

    /// Whether a plugin takes its address ranges from the runtime
    /// (`"capabilities": {"ipRanges": true}`): the node's pod CIDR.
    pub fn wants_ip_ranges(&self) -> bool {
        self.plugins
            .iter()
            .any(|p| p["capabilities"]["ipRanges"] == Value::Bool(true))
    }

    /// The list as JSON again (kept with each ADD result, so a DEL after the
    /// file changed still undoes what was actually done).
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "cniVersion": self.cni_version,
               "disableCheck": self.disable_check, "plugins": self.plugins})
    }

    /// The plugin types, in order.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.plugins.iter().filter_map(|p| p["type"].as_str())
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
                "without a valid \"type\"",
            ),
            (
                r#"{"name": "x", "plugins": [{"type": "../../bin/sh"}]}"#,
                "without a valid \"type\"",
            ),
            (r#"{"name": "-x", "plugins": []}"#, "network name"),
            (
                r#"{"name": "x", "cniVersions": ["7.0.0"], "plugins": []}"#,
                "none of cniVersions",
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

    #[test]
    fn versions_single_plugin_files_and_disable_check() {
        let l = NetworkList::parse(
            r#"{"name": "n", "cniVersions": ["0.4.0", "1.1.0"], "disableCheck": "true",
                "plugins": [{"type": "bridge"}]}"#,
            "t",
        )
        .unwrap();
        assert_eq!((l.cni_version.as_str(), l.disable_check), ("1.1.0", true));
        let single = NetworkList::parse(
            r#"{"name": "n", "cniVersion": "0.4.0", "type": "ptp"}"#,
            "t",
        )
        .unwrap();
        assert_eq!(single.types().collect::<Vec<_>>(), ["ptp"]);
        assert_eq!(single.cni_version, "0.4.0");
        assert!(!single.disable_check);
        let again = NetworkList::parse(&single.to_json().to_string(), "t").unwrap();
        assert_eq!(again, single);
    }

    #[test]
    fn load_dir_takes_the_first_valid_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("00-broken.conflist"), "{").unwrap();
        std::fs::write(dir.path().join("05-notes.txt"), "ignored").unwrap();
        std::fs::write(
            dir.path().join("10-a.conf"),
            r#"{"name": "a", "type": "bridge"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("20-b.conflist"), LIST).unwrap();
        assert_eq!(NetworkList::load_dir(dir.path()).unwrap().name, "a");
        let empty = tempfile::tempdir().unwrap();
        let err = NetworkList::load_dir(empty.path()).unwrap_err();
        assert!(err.to_string().contains("no .conflist"), "{err}");
    }
}
