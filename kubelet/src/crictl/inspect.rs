//! `crictl inspect`, `inspectp`, `inspecti`: a container's, pod sandbox's
//! or image's status as JSON, `{"status": …, "info": …}` as crictl prints
//! it — upstream's camelCase field names, enum values by their proto
//! names (`CONTAINER_RUNNING`), times in RFC 3339, and the runtime's
//! verbose `info` (e.g. a sandbox's namespace files) parsed from its JSON
//! strings.

use std::collections::HashMap;
use std::io::Write;

use serde_json::{Map, Value, json};
use skiff_proto::cri;

use super::{Cri, CrictlError, rfc3339};
use crate::runtime::Runtime;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Ids or unique id prefixes (images: also names, `busybox`, `app:v1`).
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// The runtime's `info` map: each value is JSON when it parses, else a string.
pub fn info_json(info: &HashMap<String, String>) -> Value {
    let map: Map<String, Value> = info
        .iter()
        .map(|(k, v)| {
            let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone()));
            (k.clone(), value)
        })
        .collect();
    Value::Object(map)
}

fn image_spec(spec: Option<&cri::ImageSpec>) -> Value {
    let spec = spec.cloned().unwrap_or_default();
    json!({
        "image": spec.image,
        "annotations": spec.annotations,
        "userSpecifiedImage": spec.user_specified_image,
        "runtimeHandler": spec.runtime_handler,
    })
}

fn mount(m: &cri::Mount) -> Value {
    json!({
        "containerPath": m.container_path,
        "hostPath": m.host_path,
        "readonly": m.readonly,
        "selinuxRelabel": m.selinux_relabel,
        "propagation": cri::MountPropagation::try_from(m.propagation)
            .map_or("UNKNOWN", |p| p.as_str_name()),
    })
}

/// A `ContainerStatus` as crictl's JSON.
pub fn container_json(s: &cri::ContainerStatus) -> Value {
    let md = s.metadata.clone().unwrap_or_default();
    json!({
        "id": s.id,
        "metadata": {"name": md.name, "attempt": md.attempt},
        "state": cri::ContainerState::try_from(s.state)
            .map_or("CONTAINER_UNKNOWN", |st| st.as_str_name()),
        "createdAt": rfc3339(s.created_at),
        "startedAt": rfc3339(s.started_at),
        "finishedAt": rfc3339(s.finished_at),
        "exitCode": s.exit_code,
        "image": image_spec(s.image.as_ref()),
        "imageRef": s.image_ref,
        "imageId": s.image_id,
        "reason": s.reason,
        "message": s.message,
        "labels": s.labels,
        "annotations": s.annotations,
        "mounts": s.mounts.iter().map(mount).collect::<Vec<_>>(),
        "logPath": s.log_path,
    })
}

fn namespace_mode(mode: i32) -> &'static str {
    cri::NamespaceMode::try_from(mode).map_or("UNKNOWN", |m| m.as_str_name())
}

/// A `PodSandboxStatus` as crictl's JSON.
pub fn pod_json(s: &cri::PodSandboxStatus) -> Value {
    let md = s.metadata.clone().unwrap_or_default();
    let network = s.network.clone().unwrap_or_default();
    let linux = s
        .linux
        .as_ref()
        .and_then(|l| l.namespaces.as_ref())
        .and_then(|n| n.options.as_ref())
        .map(|o| {
            json!({"namespaces": {"options": {
                "network": namespace_mode(o.network),
                "pid": namespace_mode(o.pid),
                "ipc": namespace_mode(o.ipc),
                "targetId": o.target_id,
            }}})
        });
    json!({
        "id": s.id,
        "metadata": {
            "name": md.name,
            "uid": md.uid,
            "namespace": md.namespace,
            "attempt": md.attempt,
        },
        "state": cri::PodSandboxState::try_from(s.state)
            .map_or("SANDBOX_UNKNOWN", |st| st.as_str_name()),
        "createdAt": rfc3339(s.created_at),
        "network": {
            "ip": network.ip,
            "additionalIps": network.additional_ips.iter()
                .map(|ip| json!({"ip": ip.ip})).collect::<Vec<_>>(),
        },
        "linux": linux,
        "labels": s.labels,
        "annotations": s.annotations,
        "runtimeHandler": s.runtime_handler,
    })
}

/// An `Image` as crictl's JSON (sizes as strings: proto3's JSON for uint64).
pub fn image_json(i: &cri::Image) -> Value {
    json!({
        "id": i.id,
        "repoTags": i.repo_tags,
        "repoDigests": i.repo_digests,
        "size": i.size.to_string(),
        "uid": i.uid.as_ref().map(|u| json!({"value": u.value.to_string()})),
        "username": i.username,
        "spec": i.spec.as_ref().map(|s| image_spec(Some(s))),
        "pinned": i.pinned,
    })
}

/// `{"status": …, "info": …}`, pretty, with a newline.
pub fn document(status: Value, info: &HashMap<String, String>) -> String {
    let doc = json!({"status": status, "info": info_json(info)});
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

pub async fn containers(cri: &Cri, args: &Args, out: &mut dyn Write) -> Result<(), CrictlError> {
    for prefix in &args.ids {
        let id = cri.container_id(prefix).await?;
        let r = cri
            .call(
                "ContainerStatus",
                cri.client.container_status_response(&id, true),
            )
            .await?;
        let status = r.status.unwrap_or_default();
        out.write_all(document(container_json(&status), &r.info).as_bytes())?;
    }
    Ok(())
}

pub async fn pods(cri: &Cri, args: &Args, out: &mut dyn Write) -> Result<(), CrictlError> {
    for prefix in &args.ids {
        let id = cri.pod_id(prefix).await?;
        let r = cri
            .call(
                "PodSandboxStatus",
                cri.client.pod_sandbox_status_response(&id, true),
            )
            .await?;
        let status = r.status.unwrap_or_default();
        out.write_all(document(pod_json(&status), &r.info).as_bytes())?;
    }
    Ok(())
}

pub async fn images(cri: &Cri, args: &Args, out: &mut dyn Write) -> Result<(), CrictlError> {
    for name in &args.ids {
        // A name or a whole id first; else an id prefix (with or without
        // `sha256:`).
        let mut r = cri
            .call("ImageStatus", cri.client.image_status_response(name, true))
            .await?;
        if r.image.is_none() {
            let all = cri.call("ListImages", cri.client.list_images()).await?;
            let hex = |id: &str| id.strip_prefix("sha256:").unwrap_or(id).to_string();
            let ids: Vec<String> = all.iter().map(|i| hex(&i.id)).collect();
            let id = cri.resolve("image", &hex(name), ids.iter().map(String::as_str))?;
            r = cri
                .call(
                    "ImageStatus",
                    cri.client
                        .image_status_response(&format!("sha256:{id}"), true),
                )
                .await?;
        }
        let Some(image) = r.image else {
            return Err(CrictlError::NotFound {
                endpoint: cri.endpoint.clone(),
                what: "image",
                prefix: name.clone(),
            });
        };
        out.write_all(document(image_json(&image), &r.info).as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_status_reads_as_crictls() {
        let s = cri::ContainerStatus {
            id: "abc".into(),
            metadata: Some(cri::ContainerMetadata {
                name: "web".into(),
                attempt: 1,
            }),
            state: cri::ContainerState::ContainerExited as i32,
            created_at: 1_768_046_400_000_000_001,
            exit_code: 137,
            reason: "OOMKilled".into(),
            mounts: vec![cri::Mount {
                container_path: "/data".into(),
                host_path: "/var/lib/x".into(),
                readonly: true,
                ..Default::default()
            }],
            log_path: "/var/log/pods/p/web/1.log".into(),
            ..Default::default()
        };
        let v = container_json(&s);
        assert_eq!(v["state"], "CONTAINER_EXITED");
        assert_eq!(v["createdAt"], "2026-01-10T12:00:00.000000001Z");
        assert_eq!(v["startedAt"], Value::Null);
        assert_eq!(v["exitCode"], 137);
        assert_eq!(v["reason"], "OOMKilled");
        assert_eq!(v["metadata"], json!({"name": "web", "attempt": 1}));
        assert_eq!(v["mounts"][0]["readonly"], true);
        assert_eq!(v["mounts"][0]["propagation"], "PROPAGATION_PRIVATE");
        assert_eq!(v["logPath"], "/var/log/pods/p/web/1.log");
    }

    #[test]
    fn info_values_are_parsed_when_json() {
        let info = HashMap::from([
            (
                "namespaces".to_string(),
                r#"{"network":"/run/ns/net"}"#.to_string(),
            ),
            ("pid".to_string(), "not json".to_string()),
        ]);
        let pod = cri::PodSandboxStatus {
            id: "p1".into(),
            state: cri::PodSandboxState::SandboxReady as i32,
            network: Some(cri::PodSandboxNetworkStatus {
                ip: "10.88.0.5".into(),
                additional_ips: vec![],
            }),
            ..Default::default()
        };
        let doc: Value = serde_json::from_str(&document(pod_json(&pod), &info)).unwrap();
        assert_eq!(doc["status"]["state"], "SANDBOX_READY");
        assert_eq!(doc["status"]["network"]["ip"], "10.88.0.5");
        assert_eq!(doc["info"]["namespaces"]["network"], "/run/ns/net");
        assert_eq!(doc["info"]["pid"], "not json");
    }

    #[test]
    fn image_sizes_are_strings() {
        let v = image_json(&cri::Image {
            id: "sha256:1".into(),
            repo_tags: vec!["a:b".into()],
            size: 42,
            ..Default::default()
        });
        assert_eq!(v["size"], "42");
        assert_eq!(v["repoTags"], json!(["a:b"]));
    }
}
