//! One attach session, the streaming server's side: kubectl's WebSocket is
//! relayed, frame for frame, to the attach socket of the container's shim
//! ([`crate::container::attach`]), which speaks the same channel protocol
//! and holds the container's stdio. Nothing is decoded here: the shim
//! answers in the protocol kubectl agreed on, and whoever closes first
//! closes the other side.

use std::path::PathBuf;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::channel;
use crate::container::attach::{AttachOptions, socket_address};

/// What to attach to, as the CRI `AttachRequest` asked: the shim's socket
/// and the streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachParams {
    pub socket: PathBuf,
    pub options: AttachOptions,
}

/// The shim's side of the session, in `protocol`.
async fn connect(
    params: &AttachParams,
    protocol: &str,
) -> Result<WebSocketStream<tokio::net::UnixStream>, String> {
    let unix = {
        let (address, _dir) = socket_address(&params.socket).map_err(|e| e.to_string())?;
        tokio::net::UnixStream::connect(&address)
            .await
            .map_err(|e| format!("the container's shim ({}): {e}", params.socket.display()))?
    };
    let mut request = format!("ws://shim/attach?{}", params.options.query())
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        protocol.parse().map_err(|_| "bad protocol".to_string())?,
    );
    let (ws, _) = tokio_tungstenite::client_async(request, unix)
        .await
        .map_err(|e| format!("the container's shim: {e}"))?;
    Ok(ws)
}

/// Relays `client` (kubectl, through the kubelet) to the shim until one of
/// them ends the session.
pub async fn run<S>(mut client: WebSocketStream<S>, params: AttachParams, protocol: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut shim = match connect(&params, protocol).await {
        Ok(ws) => ws,
        Err(e) => {
            let message = format!("failed to attach to container: {e}");
            let _ = client
                .send(Message::Binary(channel::failure(&message).into()))
                .await;
            super::session::close(client).await;
            return;
        }
    };
    loop {
        tokio::select! {
            message = client.next() => match message {
                Some(Ok(Message::Binary(data))) => {
                    if shim.send(Message::Binary(data)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    // kubectl left: the shim's session ends (stdinOnce
                    // counts it as detaching).
                    let _ = shim.close(None).await;
                    return;
                }
                // Pings are answered by the WebSocket layer.
                Some(Ok(_)) => {}
            },
            message = shim.next() => match message {
                Some(Ok(Message::Binary(data))) => {
                    if client.send(Message::Binary(data)).await.is_err() {
                        let _ = shim.close(None).await;
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    super::session::close(client).await;
}
