//! `set image TYPE NAME CONTAINER=IMAGE…` (`*` for every container): one
//! strategic merge patch of the pod template's containers, keyed by name.
//! Pods, Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs and
//! CronJobs.

use serde_json::{Value, json};

use super::targets::named;
use crate::error::{Result, usage};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Update the image of a pod template.
    Image {
        /// TYPE NAME or TYPE/NAME…, then CONTAINER=IMAGE…
        args: Vec<String>,
    },
}

/// Where the pod spec is in an object of `kind`, as JSON path segments.
fn pod_spec_path(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &["spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => &["spec", "template", "spec"],
    }
}

/// Nests `leaf` under `path`: ["spec", "template"] → {"spec": {"template": leaf}}.
fn nest(path: &[&str], leaf: Value) -> Value {
    path.iter()
        .rev()
        .fold(leaf, |inner, k| json!({ *k: inner }))
}

/// The patch setting `images` (container name or `*` → image) in `object`,
/// None when every container already has its image; kubectl's error for a
/// container that is not there.
pub fn plan(object: &Value, images: &[(String, String)]) -> Result<Option<Value>> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let path = pod_spec_path(kind);
    let spec = path.iter().fold(object, |v, k| &v[*k]);
    let mut patch = serde_json::Map::new();
    let mut changed = false;
    for field in ["initContainers", "containers"] {
        let mut entries = Vec::new();
        for c in spec[field].as_array().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or_default();
            let wanted = images
                .iter()
                .find(|(n, _)| n == name)
                .or_else(|| images.iter().find(|(n, _)| n == "*"));
            if let Some((_, image)) = wanted {
                changed |= c["image"].as_str() != Some(image);
                entries.push(json!({"name": name, "image": image}));
            }
        }
        if !entries.is_empty() {
            patch.insert(field.to_string(), Value::Array(entries));
        }
    }
    for (name, _) in images {
        let exists = ["initContainers", "containers"]
            .iter()
            .flat_map(|f| spec[*f].as_array().into_iter().flatten())
            .any(|c| c["name"] == name.as_str());
        if name != "*" && !exists {
            return Err(usage(format!("unable to find container named \"{name}\"")));
        }
    }
    Ok(changed.then(|| nest(path, Value::Object(patch))))
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let Sub::Image { args } = args.command;
    let first = args
        .iter()
        .position(|a| a.contains('='))
        .unwrap_or(args.len());
    let images: Vec<(String, String)> = args[first..]
        .iter()
        .filter_map(|a| {
            a.split_once('=')
                .map(|(c, i)| (c.to_string(), i.to_string()))
        })
        .collect();
    if images.is_empty() {
        return Err(usage("at least one image update is required"));
    }
    for n in named(session, &args[..first])? {
        let object = session.get_json(&n.uri).await?;
        // Nothing to change: kubectl says nothing either.
        if let Some(patch) = plan(&object, &images)? {
            session
                .patch(&n.uri, "application/strategic-merge-patch+json", &patch)
                .await?;
            println!("{}/{} image updated", n.resource.kind_group(), n.name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "busybox:1"}],
            "containers": [{"name": "web", "image": "nginx:1"}, {"name": "side", "image": "envoy:1"}]}}}})
    }

    fn pair(c: &str, i: &str) -> (String, String) {
        (c.into(), i.into())
    }

    #[test]
    fn patches_the_named_containers_of_the_pod_template() {
        let p = plan(&deployment(), &[pair("web", "nginx:2")])
            .unwrap()
            .unwrap();
        assert_eq!(
            p,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}})
        );
        let all = plan(&deployment(), &[pair("*", "x:9")]).unwrap().unwrap();
        let spec = &all["spec"]["template"]["spec"];
        assert_eq!(spec["containers"].as_array().unwrap().len(), 2);
        assert_eq!(spec["initContainers"][0]["image"], "x:9");
        let pod = json!({"kind": "Pod", "spec": {"containers": [{"name": "web", "image": "a"}]}});
        assert_eq!(
            plan(&pod, &[pair("web", "b")]).unwrap().unwrap(),
            json!({"spec": {"containers": [{"name": "web", "image": "b"}]}})
        );
    }

    #[test]
    fn no_change_and_unknown_containers() {
        assert_eq!(
            plan(&deployment(), &[pair("web", "nginx:1")]).unwrap(),
            None
        );
        assert_eq!(
            plan(&deployment(), &[pair("nope", "x")])
                .unwrap_err()
                .to_string(),
            "error: unable to find container named \"nope\""
        );
    }
}
