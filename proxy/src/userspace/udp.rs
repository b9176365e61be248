//! UDP: datagrams from each client go to that client's endpoint through a
//! socket of its own (a session), and the endpoint's answers go back from
//! the Service's address; a session idle for the timeout ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::affinity::Balancer;

/// The largest datagram (IPv4's limit).
const MAX_DATAGRAM: usize = 65_535;

struct Session {
    backend: Arc<UdpSocket>,
    last: Arc<Mutex<Instant>>,
}

pub async fn listen(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    UdpSocket::bind(addr).await
}

/// Forwards until aborted; aborting it ends every session with it (their
/// answers went out through this socket).
pub async fn serve(socket: UdpSocket, balancer: Arc<Mutex<Balancer>>, idle: Duration) {
    let socket = Arc::new(socket);
    let sessions: Arc<Mutex<HashMap<SocketAddr, Session>>> = Arc::default();
    // Dropped with this task: the session tasks are aborted.
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        // Reap finished session tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                // An ICMP error for an earlier answer: not this socket's end.
                tracing::debug!(error = %e, "userspace proxy: udp recv");
                continue;
            }
        };
        let existing = sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&client)
            .map(|s| (s.backend.clone(), s.last.clone()));
        let (backend, last) = match existing {
            Some(s) => s,
            None => {
                let picked = balancer.lock().unwrap_or_else(|e| e.into_inner()).pick(
                    client.ip(),
                    Instant::now(),
                    &[],
                    &mut |n| rand::random_range(0..n),
                );
                // No endpoint: the datagram is dropped.
                let Some(endpoint) = picked else { continue };
                let backend = match open(endpoint).await {
                    Ok(b) => Arc::new(b),
                    Err(e) => {
                        tracing::debug!(%endpoint, error = %e, "userspace proxy: udp session");
                        continue;
                    }
                };
                let last = Arc::new(Mutex::new(Instant::now()));
                sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(
                    client,
                    Session {
                        backend: backend.clone(),
                        last: last.clone(),
                    },
                );
                tasks.spawn(answers(
                    socket.clone(),
                    backend.clone(),
                    client,
                    last.clone(),
                    sessions.clone(),
                    idle,
                ));
                (backend, last)
            }
        };
        *last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        if let Err(e) = backend.send(&buf[..n]).await {
            tracing::debug!(%client, error = %e, "userspace proxy: udp send");
        }
    }
}

/// A socket of the session's own, connected to `endpoint` (so only the
/// endpoint's datagrams come back on it).
async fn open(endpoint: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = if endpoint.is_ipv4() {
        "0.0.0.0:0".parse().unwrap_or(endpoint)
    } else {
        "[::]:0".parse().unwrap_or(endpoint)
    };
    let s = UdpSocket::bind(any).await?;
    s.connect(endpoint).await?;
    Ok(s)
}

/// Passes the endpoint's datagrams back to `client` until the session has
/// been idle (both ways) for `idle`.
async fn answers(
    socket: Arc<UdpSocket>,
    backend: Arc<UdpSocket>,
    client: SocketAddr,
    last: Arc<Mutex<Instant>>,
    sessions: Arc<Mutex<HashMap<SocketAddr, Session>>>,
    idle: Duration,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let seen = *last.lock().unwrap_or_else(|e| e.into_inner());
        let left = idle.saturating_sub(seen.elapsed());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, backend.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                *last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                let _ = socket.send_to(&buf[..n], client).await;
            }
            // Port unreachable from the endpoint: keep the session; the
            // client's retry may find it listening.
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
            // Timed out: the loop checks whether the client spoke meanwhile.
            Err(_) => {}
        }
    }
    sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&client);
}
