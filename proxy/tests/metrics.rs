//! `/metrics` scraped over HTTP from a running proxy (in-process, with the
//! recording `nft`; no root): after a Service and an EndpointSlice whose
//! trigger-time annotation is 2 s old, the network programming histogram
//! has that change at 2 s or more, the sync histogram has syncs and the
//! last-sync gauge is recent. A slice without the annotation counts from
//! when the proxy saw it: well under a second.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};
use serde_json::json;
use skiff_proxy::dns::link::RecordingLinks;
use skiff_proxy::nft::RecordingNft;
use skiff_proxy::routes::RecordingRoutes;
use skiff_tests::{TestCluster, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: skiff_proxy::Config,
}

async fn scrape(addr: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    out.starts_with("HTTP/1.1 200").then_some(out)
}

/// The value of the series `name` (a whole line's first field).
fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn slice(name: &str, annotations: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations,
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.244.1.2"], "conditions": {"ready": true}}]
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_network_programming_latency() {
    let cluster = TestCluster::start_apiserver().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let cli = Cli::parse_from([
        "skiff-proxy",
        "--kubeconfig",
        cluster.kubeconfig.to_str().unwrap(),
        "--serve-dns=false",
        "--host-gw=false",
        "--hostname-override",
        "n1",
        "--metrics-bind-address",
        &addr,
    ]);
    let nft = Arc::new(RecordingNft::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let proxy = tokio::spawn(skiff_proxy::run_with(
        cli.config,
        nft.clone(),
        Arc::new(RecordingLinks::default()),
        Arc::new(RecordingRoutes::default()),
        async {
            let _ = stopped.await;
        },
    ));
    let first = eventually("/metrics to answer", Duration::from_secs(20), || {
        let addr = addr.clone();
        async move { scrape(&addr).await }
    })
    .await;
    assert!(first.contains("# TYPE skiff_proxy_network_programming_duration_seconds histogram"));

    let client = cluster.client().await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"ports": [{"name": "http", "port": 80}]}
    }))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    // The change "happened" 2 s ago, as the controller would have stamped it.
    let two_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(2);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    slices
        .create(
            &PostParams::default(),
            &slice(
                "web-a",
                json!({"endpoints.kubernetes.io/last-change-trigger-time": two_ago.to_string()}),
            ),
        )
        .await
        .unwrap();
    let name = "skiff_proxy_network_programming_duration_seconds";
    let text = eventually("the change to be measured", Duration::from_secs(20), || {
        let addr = addr.clone();
        async move {
            let text = scrape(&addr).await?;
            (value(&text, &format!("{name}_count")) == Some(1.0)).then_some(text)
        }
    })
    .await;
    let sum = value(&text, &format!("{name}_sum")).unwrap();
    assert!((2.0..10.0).contains(&sum), "{sum}\n{text}");
    assert_eq!(
        value(&text, &format!("{name}_bucket{{le=\"1\"}}")),
        Some(0.0)
    );
    assert_eq!(
        value(&text, &format!("{name}_bucket{{le=\"+Inf\"}}")),
        Some(1.0)
    );
    assert!(
        nft.applied
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains("dnat to 10.244.1.2:8080")),
        "the rules were loaded"
    );
    let syncs = value(&text, "skiff_proxy_sync_proxy_rules_duration_seconds_count").unwrap();
    assert!(syncs >= 1.0, "{text}");
    let last = value(&text, "skiff_proxy_sync_proxy_rules_last_timestamp_seconds").unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(now - last < 30.0, "{last} vs {now}");

    // Without the annotation: from when the proxy saw it.
    slices
        .create(&PostParams::default(), &slice("web-b", json!({})))
        .await
        .unwrap();
    let text = eventually("the second change", Duration::from_secs(20), || {
        let addr = addr.clone();
        async move {
            let text = scrape(&addr).await?;
            (value(&text, &format!("{name}_count")) == Some(2.0)).then_some(text)
        }
    })
    .await;
    let second = value(&text, &format!("{name}_sum")).unwrap() - sum;
    assert!((0.0..1.0).contains(&second), "{second}\n{text}");
    // The first load was the whole table; the later ones only what changed.
    {
        let applied = nft.applied.lock().unwrap();
        assert!(
            applied[0].contains("delete table ip skiff_proxy"),
            "{applied:?}"
        );
        let last = applied.last().unwrap();
        assert!(
            !last.contains("delete table")
                && last.contains("add rule ip skiff_proxy svc-default/web/tcp/http"),
            "{applied:?}"
        );
    }

    let _ = stop.send(());
    proxy.await.unwrap().unwrap();
    cluster.stop().await;
}
