//! `patch TYPE NAME -p PATCH [--type strategic|merge|json]`: the patch is
//! JSON or YAML; kubectl's line says `(no change)` when the server left the
//! object as it was (same resourceVersion).

use serde_json::Value;

use super::targets::named;
use crate::error::{Result, usage};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TYPE NAME or TYPE/NAME.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
    pub resources: Vec<String>,
    /// The patch to be applied to the resource JSON file.
    #[arg(short = 'p', long)]
    pub patch: String,
    /// The type of patch being provided; one of [json merge strategic].
    #[arg(long = "type", default_value = "strategic")]
    pub patch_type: String,
}

/// The Content-Type of a patch type.
pub fn content_type(patch_type: &str) -> Result<&'static str> {
    match patch_type {
        "strategic" => Ok("application/strategic-merge-patch+json"),
        "merge" => Ok("application/merge-patch+json"),
        "json" => Ok("application/json-patch+json"),
        other => Err(usage(format!(
            "--type must be one of [json merge strategic], not \"{other}\""
        ))),
    }
}

/// The patch as JSON (kubectl reads YAML as well).
pub fn parse_patch(text: &str) -> Result<Value> {
    serde_json::from_str(text)
        .or_else(|_| serde_saphyr::from_str::<Value>(text))
        .map_err(|e| usage(format!("unable to parse \"{text}\": {e}")))
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let content_type = content_type(&args.patch_type)?;
    let patch = parse_patch(&args.patch)?;
    for n in named(session, &args.resources)? {
        let before = session.get_json(&n.uri).await?;
        let after = session.patch(&n.uri, content_type, &patch).await?;
        let same = before["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"];
        let suffix = if same { " (no change)" } else { "" };
        println!("{}/{} patched{suffix}", n.resource.kind_group(), n.name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patches_read_as_json_or_yaml_and_types_map_to_content_types() {
        assert_eq!(
            parse_patch(r#"{"spec":{"replicas":2}}"#).unwrap(),
            json!({"spec": {"replicas": 2}})
        );
        assert_eq!(
            parse_patch("spec:\n  replicas: 2\n").unwrap(),
            json!({"spec": {"replicas": 2}})
        );
        assert!(parse_patch("{not: [closed").is_err());
        assert_eq!(content_type("json").unwrap(), "application/json-patch+json");
        assert_eq!(
            content_type("apply").unwrap_err().to_string(),
            "error: --type must be one of [json merge strategic], not \"apply\""
        );
    }
}
