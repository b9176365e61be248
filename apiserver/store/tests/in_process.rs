//! The library API that `skiff-apiserver` and `skiff up` use: start a store
//! in-process on a free port, use it, stop it, open it again.

use std::sync::atomic::Ordering::Relaxed;

use skiff_store::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_stop_reopen_and_group_commit() {
    let dir = tempfile::Builder::new()
        .prefix("skiff-test-inprocess-")
        .tempdir()
        .unwrap();
    let config = Config::new(dir.path().join("data"), "http://127.0.0.1:0");

    let running = skiff_store::start(config.clone()).await.unwrap();
    let url = running.client_urls[0].clone();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );
    let mut client = etcd_client::Client::connect([&url], None).await.unwrap();

    // 64 writers at once: the writer should fold them into far fewer commits.
    let mut tasks = Vec::new();
    for i in 0..64 {
        let mut c = client.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..20 {
                c.put(format!("gc/{i}/{j}"), "v", None).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let metrics = running.store.metrics();
    let batches = metrics.batches.load(Relaxed);
    let requests = metrics.batched_requests.load(Relaxed);
    assert_eq!(requests, 64 * 20);
    assert!(
        batches < requests / 2,
        "group commit: {requests} writes in {batches} commits"
    );
    assert!(metrics.largest_batch.load(Relaxed) > 1);
    let revision = client
        .get("gc/0/0", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    assert_eq!(revision, 1 + 64 * 20);

    // The data directory is private: it holds every secret the cluster stores.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("data"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    running.stop().await;
    let addr = url.trim_start_matches("http://");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nothing listens on {addr} after stop"
    );

    // Open again: everything is there and revisions go on.
    let running = skiff_store::start(config).await.unwrap();
    let mut client = etcd_client::Client::connect([&running.client_urls[0]], None)
        .await
        .unwrap();
    let all = client
        .get(
            "gc/",
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_count_only(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(all.count(), 64 * 20);
    let next = client.put("after", "v", None).await.unwrap();
    assert_eq!(next.header().unwrap().revision(), revision + 1);
    running.stop().await;
}

#[tokio::test]
async fn refuses_bad_listen_urls_and_a_data_dir_in_use() {
    let dir = tempfile::Builder::new()
        .prefix("skiff-test-inprocess-")
        .tempdir()
        .unwrap();
    let bad = Config::new(dir.path().join("a"), "https://127.0.0.1:0");
    let err = skiff_store::start(bad)
        .await
        .err()
        .expect("https is refused");
    assert!(err.to_string().contains("https"), "{err}");

    let config = Config::new(dir.path().join("b"), "http://127.0.0.1:0");
    let running = skiff_store::start(config.clone()).await.unwrap();
    let err = skiff_store::start(config)
        .await
        .err()
        .expect("a second store on the same directory is refused");
    assert!(err.to_string().contains("cannot open the store"), "{err}");
    running.stop().await;
}
