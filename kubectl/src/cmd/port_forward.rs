//! `port-forward (POD | TYPE/NAME) [LOCAL:]REMOTE…`: local ports that lead
//! to the pod's, as kubectl 1.31+ does it: one WebSocket to the pod's
//! `portforward` subresource with the sub-protocol
//! `SPDY/3.1+portforward.k8s.io`, SPDY/3.1 inside ([`skiff_proto::spdy`]),
//! and for each local connection a pair of streams (`error`, closed on our
//! side at once, and `data`) sharing a `requestid`. kube-rs's own
//! port-forward speaks another protocol (`v4.channel.k8s.io`), so the
//! upgrade is made here through the kube-rs client's `send`.
//!
//! Lines as kubectl's: `Forwarding from 127.0.0.1:8080 -> 80`, `Handling
//! connection for 8080`; what the node reports on an error stream is shown
//! on stderr and the connection closed. Only 127.0.0.1 is bound (kubectl
//! also binds `[::1]`).

use std::collections::HashMap;

use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use skiff_proto::spdy::{Codec, FLAG_FIN, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::error::{Result, from_kube, usage};
use crate::session::{Session, with_query};

pub const PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// POD, pod/POD or TYPE/NAME (one of its pods).
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::pods))]
    pub target: String,
    /// [LOCAL:]REMOTE port pairs (`:80` or `0:80` picks a free local port).
    #[arg(required = true)]
    pub ports: Vec<String>,
}

/// `8080:80` → (8080, 80); `80` → (80, 80); `:80` → (0, 80).
pub fn parse_pair(text: &str) -> Result<(u16, u16)> {
    let bad = || usage(format!("invalid port format '{text}'"));
    let (local, remote) = match text.split_once(':') {
        Some(("", r)) => ("0", r),
        Some((l, r)) => (l, r),
        None => (text, text),
    };
    let remote: u16 = remote.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
    let local: u16 = local.parse().map_err(|_| bad())?;
    Ok((local, remote))
}

/// What the session hears from the local connections' tasks.
enum Event {
    /// A new local connection for remote `port`: where its bytes from the pod go.
    Opened(
        u16,
        mpsc::UnboundedSender<Option<Vec<u8>>>,
        mpsc::UnboundedSender<u32>,
    ),
    /// Bytes (None: the end) from the local side of data stream `id`.
    Local(u32, Option<Vec<u8>>),
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let pairs: Vec<(u16, u16)> = args
        .ports
        .iter()
        .map(|p| parse_pair(p))
        .collect::<Result<_>>()?;
    let pod = super::logs::pod_for(session, &args.target, false).await?;
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or(session.namespace())
        .to_string();
    if pod["status"]["phase"] != "Running" {
        return Err(usage(format!(
            "unable to forward port because pod is not running. Current status={}",
            pod["status"]["phase"].as_str().unwrap_or("Unknown")
        )));
    }
    let remote_ports: Vec<String> = pairs.iter().map(|(_, r)| r.to_string()).collect();
    let ports_query = remote_ports.join(",");
    let uri = with_query(
        &format!("/api/v1/namespaces/{ns}/pods/{name}/portforward"),
        &[("ports", Some(&ports_query))],
    );
    let key = tokio_tungstenite::tungstenite::handshake::client::generate_key();
    let request = http::Request::get(&uri)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", &key)
        .header("sec-websocket-protocol", PROTOCOL)
        .body(kube::client::Body::from(Vec::new()))
        .map_err(|e| usage(e.to_string()))?;
    let response = session
        .conn
        .client
        .send(request)
        .await
        .map_err(|e| from_kube(e, &session.conn.server))?;
    if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        use http_body_util::BodyExt;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        return Err(usage(format!(
            "error upgrading connection: {status}: {text}"
        )));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| usage(e.to_string()))?;
    let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;

    let (events, event_rx) = mpsc::unbounded_channel::<Event>();
    for (local, remote) in pairs {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", local))
            .await
            .map_err(|e| usage(format!("unable to listen on port {local}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| usage(e.to_string()))?
            .port();
        println!("Forwarding from 127.0.0.1:{bound} -> {remote}");
        let events = events.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                println!("Handling connection for {bound}");
                let events = events.clone();
                tokio::spawn(local_connection(tcp, remote, events));
            }
        });
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    session_loop(ws, event_rx, events).await
}

/// One local connection: opens its streams through the session, then moves
/// bytes both ways until both sides have ended.
async fn local_connection(
    tcp: tokio::net::TcpStream,
    remote: u16,
    events: mpsc::UnboundedSender<Event>,
) {
    let (to_local, mut from_pod) = mpsc::unbounded_channel::<Option<Vec<u8>>>();
    let (id_tx, mut id_rx) = mpsc::unbounded_channel::<u32>();
    if events.send(Event::Opened(remote, to_local, id_tx)).is_err() {
        return;
    }
    let Some(id) = id_rx.recv().await else { return };
    let (mut read, mut write) = tcp.into_split();
    let writer = tokio::spawn(async move {
        while let Some(chunk) = from_pod.recv().await {
            match chunk {
                Some(bytes) => {
                    if write.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                None => break,
            }
        }
        let _ = write.shutdown().await;
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match read.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = events.send(Event::Local(id, None));
                break;
            }
            Ok(n) => {
                if events
                    .send(Event::Local(id, Some(buf[..n].to_vec())))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    let _ = writer.await;
}

/// The SPDY session: opens stream pairs for new connections, carries bytes,
/// shows what error streams say, answers pings.
async fn session_loop<S>(
    ws: WebSocketStream<S>,
    mut event_rx: mpsc::UnboundedReceiver<Event>,
    _keep: mpsc::UnboundedSender<Event>,
) -> Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut source) = ws.split();
    let mut codec = Codec::new();
    let mut buf = Vec::new();
    let mut next_id: u32 = 1;
    let mut request: u64 = 0;
    // Data stream id → the local connection's writer; error stream id → (data id, port).
    let mut data: HashMap<u32, mpsc::UnboundedSender<Option<Vec<u8>>>> = HashMap::new();
    let mut errors: HashMap<u32, (u32, u16)> = HashMap::new();
    loop {
        let mut out = Vec::new();
        tokio::select! {
            msg = source.next() => {
                let Some(Ok(msg)) = msg else {
                    return Err(usage("lost connection to pod"));
                };
                let bytes = match msg {
                    Message::Binary(b) => b.to_vec(),
                    Message::Close(_) => return Err(usage("lost connection to pod")),
                    _ => continue,
                };
                buf.extend_from_slice(&bytes);
                while let Some(frame) = codec.decode(&mut buf).map_err(|e| usage(e.to_string()))? {
                    match frame {
                        Frame::Data { id, flags, data: bytes } => {
                            if let Some(w) = data.get(&id) {
                                if !bytes.is_empty() {
                                    let _ = w.send(Some(bytes));
                                }
                                if flags & FLAG_FIN != 0 {
                                    let _ = w.send(None);
                                }
                            } else if let Some((data_id, port)) = errors.get(&id).copied()
                                && !bytes.is_empty()
                            {
                                eprintln!(
                                    "error: an error occurred forwarding to port {port}: {}",
                                    String::from_utf8_lossy(&bytes)
                                );
                                if let Some(w) = data.get(&data_id) {
                                    let _ = w.send(None);
                                }
                            }
                        }
                        Frame::Ping { id } => out.push(Frame::Ping { id }),
                        Frame::GoAway { .. } => return Err(usage("lost connection to pod")),
                        _ => {}
                    }
                }
            }
            Some(event) = event_rx.recv() => match event {
                Event::Opened(port, writer, id_tx) => {
                    let rid = request.to_string();
                    request += 1;
                    let headers = |kind: &str| vec![
                        ("streamtype".to_string(), kind.to_string()),
                        ("port".to_string(), port.to_string()),
                        ("requestid".to_string(), rid.clone()),
                    ];
                    let (error_id, data_id) = (next_id, next_id + 2);
                    next_id += 4;
                    // The error stream is closed on our side at once.
                    out.push(Frame::SynStream { id: error_id, flags: FLAG_FIN, headers: headers("error") });
                    out.push(Frame::SynStream { id: data_id, flags: 0, headers: headers("data") });
                    errors.insert(error_id, (data_id, port));
                    data.insert(data_id, writer);
                    let _ = id_tx.send(data_id);
                }
                Event::Local(id, Some(bytes)) => out.push(Frame::Data { id, flags: 0, data: bytes }),
                Event::Local(id, None) => out.push(Frame::Data { id, flags: FLAG_FIN, data: vec![] }),
            },
        }
        for f in out {
            sink.send(Message::Binary(codec.encode(&f).into()))
                .await
                .map_err(|_| usage("lost connection to pod"))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_pairs_read_as_kubectl_reads_them() {
        assert_eq!(parse_pair("8080:80").unwrap(), (8080, 80));
        assert_eq!(parse_pair("80").unwrap(), (80, 80));
        assert_eq!(parse_pair(":80").unwrap(), (0, 80));
        assert!(parse_pair("x:80").is_err());
        assert!(parse_pair("8080:0").is_err());
    }
}
