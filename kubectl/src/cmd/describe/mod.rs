//! `describe TYPE [NAME_PREFIX…] | TYPE/NAME… [-l SELECTOR] [-A]
//! [--show-events=false]`: kubectl's describers, each printing what
//! kubectl prints (k8s.io/kubectl/pkg/describe).
//!
//! - One module per kind: [`pod`], [`replicaset`], [`deployment`],
//!   [`service`], [`endpoints`], [`node`], [`namespace`], [`configmap`],
//!   [`secret`]; every other kind goes through kubectl's [`generic`]
//!   describer (all fields, titled, then Events).
//! - [`writer`] is kubectl's prefix writer and tab alignment, [`events`]
//!   the `Events:` section.
//! - Objects are separated by two blank lines; `TYPE NAME` that is not
//!   found describes every object whose name starts with NAME, as
//!   kubectl does; errors are printed after what could be described.
//! - ConfigMap and Secret data: kubectl walks them in Go map order
//!   (random between runs); skiffctl sorts the keys.

pub mod configmap;
pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod generic;
pub mod namespace;
pub mod node;
pub mod pod;
pub mod replicaset;
pub mod secret;
pub mod service;
pub mod writer;

use serde_json::Value;

use super::targets::{Target, parse};
use crate::discovery::Resource;
use crate::error::{CtlError, Result, usage};
use crate::session::{Session, with_query};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TYPE [NAME…] or TYPE/NAME…
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
    pub resources: Vec<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Show events (default true).
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true")]
    pub show_events: String,
}

/// Go's `strconv.ParseBool`, with pflag's message when it fails.
pub fn parse_bool(flag: &str, text: &str) -> Result<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(usage(format!(
            "invalid argument \"{text}\" for \"--{flag}\" flag: strconv.ParseBool: parsing \"{text}\": invalid syntax"
        ))),
    }
}

/// The text describing `obj` of type `r`.
pub async fn describe_object(
    session: &Session,
    r: &Resource,
    obj: &Value,
    show_events: bool,
) -> String {
    // A listed item carries no kind; the events' reference needs it.
    let mut obj = obj.clone();
    if obj["kind"].as_str().is_none_or(str::is_empty) {
        obj["kind"] = Value::String(r.kind.clone());
        obj["apiVersion"] = Value::String(r.api_version());
    }
    let obj = &obj;
    match (r.group.as_str(), r.kind.as_str()) {
        ("", "Pod") => pod::describe(session, obj, show_events).await,
        ("apps", "ReplicaSet") => replicaset::describe(session, obj, show_events).await,
        ("apps", "Deployment") => deployment::describe(session, obj, show_events).await,
        ("", "Service") => service::describe(session, obj, show_events).await,
        ("", "Endpoints") => endpoints::describe(session, obj, show_events).await,
        ("", "Node") => node::describe(session, obj, show_events).await,
        ("", "Namespace") => namespace::describe(session, obj).await,
        ("", "ConfigMap") => configmap::describe(session, obj, show_events).await,
        ("", "Secret") => secret::render(obj),
        _ => {
            let events = if show_events {
                Some(events::search(session, &events::Reference::to(obj)).await)
            } else {
                None
            };
            generic::render(obj, events.as_deref())
        }
    }
}

fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

/// The objects of `t` the arguments stand for, and the errors on the way.
async fn objects(
    session: &Session,
    t: &Target,
    args: &Args,
    errors: &mut Vec<CtlError>,
) -> Vec<Value> {
    let r = &t.resource;
    if t.names.is_empty() {
        let uri = with_query(
            &r.path(session.ns_for(r, args.all_namespaces)),
            &[("labelSelector", args.selector.as_deref())],
        );
        return match session.get_json(&uri).await {
            Ok(list) => list["items"].as_array().cloned().unwrap_or_default(),
            Err(e) => {
                errors.push(e);
                vec![]
            }
        };
    }
    let mut found = Vec::new();
    for name in &t.names {
        let uri = format!("{}/{name}", r.path(session.ns_for(r, false)));
        match session.get_json(&uri).await {
            Ok(obj) => found.push(obj),
            Err(e) => errors.push(e),
        }
    }
    found
}

fn is_not_found(e: &CtlError) -> bool {
    matches!(e, CtlError::Server(s) if s.code == 404)
}

/// kubectl's `CheckErr` of an aggregate: one error as it is, several one
/// per line.
fn aggregate(mut errors: Vec<CtlError>) -> Result<()> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(CtlError::Raw(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    }
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    use std::io::Write;
    let show_events = parse_bool("show-events", &args.show_events)?;
    if args.resources.is_empty() {
        return Err(usage(
            "You must specify the type of resource to describe. Use \"kubectl api-resources\" for a complete list of supported resources.",
        ));
    }
    // `TYPE TYPE/NAME`: kubectl refuses the mix.
    if !args.resources[0].contains('/') && args.resources[1..].iter().any(|a| a.contains('/')) {
        return Err(usage(
            "there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'",
        ));
    }
    let (targets, _) = parse(session, &args.resources)?;
    let mut out = std::io::stdout().lock();
    let io = |e: std::io::Error| usage(e.to_string());
    let mut errors = Vec::new();
    let mut found = Vec::new();
    for t in &targets {
        for obj in objects(session, t, &args, &mut errors).await {
            found.push((t.resource.clone(), obj));
        }
    }
    // `TYPE NAME` not found: every object whose name starts with NAME.
    if args.resources.len() == 2
        && !args.resources[0].contains('/')
        && found.is_empty()
        && errors.len() == 1
        && is_not_found(&errors[0])
        && let [t] = targets.as_slice()
    {
        let prefix = &args.resources[1];
        let every = Target {
            resource: t.resource.clone(),
            names: vec![],
        };
        let plain = Args {
            resources: vec![],
            selector: None,
            all_namespaces: false,
            show_events: args.show_events.clone(),
        };
        let mut list_errors = Vec::new();
        let matching: Vec<Value> = objects(session, &every, &plain, &mut list_errors)
            .await
            .into_iter()
            .filter(|o| name_of(o).starts_with(prefix.as_str()))
            .collect();
        if let Some(e) = list_errors.pop() {
            return Err(e);
        }
        if matching.is_empty() {
            return aggregate(errors);
        }
        for obj in &matching {
            let text = describe_object(session, &t.resource, obj, show_events).await;
            writeln!(out, "{text}").map_err(io)?;
        }
        return Ok(());
    }
    for (i, (r, obj)) in found.iter().enumerate() {
        let text = describe_object(session, r, obj, show_events).await;
        if i > 0 {
            write!(out, "\n\n").map_err(io)?;
        }
        write!(out, "{text}").map_err(io)?;
        out.flush().map_err(io)?;
    }
    if found.is_empty() && errors.is_empty() {
        if args.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {} namespace.", session.namespace());
        }
    }
    aggregate(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_events_takes_go_booleans() {
        assert!(parse_bool("show-events", "true").unwrap());
        assert!(!parse_bool("show-events", "F").unwrap());
        assert_eq!(
            parse_bool("show-events", "nope").unwrap_err().to_string(),
            "error: invalid argument \"nope\" for \"--show-events\" flag: strconv.ParseBool: parsing \"nope\": invalid syntax"
        );
    }

    #[test]
    fn several_errors_are_one_per_line() {
        let e = aggregate(vec![usage("a"), usage("b")]).unwrap_err();
        assert_eq!(e.to_string(), "error: a\nerror: b");
        assert!(aggregate(vec![]).is_ok());
    }
}
