//! `cordon` and `uncordon`: set or clear a Node's `spec.unschedulable`, so
//! the scheduler stops (or resumes) placing pods there. Pods already on the
//! node stay (that is `drain`'s job).

use serde_json::{Value, json};

use crate::error::{Result, usage};
use crate::session::{Session, with_query};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// NODE… (or none with -l).
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::nodes))]
    pub nodes: Vec<String>,
    /// Selector (label query) to filter nodes on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

/// The patch that makes `node` (un)schedulable, or None if it already is.
pub fn plan(node: &Value, cordon: bool) -> Option<Value> {
    let unschedulable = node["spec"]["unschedulable"] == true;
    // `false` is the default and kubectl's two-way patch drops the field.
    (unschedulable != cordon)
        .then(|| json!({"spec": {"unschedulable": if cordon { json!(true) } else { Value::Null }}}))
}

pub async fn run(session: &Session, args: Args, cordon: bool) -> Result<()> {
    let mut nodes: Vec<Value> = Vec::new();
    for name in &args.nodes {
        nodes.push(session.get_json(&format!("/api/v1/nodes/{name}")).await?);
    }
    if let Some(selector) = &args.selector {
        let list = session
            .get_json(&with_query(
                "/api/v1/nodes",
                &[("labelSelector", Some(selector))],
            ))
            .await?;
        nodes.extend(list["items"].as_array().cloned().unwrap_or_default());
    } else if args.nodes.is_empty() {
        return Err(usage(
            "resource(s) were provided, but no name was specified",
        ));
    }
    let verb = if cordon { "cordoned" } else { "uncordoned" };
    for node in &nodes {
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        match plan(node, cordon) {
            None => println!("node/{name} already {verb}"),
            Some(patch) => {
                session
                    .patch(
                        &format!("/api/v1/nodes/{name}"),
                        "application/strategic-merge-patch+json",
                        &patch,
                    )
                    .await?;
                println!("node/{name} {verb}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_only_a_change() {
        let open = json!({"spec": {}});
        let closed = json!({"spec": {"unschedulable": true}});
        assert_eq!(
            plan(&open, true),
            Some(json!({"spec": {"unschedulable": true}}))
        );
        assert_eq!(plan(&closed, true), None);
        assert_eq!(
            plan(&closed, false),
            Some(json!({"spec": {"unschedulable": null}}))
        );
        assert_eq!(plan(&open, false), None);
    }
}
