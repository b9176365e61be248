//! `expose TYPE/NAME --port=P [--target-port=T] [--name=N] [--type=T]
//! [--protocol=TCP]`: a Service in front of a Deployment, ReplicaSet, pod
//! or Service, selecting what it selects, as kubectl's generator makes it.
//! Without `--port` the container ports are used (several are named
//! `port-1`, `port-2`, …).

use serde_json::{Value, json};

use super::targets::named;
use crate::error::{Result, usage};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TYPE NAME or TYPE/NAME.
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
    pub resources: Vec<String>,
    /// The port that the service should serve on.
    #[arg(long)]
    pub port: Option<String>,
    /// Name or number of the port on the container to send traffic to.
    #[arg(long)]
    pub target_port: Option<String>,
    /// The name of the new Service (default: the object's).
    #[arg(long)]
    pub name: Option<String>,
    /// ClusterIP, NodePort, LoadBalancer or ExternalName.
    #[arg(long = "type")]
    pub service_type: Option<String>,
    /// The network protocol (TCP, UDP, SCTP).
    #[arg(long, default_value = "TCP")]
    pub protocol: String,
    /// ClusterIP to assign ('None' for a headless service).
    #[arg(long = "cluster-ip")]
    pub cluster_ip: Option<String>,
}

/// The selector of what `object` is, as a label map (matchLabels only, as
/// kubectl refuses matchExpressions).
fn selector_of(object: &Value) -> Result<Value> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let labels = match kind {
        "Pod" => &object["metadata"]["labels"],
        "Service" | "ReplicationController" => &object["spec"]["selector"],
        _ => {
            if object["spec"]["selector"]["matchExpressions"].is_array() {
                return Err(usage(
                    "couldn't convert expressions - \"the selector with expressions\" to map: \
                     cannot convert matchExpressions to a selector map",
                ));
            }
            &object["spec"]["selector"]["matchLabels"]
        }
    };
    labels
        .as_object()
        .filter(|m| !m.is_empty())
        .map(|m| Value::Object(m.clone()))
        .ok_or_else(|| usage(format!("couldn't retrieve selectors via --selector flag or introspection: the {kind} has no selector")))
}

/// The container ports of the object's pod spec.
fn container_ports(object: &Value) -> Vec<(i64, String)> {
    let spec = if object["kind"] == "Pod" {
        &object["spec"]
    } else {
        &object["spec"]["template"]["spec"]
    };
    spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP").to_string();
            Some((p["containerPort"].as_i64()?, protocol))
        })
        .collect()
}

fn port_value(text: &str) -> Value {
    text.parse::<i64>()
        .map(Value::from)
        .unwrap_or_else(|_| json!(text))
}

/// The Service kubectl's generator makes for `object`.
pub fn generate(object: &Value, args: &Args, namespace: &str) -> Result<Value> {
    let name = args
        .name
        .clone()
        .or_else(|| object["metadata"]["name"].as_str().map(str::to_string))
        .unwrap_or_default();
    let selector = selector_of(object)?;
    let ports: Vec<Value> = match &args.port {
        Some(p) => {
            let mut port = json!({"port": port_value(p), "protocol": args.protocol});
            port["targetPort"] = port_value(args.target_port.as_deref().unwrap_or(p));
            vec![port]
        }
        None => {
            let found = container_ports(object);
            if found.is_empty() {
                return Err(usage("couldn't find port via --port flag or introspection"));
            }
            let many = found.len() > 1;
            found
                .iter()
                .enumerate()
                .map(|(i, (p, protocol))| {
                    let mut port = json!({"port": p, "protocol": protocol,
                                          "targetPort": args.target_port.as_deref().map_or(json!(p), port_value)});
                    if many {
                        port["name"] = json!(format!("port-{}", i + 1));
                    }
                    port
                })
                .collect()
        }
    };
    let mut spec = json!({"ports": ports, "selector": selector});
    if let Some(t) = &args.service_type {
        spec["type"] = json!(t);
    }
    if let Some(ip) = &args.cluster_ip {
        spec["clusterIP"] = json!(ip);
    }
    let mut metadata = json!({"name": name, "namespace": namespace});
    if let Some(labels) = object["metadata"]["labels"]
        .as_object()
        .filter(|l| !l.is_empty())
    {
        metadata["labels"] = Value::Object(labels.clone());
    }
    Ok(json!({"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}))
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let services = session.catalog.resolve("services")?.clone();
    for n in named(session, &args.resources)? {
        let object = session.get_json(&n.uri).await?;
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or(session.namespace())
            .to_string();
        let service = generate(&object, &args, &ns)?;
        session.post(&services.path(Some(&ns)), &service).await?;
        println!(
            "service/{} exposed",
            service["metadata"]["name"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(port: Option<&str>, target: Option<&str>) -> Args {
        Args {
            resources: vec![],
            port: port.map(str::to_string),
            target_port: target.map(str::to_string),
            name: None,
            service_type: None,
            protocol: "TCP".into(),
            cluster_ip: None,
        }
    }

    fn deployment(ports: Value) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
               "spec": {"selector": {"matchLabels": {"app": "web"}},
                        "template": {"spec": {"containers": [{"name": "c", "ports": ports}]}}}})
    }

    #[test]
    fn a_deployment_is_exposed_on_the_asked_port() {
        let svc = generate(
            &deployment(json!([])),
            &args(Some("80"), Some("http")),
            "shop",
        )
        .unwrap();
        assert_eq!(
            svc,
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
                   "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": "http"}],
                            "selector": {"app": "web"}}})
        );
    }

    #[test]
    fn without_port_the_container_ports_are_used() {
        let one = generate(
            &deployment(json!([{"containerPort": 8080}])),
            &args(None, None),
            "d",
        )
        .unwrap();
        assert_eq!(
            one["spec"]["ports"],
            json!([{"port": 8080, "protocol": "TCP", "targetPort": 8080}])
        );
        let two = generate(
            &deployment(json!([{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}])),
            &args(None, None),
            "d",
        )
        .unwrap();
        assert_eq!(
            two["spec"]["ports"][1],
            json!({"name": "port-2", "port": 53, "protocol": "UDP", "targetPort": 53})
        );
        let none = generate(&deployment(json!([])), &args(None, None), "d").unwrap_err();
        assert_eq!(
            none.to_string(),
            "error: couldn't find port via --port flag or introspection"
        );
    }
}
