//! `label` and `annotate`: `TYPE NAME key=value key-`, `--overwrite`,
//! applied as a JSON merge patch on `metadata.labels`/`annotations`.

use serde_json::{Map, Value, json};

use super::targets::parse;
use crate::error::{Result, usage};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TYPE NAME… or TYPE/NAME…, then key=value or key-.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
    pub args: Vec<String>,
    /// Overwrite existing values.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Clone, Copy)]
pub enum Which {
    Labels,
    Annotations,
}

impl Which {
    fn field(self) -> &'static str {
        match self {
            Which::Labels => "labels",
            Which::Annotations => "annotations",
        }
    }
    fn verb(self) -> &'static str {
        match self {
            Which::Labels => "labeled",
            Which::Annotations => "annotated",
        }
    }
}

/// The change asked for: key → Some(value) to set, None to remove.
pub type Changes = Vec<(String, Option<String>)>;

/// Splits arguments into resource arguments and changes (kubectl reads
/// resources until the first `k=v` or `k-`).
pub fn split(args: &[String]) -> (Vec<String>, Changes) {
    let first = args
        .iter()
        .position(|a| a.contains('=') || (a.ends_with('-') && a.len() > 1))
        .unwrap_or(args.len());
    let changes = args[first..]
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.trim_end_matches('-').to_string(), None),
        })
        .collect();
    (args[..first].to_vec(), changes)
}

/// The merge patch for `current`, or an error kubectl would give; `None`
/// when nothing changes.
pub fn plan(
    current: &Map<String, Value>,
    changes: &Changes,
    overwrite: bool,
) -> Result<Option<Value>> {
    let mut patch = Map::new();
    for (k, v) in changes {
        match v {
            Some(v) => {
                match current.get(k).and_then(Value::as_str) {
                    Some(old) if old == v => continue,
                    Some(old) if !overwrite => {
                        return Err(usage(format!(
                            "'{k}' already has a value ({old}), and --overwrite is false"
                        )));
                    }
                    _ => {}
                }
                patch.insert(k.clone(), json!(v));
            }
            None => {
                if current.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
        }
    }
    Ok((!patch.is_empty()).then_some(Value::Object(patch)))
}

pub async fn run(session: &Session, args: Args, which: Which) -> Result<()> {
    let (resources, changes) = split(&args.args);
    if changes.is_empty() {
        return Err(usage(format!(
            "at least one {} update is required",
            &which.field()[..which.field().len() - 1]
        )));
    }
    let (targets, _) = parse(session, &resources)?;
    for t in &targets {
        for name in &t.names {
            let uri = format!(
                "{}/{name}",
                t.resource.path(session.ns_for(&t.resource, false))
            );
            let object = session.get_json(&uri).await?;
            let current = object["metadata"][which.field()]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let label = format!("{}/{name}", t.resource.kind_group());
            let patch = plan(&current, &changes, args.overwrite)?;
            let word = outcome(which, &current, patch.as_ref());
            if let Some(patch) = patch {
                let body = json!({"metadata": {which.field(): patch}});
                session
                    .patch(&uri, "application/merge-patch+json", &body)
                    .await?;
            }
            println!("{label} {word}");
        }
    }
    Ok(())
}

/// kubectl's word: `annotate` always says "annotated"; `label` says
/// "unlabeled" when keys were only removed, "not labeled" when nothing
/// changed.
pub fn outcome(which: Which, current: &Map<String, Value>, patch: Option<&Value>) -> &'static str {
    let Which::Labels = which else {
        return which.verb();
    };
    let Some(patch) = patch.and_then(Value::as_object) else {
        return "not labeled";
    };
    let added = patch
        .iter()
        .any(|(k, v)| !v.is_null() && !current.contains_key(k));
    let removed = patch.values().any(Value::is_null);
    if removed && !added {
        "unlabeled"
    } else {
        "labeled"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resources_then_changes() {
        let (res, changes) = split(&strings(&["pod", "web", "a=1", "b-"]));
        assert_eq!(res, ["pod", "web"]);
        assert_eq!(
            changes,
            vec![("a".into(), Some("1".into())), ("b".into(), None)]
        );
    }

    #[test]
    fn overwrite_is_required_to_change_a_value() {
        let current: Map<String, Value> = serde_json::from_str(r#"{"app":"web"}"#).unwrap();
        let change = vec![("app".to_string(), Some("db".to_string()))];
        let err = plan(&current, &change, false).unwrap_err().to_string();
        assert_eq!(
            err,
            "error: 'app' already has a value (web), and --overwrite is false"
        );
        assert_eq!(
            plan(&current, &change, true).unwrap(),
            Some(json!({"app": "db"}))
        );
        let same = vec![("app".to_string(), Some("web".to_string()))];
        assert_eq!(plan(&current, &same, false).unwrap(), None);
        let remove = vec![("app".to_string(), None)];
        assert_eq!(
            plan(&current, &remove, false).unwrap(),
            Some(json!({"app": null}))
        );
    }
}
