//! Exec and attach over SPDY/3.1: what kubectl 1.27–1.29 speak, and what
//! later kubectls fall back to when the WebSocket attempt is refused (or
//! with `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`).
//!
//! After the handshake ([`super::spdy_upgrade`]: v4.channel.k8s.io, v3, v2
//! or channel.k8s.io) kubectl opens one SPDY stream per channel, each named
//! by its `streamType` header — `error`, then `stdin`, `stdout`, `stderr`
//! or, with a TTY (v3 and later), `resize` — and waits for a SYN_REPLY to
//! each. Once all that the query asked for are open ([`Streams`]; upstream
//! waits the same way, 30 s at most) the session runs.
//!
//! The session itself is the runtime's: the kubelet connects to the
//! runtime's streaming URL (CRI `Exec` or `Attach`) as a WebSocket client
//! speaking `v5.channel.k8s.io`, and translates — stdin DATA to channel 0
//! and its FIN to `[255, 0]`, each JSON object on the resize stream to
//! channel 4, channels 1 and 2 to the stdout and stderr streams, and the
//! final status on channel 3 to the error stream ([`status_for`]: the v4
//! Status JSON as it is, plain text for the older protocols), then FIN on
//! every stream the server writes. This keeps one implementation of exec
//! and attach (process, pty, shim relay, exit codes) behind the CRI
//! boundary, as upstream's kubelet keeps it in the runtime; the runtime
//! does not have to learn a second framing. The WebSocket to the runtime
//! is opened before the 101, so a refused or expired URL is still an HTTP
//! error kubectl can print; what the process writes before kubectl's
//! streams are open waits in that socket.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use http::StatusCode;
use hyper_util::rt::TokioIo;
use skiff_proto::spdy::{self, FLAG_FIN, Frame};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::exec::ExecOptions;
use super::spdy_conn::SpdyConn;
use super::spdy_upgrade;

/// How long kubectl has to open its streams (upstream's
/// `streamCreationTimeout`).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long, once the session has ended, kubectl has to close its side
/// before the connection is dropped under it.
const CLIENT_CLOSE_GRACE: Duration = Duration::from_secs(5);
/// What the kubelet speaks to the runtime: v5 has stdin's end.
const RUNTIME_PROTOCOL: &str = "v5.channel.k8s.io";

/// A stream's part in the session, from its `streamType` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Error,
    Stdin,
    Stdout,
    Stderr,
    Resize,
}

impl Kind {
    pub fn parse(stream_type: &str) -> Option<Kind> {
        Some(match stream_type {
            "error" => Kind::Error,
            "stdin" => Kind::Stdin,
            "stdout" => Kind::Stdout,
            "stderr" => Kind::Stderr,
            "resize" => Kind::Resize,
            _ => return None,
        })
    }
}

/// The session's streams as kubectl opens them, and which it must open
/// before the session runs.
#[derive(Debug)]
pub struct Streams {
    expected: Vec<Kind>,
    ids: HashMap<Kind, u32>,
}

impl Streams {
    /// What `opts` (the query) and `protocol` call for: the error stream
    /// always, one per asked stdio stream (no stderr with a TTY), and
    /// resize with a TTY from v3 on (v2 and v1 cannot resize).
    pub fn new(opts: &ExecOptions, protocol: &str) -> Streams {
        let mut expected = vec![Kind::Error];
        for (asked, kind) in [
            (opts.stdin, Kind::Stdin),
            (opts.stdout, Kind::Stdout),
            (opts.stderr && !opts.tty, Kind::Stderr),
            (opts.tty && resizes(protocol), Kind::Resize),
        ] {
            if asked {
                expected.push(kind);
            }
        }
        Streams {
            expected,
            ids: HashMap::new(),
        }
    }

    /// A stream kubectl opened: its kind, or why it is not taken (an
    /// unknown type, or a second stream of one kind).
    pub fn add(&mut self, id: u32, stream_type: &str) -> Result<Kind, String> {
        let kind = Kind::parse(stream_type)
            .ok_or_else(|| format!("unexpected stream type {stream_type:?}"))?;
        if self.ids.contains_key(&kind) {
            return Err(format!("a second {stream_type} stream"));
        }
        self.ids.insert(kind, id);
        Ok(kind)
    }

    /// Are all the streams the session needs open?
    pub fn complete(&self) -> bool {
        self.expected.iter().all(|k| self.ids.contains_key(k))
    }

    pub fn id(&self, kind: Kind) -> Option<u32> {
        self.ids.get(&kind).copied()
    }

    pub fn kind_of(&self, id: u32) -> Option<Kind> {
        self.ids.iter().find(|(_, i)| **i == id).map(|(k, _)| *k)
    }
}

/// Does `protocol` have the resize stream?
fn resizes(protocol: &str) -> bool {
    matches!(protocol, "v3.channel.k8s.io" | "v4.channel.k8s.io")
}

/// What goes on the error stream for the runtime's final status (the JSON
/// of channel 3): v4 carries the Status as it is (kubectl reads the exit
/// code from its `NonZeroExitCode` reason and `ExitCode` cause); v1–v3
/// carry nothing on success and the message as plain text otherwise, as
/// upstream's `v1WriteStatusFunc`.
pub fn status_for(protocol: &str, status: &[u8]) -> Vec<u8> {
    if protocol == "v4.channel.k8s.io" {
        return status.to_vec();
    }
    match serde_json::from_slice::<serde_json::Value>(status) {
        Ok(s) if s["status"] == "Success" => vec![],
        Ok(s) => s["message"]
            .as_str()
            .map_or_else(|| status.to_vec(), |m| m.as_bytes().to_vec()),
        Err(_) => status.to_vec(),
    }
}

/// The error stream's text when the session broke without a status.
pub fn internal_error(protocol: &str, message: &str) -> Vec<u8> {
    let status = serde_json::json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": 500,
    });
    status_for(protocol, status.to_string().as_bytes())
}

/// Takes the whole JSON objects (`{"Width":…,"Height":…}`, one after
/// another, as kubectl's encoder writes them) off the front of `buf`, as
/// channel-4 payloads; an incomplete one stays for the next DATA frame,
/// a malformed one is dropped with what follows.
pub fn take_resizes(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    #[derive(serde::Deserialize, serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Size {
        width: u16,
        height: u16,
    }
    let mut out = Vec::new();
    let mut values = serde_json::Deserializer::from_slice(buf).into_iter::<Size>();
    let mut used = 0;
    loop {
        match values.next() {
            Some(Ok(size)) => {
                used = values.byte_offset();
                out.extend(serde_json::to_vec(&size).ok());
            }
            Some(Err(e)) if e.is_eof() => break,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "SPDY resize stream: not a size; dropped");
                used = buf.len();
                break;
            }
            None => {
                used = buf.len();
                break;
            }
        }
    }
    buf.drain(..used);
    out
}

/// The message of a runtime channel.
fn channel(c: u8, data: &[u8]) -> Message {
    let mut m = Vec::with_capacity(data.len() + 1);
    m.push(c);
    m.extend_from_slice(data);
    Message::Binary(m.into())
}

/// Answers kubectl's SPDY upgrade for the session at the runtime's `url`:
/// connects to it first, then switches and runs the session on its own.
pub async fn upgrade(
    url: &str,
    protocol: &'static str,
    opts: ExecOptions,
    incoming: hyper::upgrade::OnUpgrade,
) -> Response {
    let runtime = match connect(url).await {
        Ok(ws) => ws,
        Err(r) => return r,
    };
    tokio::spawn(async move {
        match incoming.await {
            Ok(upgraded) => {
                let conn = SpdyConn::over_io(TokioIo::new(upgraded));
                serve(conn, runtime, protocol, &opts).await;
            }
            Err(e) => tracing::debug!(error = %e, "SPDY exec: the client never switched"),
        }
    });
    spdy_upgrade::switching_protocols(protocol)
}

/// The runtime's streaming session, as a WebSocket client.
async fn connect(url: &str) -> Result<WebSocketStream<TcpStream>, Response> {
    let internal = |m: String| (StatusCode::INTERNAL_SERVER_ERROR, m).into_response();
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(internal(format!(
            "the runtime's streaming URL {url:?} is not http://host:port/path"
        )));
    };
    let host = rest.split('/').next().unwrap_or_default();
    let tcp = TcpStream::connect(host)
        .await
        .map_err(|e| internal(format!("the runtime's streaming server at {host}: {e}")))?;
    let mut request = format!("ws://{rest}")
        .into_client_request()
        .map_err(|e| internal(format!("the runtime's streaming URL {url:?}: {e}")))?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        http::HeaderValue::from_static(RUNTIME_PROTOCOL),
    );
    match tokio_tungstenite::client_async(request, tcp).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            let body = r
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .trim()
                .to_string();
            Err((r.status(), body).into_response())
        }
        Err(e) => Err(internal(format!("the runtime's streaming server: {e}"))),
    }
}

/// One session: kubectl's streams opened, then bytes both ways until the
/// runtime ends it (or kubectl goes, which ends the runtime's session).
async fn serve(
    conn: SpdyConn,
    runtime: WebSocketStream<TcpStream>,
    protocol: &'static str,
    opts: &ExecOptions,
) {
    let SpdyConn {
        mut incoming,
        outgoing,
    } = conn;
    let mut streams = Streams::new(opts, protocol);
    // Frames that came before the last stream (none from kubectl, which
    // opens all first, but nothing in the protocol says so).
    let mut early: VecDeque<Frame> = VecDeque::new();
    let opened = tokio::time::timeout(STREAM_CREATION_TIMEOUT, async {
        while !streams.complete() {
            match incoming.recv().await {
                Some(Frame::SynStream { id, headers, .. }) => {
                    let reply = Frame::SynReply {
                        id,
                        flags: 0,
                        headers: vec![],
                    };
                    if outgoing.send(reply).await.is_err() {
                        return false;
                    }
                    let kind = spdy::header(&headers, "streamtype").unwrap_or_default();
                    if let Err(e) = streams.add(id, kind) {
                        tracing::debug!(error = %e, "SPDY exec: stream refused");
                        let _ = outgoing
                            .send(Frame::RstStream {
                                id,
                                status: spdy::REFUSED_STREAM,
                            })
                            .await;
                    }
                }
                Some(Frame::GoAway { .. }) | None => return false,
                Some(other) => early.push_back(other),
            }
        }
        true
    })
    .await;
    if !matches!(opened, Ok(true)) {
        tracing::debug!("SPDY exec: the client did not open its streams; ended");
        return;
    }
    let streams = &streams;
    let (mut to_runtime, mut from_runtime) = runtime.split();

    // kubectl → runtime, until kubectl goes away.
    let client_side = {
        let outgoing = outgoing.clone();
        async move {
            let mut resize = Vec::new();
            // Once the runtime has gone, what kubectl still sends is read
            // and dropped until it closes.
            let mut runtime_gone = false;
            loop {
                let frame = match early.pop_front() {
                    Some(f) => f,
                    None => match incoming.recv().await {
                        Some(f) => f,
                        None => break,
                    },
                };
                let mut messages = Vec::new();
                match frame {
                    Frame::Data { id, flags, data } => match streams.kind_of(id) {
                        Some(Kind::Stdin) => {
                            if !data.is_empty() {
                                messages.push(channel(0, &data));
                            }
                            if flags & FLAG_FIN != 0 {
                                messages.push(channel(255, &[0]));
                            }
                        }
                        Some(Kind::Resize) => {
                            resize.extend_from_slice(&data);
                            messages
                                .extend(take_resizes(&mut resize).iter().map(|r| channel(4, r)));
                        }
                        _ => {}
                    },
                    Frame::SynStream { id, .. } => {
                        // The session is set: no more streams.
                        let _ = outgoing
                            .send(Frame::SynReply {
                                id,
                                flags: 0,
                                headers: vec![],
                            })
                            .await;
                        let _ = outgoing
                            .send(Frame::RstStream {
                                id,
                                status: spdy::REFUSED_STREAM,
                            })
                            .await;
                    }
                    Frame::GoAway { .. } => break,
                    _ => {}
                }
                for m in messages {
                    if !runtime_gone && to_runtime.send(m).await.is_err() {
                        runtime_gone = true;
                    }
                }
            }
        }
    };

    // runtime → kubectl, until the session's status (or its end).
    let runtime_side = async move {
        let mut status: Option<Vec<u8>> = None;
        let mut broken: Option<String> = None;
        while let Some(message) = from_runtime.next().await {
            let data = match message {
                Ok(Message::Binary(b)) => b,
                Ok(Message::Close(_)) => break,
                Ok(_) => continue,
                Err(e) => {
                    broken = Some(e.to_string());
                    break;
                }
            };
            let Some((&c, data)) = data.split_first() else {
                continue;
            };
            let to = match c {
                1 => streams.id(Kind::Stdout),
                2 => streams.id(Kind::Stderr),
                3 => {
                    status = Some(data.to_vec());
                    break;
                }
                _ => None,
            };
            if let Some(id) = to.filter(|_| !data.is_empty()) {
                let frame = Frame::Data {
                    id,
                    flags: 0,
                    data: data.to_vec(),
                };
                if outgoing.send(frame).await.is_err() {
                    return;
                }
            }
        }
        let text = match (status, broken) {
            (Some(s), _) => status_for(protocol, &s),
            (None, Some(e)) => {
                internal_error(protocol, &format!("the runtime's session broke: {e}"))
            }
            // A session that ends without a status succeeded (as kubectl
            // reads an empty error stream).
            (None, None) => vec![],
        };
        let mut last = Vec::new();
        if let Some(id) = streams.id(Kind::Error)
            && !text.is_empty()
        {
            last.push(Frame::Data {
                id,
                flags: 0,
                data: text,
            });
        }
        for kind in [Kind::Stdout, Kind::Stderr, Kind::Error] {
            if let Some(id) = streams.id(kind) {
                last.push(Frame::Data {
                    id,
                    flags: FLAG_FIN,
                    data: vec![],
                });
            }
        }
        for f in last {
            if outgoing.send(f).await.is_err() {
                return;
            }
        }
    };

    tokio::pin!(client_side);
    tokio::select! {
        // The session is over: kubectl closes its side once it has read
        // it all (RST_STREAMs, GOAWAY); it is given a moment to.
        _ = runtime_side => {
            let _ = tokio::time::timeout(CLIENT_CLOSE_GRACE, &mut client_side).await;
        }
        // kubectl went first: dropping the runtime's WebSocket ends its
        // session (an exec'd process is killed).
        _ = &mut client_side => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> ExecOptions {
        ExecOptions {
            command: vec!["sh".into()],
            stdin,
            stdout,
            stderr,
            tty,
        }
    }

    #[test]
    fn the_session_waits_for_the_streams_its_query_asked_for() {
        // exec -- echo: error, stdout, stderr.
        let mut s = Streams::new(&opts(false, true, true, false), "v4.channel.k8s.io");
        assert_eq!(s.add(1, "error"), Ok(Kind::Error));
        assert_eq!(s.add(3, "stdout"), Ok(Kind::Stdout));
        assert!(!s.complete());
        assert_eq!(s.add(5, "stderr"), Ok(Kind::Stderr));
        assert!(s.complete());
        assert_eq!(s.kind_of(3), Some(Kind::Stdout));
        assert_eq!(s.id(Kind::Error), Some(1));
        assert_eq!(s.kind_of(7), None);
        assert_eq!(s.id(Kind::Stdin), None);

        // exec -it: error, stdin, stdout, resize; no stderr with a TTY.
        let mut s = Streams::new(&opts(true, true, true, true), "v4.channel.k8s.io");
        for (id, t) in [(1, "error"), (3, "stdin"), (5, "stdout")] {
            s.add(id, t).unwrap();
        }
        assert!(!s.complete(), "resize is awaited with a TTY on v4");
        s.add(7, "resize").unwrap();
        assert!(s.complete());
        // v2 has no resize stream: complete without it.
        let mut s = Streams::new(&opts(true, true, false, true), "v2.channel.k8s.io");
        for (id, t) in [(1, "error"), (3, "stdin"), (5, "stdout")] {
            s.add(id, t).unwrap();
        }
        assert!(s.complete());
    }

    #[test]
    fn unknown_and_second_streams_are_refused() {
        let mut s = Streams::new(&opts(false, true, false, false), "v4.channel.k8s.io");
        assert!(s.add(1, "data").unwrap_err().contains("unexpected"));
        assert!(s.add(1, "").is_err());
        s.add(3, "error").unwrap();
        assert!(s.add(5, "error").unwrap_err().contains("second"));
        assert_eq!(s.id(Kind::Error), Some(3), "the first one stays");
        assert!(!s.complete());
    }

    #[test]
    fn the_status_is_json_on_v4_and_text_before() {
        let failed = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [...], exit code 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}"#;
        let ok = br#"{"metadata":{},"status":"Success"}"#;
        assert_eq!(status_for("v4.channel.k8s.io", failed), failed.to_vec());
        assert_eq!(status_for("v4.channel.k8s.io", ok), ok.to_vec());
        for older in ["v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"] {
            assert_eq!(status_for(older, ok), b"", "{older}");
            assert!(
                String::from_utf8(status_for(older, failed))
                    .unwrap()
                    .starts_with("command terminated with non-zero exit code"),
                "{older}"
            );
        }
        let broken: serde_json::Value =
            serde_json::from_slice(&internal_error("v4.channel.k8s.io", "gone")).unwrap();
        assert_eq!(broken["status"], "Failure");
        assert_eq!(broken["reason"], "InternalError");
        assert_eq!(broken["message"], "gone");
        assert_eq!(internal_error("v2.channel.k8s.io", "gone"), b"gone");
    }

    #[test]
    fn resizes_are_split_into_whole_objects_across_frames() {
        let mut buf = br#"{"Width":80,"Height":24}{"Width":100,"#.to_vec();
        assert_eq!(
            take_resizes(&mut buf),
            [br#"{"Width":80,"Height":24}"#.to_vec()]
        );
        assert_eq!(buf, br#"{"Width":100,"#.to_vec(), "the rest waits");
        buf.extend_from_slice(b"\"Height\":30}\n");
        assert_eq!(
            take_resizes(&mut buf),
            [br#"{"Width":100,"Height":30}"#.to_vec()]
        );
        assert!(buf.is_empty(), "{:?}", String::from_utf8_lossy(&buf));
        let mut bad = b"{\"Width\":\"wide\"}{\"Width\":1,\"Height\":1}".to_vec();
        assert!(take_resizes(&mut bad).is_empty());
        assert!(bad.is_empty(), "a malformed stream is dropped");
    }
}
