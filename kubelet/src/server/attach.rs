//! `/attach/<namespace>/<pod>/<container>?stdin=…&stdout=…&stderr=…&tty=…`:
//! `kubectl attach` and `kubectl run -i`, passed on by the API server's
//! `pods/attach`.
//!
//! As exec ([`super::exec`]): the kubelet checks the request, asks the
//! runtime for a streaming URL (CRI `Attach`), and forwards the WebSocket
//! upgrade there, or answers a SPDY/3.1 one and translates it
//! ([`super::spdy_remotecommand`]); the runtime relays the session to the
//! container's shim, which holds its stdio.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use skiff_proto::cri;

use super::exec::{ExecOptions, error, spdy_protocol, to_streaming_server};
use super::spdy_remotecommand;
use crate::runtime::Runtime;

/// The handler.
pub async fn attach<R: Runtime>(
    State(runtime): State<Arc<R>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    mut request: Request,
) -> Response {
    let opts = match ExecOptions::parse_streams(request.uri().query()) {
        Ok(o) => o,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let spdy = match spdy_protocol(request.headers()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(incoming) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "this connection cannot be upgraded".into(),
        );
    };
    let status =
        match super::logs::find(runtime.as_ref(), &namespace, &pod, &container, false).await {
            Ok(s) => s,
            Err(r) => return r,
        };
    if status.state != cri::ContainerState::ContainerRunning as i32 {
        return error(
            StatusCode::BAD_REQUEST,
            format!("container \"{container}\" in pod \"{pod}\" is not running"),
        );
    }
    let url = runtime
        .attach(cri::AttachRequest {
            container_id: status.id.clone(),
            tty: opts.tty,
            stdin: opts.stdin,
            stdout: opts.stdout,
            stderr: opts.stderr,
        })
        .await;
    match url {
        Ok(url) => match spdy {
            Some(protocol) => spdy_remotecommand::upgrade(&url, protocol, opts, incoming).await,
            None => to_streaming_server(&url, request.headers(), incoming).await,
        },
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to attach to container: {e}"),
        ),
    }
}
