//! TCP: accept on the Service's address, dial the chosen endpoint, splice
//! bytes both ways until both sides have closed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::affinity::Balancer;

/// How long one dial may take before the next endpoint is tried.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// How many endpoints one connection tries (an endpoint that refuses — a
/// pod going away before its slice says so — costs a retry, not the
/// connection), as upstream's userspace proxier did.
const DIAL_TRIES: usize = 3;

/// A listening socket on `addr` (SO_REUSEADDR: a restarted proxy gets its
/// ports back while old connections linger in TIME_WAIT).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts until aborted. A connection outlives its listener (a Service
/// deleted mid-transfer keeps its open connections, as conntrack does).
pub async fn serve(listener: TcpListener, balancer: Arc<Mutex<Balancer>>) {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                tokio::spawn(handle(client, peer, balancer.clone()));
            }
            Err(e) => {
                // EMFILE and the like: wait, rather than spin.
                tracing::warn!(error = %e, "userspace proxy: accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(mut client: TcpStream, peer: SocketAddr, balancer: Arc<Mutex<Balancer>>) {
    let mut tried = Vec::new();
    for _ in 0..DIAL_TRIES {
        let picked = balancer.lock().unwrap_or_else(|e| e.into_inner()).pick(
            peer.ip(),
            Instant::now(),
            &tried,
            &mut |n| rand::random_range(0..n),
        );
        let Some(endpoint) = picked else {
            break;
        };
        match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(endpoint)).await {
            Ok(Ok(mut backend)) => {
                let _ = client.set_nodelay(true);
                let _ = backend.set_nodelay(true);
                // Half-closes pass through: each direction ends on its own.
                let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                return;
            }
            Ok(Err(e)) => tracing::debug!(%endpoint, error = %e, "userspace proxy: dial"),
            Err(_) => tracing::debug!(%endpoint, "userspace proxy: dial timed out"),
        }
        tried.push(endpoint);
        balancer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(peer.ip());
    }
    // No endpoint (left since the listener was opened, or all refused):
    // a reset, as the nftables mode's reject is — not a silent close that
    // looks like an empty answer.
    let _ = client.set_zero_linger();
}
