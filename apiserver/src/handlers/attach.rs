//! `pods/attach`: `kubectl attach`, and `kubectl run -i`, which attaches to
//! the pod it made. Checked as exec is ([`super::exec`]) — the pod exists,
//! has not completed, is on a node, has the container — then the upgrade
//! (WebSocket, or kubectl's SPDY/3.1 fallback) goes on to the pod's kubelet
//! (`/attach/<ns>/<pod>/<container>?<same query>`) and the connections are
//! spliced.

use axum::response::Response;
use http::request::Parts;

use super::exec::{to_kubelet, upgrade_required};
use super::log::{container_for, pod};
use super::{Api, Query};
use crate::error::{ApiError, ApiResult};
use crate::http::request::Target;
use crate::object::str_at;

/// kubectl's own check, made here too so that every client gets it: a
/// completed pod's containers have no stdio left to attach to.
pub fn check_phase(pod: &serde_json::Value) -> Result<(), ApiError> {
    match str_at(pod, &["status", "phase"]) {
        Some(phase @ ("Succeeded" | "Failed")) => Err(ApiError::bad_request(format!(
            "cannot attach a container in a completed pod; current phase is {phase}"
        ))),
        _ => Ok(()),
    }
}

pub async fn attach(
    api: &Api,
    parts: &mut Parts,
    query: &Query,
    target: &Target,
    name: &str,
) -> ApiResult<Response> {
    let pod = pod(api, target, name).await?;
    check_phase(&pod)?;
    let container = container_for(&pod, query.get("container"), false)?;
    let Some(node_name) = str_at(&pod, &["spec", "nodeName"]).filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    };
    upgrade_required(parts)?;
    let path = format!(
        "/attach/{}/{name}/{container}?{}",
        target.namespace,
        parts.uri.query().unwrap_or_default()
    );
    to_kubelet(api, parts, node_name, &path).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn completed_pods_cannot_be_attached_to() {
        assert!(check_phase(&json!({"status": {"phase": "Running"}})).is_ok());
        assert!(check_phase(&json!({"status": {"phase": "Pending"}})).is_ok());
        for phase in ["Succeeded", "Failed"] {
            let e = check_phase(&json!({"status": {"phase": phase}})).unwrap_err();
            assert_eq!(e.code, 400);
            assert!(e.message.starts_with("cannot attach a container"));
            assert!(e.message.ends_with(&format!("current phase is {phase}")));
        }
    }
}
