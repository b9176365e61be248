//! Attaching to a running container, the shim's side (`kubectl attach`,
//! `kubectl run -i`): the shim holds the container's stdin — a pipe, or
//! the pseudo-terminal's master with a TTY — and its output, and serves
//! attach sessions on a unix socket in the container's directory
//! (`attach.sock`).
//!
//! A session is a WebSocket speaking the protocol of exec,
//! `v5.channel.k8s.io` or v4 ([`crate::stream::channel`]): the runtime's
//! streaming server relays kubectl's frames to it unchanged
//! ([`crate::stream::attach`]). The request's query says which streams the
//! client wants ([`AttachOptions`]).
//!
//! - Output: every chunk the container writes goes to every attached
//!   client, as it is also written to the log. A client sees what is
//!   written while it is attached; what came before is in the log.
//! - Input: what an attached client sends goes to the container's stdin
//!   ([`StdinPolicy`] says whose input still counts).
//! - Resize: with a TTY, the client's size becomes the terminal's.
//! - The end: once the container's output has ended (it exited), each
//!   session gets a Success status on channel 3 and a close — what
//!   upstream's kubelet sends at the end of an attach, whatever the exit
//!   code (`kubectl run` reads that from the pod's status).

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

use crate::stream::channel::{self, Inbound};

/// The socket's name in the container's directory.
pub const SOCKET: &str = "attach.sock";

/// How many output chunks a slow client may fall behind before it misses
/// some: the container's output (and its log) never waits for a client.
const BACKLOG: usize = 256;

/// Which streams an attach session carries (the CRI `AttachRequest`'s
/// flags, passed to the shim in the session's query).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl AttachOptions {
    /// `stdin=1&stdout=1&stderr=0`: the query the relay asks the shim with.
    pub fn query(&self) -> String {
        let b = |on: bool| if on { "1" } else { "0" };
        format!(
            "stdin={}&stdout={}&stderr={}",
            b(self.stdin),
            b(self.stdout),
            b(self.stderr)
        )
    }

    /// Reads [`AttachOptions::query`] back (`true` is taken for `1` too).
    pub fn parse(query: &str) -> AttachOptions {
        let mut o = AttachOptions::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let on = v == "1" || v == "true";
            match k.as_ref() {
                "stdin" => o.stdin = on,
                "stdout" => o.stdout = on,
                "stderr" => o.stderr = on,
                _ => {}
            }
        }
        o
    }

    fn wants(&self, channel: u8) -> bool {
        match channel {
            channel::STDOUT => self.stdout,
            channel::STDERR => self.stderr,
            _ => false,
        }
    }
}

/// Whose input reaches the container's stdin, and when stdin closes.
///
/// Without `stdinOnce`, stdin stays open across sessions: a client's end
/// of input or its leaving closes nothing, the next one types on. With it,
/// the first session that attaches with stdin owns it, and stdin is closed
/// (EOF) when that session's input ends or it detaches — and stays closed.
/// Not with a TTY, as containerd decides: closing a terminal's master would
/// also end the container's only output, and a shell on it ends anyway
/// when the user leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdinPolicy {
    has_stdin: bool,
    once: bool,
    tty: bool,
    closed: bool,
    owner: Option<u64>,
}

impl StdinPolicy {
    pub fn new(has_stdin: bool, once: bool, tty: bool) -> StdinPolicy {
        StdinPolicy {
            has_stdin,
            once,
            tty,
            closed: false,
            owner: None,
        }
    }

    /// Session `id` attaches with stdin: whether its input reaches the
    /// container.
    pub fn attach(&mut self, id: u64) -> bool {
        if !self.has_stdin || self.closed {
            return false;
        }
        if self.once && self.owner.is_none() {
            self.owner = Some(id);
        }
        true
    }

    /// Whether input may still be written.
    pub fn open(&self) -> bool {
        self.has_stdin && !self.closed
    }

    /// Session `id`'s input ended, or it detached: whether the container's
    /// stdin is to be closed now.
    pub fn release(&mut self, id: u64) -> bool {
        if self.once && !self.tty && !self.closed && self.owner == Some(id) {
            self.closed = true;
            return true;
        }
        false
    }
}

enum Input {
    Data(Vec<u8>),
    Close,
}

/// What the shim shares with its sessions: the container's output as it
/// comes, its end, its stdin and its terminal.
pub struct Hub {
    output: broadcast::Sender<(u8, Bytes)>,
    ended: watch::Sender<bool>,
    stdin: Mutex<StdinPolicy>,
    /// To the thread that writes the container's stdin.
    input: Option<std::sync::mpsc::Sender<Input>>,
    /// The terminal's master (resizes), with a TTY.
    pty: Option<Arc<OwnedFd>>,
    next_id: AtomicU64,
    sessions: AtomicUsize,
}

impl Hub {
    /// A hub for a container whose stdin is `stdin` (`None`: it has none),
    /// closed per `once`, on the terminal `pty` if it has one.
    pub fn new(
        stdin: Option<Box<dyn Write + Send>>,
        once: bool,
        pty: Option<Arc<OwnedFd>>,
    ) -> Arc<Hub> {
        let policy = StdinPolicy::new(stdin.is_some(), once, pty.is_some());
        // A thread of its own: a container that does not read its stdin
        // blocks this writer, never a session or the output.
        let input = stdin.map(|mut to| {
            let (tx, rx) = std::sync::mpsc::channel::<Input>();
            std::thread::spawn(move || {
                while let Ok(Input::Data(data)) = rx.recv() {
                    if to.write_all(&data).and_then(|()| to.flush()).is_err() {
                        break;
                    }
                }
                // `to` is dropped here: the container reads EOF.
            });
            tx
        });
        Arc::new(Hub {
            output: broadcast::channel(BACKLOG).0,
            ended: watch::channel(false).0,
            stdin: Mutex::new(policy),
            input,
            pty,
            next_id: AtomicU64::new(1),
            sessions: AtomicUsize::new(0),
        })
    }

    /// A chunk of the container's output on `channel` (stdout or stderr),
    /// for whoever is attached.
    pub fn publish(&self, channel: u8, data: &[u8]) {
        // No receiver is no error: nobody is attached.
        let _ = self.output.send((channel, Bytes::copy_from_slice(data)));
    }

    /// The container's output has ended: sessions finish.
    pub fn end(&self) {
        self.ended.send_replace(true);
    }

    /// Waits (up to `timeout`) until every session has finished.
    pub fn wait_sessions(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.sessions.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn policy(&self) -> std::sync::MutexGuard<'_, StdinPolicy> {
        self.stdin.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, data: Vec<u8>) {
        if let (true, Some(tx)) = (self.policy().open(), &self.input) {
            let _ = tx.send(Input::Data(data));
        }
    }

    fn release(&self, id: u64) {
        if self.policy().release(id)
            && let Some(tx) = &self.input
        {
            let _ = tx.send(Input::Close);
        }
    }

    fn resize(&self, width: u16, height: u16) {
        if let Some(pty) = &self.pty
            && let Err(e) = crate::stream::pty_sys::set_size(pty, width, height)
        {
            tracing::debug!(error = %e, "attach: resize");
        }
    }
}

/// Counts a session while it runs.
struct Running<'a>(&'a Hub);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A unix socket address for `path` that fits: socket paths are limited to
/// 107 bytes and a container's directory under a deep root can be longer.
/// Then the directory is reached through a descriptor
/// (`/proc/self/fd/<n>/<name>`), which the returned handle keeps open for
/// as long as the address is used.
pub fn socket_address(path: &Path) -> std::io::Result<(PathBuf, Option<OwnedFd>)> {
    if path.as_os_str().len() < 100 {
        return Ok((path.to_path_buf(), None));
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok((path.to_path_buf(), None));
    };
    let dir: OwnedFd = std::fs::File::open(dir)?.into();
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    Ok((short, Some(dir)))
}

/// Binds the attach socket at `path` (removing a stale one first).
pub fn bind(path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    let _ = std::fs::remove_file(path);
    let (address, _dir) = socket_address(path)?;
    std::os::unix::net::UnixListener::bind(address)
}

/// Serves attach sessions on `listener` for ever (the shim's runtime ends
/// with the shim).
pub async fn serve(listener: tokio::net::UnixListener, hub: Arc<Hub>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handshake(stream, hub.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "attach socket: accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

// The handshake callback's error type (an HTTP response) is tungstenite's.
#[allow(clippy::result_large_err)]
async fn handshake(stream: tokio::net::UnixStream, hub: Arc<Hub>) {
    let asked: Arc<Mutex<AttachOptions>> = Arc::default();
    let found = asked.clone();
    let callback = move |request: &Request, mut response: Response| {
        let offered = request
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let Some(protocol) = channel::negotiate(offered) else {
            let mut r = ErrorResponse::new(Some(format!(
                "this attach socket speaks {}",
                channel::PROTOCOLS.join(", ")
            )));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return Err(r);
        };
        response
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static(protocol));
        *found.lock().unwrap_or_else(|e| e.into_inner()) =
            AttachOptions::parse(request.uri().query().unwrap_or_default());
        Ok(response)
    };
    match tokio_tungstenite::accept_hdr_async(stream, callback).await {
        Ok(ws) => {
            let options = *asked.lock().unwrap_or_else(|e| e.into_inner());
            session(ws, &hub, options).await;
        }
        Err(e) => tracing::debug!(error = %e, "attach socket: handshake"),
    }
}

/// One attached client, until the container's output ends or it leaves.
pub async fn session<S>(mut ws: WebSocketStream<S>, hub: &Hub, options: AttachOptions)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    hub.sessions.fetch_add(1, Ordering::SeqCst);
    let _running = Running(hub);
    let id = hub.next_id.fetch_add(1, Ordering::SeqCst);
    // Subscribed before looking at the end: nothing published after the
    // look is missed.
    let mut output = hub.output.subscribe();
    let mut ended = hub.ended.subscribe();
    let mut typing = options.stdin && hub.policy().attach(id);
    let send = |ch: u8, data: &[u8]| Message::Binary(channel::frame(ch, data).into());
    loop {
        tokio::select! {
            chunk = output.recv() => match chunk {
                Ok((ch, data)) if options.wants(ch) => {
                    if ws.send(send(ch, &data)).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "attach: a slow client missed output");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            // (The Ref `wait_for` gives must not live across the awaits.)
            () = async { drop(ended.wait_for(|e| *e).await) } => {
                // What was published before the end, then the status.
                loop {
                    match output.try_recv() {
                        Ok((ch, data)) if options.wants(ch) => {
                            if ws.send(send(ch, &data)).await.is_err() {
                                break;
                            }
                        }
                        Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                        Err(_) => break,
                    }
                }
                let _ = ws.send(Message::Binary(channel::exit_status(0).into())).await;
                crate::stream::session::close(ws).await;
                hub.release(id);
                return;
            }
            message = ws.next() => match message {
                Some(Ok(Message::Binary(data))) => match channel::decode(&data) {
                    Ok(Inbound::Stdin(bytes)) if typing => hub.write(bytes),
                    Ok(Inbound::StdinClosed) if typing => {
                        typing = false;
                        hub.release(id);
                    }
                    Ok(Inbound::Resize { width, height }) => hub.resize(width, height),
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "attach: client message ignored"),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    // The client left.
    hub.release(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_travel_in_the_query() {
        for o in [
            AttachOptions {
                stdin: true,
                stdout: true,
                stderr: false,
            },
            AttachOptions {
                stdin: false,
                stdout: false,
                stderr: true,
            },
        ] {
            assert_eq!(AttachOptions::parse(&o.query()), o);
        }
        assert_eq!(
            AttachOptions::parse("stdin=true&stdout=true&container=x"),
            AttachOptions {
                stdin: true,
                stdout: true,
                stderr: false
            }
        );
        let o = AttachOptions::parse("stdout=1");
        assert!(o.wants(channel::STDOUT) && !o.wants(channel::STDERR));
        assert!(!o.wants(channel::ERROR));
    }

    #[test]
    fn without_stdin_once_stdin_stays_open_across_sessions() {
        let mut p = StdinPolicy::new(true, false, false);
        assert!(p.attach(1));
        assert!(!p.release(1), "EOF from a client closes nothing");
        assert!(p.attach(2) && p.open());
        assert!(!p.release(2));
        // No stdin at all: no one types.
        let mut none = StdinPolicy::new(false, true, false);
        assert!(!none.attach(1) && !none.open());
        assert!(!none.release(1));
    }

    #[test]
    fn with_stdin_once_the_first_client_leaving_closes_stdin_for_good() {
        let mut p = StdinPolicy::new(true, true, false);
        assert!(p.attach(1));
        assert!(p.attach(2), "others type while it is open");
        assert!(!p.release(2), "only the owner's end closes it");
        assert!(p.open());
        assert!(p.release(1));
        assert!(!p.open());
        assert!(!p.release(1), "closed once");
        assert!(!p.attach(3), "and stays closed");
    }

    #[test]
    fn with_a_tty_stdin_once_closes_nothing() {
        let mut p = StdinPolicy::new(true, true, true);
        assert!(p.attach(1));
        assert!(!p.release(1));
        assert!(p.attach(2) && p.open());
    }

    #[test]
    fn a_long_socket_path_is_reached_through_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join(SOCKET);
        assert!(path.as_os_str().len() > 108);
        let listener = bind(&path).unwrap();
        assert!(path.exists(), "the socket is where it was asked");
        let (address, _dir) = socket_address(&path).unwrap();
        let client = std::os::unix::net::UnixStream::connect(address).unwrap();
        let (server, _) = listener.accept().unwrap();
        drop((client, server));
        // A short one is itself.
        let short = dir.path().join(SOCKET);
        let (address, dir) = socket_address(&short).unwrap();
        assert_eq!(address, short);
        assert!(dir.is_none());
    }
}
