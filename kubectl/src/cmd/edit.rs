//! `edit TYPE/NAME`: the object as YAML in `$KUBE_EDITOR` (else `$EDITOR`,
//! else `vi`), then what changed sent back as a JSON merge patch carrying
//! the resourceVersion that was edited (so an edit made on a stale copy
//! conflicts instead of undoing someone's change). As kubectl: lines
//! starting with `#` are ignored, an empty file or no change cancels, and
//! a write the server refuses reopens the editor with its reasons on top.

use serde_json::{Map, Value};

use super::targets::parse;
use crate::error::{CtlError, Result, server_message, usage};
use crate::print::yaml;
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TYPE NAME or TYPE/NAME.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
    pub resources: Vec<String>,
}

const HEADER: &str = "\
# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving this file will be
# reopened with the relevant failures.
#
";

/// The JSON merge patch (RFC 7386) that turns `old` into `new`: changed
/// fields set, removed ones null, lists replaced whole.
pub fn merge_patch(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut patch = Map::new();
            for (k, va) in a {
                match b.get(k) {
                    None => {
                        patch.insert(k.clone(), Value::Null);
                    }
                    Some(vb) => {
                        if let Some(p) = merge_patch(va, vb) {
                            patch.insert(k.clone(), p);
                        }
                    }
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    patch.insert(k.clone(), vb.clone());
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (a, b) if a == b => None,
        (_, b) => Some(b.clone()),
    }
}

/// The edited text without comment lines, or None when nothing is left.
pub fn uncommented(text: &str) -> Option<String> {
    let kept: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    (!kept.trim().is_empty()).then_some(kept)
}

/// The reasons the server gave, as comment lines for the reopened file.
fn error_comment(err: &CtlError) -> String {
    let text = match err {
        CtlError::Server(s) => server_message(s),
        other => other.to_string(),
    };
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(&format!("# {line}\n"));
    }
    out.push_str("#\n");
    out
}

/// Runs the editor on `path` through the shell, as kubectl does.
fn run_editor(path: &std::path::Path) -> Result<()> {
    let editor = std::env::var("KUBE_EDITOR")
        .ok()
        .or_else(|| std::env::var("EDITOR").ok())
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(path)
        .status()
        .map_err(|e| usage(format!("unable to launch the editor \"{editor}\": {e}")))?;
    if !status.success() {
        return Err(usage(format!(
            "there was a problem with the editor \"{editor}\""
        )));
    }
    Ok(())
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let (targets, _) = parse(session, &args.resources)?;
    let [t] = targets.as_slice() else {
        return Err(usage("edit one resource at a time, e.g. deploy/web"));
    };
    let [name] = t.names.as_slice() else {
        return Err(usage("edit needs one name, e.g. deploy/web"));
    };
    let uri = format!(
        "{}/{name}",
        t.resource.path(session.ns_for(&t.resource, false))
    );
    let mut original = session.get_json(&uri).await?;
    if let Some(m) = original["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    let file = tempfile::Builder::new()
        .prefix("skiffctl-edit-")
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| usage(e.to_string()))?;
    let path = file.path().to_path_buf();
    let io = |e: std::io::Error| usage(format!("{}: {e}", path.display()));
    let mut shown = format!("{HEADER}{}", yaml::render(&original));
    let label = format!("{}/{name}", t.resource.kind_group());
    // Set once the editor is reopened with the server's reasons.
    let mut after_error = false;
    loop {
        std::fs::write(&path, &shown).map_err(io)?;
        run_editor(&path)?;
        let text = std::fs::read_to_string(&path).map_err(io)?;
        let Some(kept) = uncommented(&text) else {
            eprintln!("Edit cancelled, no changes made.");
            return Ok(());
        };
        if uncommented(&shown) == Some(kept.clone()) {
            if after_error {
                // Reopened after an error and saved unchanged: give up, as kubectl.
                let copy = path.with_extension("kept.yaml");
                std::fs::write(&copy, &text).map_err(io)?;
                return Err(CtlError::Raw(format!(
                    "error: Edit cancelled, no valid changes were saved.\nA copy of your changes has been stored to \"{}\"",
                    copy.display()
                )));
            }
            eprintln!("Edit cancelled, no changes made.");
            return Ok(());
        }
        let edited: Value = match serde_saphyr::from_str(&kept) {
            Ok(v) => v,
            Err(e) => {
                let err = usage(format!("error parsing {}: {e}", path.display()));
                shown = format!("{HEADER}{}{kept}", error_comment(&err));
                after_error = true;
                continue;
            }
        };
        let Some(mut patch) = merge_patch(&original, &edited) else {
            eprintln!("Edit cancelled, no changes made.");
            return Ok(());
        };
        patch["metadata"]["resourceVersion"] = original["metadata"]["resourceVersion"].clone();
        match session
            .patch(&uri, "application/merge-patch+json", &patch)
            .await
        {
            Ok(_) => {
                println!("{label} edited");
                return Ok(());
            }
            Err(err @ (CtlError::Server(_) | CtlError::Usage(_))) => {
                shown = format!("{HEADER}{}{kept}", error_comment(&err));
                after_error = true;
            }
            Err(other) => return Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patches_carry_only_the_edit() {
        let old = json!({"metadata": {"name": "web", "labels": {"a": "1", "b": "2"}},
                         "spec": {"replicas": 2, "ports": [{"port": 80}]}});
        let new = json!({"metadata": {"name": "web", "labels": {"a": "1", "c": "3"}},
                         "spec": {"replicas": 3, "ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(
            merge_patch(&old, &new).unwrap(),
            json!({"metadata": {"labels": {"b": null, "c": "3"}},
                   "spec": {"replicas": 3, "ports": [{"port": 80}, {"port": 443}]}})
        );
        assert_eq!(merge_patch(&old, &old), None);
    }

    #[test]
    fn comments_are_dropped_and_an_empty_file_is_nothing() {
        assert_eq!(
            uncommented(&format!("{HEADER}a: 1\n  # not a key\n")).unwrap(),
            "a: 1\n"
        );
        assert_eq!(uncommented(HEADER), None);
        assert_eq!(uncommented("\n\n"), None);
    }
}
