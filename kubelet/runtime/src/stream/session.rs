//! One exec session: the process started, its output sent as channel
//! messages, the client's stdin, resizes and EOF passed in, and at the end
//! the exit status on channel 3 and a WebSocket close.
//!
//! The process ends the session: once it has exited (and its output pipes
//! have drained, or a second has passed, for a background child that keeps
//! them open) the status is sent. A client that goes away first gets its
//! process killed.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::channel::{self, Inbound};
use super::process::{self, PtyIo, PtyMaster};

/// What to run, as the CRI `ExecRequest` asked, in the container whose
/// PID 1 is `pid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecParams {
    pub pid: i32,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

enum Event {
    Output(u8, Vec<u8>),
    Exit(i32),
}

/// The running process's side of the session.
struct Running {
    /// Where the client's stdin goes; `None` once it ended (or without `-i`).
    stdin: Option<mpsc::Sender<Vec<u8>>>,
    /// The terminal, for resizes (with a TTY).
    pty: Option<Arc<PtyMaster>>,
    events: mpsc::Receiver<Event>,
    /// Owns the child (killed on drop, so aborting this kills it).
    waiter: tokio::task::JoinHandle<()>,
}

fn pump<R: AsyncRead + Unpin + Send + 'static>(
    mut from: R,
    channel: u8,
    to: mpsc::Sender<Event>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 << 10];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0
                || to
                    .send(Event::Output(channel, buf[..n].to_vec()))
                    .await
                    .is_err()
            {
                break;
            }
        }
    })
}

/// Where the client's input goes: a task writing each chunk to `to`,
/// which is dropped (EOF, for a pipe) when the sender is.
fn feed<W: AsyncWrite + Unpin + Send + 'static>(mut to: W) -> mpsc::Sender<Vec<u8>> {
    let (tx, mut chunks) = mpsc::channel::<Vec<u8>>(16);
    tokio::spawn(async move {
        while let Some(chunk) = chunks.recv().await {
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    tx
}

fn start(p: &ExecParams) -> std::io::Result<Running> {
    use std::process::Stdio;
    let (tx, events) = mpsc::channel(16);
    let mut readers = Vec::new();
    let (child, stdin, pty) = if p.tty {
        let root = std::path::Path::new("/proc")
            .join(p.pid.to_string())
            .join("root");
        let (master, slave) = PtyMaster::open(&root)?;
        let (i, o, e) = process::slave_stdio(&slave)?;
        let mut cmd = process::command(p.pid, &p.cmd, true);
        cmd.stdin(i).stdout(o).stderr(e);
        let child = cmd.spawn()?;
        // Only the child may hold the slave: its exit then ends our reads.
        drop(cmd);
        drop(slave);
        let master = Arc::new(master);
        readers.push(pump(PtyIo(master.clone()), channel::STDOUT, tx.clone()));
        let keys = p.stdin.then(|| feed(PtyIo(master.clone())));
        (child, keys, Some(master))
    } else {
        let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
        let mut cmd = process::command(p.pid, &p.cmd, false);
        cmd.stdin(piped(p.stdin))
            .stdout(piped(p.stdout))
            .stderr(piped(p.stderr));
        let mut child = cmd.spawn()?;
        if let Some(out) = child.stdout.take() {
            readers.push(pump(out, channel::STDOUT, tx.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(pump(err, channel::STDERR, tx.clone()));
        }
        let stdin = child.stdin.take().map(feed);
        (child, stdin, None)
    };
    let waiter = tokio::spawn(async move {
        let mut child = child;
        let code = match child.wait().await {
            Ok(status) => process::exit_code(status),
            Err(_) => 255,
        };
        let drained = futures::future::join_all(readers);
        let _ = tokio::time::timeout(Duration::from_secs(1), drained).await;
        let _ = tx.send(Event::Exit(code)).await;
    });
    Ok(Running {
        stdin,
        pty,
        events,
        waiter,
    })
}

/// Runs `params` for the client on `ws` until the process ends or the
/// client goes.
pub async fn run<S>(mut ws: WebSocketStream<S>, params: ExecParams)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut running = match start(&params) {
        Ok(r) => r,
        Err(e) => {
            let message = format!(
                "failed to exec in container: starting {:?}: {e}",
                params.cmd
            );
            let _ = ws
                .send(Message::Binary(channel::failure(&message).into()))
                .await;
            close(ws).await;
            return;
        }
    };
    loop {
        tokio::select! {
            event = running.events.recv() => match event {
                Some(Event::Output(ch, data)) => {
                    if ws.send(Message::Binary(channel::frame(ch, &data).into())).await.is_err() {
                        break;
                    }
                }
                Some(Event::Exit(code)) => {
                    let _ = ws.send(Message::Binary(channel::exit_status(code).into())).await;
                    close(ws).await;
                    return;
                }
                None => break,
            },
            message = ws.next() => match message {
                Some(Ok(Message::Binary(data))) => match channel::decode(&data) {
                    Ok(Inbound::Stdin(bytes)) => {
                        if let Some(tx) = &running.stdin {
                            let _ = tx.send(bytes).await;
                        }
                    }
                    // A terminal has no end of input; a pipe closes.
                    Ok(Inbound::StdinClosed) => {
                        if running.pty.is_none() {
                            running.stdin = None;
                        }
                    }
                    Ok(Inbound::Resize { width, height }) => {
                        if let Some(pty) = &running.pty {
                            let _ = pty.resize(width, height);
                        }
                    }
                    Ok(Inbound::Ignored) => {}
                    Err(e) => tracing::debug!(error = %e, "exec: client message ignored"),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                // Pings are answered by the WebSocket layer; text means nothing here.
                Some(Ok(_)) => {}
            },
        }
    }
    // The client left before the process ended.
    running.waiter.abort();
}

/// Sends a normal close and waits (briefly) for the client's.
pub(crate) async fn close<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocketStream<S>) {
    let _ = ws
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }))
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}
