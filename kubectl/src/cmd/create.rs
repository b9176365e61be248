//! `create namespace|deployment|configmap|secret generic|service
//! clusterip|nodeport`: kubectl's generators, the objects POSTed as JSON.

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
    /// Create a secret (`generic` from literal values).
    Secret {
        #[command(subcommand)]
        kind: SecretKind,
    },
    /// Create a service (`clusterip`, `nodeport`).
    #[command(alias = "svc")]
    Service {
        #[command(subcommand)]
        kind: ServiceKind,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum SecretKind {
    /// Create a secret from literal values.
    Generic {
        name: String,
        #[arg(long)]
        from_literal: Vec<String>,
        /// The secret's type.
        #[arg(long = "type")]
        secret_type: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ServiceKind {
    /// Create a ClusterIP service.
    Clusterip {
        name: String,
        /// Port pairs PORT:TARGET_PORT.
        #[arg(long)]
        tcp: Vec<String>,
        /// Assign your own ClusterIP or set to 'None' for a headless service.
        #[arg(long)]
        clusterip: Option<String>,
    },
    /// Create a NodePort service.
    Nodeport {
        name: String,
        #[arg(long)]
        tcp: Vec<String>,
        /// Port used to expose the service on each node.
        #[arg(long)]
        node_port: Option<i64>,
    },
}

/// `key=value` literals as a map, or kubectl's error.
fn literals(from_literal: &[String]) -> Result<Vec<(String, String)>> {
    from_literal
        .iter()
        .map(|lit| {
            lit.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| usage(format!("invalid literal source {lit}, expected key=value")))
        })
        .collect()
}

/// `80:8080` (or `80`) → a service port as kubectl's generator writes it.
fn service_port(pair: &str, node_port: Option<i64>) -> Result<Value> {
    let (port, target) = pair.split_once(':').unwrap_or((pair, pair));
    let bad = || {
        usage(format!(
            "invalid port pair {pair}, expected PORT:TARGET_PORT"
        ))
    };
    let port: i64 = port.parse().map_err(|_| bad())?;
    let target: Value = match target.parse::<i64>() {
        Ok(n) => json!(n),
        Err(_) if !target.is_empty() => json!(target),
        Err(_) => return Err(bad()),
    };
    let name = format!(
        "{port}-{}",
        target.as_i64().map_or_else(
            || target.as_str().unwrap_or_default().to_string(),
            |n| n.to_string()
        )
    );
    let mut p = json!({"name": name, "port": port, "protocol": "TCP", "targetPort": target});
    if let Some(n) = node_port {
        p["nodePort"] = json!(n);
    }
    Ok(p)
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
            let data: serde_json::Map<String, Value> = literals(from_literal)?
                .into_iter()
                .map(|(k, v)| (k, json!(v)))
                .collect();
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": namespace}, "data": data}),
                "configmaps",
            )
        }
        What::Secret {
            kind:
                SecretKind::Generic {
                    name,
                    from_literal,
                    secret_type,
                },
        } => {
            use base64::Engine;
            let data: serde_json::Map<String, Value> = literals(from_literal)?
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        json!(base64::engine::general_purpose::STANDARD.encode(v)),
                    )
                })
                .collect();
            let mut secret = json!({"apiVersion": "v1", "kind": "Secret",
                                    "metadata": {"name": name, "namespace": namespace}, "data": data});
            if let Some(t) = secret_type {
                secret["type"] = json!(t);
            }
            (secret, "secrets")
        }
        What::Service { kind } => {
            let (name, tcp, service_type, cluster_ip, node_port) = match kind {
                ServiceKind::Clusterip {
                    name,
                    tcp,
                    clusterip,
                } => (name, tcp, "ClusterIP", clusterip.clone(), None),
                ServiceKind::Nodeport {
                    name,
                    tcp,
                    node_port,
                } => (name, tcp, "NodePort", None, *node_port),
            };
            let ports = tcp
                .iter()
                .map(|p| service_port(p, node_port))
                .collect::<Result<Vec<_>>>()?;
            let mut spec = json!({"selector": {"app": name}, "type": service_type});
            if !ports.is_empty() {
                spec["ports"] = json!(ports);
            }
            if let Some(ip) = cluster_ip {
                spec["clusterIP"] = json!(ip);
            }
            (
                json!({"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                       "spec": spec}),
                "services",
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
