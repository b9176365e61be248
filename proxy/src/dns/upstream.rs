//! Names outside the cluster domain go to the node's own resolvers: the
//! `nameserver` lines of `/etc/resolv.conf` (or `--dns-upstream`), asked
//! over UDP with the client's query as it came, the first to answer wins.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_server::proto::op::Message;

/// The `nameserver` addresses of a resolv.conf text, port 53, without
/// `skip` (the cluster DNS itself: asking ourselves would loop).
pub fn nameservers(resolv_conf: &str, skip: &[IpAddr]) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        // A scoped IPv6 address (fe80::1%eth0) is not ours to use.
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .filter(|ip| !skip.contains(ip))
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Parses `--dns-upstream` values: `IP` or `IP:PORT`.
pub fn parse(values: &[String]) -> Result<Vec<SocketAddr>, String> {
    values
        .iter()
        .map(|v| {
            v.parse::<SocketAddr>()
                .or_else(|_| v.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| format!("--dns-upstream {v:?}: not IP or IP:PORT"))
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("no upstream resolver")]
    NoUpstream,
    #[error("no upstream resolver answered: {0}")]
    Failed(String),
}

/// Asks each upstream in turn (2 s each) and returns the first answer.
pub async fn forward(query: &[u8], upstreams: &[SocketAddr]) -> Result<Message, ForwardError> {
    if upstreams.is_empty() {
        return Err(ForwardError::NoUpstream);
    }
    let mut last = String::new();
    for server in upstreams {
        match ask(query, *server).await {
            Ok(m) => return Ok(m),
            Err(e) => last = format!("{server}: {e}"),
        }
    }
    Err(ForwardError::Failed(last))
}

async fn ask(query: &[u8], server: SocketAddr) -> Result<Message, String> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let socket = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| e.to_string())?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    socket.send(query).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    Message::from_vec(&buf[..n]).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_without_ourselves() {
        let text = "# generated\nsearch lan\nnameserver 192.168.1.1\nnameserver 10.96.0.10\nnameserver fe80::1%eth0\nnameserver ::1\noptions ndots:5\n";
        let skip = ["10.96.0.10".parse().unwrap()];
        assert_eq!(
            nameservers(text, &skip),
            [
                "192.168.1.1:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn upstream_flags_take_an_address_with_or_without_port() {
        assert_eq!(
            parse(&["127.0.0.1:5353".into(), "10.0.0.2".into()]).unwrap(),
            [
                "127.0.0.1:5353".parse::<SocketAddr>().unwrap(),
                "10.0.0.2:53".parse().unwrap()
            ]
        );
        assert!(
            parse(&["dns.example".into()])
                .unwrap_err()
                .contains("dns.example")
        );
    }
}
