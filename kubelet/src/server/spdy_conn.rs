//! A SPDY/3.1 connection as the kubelet's streaming endpoints serve it:
//! frames in and frames out over channels, whatever carries the bytes —
//! the raw upgraded connection (`Upgrade: SPDY/3.1`: exec, attach and
//! port-forward from kubectl 1.27–1.30, and later kubectls' fallback) or
//! WebSocket binary messages (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+
//! port-forward), so [`super::portforward`] and [`super::spdy_remotecommand`]
//! are written once against frames.
//!
//! Reading and writing are separate tasks, each with its own half of the
//! compression state (one zlib context per direction, [`Codec`]): a
//! session that is slow to take what the client sends must not stop what
//! goes to the client, or a process that fills its stdout while its stdin
//! is full would hang both. The channels are bounded, so a slow side holds
//! the other back through TCP as spdystream (which has no flow control)
//! does.
//!
//! PINGs are answered here. The session ends the connection by dropping
//! its [`SpdyConn`]: what was queued is written, then the writing side is
//! shut; the client's end shows as `incoming` closing.

use futures::{SinkExt, StreamExt};
use skiff_proto::spdy::{Codec, Frame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Frames queued each way before the producer waits.
const QUEUE: usize = 64;

/// Both directions of one connection.
pub struct SpdyConn {
    /// What the client sent (PINGs excepted), in order; `None` once it
    /// went away or sent something that is not SPDY/3.1.
    pub incoming: mpsc::Receiver<Frame>,
    /// What to send to it, in order.
    pub outgoing: mpsc::Sender<Frame>,
}

/// The reading half's work on one chunk of bytes: frames to the session,
/// PINGs echoed. False when the connection is over.
async fn take_frames(
    codec: &mut Codec,
    buf: &mut Vec<u8>,
    incoming: &mpsc::Sender<Frame>,
    outgoing: &mpsc::WeakSender<Frame>,
) -> bool {
    loop {
        match codec.decode(buf) {
            Ok(Some(Frame::Ping { id })) => {
                // A weak sender, so the writer still ends when the session
                // drops its own.
                if let Some(out) = outgoing.upgrade() {
                    let _ = out.send(Frame::Ping { id }).await;
                }
            }
            Ok(Some(frame)) => {
                if incoming.send(frame).await.is_err() {
                    return false;
                }
            }
            Ok(None) => return true,
            Err(e) => {
                tracing::debug!(error = %e, "SPDY: bad frame; closing");
                return false;
            }
        }
    }
}

impl SpdyConn {
    /// SPDY/3.1 as the connection's own bytes.
    pub fn over_io<IO>(io: IO) -> SpdyConn
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut read, mut write) = tokio::io::split(io);
        let (in_tx, in_rx) = mpsc::channel(QUEUE);
        let (out_tx, mut out_rx) = mpsc::channel::<Frame>(QUEUE);
        let weak = out_tx.downgrade();
        tokio::spawn(async move {
            let mut codec = Codec::new();
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 32 << 10];
            loop {
                match read.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                if !take_frames(&mut codec, &mut buf, &in_tx, &weak).await {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let mut codec = Codec::new();
            while let Some(frame) = out_rx.recv().await {
                if write.write_all(&codec.encode(&frame)).await.is_err() {
                    return;
                }
            }
            let _ = write.shutdown().await;
        });
        SpdyConn {
            incoming: in_rx,
            outgoing: out_tx,
        }
    }

    /// SPDY/3.1 inside WebSocket binary messages, with boundaries that
    /// mean nothing (a frame may span messages, a message hold several).
    pub fn over_websocket<S>(ws: WebSocketStream<S>) -> SpdyConn
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sink, mut source) = ws.split();
        let (in_tx, in_rx) = mpsc::channel(QUEUE);
        let (out_tx, mut out_rx) = mpsc::channel::<Frame>(QUEUE);
        let weak = out_tx.downgrade();
        tokio::spawn(async move {
            let mut codec = Codec::new();
            let mut buf = Vec::new();
            while let Some(Ok(msg)) = source.next().await {
                match msg {
                    Message::Binary(b) => buf.extend_from_slice(&b),
                    Message::Close(_) => break,
                    // Pings are answered by tungstenite itself.
                    _ => continue,
                }
                if !take_frames(&mut codec, &mut buf, &in_tx, &weak).await {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let mut codec = Codec::new();
            while let Some(frame) = out_rx.recv().await {
                let bytes = codec.encode(&frame);
                if sink.send(Message::Binary(bytes.into())).await.is_err() {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        SpdyConn {
            incoming: in_rx,
            outgoing: out_tx,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_proto::spdy::FLAG_FIN;

    #[tokio::test]
    async fn frames_cross_raw_bytes_pings_are_echoed_and_the_end_shows() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let mut conn = SpdyConn::over_io(ours);
        let mut client = Codec::new();
        let mut wire = client.encode(&Frame::SynStream {
            id: 1,
            flags: 0,
            headers: vec![("streamtype".into(), "error".into())],
        });
        wire.extend(client.encode(&Frame::Ping { id: 9 }));
        wire.extend(client.encode(&Frame::Data {
            id: 1,
            flags: FLAG_FIN,
            data: b"x".to_vec(),
        }));
        theirs.write_all(&wire).await.unwrap();
        assert!(matches!(
            conn.incoming.recv().await,
            Some(Frame::SynStream { id: 1, .. })
        ));
        // The PING went back, not to the session.
        assert!(matches!(
            conn.incoming.recv().await,
            Some(Frame::Data { id: 1, .. })
        ));
        conn.outgoing
            .send(Frame::SynReply {
                id: 1,
                flags: 0,
                headers: vec![],
            })
            .await
            .unwrap();
        // Dropping the session's sender ends the writing side.
        let SpdyConn {
            mut incoming,
            outgoing,
        } = conn;
        drop(outgoing);
        let mut back = Vec::new();
        theirs.read_to_end(&mut back).await.unwrap();
        let mut reader = Codec::new();
        assert_eq!(
            reader.decode(&mut back).unwrap(),
            Some(Frame::Ping { id: 9 })
        );
        assert!(matches!(
            reader.decode(&mut back).unwrap(),
            Some(Frame::SynReply { id: 1, .. })
        ));
        drop(theirs);
        assert!(incoming.recv().await.is_none(), "the client's end shows");
    }
}
