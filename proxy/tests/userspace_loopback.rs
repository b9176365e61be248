//! The userspace mode's relays on loopback (no root): "ClusterIP" 127.0.0.1
//! on a free port, tokio backends on 127.0.0.1 — every backend answers,
//! the NodePort (0.0.0.0) answers, ClientIP affinity sticks, a dead
//! endpoint costs a retry and not the connection, new endpoints apply in
//! place, a port whose endpoints all left is closed (refused), UDP
//! sessions keep a client on one endpoint and answer from the Service's
//! address, and stop takes the addresses off again (recorded, not done).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use skiff_proxy::dns::link::RecordingLinks;
use skiff_proxy::rules::{Endpoint, ServicePort};
use skiff_proxy::userspace::Userspace;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// A TCP backend that writes `name` and closes.
async fn tcp_backend(name: String) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let name = name.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(name.as_bytes()).await;
            });
        }
    });
    addr
}

/// A UDP backend answering `name:` + the datagram.
async fn udp_backend(name: String) -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let mut answer = format!("{name}:").into_bytes();
            answer.extend_from_slice(&buf[..n]);
            let _ = s.send_to(&answer, from).await;
        }
    });
    addr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    s.write_all(b"hi").await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

async fn answers(addr: SocketAddr, n: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        seen.insert(get(addr).await.unwrap());
    }
    seen
}

fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint {
        ip: addr.ip().to_string(),
        port: addr.port(),
        ready: true,
        serving: true,
        terminating: false,
    }
}

fn service(name: &str, protocol: &str, port: u16, endpoints: &[SocketAddr]) -> ServicePort {
    ServicePort {
        namespace: "default".into(),
        name: name.into(),
        port_name: "".into(),
        cluster_ip: "127.0.0.1".into(),
        protocol: protocol.into(),
        port,
        node_port: None,
        endpoints: endpoints.iter().copied().map(endpoint).collect(),
        affinity_seconds: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_tcp_and_udp_on_loopback() {
    let mut backends = Vec::new();
    for i in 0..3 {
        backends.push(tcp_backend(format!("backend-{i}")).await);
    }
    // Nothing listens there: a dead endpoint (a pod gone before its slice).
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (web_port, node_port, sticky_port, udp_port) =
        (free_port(), free_port(), free_port(), free_port());
    let mut web = service("web", "tcp", web_port, &backends);
    web.node_port = Some(node_port);
    let mut sticky = service("sticky", "tcp", sticky_port, &backends);
    sticky.affinity_seconds = Some(60);
    let retry = service("retry", "tcp", free_port(), &[dead, backends[0]]);
    let udp_backends = [
        udp_backend("u0".into()).await,
        udp_backend("u1".into()).await,
    ];
    let dns = service("dns", "udp", udp_port, &udp_backends);

    let links = Arc::new(RecordingLinks::default());
    let mut relay = Userspace::new(links.clone(), Duration::from_secs(30));
    let done = relay
        .sync(&[web.clone(), sticky, retry.clone(), dns], None)
        .await;
    assert_eq!((done.opened, done.failed), (5, 0), "{done:?}");
    assert_eq!(*links.calls.lock().unwrap(), ["add lo 127.0.0.1"]);

    let at = |port: u16| -> SocketAddr { format!("127.0.0.1:{port}").parse().unwrap() };
    let all: BTreeSet<String> = (0..3).map(|i| format!("backend-{i}")).collect();
    assert_eq!(
        answers(at(web_port), 40).await,
        all,
        "random over every backend"
    );
    assert_eq!(answers(at(node_port), 40).await, all, "the NodePort");
    assert_eq!(
        answers(at(sticky_port), 20).await.len(),
        1,
        "ClientIP affinity"
    );
    // Every connection succeeds although one endpoint in two refuses.
    assert_eq!(
        answers(at(retry.port), 20).await,
        ["backend-0".to_string()].into()
    );

    // UDP: one client stays on its endpoint; the answer comes from the Service's address.
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.connect(at(udp_port)).await.unwrap();
    let mut firsts = BTreeSet::new();
    for i in 0..5 {
        client.send(format!("q{i}").as_bytes()).await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(3), client.recv(&mut buf))
            .await
            .expect("a UDP answer")
            .unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(answer.ends_with(&format!(":q{i}")), "{answer}");
        firsts.insert(answer.split(':').next().unwrap().to_string());
    }
    assert_eq!(firsts.len(), 1, "one session, one endpoint: {firsts:?}");

    // New endpoints apply in place: the same listeners, only backend 2 now;
    // sticky and dns are gone.
    let before = relay.listening();
    web.endpoints = vec![endpoint(backends[2])];
    let done = relay.sync(&[web.clone(), retry.clone()], None).await;
    assert_eq!((done.opened, done.closed), (0, 2), "{done:?}");
    assert_eq!(
        answers(at(web_port), 10).await,
        ["backend-2".to_string()].into()
    );
    assert!(relay.listening().is_subset(&before));
    assert!(
        get(at(sticky_port)).await.is_err(),
        "a deleted Service's port is closed"
    );

    // No endpoints left: no listener, so the kernel refuses.
    web.endpoints.clear();
    relay.sync(&[web, retry], None).await;
    let refused = TcpStream::connect(at(web_port)).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

    relay.stop().await;
    assert_eq!(
        *links.calls.lock().unwrap(),
        ["add lo 127.0.0.1", "remove lo 127.0.0.1"]
    );
}
