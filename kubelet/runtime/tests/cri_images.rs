//! The CRI ImageService on a real unix socket, called with the CRI client
//! the kubelet uses: images imported from the archives `build.sh` makes are
//! listed with their tags, digests and size, found by name or id, removed
//! (twice: removal is idempotent), and a pull from a registry that does not
//! answer fails with a clear error instead of hanging.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use skiff_proto::cri;
use skiff_proto::cri::image_service_client::ImageServiceClient;
use skiff_runtime::cri::images::{Images, PullSettings};
use skiff_runtime::image::{ImageStore, import_dir};
use tonic::transport::Channel;

async fn client(socket: &Path) -> ImageServiceClient<Channel> {
    ImageServiceClient::new(cri::unix_channel(socket))
}

fn spec(image: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec {
        image: image.into(),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: build.sh creates device nodes and file owners (or fakeroot)"]
async fn image_service_over_the_socket() {
    let dir = tempfile::Builder::new()
        .prefix("skiff-rt-cri-")
        .tempdir()
        .unwrap();
    let archives = dir.path().join("archives");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/build.sh");
    let built = Command::new("bash")
        .arg(&script)
        .arg(&archives)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let store = Arc::new(ImageStore::open(dir.path().join("store")).unwrap());
    let report = import_dir(&store, &archives).unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);

    let socket = dir.path().join("run/runtime.sock");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let socket = socket.clone();
        let images = Images::new(store.clone(), PullSettings::default());
        async move {
            skiff_runtime::cri::serve(&socket, images, None, async {
                let _ = stopped.await;
            })
            .await
        }
    });
    while !socket.exists() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut images = client(&socket).await;

    let listed = images
        .list_images(cri::ListImagesRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .images;
    let httpd = listed
        .iter()
        .find(|i| {
            i.repo_tags
                .contains(&"docker.io/skiff/httpd:latest".to_string())
        })
        .unwrap_or_else(|| panic!("httpd in {listed:?}"));
    assert!(httpd.id.starts_with("sha256:") && httpd.size > 0);
    assert_eq!(listed.len(), 3);

    // By short name, by id.
    for name in ["skiff/httpd", httpd.id.as_str()] {
        let status = images
            .image_status(cri::ImageStatusRequest {
                image: spec(name),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.image.unwrap().id, httpd.id, "{name}");
    }
    let fs = images
        .image_fs_info(cri::ImageFsInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(fs.image_filesystems[0].used_bytes.unwrap().value >= httpd.size);

    // Unpacked, as a container would have it; what httpd alone has (its
    // manifest, config and top layer) goes with it, what the other images
    // share stays.
    let prepared = store.prepare("skiff/httpd").unwrap();
    let layers_before = store.layers().list().unwrap();
    let blobs_before = store.blobs().list().unwrap();
    assert!(prepared.lower_dirs.iter().all(|d| d.is_dir()));
    let fs_before = images
        .image_fs_info(cri::ImageFsInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    for _ in 0..2 {
        images
            .remove_image(cri::RemoveImageRequest {
                image: spec("skiff/httpd"),
            })
            .await
            .expect("removal is idempotent");
    }
    let layers_after = store.layers().list().unwrap();
    let blobs_after = store.blobs().list().unwrap();
    assert!(
        layers_after.len() < layers_before.len(),
        "{layers_before:?} -> {layers_after:?}"
    );
    assert!(blobs_after.len() < blobs_before.len());
    assert!(
        !prepared.lower_dirs[0].exists(),
        "httpd's own top layer is gone"
    );
    for image in store.list() {
        for l in &image.layers {
            assert!(layers_after.contains(&l.diff_id) || !layers_before.contains(&l.diff_id));
        }
        for b in image.blobs() {
            assert!(blobs_after.contains(&b), "{b} of {:?} stays", image.names);
        }
    }
    let fs_after = images
        .image_fs_info(cri::ImageFsInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        fs_after.image_filesystems[0].used_bytes.unwrap().value
            < fs_before.image_filesystems[0].used_bytes.unwrap().value
    );
    let gone = images
        .image_status(cri::ImageStatusRequest {
            image: spec("skiff/httpd"),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        gone.image.is_none(),
        "a missing image is None, not an error"
    );

    // A bad name is InvalidArgument; a registry that does not answer (a
    // closed loopback port, listed insecure so no TLS) fails with a message.
    let bad = images
        .pull_image(cri::PullImageRequest {
            image: spec("skiff/Httpd"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = images
        .pull_image(cri::PullImageRequest {
            image: spec(&format!("127.0.0.1:{port}/skiff/none:1")),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains(&format!("127.0.0.1:{port}")),
        "{}",
        err.message()
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(!socket.exists(), "the socket file is removed on shutdown");
}
