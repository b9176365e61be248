//! `diff -f FILE`: what `apply -f FILE` would change, as kubectl diff
//! shows it. Each object's live version and the version a server-side dry
//! run of the apply returns are written as YAML (without `managedFields`,
//! Secret values masked) to `LIVE-…` and `MERGED-…` directories, in files
//! named `[group.]version.Kind.namespace.name`, and `diff -u -N` (or
//! `$KUBECTL_EXTERNAL_DIFF`) compares the two directories. Exit code 0:
//! no differences; 1: differences; above 1: an error.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::apply::locate;
use crate::error::{CtlError, Result, usage};
use crate::print::yaml;
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The files and how they would be applied (as `apply`).
    #[command(flatten)]
    pub source: super::apply::Source,
}

/// kubectl's file name for an object.
pub fn file_name(group: &str, version: &str, kind: &str, namespace: &str, name: &str) -> String {
    let group = if group.is_empty() {
        String::new()
    } else {
        format!("{group}.")
    };
    format!("{group}{version}.{kind}.{namespace}.{name}")
}

/// Secret values replaced, as kubectl masks them: `***` when a key's value
/// is the same on both sides, `*** (before)` / `*** (after)` when it changed.
pub fn mask_secrets(live: &mut Option<Value>, merged: &mut Value) {
    if merged["kind"] != "Secret" {
        return;
    }
    for field in ["data", "stringData"] {
        let before = live
            .as_ref()
            .map(|l| l[field].clone())
            .unwrap_or(Value::Null);
        let after = merged[field].clone();
        let keys: std::collections::BTreeSet<String> = [&before, &after]
            .iter()
            .filter_map(|v| v.as_object())
            .flat_map(|m| m.keys().cloned())
            .collect();
        for k in keys {
            let (b, a) = (&before[&k], &after[&k]);
            let (mb, ma) = if b == a {
                ("***", "***")
            } else {
                ("*** (before)", "*** (after)")
            };
            if let Some(l) = live.as_mut().and_then(|l| l[field].as_object_mut())
                && l.contains_key(&k)
            {
                l.insert(k.clone(), Value::from(mb));
            }
            if let Some(m) = merged[field].as_object_mut()
                && m.contains_key(&k)
            {
                m.insert(k.clone(), Value::from(ma));
            }
        }
    }
}

fn without_managed_fields(mut v: Value) -> Value {
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    v
}

/// A fresh directory under the temp dir named `PREFIX-<random>`.
fn temp_dir(prefix: &str) -> Result<PathBuf> {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .tempdir()
        .map(|d| d.keep())
        .map_err(|e| usage(format!("creating a temporary directory: {e}")))
}

fn write(dir: &Path, name: &str, object: &Value) -> Result<()> {
    std::fs::write(dir.join(name), yaml::render(object))
        .map_err(|e| usage(format!("writing {}: {e}", dir.join(name).display())))
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let manifests = args.source.manifests()?;
    if manifests.is_empty() {
        return Err(usage("no objects passed to diff"));
    }
    let live_dir = temp_dir("LIVE")?;
    let merged_dir = temp_dir("MERGED")?;
    let result = async {
        for m in &manifests {
            let (resource, ns, name) = locate(session, m)?;
            let mut body = m.object.clone();
            if let Some(ns) = &ns {
                body["metadata"]["namespace"] = Value::from(ns.as_str());
            }
            let path = format!("{}/{name}", resource.path(ns.as_deref()));
            let mut live = match session.get_json(&path).await {
                Ok(v) => Some(without_managed_fields(v)),
                Err(CtlError::Server(s)) if s.code == 404 => None,
                Err(e) => return Err(e),
            };
            let uri = args.source.apply_uri(&path, true);
            let merged = session
                .patch(&uri, "application/apply-patch+yaml", &body)
                .await?;
            let mut merged = without_managed_fields(merged);
            mask_secrets(&mut live, &mut merged);
            let file = file_name(
                &resource.group,
                &resource.version,
                &resource.kind,
                ns.as_deref().unwrap_or_default(),
                &name,
            );
            if let Some(live) = &live {
                write(&live_dir, &file, live)?;
            }
            write(&merged_dir, &file, &merged)?;
        }
        // kubectl's default, or the user's program (its words split on spaces).
        let external = std::env::var("KUBECTL_EXTERNAL_DIFF")
            .ok()
            .filter(|s| !s.trim().is_empty());
        let mut words: Vec<String> = match &external {
            Some(cmd) => cmd.split_whitespace().map(str::to_string).collect(),
            None => vec!["diff".into(), "-u".into(), "-N".into()],
        };
        let program = words.remove(0);
        let status = std::process::Command::new(&program)
            .args(&words)
            .arg(&live_dir)
            .arg(&merged_dir)
            .status()
            .map_err(|e| usage(format!("failed to run \"{program}\": {e}")))?;
        match status.code() {
            Some(0) => Ok(()),
            Some(1) => Err(CtlError::Exit(1, String::new())),
            Some(code) => Err(CtlError::Exit(
                code,
                format!("error: diff exited with status {code}"),
            )),
            None => Err(usage(format!("{program} was killed"))),
        }
    }
    .await;
    let _ = std::fs::remove_dir_all(&live_dir);
    let _ = std::fs::remove_dir_all(&merged_dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn files_are_named_as_kubectl_names_them() {
        assert_eq!(
            file_name("apps", "v1", "Deployment", "default", "web"),
            "apps.v1.Deployment.default.web"
        );
        assert_eq!(
            file_name("", "v1", "ConfigMap", "default", "a"),
            "v1.ConfigMap.default.a"
        );
        assert_eq!(
            file_name("", "v1", "Namespace", "", "team"),
            "v1.Namespace..team"
        );
    }

    #[test]
    fn secret_values_never_reach_the_files() {
        let mut live = Some(
            json!({"kind": "Secret", "data": {"same": "YQ==", "changed": "Yg==", "gone": "Yw=="}}),
        );
        let mut merged =
            json!({"kind": "Secret", "data": {"same": "YQ==", "changed": "ZA==", "new": "ZQ=="}});
        mask_secrets(&mut live, &mut merged);
        assert_eq!(
            live.unwrap()["data"],
            json!({"same": "***", "changed": "*** (before)", "gone": "*** (before)"})
        );
        assert_eq!(
            merged["data"],
            json!({"same": "***", "changed": "*** (after)", "new": "*** (after)"})
        );
        let mut cm = json!({"kind": "ConfigMap", "data": {"k": "v"}});
        mask_secrets(&mut None, &mut cm);
        assert_eq!(cm["data"]["k"], "v");
    }
}
