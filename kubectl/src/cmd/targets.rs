//! What `get`, `delete`, `label`… are pointed at: `TYPE[,TYPE…] [NAME…]`
//! or `TYPE/NAME…`, as kubectl's resource builder reads its arguments.

use crate::discovery::Resource;
use crate::error::{Result, usage};
use crate::session::Session;

/// Resource types and, for each, the names asked for (empty = all).
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: Resource,
    pub names: Vec<String>,
}

/// The types `get all` stands for (kubectl's "all" category).
const ALL: &[&str] = &[
    "pods",
    "replicationcontrollers",
    "services",
    "daemonsets.apps",
    "deployments.apps",
    "replicasets.apps",
    "statefulsets.apps",
    "horizontalpodautoscalers.autoscaling",
    "cronjobs.batch",
    "jobs.batch",
];

/// Parses the positional arguments. Returns the targets and whether names
/// were given in `TYPE/NAME` form.
pub fn parse(session: &Session, args: &[String]) -> Result<(Vec<Target>, bool)> {
    if args.is_empty() {
        return Err(usage(
            "You must specify the type of resource to get. Use \"kubectl api-resources\" for a complete list of supported resources.\n",
        ));
    }
    if args[0].contains('/') {
        let mut targets: Vec<Target> = Vec::new();
        for arg in args {
            let (typed, name) = arg
                .split_once('/')
                .ok_or_else(|| usage(("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'").to_string()))?;
            let resource = session.catalog.resolve(typed)?.clone();
            match targets.iter_mut().find(|t| t.resource == resource) {
                Some(t) => t.names.push(name.to_string()),
                None => targets.push(Target {
                    resource,
                    names: vec![name.to_string()],
                }),
            }
        }
        return Ok((targets, true));
    }
    let names: Vec<String> = args[1..].to_vec();
    let mut targets = Vec::new();
    for typed in args[0].split(',').filter(|t| !t.is_empty()) {
        if typed == "all" {
            for t in ALL {
                if let Some(r) = session.catalog.find(t) {
                    targets.push(Target {
                        resource: r.clone(),
                        names: names.clone(),
                    });
                }
            }
            continue;
        }
        targets.push(Target {
            resource: session.catalog.resolve(typed)?.clone(),
            names: names.clone(),
        });
    }
    Ok((targets, false))
}

/// One object the arguments name: its type, name and URI.
#[derive(Debug, Clone)]
pub struct Named {
    pub resource: Resource,
    pub name: String,
    pub uri: String,
}

/// Every object `args` name, in order; kubectl's error when a type is
/// given without names (verbs that act on named objects only).
pub fn named(session: &Session, args: &[String]) -> Result<Vec<Named>> {
    let (targets, _) = parse(session, args)?;
    let mut out = Vec::new();
    for t in targets {
        if t.names.is_empty() {
            return Err(usage(
                "resource(s) were provided, but no name was specified",
            ));
        }
        let base = t.resource.path(session.ns_for(&t.resource, false));
        for name in &t.names {
            out.push(Named {
                resource: t.resource.clone(),
                name: name.clone(),
                uri: format!("{base}/{name}"),
            });
        }
    }
    Ok(out)
}
