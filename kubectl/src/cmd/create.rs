//! `create namespace|deployment|configmap`: kubectl's generators, the
//! objects POSTed as JSON.

use serde_json::{Value, json};

use crate::error::{Result, usage};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Create a namespace with the specified name.
    #[command(alias = "ns")]
    Namespace { name: String },
    /// Create a deployment with the specified name.
    #[command(alias = "deploy")]
    Deployment {
        name: String,
        #[arg(long, required = true)]
        image: Vec<String>,
        #[arg(long, default_value_t = 1)]
        replicas: i64,
        #[arg(long)]
        port: Option<i64>,
    },
    /// Create a config map from literal values.
    #[command(alias = "cm")]
    Configmap {
        name: String,
        #[arg(long)]
        from_literal: Vec<String>,
    },
}

/// The container name kubectl derives from an image: its last path
/// element without tag or digest.
pub fn container_name(image: &str) -> String {
    let base = image.rsplit('/').next().unwrap_or(image);
    let base = base.split('@').next().unwrap_or(base);
    base.split(':').next().unwrap_or(base).to_string()
}

/// The object and the resource (as typed to the catalog) it goes to.
pub fn generate(what: &What, namespace: &str) -> Result<(Value, &'static str)> {
    Ok(match what {
        What::Namespace { name } => (
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            "namespaces",
        ),
        What::Deployment {
            name,
            image,
            replicas,
            port,
        } => {
            let containers: Vec<Value> = image
                .iter()
                .map(|i| {
                    let mut c = json!({"name": container_name(i), "image": i, "resources": {}});
                    if let Some(p) = port {
                        c["ports"] = json!([{"containerPort": p}]);
                    }
                    c
                })
                .collect();
            (
                json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                    "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                             "strategy": {},
                             // kubectl's typed generator leaves `creationTimestamp: null` in the
                             // template; the server keeps it, so do the same.
                             "template": {"metadata": {"creationTimestamp": null, "labels": {"app": name}},
                                          "spec": {"containers": containers}}},
                }),
                "deployments.apps",
            )
        }
        What::Configmap { name, from_literal } => {
            let mut data = serde_json::Map::new();
            for lit in from_literal {
                let (k, v) = lit.split_once('=').ok_or_else(|| {
                    usage(format!("invalid literal source {lit}, expected key=value"))
                })?;
                data.insert(k.to_string(), json!(v));
            }
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": namespace}, "data": data}),
                "configmaps",
            )
        }
    })
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let (object, typed) = generate(&args.what, session.namespace())?;
    let r = session.catalog.resolve(typed)?;
    session
        .post(&r.path(Some(session.namespace())), &object)
        .await?;
    println!(
        "{}/{} created",
        r.kind_group(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_come_from_the_image() {
        for (image, name) in [
            ("nginx", "nginx"),
            ("nginx:1.27", "nginx"),
            ("registry.example:5000/team/app:v1", "app"),
            ("busybox@sha256:abc", "busybox"),
        ] {
            assert_eq!(container_name(image), name);
        }
    }
}
