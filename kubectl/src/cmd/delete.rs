//! `delete`: by names, `-f`, `-l` or `--all`, with `--cascade` and
//! `--wait` (on by default, as in kubectl: returns once the objects are gone).

use std::time::Duration;

use serde_json::{Value, json};

use super::targets::parse;
use crate::error::{CtlError, Result, usage};
use crate::manifest::read_all;
use crate::session::{Session, with_query};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TYPE [NAME…] or TYPE/NAME…
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
    pub resources: Vec<String>,
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<String>,
    #[arg(short = 'R', long)]
    pub recursive: bool,
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Delete all resources of the types given.
    #[arg(long)]
    pub all: bool,
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// background|foreground|orphan
    #[arg(long, default_value = "background", num_args = 0..=1, default_missing_value = "background")]
    pub cascade: String,
    /// Wait for the objects to be gone before returning.
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true")]
    pub wait: String,
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Immediately remove (grace period 0).
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub ignore_not_found: bool,
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// One object to delete: (display type, collection path, name).
type Item = (String, String, String);

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let policy = match args.cascade.as_str() {
        "background" | "true" => "Background",
        "foreground" => "Foreground",
        "orphan" | "false" => "Orphan",
        other => {
            return Err(usage(format!(
                "invalid cascade value ({other}). Must be \"background\", \"foreground\", or \"orphan\""
            )));
        }
    };
    let mut items: Vec<Item> = Vec::new();
    if !args.files.is_empty() {
        for m in read_all(&args.files, args.recursive)? {
            let (r, ns, name) = super::apply::locate(session, &m)?;
            items.push((r.plural_group(), r.path(ns.as_deref()), name));
        }
    } else {
        let (targets, _) = parse(session, &args.resources)?;
        for t in &targets {
            let path = t
                .resource
                .path(session.ns_for(&t.resource, args.all_namespaces));
            if !t.names.is_empty() {
                for n in &t.names {
                    items.push((t.resource.plural_group(), path.clone(), n.clone()));
                }
                continue;
            }
            if args.selector.is_none() && !args.all {
                return Err(usage(
                    "resource(s) were provided, but no name was specified",
                ));
            }
            let list = session
                .get_json(&with_query(
                    &path,
                    &[("labelSelector", args.selector.as_deref())],
                ))
                .await?;
            for o in list["items"].as_array().cloned().unwrap_or_default() {
                let ns = o["metadata"]["namespace"].as_str();
                items.push((
                    t.resource.plural_group(),
                    t.resource.path(ns),
                    o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ));
            }
        }
        if items.is_empty() {
            let ns = if args.all_namespaces {
                String::new()
            } else {
                format!(" in {} namespace", session.namespace())
            };
            eprintln!("No resources found{ns}");
            return Ok(());
        }
    }
    let mut body =
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy});
    if args.force {
        body["gracePeriodSeconds"] = json!(0);
    } else if args.grace_period >= 0 {
        body["gracePeriodSeconds"] = json!(args.grace_period);
    }
    let mut errors = Vec::new();
    let mut deleted = Vec::new();
    for (kind, path, name) in &items {
        match session.delete(&format!("{path}/{name}"), &body).await {
            Ok(_) => {
                let singular = kind_label(session, kind);
                if args.output.as_deref() == Some("name") {
                    println!("{singular}/{name}");
                } else {
                    println!("{singular} \"{name}\" deleted");
                }
                deleted.push((path.clone(), name.clone()));
            }
            Err(CtlError::Server(s)) if s.code == 404 && args.ignore_not_found => {}
            Err(e @ CtlError::Server(_)) => errors.push(e),
            Err(e) => return Err(e),
        }
    }
    if args.wait == "true" {
        for (path, name) in &deleted {
            wait_gone(session, &format!("{path}/{name}")).await?;
        }
    }
    let n = errors.len();
    for (i, e) in errors.into_iter().enumerate() {
        if i + 1 == n {
            return Err(e);
        }
        eprintln!("{e}");
    }
    Ok(())
}

/// `pods` → `pod`, `deployments.apps` → `deployment.apps` (kubectl's delete lines).
fn kind_label(session: &Session, plural_group: &str) -> String {
    session
        .catalog
        .resources
        .iter()
        .find(|r| r.plural_group() == plural_group)
        .map(|r| r.kind_group())
        .unwrap_or_else(|| plural_group.to_string())
}

/// Polls until the object is gone (404) or its UID changed (recreated).
async fn wait_gone(session: &Session, uri: &str) -> Result<()> {
    let mut first_uid: Option<Value> = None;
    loop {
        match session.get_json(uri).await {
            Err(CtlError::Server(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(e),
            Ok(o) => {
                let uid = o["metadata"]["uid"].clone();
                match &first_uid {
                    None => first_uid = Some(uid),
                    Some(u) if *u != uid => return Ok(()),
                    _ => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
