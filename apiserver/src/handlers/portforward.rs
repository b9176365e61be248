//! `pods/portforward`: `kubectl port-forward`. As for exec, the API server
//! checks the pod (it exists and is on a node) and passes the upgrade on to
//! the pod's kubelet (`/portForward/<ns>/<pod>`) with its kubelet-client
//! certificate, then splices the two connections. kubectl and the kubelet
//! speak SPDY/3.1, inside a WebSocket (`SPDY/3.1+portforward.k8s.io`,
//! kubectl 1.31+) or, on kubectl's fallback and before 1.31, as the raw
//! upgraded connection (`Upgrade: SPDY/3.1`, `portforward.k8s.io`).

use axum::response::Response;
use http::request::Parts;

use super::exec::upgrade_required;
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
    upgrade_required(parts)?;
    let path = format!(
        "/portForward/{}/{name}?{}",
        target.namespace,
        parts.uri.query().unwrap_or_default()
    );
    super::exec::to_kubelet(api, parts, node_name, &path).await
}
