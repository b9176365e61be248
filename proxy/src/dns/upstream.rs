//! Names outside the cluster domain go to the node's own resolvers: the
//! `nameserver` lines of `/etc/resolv.conf` (or `--dns-upstream`), asked
//! over UDP with the client's query as it came, the first to answer wins.
//! An answer too large for UDP comes back truncated (the TC bit); the same
//! server is then asked again over TCP, as a stub resolver does.

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
    let answer = Message::from_vec(&buf[..n]).map_err(|e| e.to_string())?;
    if answer.metadata.truncation {
        return ask_tcp(query, server).await;
    }
    Ok(answer)
}

/// The query over TCP (two length bytes before each message), 2 s in all.
async fn ask_tcp(query: &[u8], server: SocketAddr) -> Result<Message, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(server).await?;
        let len = u16::try_from(query.len()).map_err(std::io::Error::other)?;
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(query);
        tcp.write_all(&out).await?;
        let mut len = [0u8; 2];
        tcp.read_exact(&mut len).await?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tcp.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .map_err(|_| "timed out over TCP".to_string())?
        .map_err(|e| format!("over TCP: {e}"))?;
    Message::from_vec(&buf).map_err(|e| e.to_string())
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

    /// A resolver on loopback whose UDP answers are truncated and whose TCP
    /// answers are whole: the whole one is what comes back.
    #[tokio::test]
    async fn a_truncated_udp_answer_is_asked_again_over_tcp() {
        use hickory_server::proto::op::{MessageType, OpCode, Query};
        use hickory_server::proto::rr::{Name, RData, Record, RecordType, rdata::A};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let udp = tokio::net::UdpSocket::bind(addr).await.unwrap();
        let name = Name::from_ascii("big.example.").unwrap();
        let mut q = Message::new(7, MessageType::Query, OpCode::Query);
        q.add_query(Query::query(name.clone(), RecordType::A));
        let query = q.to_vec().unwrap();
        let reply = |truncated: bool| {
            let mut m = Message::new(7, MessageType::Response, OpCode::Query);
            m.metadata.truncation = truncated;
            m.add_query(Query::query(name.clone(), RecordType::A));
            if !truncated {
                m.add_answer(Record::from_rdata(
                    name.clone(),
                    60,
                    RData::A(A::new(192, 0, 2, 7)),
                ));
            }
            m.to_vec().unwrap()
        };
        let (short, whole) = (reply(true), reply(false));
        let udp_task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (_, from) = udp.recv_from(&mut buf).await.unwrap();
            udp.send_to(&short, from).await.unwrap();
        });
        let tcp_task = tokio::spawn(async move {
            let (mut s, _) = tcp.accept().await.unwrap();
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await.unwrap();
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut q).await.unwrap();
            let mut out = (whole.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(&whole);
            s.write_all(&out).await.unwrap();
        });
        let answer = forward(&query, &[addr]).await.unwrap();
        assert!(!answer.metadata.truncation);
        assert_eq!(answer.answers.len(), 1, "{answer:?}");
        udp_task.await.unwrap();
        tcp_task.await.unwrap();
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
