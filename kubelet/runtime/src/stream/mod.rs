//! The streaming server behind CRI `Exec` and `Attach`, as the CRI
//! defines it: each checks the request and answers with a one-time URL on
//! this server (`http://127.0.0.1:<port>/exec/<token>`, `/attach/<token>`);
//! the kubelet forwards the API server's WebSocket upgrade there, and the
//! session speaks the `v5.channel.k8s.io` protocol ([`channel`]) straight
//! to kubectl — an exec session runs its process ([`session`]), an attach
//! session is relayed to the container's shim ([`attach`]).
//!
//! A token is random (128 bits), good once, and forgotten after a minute
//! unused. The server listens on loopback only.
//!
//! Where to start: [`Streams::start`], then [`session::run`] and
//! [`attach::run`].

pub mod attach;
pub mod channel;
pub mod process;
pub(crate) mod pty_sys;
pub mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

pub use attach::AttachParams;
pub use session::ExecParams;

/// How long an `Exec` answer's URL stays good unused.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);

/// A session waiting for its client.
#[derive(Debug, Clone)]
enum Session {
    Exec(ExecParams),
    Attach(AttachParams),
}

impl Session {
    /// The path its URL has before the token.
    fn kind(&self) -> &'static str {
        match self {
            Session::Exec(_) => "exec",
            Session::Attach(_) => "attach",
        }
    }
}

#[derive(Default)]
struct Pending {
    sessions: Mutex<HashMap<String, (Instant, Session)>>,
}

impl Pending {
    fn take(&self, token: &str) -> Option<Session> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, (at, _)| at.elapsed() < TOKEN_TTL);
        sessions.remove(token).map(|(_, p)| p)
    }
}

/// The streaming server: started once with the runtime, stopped when
/// dropped.
pub struct Streams {
    pending: Arc<Pending>,
    addr: SocketAddr,
    task: tokio::task::AbortHandle,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams").field("addr", &self.addr).finish()
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Streams {
    /// Listens on a free loopback port and serves there (on the current
    /// tokio runtime).
    pub fn start() -> std::io::Result<Streams> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let pending = Arc::new(Pending::default());
        let served = pending.clone();
        let task = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((tcp, _)) => {
                        tokio::spawn(serve(tcp, served.clone()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "streaming server: accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        })
        .abort_handle();
        tracing::info!(%addr, "streaming server (exec, attach)");
        Ok(Streams {
            pending,
            addr,
            task,
        })
    }

    /// Registers an exec session and returns the URL that runs it.
    pub fn exec_url(&self, params: ExecParams) -> String {
        self.register(Session::Exec(params))
    }

    /// Registers an attach session and returns the URL that runs it.
    pub fn attach_url(&self, params: AttachParams) -> String {
        self.register(Session::Attach(params))
    }

    fn register(&self, session: Session) -> String {
        let token = format!("{:032x}", rand::random::<u128>());
        let kind = session.kind();
        self.pending
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone(), (Instant::now(), session));
        format!("http://{}/{kind}/{token}", self.addr)
    }
}

/// What the handshake found: the session and the protocol agreed on.
type Accepted = Arc<Mutex<Option<(Session, &'static str)>>>;

fn refuse(status: StatusCode, message: String) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(message));
    *r.status_mut() = status;
    r
}

// The handshake callback's error type (an HTTP response) is tungstenite's.
#[allow(clippy::result_large_err)]
async fn serve(tcp: TcpStream, pending: Arc<Pending>) {
    let accepted: Accepted = Arc::default();
    let found = accepted.clone();
    let callback = move |request: &Request, mut response: Response| {
        let path = request.uri().path();
        let Some((kind, token)) = path
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .filter(|(kind, _)| ["exec", "attach"].contains(kind))
        else {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                format!("no such path {path}"),
            ));
        };
        let offered = request
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let Some(protocol) = channel::negotiate(offered) else {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "none of the offered stream protocols is supported; this server speaks {}",
                    channel::PROTOCOLS.join(", ")
                ),
            ));
        };
        let Some(session) = pending.take(token).filter(|s| s.kind() == kind) else {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                format!("unknown or expired {kind} session"),
            ));
        };
        response
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static(protocol));
        *found.lock().unwrap_or_else(|e| e.into_inner()) = Some((session, protocol));
        Ok(response)
    };
    let ws = match tokio_tungstenite::accept_hdr_async(tcp, callback).await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(error = %e, "streaming server: handshake");
            return;
        }
    };
    let found = accepted.lock().unwrap_or_else(|e| e.into_inner()).take();
    match found {
        Some((Session::Exec(params), _)) => session::run(ws, params).await,
        Some((Session::Attach(params), protocol)) => attach::run(ws, params, protocol).await,
        None => {}
    }
}
