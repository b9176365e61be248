//! The cluster DNS server on loopback (no root needed): hickory-server
//! answering from a zone of a ClusterIP, a dual-stack (AAAA) and a headless Service, over UDP
//! and TCP; NXDOMAIN in the cluster domain; other names forwarded to an
//! upstream — a fake resolver on 127.0.0.1 made by this test — and its
//! answer passed back; SERVFAIL when the upstream is silent.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hickory_server::proto::op::{Message, Query, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;
use skiff_proxy::dns::link::RecordingLinks;
use skiff_proxy::dns::zone::Zone;
use skiff_proxy::dns::{Dns, DnsSettings};

fn query(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 4242;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m.to_vec().unwrap()
}

async fn udp(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(&query(name, qtype), server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.recv(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, 4242);
    m
}

async fn tcp(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
    let q = query(name, qtype);
    s.write_all(&(q.len() as u16).to_be_bytes()).await.unwrap();
    s.write_all(&q).await.unwrap();
    let len = s.read_u16().await.unwrap() as usize;
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn addresses(m: &Message) -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// A resolver that answers every A question with 192.0.2.7.
async fn fake_upstream() -> SocketAddr {
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let q = Message::from_vec(&buf[..n]).unwrap();
            let mut r = Message::response(q.metadata.id, q.metadata.op_code);
            let question = q.queries[0].clone();
            r.add_answer(Record::from_rdata(
                question.name().clone(),
                60,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 7))),
            ));
            r.add_query(question);
            let _ = s.send_to(&r.to_vec().unwrap(), from).await;
        }
    });
    addr
}

#[tokio::test]
async fn answers_the_cluster_domain_and_forwards_the_rest() {
    let upstream = fake_upstream().await;
    let links = Arc::new(RecordingLinks::default());
    let settings = DnsSettings {
        address: "127.0.0.1".parse().unwrap(),
        port: 0,
        domain: "cluster.local".into(),
        interface: "unused".into(),
        upstreams: vec![upstream],
    };
    let dns = Dns::start(&settings, links.clone()).await.unwrap();
    assert!(
        links.calls.lock().unwrap().is_empty(),
        "127.0.0.1 is local: no interface made"
    );
    let services: Vec<Service> = serde_json::from_value(json!([
        {"metadata": {"name": "web", "namespace": "default"},
         "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80}]}},
        {"metadata": {"name": "db", "namespace": "default"}, "spec": {"clusterIP": "None"}},
        {"metadata": {"name": "dual", "namespace": "default"},
         "spec": {"clusterIP": "10.96.0.30", "clusterIPs": ["10.96.0.30", "fd00:96::30"]}},
    ]))
    .unwrap();
    let slices: Vec<EndpointSlice> = serde_json::from_value(json!([
        {"metadata": {"name": "db-a", "namespace": "default", "labels": {"kubernetes.io/service-name": "db"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": ["10.244.0.5"]}, {"addresses": ["10.244.0.6"]}]},
    ]))
    .unwrap();
    let server = dns.local;
    // Before the first update the domain is empty.
    let before = udp(server, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(before.metadata.response_code, ResponseCode::NXDomain);
    dns.update(Zone::build("cluster.local", &services, &slices));

    let web = udp(server, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(web.metadata.response_code, ResponseCode::NoError);
    assert!(web.metadata.authoritative);
    assert_eq!(addresses(&web), [Ipv4Addr::new(10, 96, 0, 20)]);
    let headless = tcp(server, "db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(
        addresses(&headless),
        [Ipv4Addr::new(10, 244, 0, 5), Ipv4Addr::new(10, 244, 0, 6)]
    );
    let srv = udp(
        server,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    match &srv.answers[..] {
        [r] => match &r.data {
            RData::SRV(s) => {
                assert_eq!(s.port, 80);
                assert_eq!(s.target.to_ascii(), "web.default.svc.cluster.local.");
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let missing = udp(server, "nope.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
    let nodata = udp(server, "web.default.svc.cluster.local.", RecordType::AAAA).await;
    assert_eq!(
        (nodata.metadata.response_code, nodata.answers.len()),
        (ResponseCode::NoError, 0)
    );
    // IPv6: AAAA records over the wire.
    let dual = tcp(server, "dual.default.svc.cluster.local.", RecordType::AAAA).await;
    let six: Vec<std::net::Ipv6Addr> = dual
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
        .collect();
    assert_eq!(six, ["fd00:96::30".parse::<std::net::Ipv6Addr>().unwrap()]);
    // Outside the domain: the upstream's answer, passed back.
    let outside = udp(server, "example.test.", RecordType::A).await;
    assert_eq!(outside.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&outside), [Ipv4Addr::new(192, 0, 2, 7)]);
    dns.stop().await;

    // A silent upstream (a bound socket that never answers): SERVFAIL.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns = Dns::start(
        &DnsSettings {
            upstreams: vec![silent.local_addr().unwrap()],
            ..settings
        },
        links,
    )
    .await
    .unwrap();
    let failed = udp(dns.local, "example.test.", RecordType::A).await;
    assert_eq!(failed.metadata.response_code, ResponseCode::ServFail);
    dns.stop().await;
}
