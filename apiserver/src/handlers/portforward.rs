//! `pods/portforward`: `kubectl port-forward`. As for exec, the API server
//! checks the pod (it exists and is on a node) and passes the WebSocket
//! upgrade on to the pod's kubelet (`/portForward/<ns>/<pod>`) with its
//! kubelet-client certificate, then splices the two connections; kubectl
//! and the kubelet speak SPDY/3.1 inside (`SPDY/3.1+portforward.k8s.io`).
//! kubectl's SPDY-only fallback (no WebSocket) is refused in words.

use axum::response::Response;
use http::request::Parts;
use skiff_proto::upgrade;

use super::log::pod;
use super::{Api, Query};
use crate::error::{ApiError, ApiResult};
use crate::http::request::Target;
use crate::object::str_at;

pub async fn port_forward(
    api: &Api,
    parts: &mut Parts,
    _query: &Query,
    target: &Target,
    name: &str,
) -> ApiResult<Response> {
    let pod = pod(api, target, name).await?;
    let Some(node_name) = str_at(&pod, &["spec", "nodeName"]).filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    };
    if !upgrade::is_websocket(&parts.headers) {
        return Err(ApiError::bad_request(
            "port-forward is served over WebSocket (SPDY/3.1+portforward.k8s.io) only; this Skiff does not speak plain SPDY/3.1: use kubectl 1.31 or later",
        ));
    }
    let path = format!(
        "/portForward/{}/{name}?{}",
        target.namespace,
        parts.uri.query().unwrap_or_default()
    );
    super::exec::to_kubelet(api, parts, node_name, &path).await
}
