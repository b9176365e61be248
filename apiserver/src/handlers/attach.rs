//! `pods/attach`: `kubectl attach`, and `kubectl run -i`, which attaches to
//! the pod it made. Checked as exec is ([`super::exec`]) — the pod exists,
//! has not completed, is on a node, has the container — then the upgrade
//! (WebSocket, or kubectl's SPDY/3.1 fallback) goes on to the pod's kubelet
//! (`/attach/<ns>/<pod>/<container>?<same query>`) and the connections are
//! spliced.

use axum::response::Response;
use http::request::Parts;

use super::exec::{Stdio, to_container};
use super::{Api, Query};
use crate::error::ApiResult;
use crate::http::request::Target;

pub async fn attach(
    api: &Api,
    parts: &mut Parts,
    query: &Query,
    target: &Target,
    name: &str,
) -> ApiResult<Response> {
    to_container(api, parts, query, target, name, Stdio::Attach).await
}

#[cfg(test)]
mod tests {
    use super::super::exec::check_phase;
    use super::*;
    use serde_json::json;

    #[test]
    fn completed_pods_cannot_be_attached_to() {
        assert!(check_phase(&json!({"status": {"phase": "Running"}}), Stdio::Attach).is_ok());
        assert!(check_phase(&json!({"status": {"phase": "Pending"}}), Stdio::Attach).is_ok());
        for phase in ["Succeeded", "Failed"] {
            let e = check_phase(&json!({"status": {"phase": phase}}), Stdio::Attach).unwrap_err();
            assert_eq!(e.code, 400);
            assert!(e.message.starts_with("cannot attach a container"));
            assert!(e.message.ends_with(&format!("current phase is {phase}")));
        }
    }
}
