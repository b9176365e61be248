//! `/exec/<namespace>/<pod>/<container>?command=…&stdin=…&stdout=…&stderr=…&tty=…`:
//! `kubectl exec`, passed on by the API server's `pods/exec`.
//!
//! The kubelet checks the request and asks the runtime for a streaming URL
//! (CRI `Exec`). A WebSocket upgrade (kubectl 1.30+) is forwarded there
//! ([`skiff_proto::upgrade`]): from then on kubectl and the runtime's
//! streaming server talk `v5.channel.k8s.io` through us, untouched. A
//! SPDY/3.1 upgrade (kubectl 1.27–1.29, and later kubectls' fallback) is
//! answered here and translated to the runtime's WebSocket
//! ([`super::spdy_remotecommand`]).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use skiff_proto::cri;
use skiff_proto::upgrade::{self, Forwarded};

use super::{spdy_remotecommand, spdy_upgrade};
use crate::runtime::Runtime;

/// The query as upstream's `ExecOptions`: `command` once per argv element,
/// the stream flags only when true.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl ExecOptions {
    pub fn parse(query: Option<&str>) -> Result<ExecOptions, String> {
        let o = Self::parse_streams(query)?;
        if o.command.is_empty() {
            return Err("you must specify at least one command for the container".into());
        }
        Ok(o)
    }

    /// The stream flags (and any command), as attach takes them too.
    pub fn parse_streams(query: Option<&str>) -> Result<ExecOptions, String> {
        let mut o = ExecOptions::default();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let on = v == "true" || v == "1";
            match k.as_ref() {
                "command" => o.command.push(v.into_owned()),
                "input" | "stdin" => o.stdin = on,
                "output" | "stdout" => o.stdout = on,
                "error" | "stderr" => o.stderr = on,
                "tty" => o.tty = on,
                _ => {}
            }
        }
        if !(o.stdin || o.stdout || o.stderr) {
            return Err("you must specify at least one of stdin, stdout, stderr".into());
        }
        // A terminal has one output stream.
        if o.tty {
            o.stderr = false;
        }
        Ok(o)
    }
}

pub(super) fn error(code: StatusCode, message: String) -> Response {
    (code, message).into_response()
}

/// The handler.
pub async fn exec<R: Runtime>(
    State(runtime): State<Arc<R>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    let opts = match ExecOptions::parse(request.uri().query()) {
        Ok(o) => o,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let target = (namespace.as_str(), pod.as_str(), container.as_str());
    let asked = opts.clone();
    stream_into(runtime.as_ref(), target, request, opts, "exec in", |id| {
        runtime.exec(cri::ExecRequest {
            container_id: id,
            cmd: asked.command,
            tty: asked.tty,
            stdin: asked.stdin,
            stdout: asked.stdout,
            stderr: asked.stderr,
        })
    })
    .await
}

/// What exec and attach share once their query is read: the upgrade is
/// WebSocket or SPDY/3.1, the container runs, the runtime gives a
/// streaming URL (`start`, with the container's id), and the connection
/// goes there — forwarded as it is (WebSocket) or translated
/// ([`spdy_remotecommand`]). `what` names the call in the error
/// ("failed to exec in container: …").
pub(super) async fn stream_into<R, F, Fut>(
    runtime: &R,
    (namespace, pod, container): (&str, &str, &str),
    mut request: Request,
    opts: ExecOptions,
    what: &str,
    start: F,
) -> Response
where
    R: Runtime,
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = crate::runtime::Result<String>>,
{
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
    let status = match super::logs::find(runtime, namespace, pod, container, false).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if status.state != cri::ContainerState::ContainerRunning as i32 {
        return error(
            StatusCode::BAD_REQUEST,
            format!("container \"{container}\" in pod \"{pod}\" is not running"),
        );
    }
    match start(status.id.clone()).await {
        Ok(url) => match spdy {
            Some(protocol) => spdy_remotecommand::upgrade(&url, protocol, opts, incoming).await,
            None => to_streaming_server(&url, request.headers(), incoming).await,
        },
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to {what} container: {e}"),
        ),
    }
}

/// How the client asks to switch: WebSocket (`None`, passed on to the
/// runtime), SPDY/3.1 with the remote-command protocol agreed, or neither
/// (refused as upstream's kubelet refuses it).
pub(super) fn spdy_protocol(
    headers: &http::HeaderMap,
) -> Result<Option<&'static str>, spdy_upgrade::HandshakeError> {
    if upgrade::is_websocket(headers) {
        return Ok(None);
    }
    spdy_upgrade::negotiate(headers, &spdy_upgrade::REMOTECOMMAND).map(Some)
}

/// Forwards the client's upgrade (`headers`, `incoming`) to the runtime's
/// streaming server at `url` (what CRI `Exec` or `Attach` answered): its
/// 101 becomes ours and the connections are spliced, or its refusal is
/// passed on.
pub(super) async fn to_streaming_server(
    url: &str,
    headers: &http::HeaderMap,
    incoming: hyper::upgrade::OnUpgrade,
) -> Response {
    let Some((host, path)) = url
        .strip_prefix("http://")
        .and_then(|rest| rest.find('/').map(|at| rest.split_at(at)))
    else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the runtime's streaming URL {url:?} is not http://host:port/path"),
        );
    };
    let tcp = match tokio::net::TcpStream::connect(host).await {
        Ok(t) => t,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the runtime's streaming server at {host}: {e}"),
            );
        }
    };
    match upgrade::forward(tcp, &http::Method::GET, path, host, headers, incoming).await {
        Ok(Forwarded::Switched(headers)) => upgrade::switching_protocols(headers),
        Ok(Forwarded::Refused { status, body, .. }) => {
            error(status, String::from_utf8_lossy(&body).trim().to_string())
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the runtime's streaming server: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_read_as_kubectl_sends_it() {
        let o = ExecOptions::parse(Some(
            "command=sh&command=-c&command=echo+%24HOME&container=main&stderr=true&stdout=true",
        ))
        .unwrap();
        assert_eq!(o.command, ["sh", "-c", "echo $HOME"]);
        assert!(o.stdout && o.stderr && !o.stdin && !o.tty);
        let t = ExecOptions::parse(Some(
            "command=sh&container=main&stdin=true&stdout=true&tty=true&stderr=true",
        ))
        .unwrap();
        assert!(t.tty && t.stdin && !t.stderr, "a terminal has no stderr");
        assert!(
            ExecOptions::parse(Some("stdout=true"))
                .unwrap_err()
                .contains("at least one command")
        );
        assert!(
            ExecOptions::parse(Some("command=ls"))
                .unwrap_err()
                .contains("stdin, stdout, stderr")
        );
        // Attach's query: no command.
        let a = ExecOptions::parse_streams(Some("container=main&stdin=true&stdout=true&tty=true"))
            .unwrap();
        assert!(a.command.is_empty() && a.stdin && a.stdout && a.tty);
        assert!(ExecOptions::parse_streams(Some("container=main")).is_err());
    }
}
