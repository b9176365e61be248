//! `pods/exec`: `kubectl exec`. The API server checks the request against
//! the pod — it exists, has not completed, is on a node, and has the
//! container — then passes the WebSocket upgrade on to the pod's kubelet
//! (`https://<node>:<port>/exec/<ns>/<pod>/<container>?<same query>`) with
//! its kubelet-client certificate, and splices the two connections once
//! both sides have switched ([`skiff_proto::upgrade`]).
//!
//! kubectl 1.30+ tries WebSocket (`GET`, `v5.channel.k8s.io`) first and, on
//! any answer but a 101, retries as SPDY/3.1 (`POST`). So every check here
//! comes before the protocol check, giving both attempts the same Status,
//! and the SPDY attempt is told plainly that only WebSocket is served.

use axum::response::Response;
use http::request::Parts;
use skiff_proto::upgrade::{self, Forwarded};

use super::log::{container_for, dial, kubelet_of, kubelet_refused, pod};
use super::{Api, Query};
use crate::error::{ApiError, ApiResult};
use crate::http::request::Target;
use crate::object::str_at;

/// Upstream's check that a pod can still be exec'd into.
pub fn check_phase(pod: &serde_json::Value) -> Result<(), ApiError> {
    match str_at(pod, &["status", "phase"]) {
        Some(phase @ ("Succeeded" | "Failed")) => Err(ApiError::bad_request(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        ))),
        _ => Ok(()),
    }
}

pub async fn exec(
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
    if !upgrade::is_websocket(&parts.headers) {
        return Err(ApiError::bad_request(upgrade::WEBSOCKET_ONLY));
    }
    let path = format!(
        "/exec/{}/{name}/{container}?{}",
        target.namespace,
        parts.uri.query().unwrap_or_default()
    );
    to_kubelet(api, parts, node_name, &path).await
}

/// Passes the request's upgrade on to `node_name`'s kubelet at `path` (with
/// the API server's kubelet-client certificate) and, once it switches,
/// answers 101 and splices the connections; the kubelet's refusal as a
/// Status otherwise. Exec and port-forward both go this way.
pub async fn to_kubelet(
    api: &Api,
    parts: &mut Parts,
    node_name: &str,
    path: &str,
) -> ApiResult<Response> {
    let Some(incoming) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return Err(ApiError::bad_request(
            "this connection cannot be upgraded (HTTP/2 has no Upgrade; use HTTP/1.1)",
        ));
    };
    let (address, tls) = kubelet_of(api, node_name).await?;
    let url = format!("https://{address}{path}");
    let stream = dial(tls, &address, &url).await?;
    match upgrade::forward(
        stream,
        &http::Method::GET,
        path,
        &address,
        &parts.headers,
        incoming,
    )
    .await
    {
        Ok(Forwarded::Switched(headers)) => Ok(upgrade::switching_protocols(headers)),
        Ok(Forwarded::Refused { status, body, .. }) => Err(kubelet_refused(status, &body)),
        Err(e) => Err(ApiError::internal(format!("error dialing backend: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn completed_pods_cannot_be_exec_d_into() {
        assert!(check_phase(&json!({"status": {"phase": "Running"}})).is_ok());
        assert!(check_phase(&json!({})).is_ok());
        for phase in ["Succeeded", "Failed"] {
            let e = check_phase(&json!({"status": {"phase": phase}})).unwrap_err();
            assert_eq!(e.code, 400);
            assert!(e.message.ends_with(&format!("current phase is {phase}")));
        }
    }
}
