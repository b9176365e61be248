//! `pods/exec`: `kubectl exec`. The API server checks the request against
//! the pod — it exists, has not completed, is on a node, and has the
//! container — then passes the upgrade on to the pod's kubelet
//! (`https://<node>:<port>/exec/<ns>/<pod>/<container>?<same query>`) with
//! its kubelet-client certificate, and splices the two connections once
//! both sides have switched ([`skiff_proto::upgrade`]).
//!
//! kubectl 1.30+ tries WebSocket (`GET`, `v5.channel.k8s.io`) first and, on
//! any answer but a 101, retries as SPDY/3.1 (`POST`, with its
//! `X-Stream-Protocol-Version` offers); kubectl 1.27–1.29 speak SPDY only.
//! Both go the same way, untouched: like upstream's, this API server is a
//! transparent upgrade proxy, and the kubelet agrees the protocol. Every
//! check comes first, so both attempts of one command get the same Status.

use axum::response::Response;
use http::request::Parts;
use skiff_proto::upgrade::{self, Forwarded};

use super::log::{container_for, dial, kubelet_of, kubelet_refused, pod};
use super::{Api, Query};
use crate::error::{ApiError, ApiResult};
use crate::http::request::Target;
use crate::object::str_at;

/// The two subresources that stream a container's stdio, checked and
/// passed on alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    Exec,
    Attach,
}

impl Stdio {
    /// The kubelet's path segment.
    fn path(self) -> &'static str {
        match self {
            Stdio::Exec => "exec",
            Stdio::Attach => "attach",
        }
    }

    /// Upstream's words for what cannot be done to a completed pod.
    fn verb(self) -> &'static str {
        match self {
            Stdio::Exec => "exec into",
            Stdio::Attach => "attach",
        }
    }
}

/// Upstream's check that a pod can still be exec'd into or attached to: a
/// completed pod's containers have no stdio left.
pub fn check_phase(pod: &serde_json::Value, stdio: Stdio) -> Result<(), ApiError> {
    match str_at(pod, &["status", "phase"]) {
        Some(phase @ ("Succeeded" | "Failed")) => Err(ApiError::bad_request(format!(
            "cannot {} a container in a completed pod; current phase is {phase}",
            stdio.verb()
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
    to_container(api, parts, query, target, name, Stdio::Exec).await
}

/// Exec and attach: the pod exists, has not completed, has the container
/// and a node; the request is an upgrade; then it goes to the kubelet's
/// `/<exec|attach>/<ns>/<pod>/<container>?<same query>`.
pub async fn to_container(
    api: &Api,
    parts: &mut Parts,
    query: &Query,
    target: &Target,
    name: &str,
    stdio: Stdio,
) -> ApiResult<Response> {
    let pod = pod(api, target, name).await?;
    check_phase(&pod, stdio)?;
    let container = container_for(&pod, query.get("container"), false)?;
    let Some(node_name) = str_at(&pod, &["spec", "nodeName"]).filter(|n| !n.is_empty()) else {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    };
    upgrade_required(parts)?;
    let path = format!(
        "/{}/{}/{name}/{container}?{}",
        stdio.path(),
        target.namespace,
        parts.uri.query().unwrap_or_default()
    );
    to_kubelet(api, parts, node_name, &path).await
}

/// Upstream's answer to a request on an upgrade-only subresource that
/// asks for no (known) upgrade: WebSocket and SPDY/3.1 are passed on.
pub fn upgrade_required(parts: &Parts) -> Result<(), ApiError> {
    if upgrade::is_websocket(&parts.headers) || upgrade::is_spdy(&parts.headers) {
        Ok(())
    } else {
        Err(ApiError::bad_request("Upgrade request required"))
    }
}

/// Passes the request's upgrade on to `node_name`'s kubelet at `path` (with
/// the API server's kubelet-client certificate) and, once it switches,
/// answers 101 and splices the connections; the kubelet's refusal as a
/// Status otherwise. Exec, attach and port-forward all go this way, with
/// the client's method (kubectl's SPDY attempts are `POST`s).
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
        &parts.method,
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
    fn websocket_and_spdy_upgrades_go_on_and_nothing_else() {
        let parts = |upgrade: Option<&str>| {
            let mut r = http::Request::builder().method("POST").uri("/x");
            if let Some(u) = upgrade {
                r = r.header("connection", "Upgrade").header("upgrade", u);
            }
            r.body(()).unwrap().into_parts().0
        };
        assert!(upgrade_required(&parts(Some("websocket"))).is_ok());
        assert!(upgrade_required(&parts(Some("SPDY/3.1"))).is_ok());
        for refused in [None, Some("h2c")] {
            let e = upgrade_required(&parts(refused)).unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (400, "Upgrade request required")
            );
        }
    }

    #[test]
    fn completed_pods_cannot_be_exec_d_into() {
        assert!(check_phase(&json!({"status": {"phase": "Running"}}), Stdio::Exec).is_ok());
        assert!(check_phase(&json!({}), Stdio::Exec).is_ok());
        for phase in ["Succeeded", "Failed"] {
            let e = check_phase(&json!({"status": {"phase": phase}}), Stdio::Exec).unwrap_err();
            assert_eq!(e.code, 400);
            assert!(e.message.ends_with(&format!("current phase is {phase}")));
        }
    }
}
