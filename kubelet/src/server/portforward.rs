//! `/portForward/<namespace>/<pod>`: `kubectl port-forward`, passed on by
//! the API server's `pods/portforward`.
//!
//! kubectl 1.31+ opens a WebSocket with the sub-protocol
//! `SPDY/3.1+portforward.k8s.io` and speaks SPDY/3.1 inside it
//! ([`skiff_proto::spdy`]); kubectl before 1.31, and later ones on their
//! fallback, upgrade to SPDY/3.1 itself (`X-Stream-Protocol-Version:
//! portforward.k8s.io`, [`super::spdy_upgrade`]). Both carry the same
//! session ([`super::spdy_conn`] turns either into frames). For each local
//! connection kubectl opens two streams
//! with the same `requestid` header: an `error` stream (which it closes at
//! once on its side) and a `data` stream, both naming the pod's `port`.
//! Each stream is answered with a SYN_REPLY; the data stream is spliced
//! with a TCP connection to the pod's address on that port; if that
//! connection cannot be made, the reason goes down the error stream, as
//! upstream's kubelet reports it.
//!
//! Difference from upstream: the connection is made to the pod's IP from
//! the node rather than to `localhost` inside the pod's network namespace,
//! so a server bound only to 127.0.0.1 in the pod is not reachable.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use hyper_util::rt::TokioIo;
use skiff_proto::spdy::{self, FLAG_FIN, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::spdy_conn::SpdyConn;
use super::spdy_upgrade;
use crate::pods::observed::{POD_NAME, POD_NAMESPACE};
use crate::runtime::Runtime;

/// The WebSocket sub-protocol kubectl tunnels SPDY in.
pub const PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

fn error(code: StatusCode, message: String) -> Response {
    (code, message).into_response()
}

/// The pod's IP, from its newest ready sandbox on this node.
async fn pod_ip<R: Runtime>(runtime: &R, namespace: &str, pod: &str) -> Result<String, Response> {
    let internal =
        |e: crate::runtime::RuntimeError| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let mut sandboxes = runtime
        .list_pod_sandboxes(&[(POD_NAMESPACE, namespace), (POD_NAME, pod)])
        .await
        .map_err(internal)?;
    sandboxes.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    for sb in sandboxes {
        let status = runtime.pod_sandbox_status(&sb.id).await.map_err(internal)?;
        // A hostNetwork pod has no IP of its own: it listens in the node's
        // network namespace, where upstream's runtimes dial localhost.
        let host_network = status
            .linux
            .as_ref()
            .and_then(|l| l.namespaces.as_ref())
            .and_then(|n| n.options.as_ref())
            .is_some_and(|o| o.network == skiff_proto::cri::NamespaceMode::Node as i32);
        if host_network {
            return Ok("127.0.0.1".into());
        }
        if let Some(ip) = status.network.map(|n| n.ip).filter(|ip| !ip.is_empty()) {
            return Ok(ip);
        }
    }
    Err(error(
        StatusCode::NOT_FOUND,
        format!("pod \"{pod}\" in namespace \"{namespace}\" has no network on this node"),
    ))
}

/// How the client asked to switch.
enum Upgrade {
    /// WebSocket with SPDY inside; its `Sec-WebSocket-Key`.
    WebSocket(http::HeaderValue),
    /// SPDY/3.1 itself, speaking this protocol.
    Spdy(&'static str),
}

/// The handler: answers the upgrade itself, then serves SPDY.
pub async fn port_forward<R: Runtime>(
    State(runtime): State<Arc<R>>,
    Path((namespace, pod)): Path<(String, String)>,
    mut request: Request,
) -> Response {
    let headers = request.headers();
    let upgrade = if skiff_proto::upgrade::is_websocket(headers) {
        let offered = headers
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == PROTOCOL);
        match (offered, headers.get("sec-websocket-key")) {
            (true, Some(key)) => Upgrade::WebSocket(key.clone()),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("port-forward over WebSocket needs the sub-protocol {PROTOCOL}"),
                );
            }
        }
    } else {
        match spdy_upgrade::negotiate(headers, &spdy_upgrade::PORTFORWARD) {
            Ok(p) => Upgrade::Spdy(p),
            Err(e) => return e.into_response(),
        }
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
    let ip = match pod_ip(runtime.as_ref(), &namespace, &pod).await {
        Ok(ip) => ip,
        Err(r) => return r,
    };
    let websocket = matches!(upgrade, Upgrade::WebSocket(_));
    tokio::spawn(async move {
        let upgraded = match incoming.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "port-forward: the client never switched");
                return;
            }
        };
        let conn = if websocket {
            let ws = WebSocketStream::from_raw_socket(upgraded, Role::Server, None).await;
            SpdyConn::over_websocket(ws)
        } else {
            SpdyConn::over_io(upgraded)
        };
        serve(conn, ip).await;
    });
    let key = match upgrade {
        Upgrade::Spdy(protocol) => return spdy_upgrade::switching_protocols(protocol),
        Upgrade::WebSocket(key) => key,
    };
    let mut r = Response::new(axum::body::Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("websocket"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert("sec-websocket-accept", v);
    }
    h.insert(
        "sec-websocket-protocol",
        http::HeaderValue::from_static(PROTOCOL),
    );
    r
}

/// Where the client's bytes for one pod connection go (None: its FIN).
type ToPod = mpsc::UnboundedSender<Option<Vec<u8>>>;

/// What a stream pair (same `requestid`) has so far.
#[derive(Default)]
struct Pair {
    error: Option<u32>,
    /// The data stream's id and the writer into its TCP connection.
    data: Option<(u32, Option<ToPod>)>,
    /// What the client sent before the connection was made (None: its FIN).
    pending: Vec<Option<Vec<u8>>>,
}

/// Events for the session loop from the connections' tasks.
enum Event {
    /// Bytes (or, None, the end) from the pod for a data stream.
    FromPod(u32, Option<Vec<u8>>),
    /// The connection to the pod failed: say so on the pair's error stream.
    Failed(String, String),
    /// The connection was made: where to send the client's bytes.
    Connected(String, ToPod),
}

/// One SPDY session, until either side ends it.
async fn serve(mut conn: SpdyConn, ip: String) {
    let (events, mut event_rx) = mpsc::unbounded_channel::<Event>();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    // Stream id → requestid.
    let mut request_of: HashMap<u32, String> = HashMap::new();
    loop {
        let mut out: Vec<Frame> = Vec::new();
        tokio::select! {
            frame = conn.incoming.recv() => {
                let Some(frame) = frame else { break };
                match frame {
                    Frame::SynStream { id, headers, .. } => {
                        out.push(Frame::SynReply { id, flags: 0, headers: vec![] });
                        let request = spdy::header(&headers, "requestid").unwrap_or("0").to_string();
                        let kind = spdy::header(&headers, "streamtype").unwrap_or_default().to_string();
                        let port = spdy::header(&headers, "port").unwrap_or_default().to_string();
                        request_of.insert(id, request.clone());
                        let pair = pairs.entry(request.clone()).or_default();
                        match kind.as_str() {
                            "error" => pair.error = Some(id),
                            "data" => {
                                pair.data = Some((id, None));
                                connect(&ip, &port, id, request, events.clone());
                            }
                            _ => out.push(Frame::RstStream { id, status: spdy::REFUSED_STREAM }),
                        }
                    }
                    Frame::Data { id, flags, data } => {
                        let Some(pair) = request_of.get(&id).and_then(|r| pairs.get_mut(r)) else {
                            continue;
                        };
                        // Only the data stream carries bytes for the pod.
                        let Some((_, writer)) = pair.data.as_ref().filter(|(d, _)| *d == id) else {
                            continue;
                        };
                        let mut chunks = Vec::new();
                        if !data.is_empty() {
                            chunks.push(Some(data));
                        }
                        if flags & FLAG_FIN != 0 {
                            chunks.push(None);
                        }
                        match writer {
                            Some(w) => {
                                for c in chunks {
                                    let _ = w.send(c);
                                }
                            }
                            None => pair.pending.extend(chunks),
                        }
                    }
                    Frame::GoAway { .. } => return,
                    Frame::RstStream { id, .. } => {
                        if let Some(p) = request_of.get(&id).and_then(|r| pairs.get_mut(r))
                            && let Some((_, Some(w))) = p.data.take()
                        {
                            let _ = w.send(None);
                        }
                    }
                    _ => {}
                }
            }
            Some(event) = event_rx.recv() => match event {
                Event::FromPod(id, Some(data)) => out.push(Frame::Data { id, flags: 0, data }),
                Event::FromPod(id, None) => {
                    out.push(Frame::Data { id, flags: FLAG_FIN, data: vec![] });
                    // The error stream ends with it, empty: nothing went wrong.
                    if let Some(e) = request_of.get(&id).and_then(|r| pairs.get(r)).and_then(|p| p.error) {
                        out.push(Frame::Data { id: e, flags: FLAG_FIN, data: vec![] });
                    }
                }
                Event::Connected(request, writer) => {
                    if let Some(p) = pairs.get_mut(&request) {
                        for c in p.pending.drain(..) {
                            let _ = writer.send(c);
                        }
                        if let Some((_, w)) = p.data.as_mut() {
                            *w = Some(writer);
                        }
                    }
                }
                Event::Failed(request, why) => {
                    if let Some(p) = pairs.get(&request) {
                        if let Some(e) = p.error {
                            out.push(Frame::Data { id: e, flags: FLAG_FIN, data: why.into_bytes() });
                        }
                        if let Some((d, _)) = p.data {
                            out.push(Frame::Data { id: d, flags: FLAG_FIN, data: vec![] });
                        }
                    }
                }
            },
        }
        for f in out {
            if conn.outgoing.send(f).await.is_err() {
                return;
            }
        }
    }
}

/// Connects to the pod's `port` for data stream `id`; the connection's
/// bytes go back to the session as events, the client's come in through
/// the sender it hands back.
fn connect(ip: &str, port: &str, id: u32, request: String, events: mpsc::UnboundedSender<Event>) {
    let address = format!("{ip}:{port}");
    let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
    tokio::spawn(async move {
        let tcp = if port_ok {
            tokio::net::TcpStream::connect(&address)
                .await
                .map_err(|e| e.to_string())
        } else {
            Err("invalid port".into())
        };
        let tcp = match tcp {
            Ok(t) => t,
            Err(e) => {
                let why = format!(
                    "error forwarding port {} to pod at {address}: {e}",
                    address.rsplit(':').next().unwrap_or_default()
                );
                let _ = events.send(Event::Failed(request, why));
                return;
            }
        };
        let (mut read, mut write) = tcp.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
        let _ = events.send(Event::Connected(request, tx));
        tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                match chunk {
                    Some(bytes) => {
                        if write.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    None => {
                        let _ = write.shutdown().await;
                        break;
                    }
                }
            }
        });
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = events.send(Event::FromPod(id, None));
                    break;
                }
                Ok(n) => {
                    if events
                        .send(Event::FromPod(id, Some(buf[..n].to_vec())))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
}
