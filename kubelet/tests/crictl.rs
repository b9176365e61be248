//! `skiff-kubelet crictl` against the real CRI server, in-process on a
//! temporary socket, without root: an image imported from an OCI layout
//! written here (one empty layer), a pod sandbox whose namespaces are the
//! runtime's recording fake and which has no CNI network, and a container
//! created in it (never started: starting needs root). Every verb is run
//! from its command line, as a user types it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use skiff_kubelet::crictl::{Cri, Crictl, dispatch};
use skiff_kubelet::runtime::Runtime;
use skiff_proto::cri;
use skiff_runtime::image::digest::Digest;
use skiff_runtime::image::{ImageStore, import_oci_dir};

#[derive(Parser)]
struct Line {
    #[command(flatten)]
    crictl: Crictl,
}

/// Runs `skiff-kubelet crictl <args>` against `socket`: its output, or
/// the error as the user sees it.
async fn crictl(socket: &Path, args: &[&str]) -> Result<String, String> {
    let endpoint = format!("unix://{}", socket.display());
    let argv = ["crictl", "-r", endpoint.as_str()]
        .into_iter()
        .chain(args.iter().copied());
    let line = Line::try_parse_from(argv).map_err(|e| e.to_string())?;
    let cri = Cri::new(&line.crictl).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    dispatch(&cri, &line.crictl.verb, &mut out)
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8(out).unwrap())
}

/// An OCI image layout holding `name`: one empty layer (a tar of two zero
/// blocks), a config with `Cmd: ["sh"]`.
fn write_layout(dir: &Path, name: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> (Digest, usize) {
        let d = Digest::of(data);
        std::fs::write(blobs.join(d.hex()), data).unwrap();
        (d, data.len())
    };
    let layer = vec![0u8; 1024];
    let (ld, ln) = put(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":["{ld}"]}}}}"#
    );
    let (cd, cn) = put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{cn}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{ln}}}]}}"#
    );
    let (md, mn) = put(manifest.as_bytes());
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{mn},"annotations":{{"org.opencontainers.image.ref.name":"{name}"}}}}]}}"#
        ),
    )
    .unwrap();
}

/// The CRI server on `socket` with the image store in `dir`, until `stop`.
fn serve(
    dir: &Path,
    socket: PathBuf,
    store: Arc<ImageStore>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    use skiff_runtime::cri::images::{Images, PullSettings};
    let runtime = skiff_runtime::cri::runtime::RuntimeSvc {
        sandboxes: Arc::new(skiff_runtime::sandbox::Sandboxes {
            pod_cidr: Default::default(),
            run_dir: dir.join("sandboxes"),
            namespaces: Arc::new(skiff_runtime::sandbox::namespaces::FakeNamespaces::default()),
            cni: None,
        }),
        images: store.clone(),
        dir: dir.join("containers"),
        shim: skiff_runtime::cri::runtime::ShimCommand {
            exe: PathBuf::from("/bin/false"),
            prefix: vec![],
            log_rotation: Default::default(),
        },
        streams: Arc::new(skiff_runtime::stream::Streams::start().unwrap()),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let images = Images::new(store, PullSettings::default());
    let task = tokio::spawn(async move {
        skiff_runtime::cri::serve(&socket, images, Some(runtime), async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_against_the_real_cri_server() {
    let tmp = tempfile::Builder::new()
        .prefix("skiff-crictl-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let socket = dir.join("run/runtime.sock");

    // Nothing listens yet: the error names the socket and the call.
    let err = crictl(&socket, &["images"]).await.unwrap_err();
    assert!(
        err.starts_with(&format!("ListImages on unix://{}: ", socket.display())),
        "{err}"
    );

    let store = Arc::new(ImageStore::open(dir.join("store")).unwrap());
    write_layout(&dir.join("layout"), "docker.io/library/app:1");
    let imported = import_oci_dir(&store, &dir.join("layout"), &[])
        .unwrap()
        .remove(0);
    let image_id = imported.id.to_string();
    let (stop, server) = serve(dir, socket.clone(), store);
    while !socket.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // images, images <name>, -q, inspecti by name and by id prefix.
    let out = crictl(&socket, &["images"]).await.unwrap();
    let hex = image_id.strip_prefix("sha256:").unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "IMAGE                   TAG                 IMAGE ID            SIZE"
    );
    assert!(
        lines[1].starts_with(&format!(
            "docker.io/library/app   1                   {}       ",
            &hex[..13]
        )),
        "{out}"
    );
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        crictl(&socket, &["images", "-q", "app:1"]).await.unwrap(),
        format!("{image_id}\n")
    );
    for name in ["app:1", &hex[..8]] {
        let out = crictl(&socket, &["inspecti", name]).await.unwrap();
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["status"]["id"], image_id.as_str(), "{name}");
        assert_eq!(
            doc["status"]["repoTags"],
            serde_json::json!(["docker.io/library/app:1"])
        );
    }

    // A sandbox and a container in it, through the kubelet's own client.
    let client = skiff_kubelet::runtime::CriClient::connect_lazy(&socket);
    let logs = dir.join("logs");
    std::fs::create_dir_all(logs.join("app")).unwrap();
    let sandbox_config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "web-0".into(),
            uid: "uid-1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "web-0".into(),
        log_directory: logs.display().to_string(),
        ..Default::default()
    };
    let pod = client
        .run_pod_sandbox(sandbox_config.clone())
        .await
        .unwrap();
    let container = client
        .create_container(
            &pod,
            cri::ContainerConfig {
                metadata: Some(cri::ContainerMetadata {
                    name: "app".into(),
                    attempt: 3,
                }),
                image: Some(cri::ImageSpec {
                    image: "docker.io/library/app:1".into(),
                    ..Default::default()
                }),
                log_path: "app/3.log".into(),
                ..Default::default()
            },
            sandbox_config,
        )
        .await
        .unwrap();

    // pods: the table, --name, -q, inspectp by prefix.
    let out = crictl(&socket, &["pods"]).await.unwrap();
    let row = out.lines().nth(1).unwrap();
    assert!(row.starts_with(&pod[..13]), "{out}");
    let cells: Vec<&str> = row
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cells[2..], ["Ready", "web-0", "default", "0"], "{out}");
    assert_eq!(
        crictl(&socket, &["pods", "-q", "--name", "web"])
            .await
            .unwrap(),
        format!("{pod}\n")
    );
    assert_eq!(
        crictl(&socket, &["pods", "-q", "--name", "nope"])
            .await
            .unwrap(),
        ""
    );
    let doc: serde_json::Value =
        serde_json::from_str(&crictl(&socket, &["inspectp", &pod[..6]]).await.unwrap()).unwrap();
    assert_eq!(doc["status"]["id"], pod.as_str());
    assert_eq!(doc["status"]["state"], "SANDBOX_READY");
    assert_eq!(doc["status"]["metadata"]["name"], "web-0");
    assert!(doc["info"]["namespaces"]["network"].is_string(), "{doc}");

    // ps: not running, so only with -a; --pod by prefix; --no-trunc.
    let out = crictl(&socket, &["ps"]).await.unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("CONTAINER   "), "{out}");
    let out = crictl(&socket, &["ps", "-a", "--pod", &pod[..5], "--no-trunc"])
        .await
        .unwrap();
    let row = out.lines().nth(1).unwrap();
    let cells: Vec<&str> = row
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cells[0], container, "{out}");
    assert_eq!(cells[1], "docker.io/library/app:1", "{out}");
    assert_eq!(cells[3..], ["Created", "app", "3", pod.as_str()], "{out}");
    let err = crictl(&socket, &["ps", "--pod", "zzz"]).await.unwrap_err();
    assert!(
        err.contains("pod sandbox \"zzz\": none on unix://"),
        "{err}"
    );

    // inspect by prefix: the status, with the log file's path.
    let doc: serde_json::Value = serde_json::from_str(
        &crictl(&socket, &["inspect", &container[..7]])
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc["status"]["state"], "CONTAINER_CREATED");
    assert_eq!(doc["status"]["metadata"]["attempt"], 3);
    let log_path = doc["status"]["logPath"].as_str().unwrap().to_string();
    assert_eq!(log_path, logs.join("app/3.log").display().to_string());

    // logs: nothing yet; then what a shim would have written.
    assert_eq!(
        crictl(&socket, &["logs", &container[..7]]).await.unwrap(),
        ""
    );
    std::fs::write(
        &log_path,
        "2026-01-10T12:00:00.000000000Z stdout F hello\n\
         2026-01-10T12:00:01.000000000Z stderr P wor\n\
         2026-01-10T12:00:01.500000000Z stderr F ld\n",
    )
    .unwrap();
    assert_eq!(
        crictl(&socket, &["logs", &container]).await.unwrap(),
        "hello\nworld\n"
    );
    assert_eq!(
        crictl(
            &socket,
            &["logs", "--tail", "1", "--timestamps", &container]
        )
        .await
        .unwrap(),
        "2026-01-10T12:00:01.000000000Z world\n"
    );
    // -f on a container that is not running prints what is there and ends.
    assert_eq!(
        crictl(&socket, &["logs", "-f", &container]).await.unwrap(),
        "hello\nworld\n"
    );

    // exec: the runtime refuses a container that does not run; -it is
    // not supported.
    let err = crictl(&socket, &["exec", &container[..7], "--", "ls", "-l"])
        .await
        .unwrap_err();
    assert!(
        err.starts_with(&format!("ExecSync on unix://{}: ", socket.display())),
        "{err}"
    );
    let err = crictl(&socket, &["exec", "-it", &container, "sh"])
        .await
        .unwrap_err();
    assert!(err.contains("kubectl exec -it"), "{err}");

    // pull: a registry that does not answer; the error names the call.
    let err = crictl(&socket, &["pull", "127.0.0.1:1/nothing:latest"])
        .await
        .unwrap_err();
    assert!(
        err.starts_with(&format!("PullImage on unix://{}: ", socket.display())),
        "{err}"
    );

    let _ = stop.send(());
    server.await.unwrap();
    // As root the runtime really mounted the container's rootfs: nothing of
    // this test may stay mounted.
    skiff_runtime::cleanup::remove_all(dir);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&*dir.to_string_lossy()),
        "mounts left under {}",
        dir.display()
    );
}
