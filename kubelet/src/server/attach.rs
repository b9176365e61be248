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
use axum::response::Response;
use http::StatusCode;
use skiff_proto::cri;

use super::exec::{ExecOptions, error, stream_into};
use crate::runtime::Runtime;

/// The handler.
pub async fn attach<R: Runtime>(
    State(runtime): State<Arc<R>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    let opts = match ExecOptions::parse_streams(request.uri().query()) {
        Ok(o) => o,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let target = (namespace.as_str(), pod.as_str(), container.as_str());
    let asked = opts.clone();
    stream_into(runtime.as_ref(), target, request, opts, "attach to", |id| {
        runtime.attach(cri::AttachRequest {
            container_id: id,
            tty: asked.tty,
            stdin: asked.stdin,
            stdout: asked.stdout,
            stderr: asked.stderr,
        })
    })
    .await
}
