//! A `hostUsers: false` pod through the CRI, as root: the sandbox and the
//! container asked for a user namespace (mode POD, 0..65535 → a block of
//! host IDs), the busybox image's layers seen through idmapped mounts,
//! root inside (uid 0, the mapping in `/proc/self/uid_map`) that is the
//! block's first ID on the host, ExecSync in the same user namespace, a
//! low port bound in the host-owned network namespace, and removal that
//! leaves no mount behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_proto::cri;
use skiff_proto::cri::runtime_service_client::RuntimeServiceClient;
use skiff_runtime::cni::{Cni, NetworkList};
use skiff_runtime::cri::images::{Images, PullSettings};
use skiff_runtime::cri::runtime::{RuntimeSvc, ShimCommand};
use skiff_runtime::image::{ImageStore, import_dir};
use skiff_runtime::sandbox::Sandboxes;
use skiff_runtime::sandbox::namespaces::LinuxNamespaces;

/// The 9th block of 65536 host IDs.
const BASE: u32 = 65536 * 9;

/// Removes what the test's runtime left under its dir (dropped before it).
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        skiff_runtime::cleanup::remove_all(&self.0);
    }
}

fn userns() -> cri::NamespaceOption {
    let map = vec![cri::IdMapping {
        host_id: BASE,
        container_id: 0,
        length: 65536,
    }];
    cri::NamespaceOption {
        network: cri::NamespaceMode::Pod as i32,
        pid: cri::NamespaceMode::Container as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        userns_options: Some(cri::UserNamespace {
            mode: cri::NamespaceMode::Pod as i32,
            uids: map.clone(),
            gids: map,
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: user namespaces, idmapped mounts, overlayfs, cgroups"]
async fn a_pod_in_a_user_namespace_through_the_cri() {
    use skiff_runtime::cni::fake::FakeExec;
    let dir = tempfile::Builder::new()
        .prefix("skiff-rt-cri-userns-")
        .tempdir()
        .unwrap();
    let _cleanup = Cleanup(dir.path().to_path_buf());
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
    let store = Arc::new(ImageStore::open(dir.path().join("images")).unwrap());
    assert!(import_dir(&store, &archives).unwrap().failed.is_empty());
    // The network namespace is real, its plugins recorded (no bridge needed).
    let sandboxes = Arc::new(Sandboxes {
        pod_cidr: Default::default(),
        run_dir: dir.path().join("sandboxes"),
        namespaces: Arc::new(LinuxNamespaces),
        cni: Some(Cni {
            list: NetworkList::parse(
                r#"{"cniVersion": "1.0.0", "name": "t", "plugins": [{"type": "bridge"}]}"#,
                "t",
            )
            .unwrap(),
            exec: Arc::new(FakeExec::new("10.244.8.")),
            cache_dir: dir.path().join("cni-cache"),
        }),
    });
    let containers = dir.path().join("containers");
    let runtime = RuntimeSvc {
        sandboxes,
        images: store.clone(),
        dir: containers.clone(),
        shim: ShimCommand {
            exe: env!("CARGO_BIN_EXE_skiff-runtime").into(),
            prefix: vec![],
            log_rotation: Default::default(),
        },
        streams: Arc::new(skiff_runtime::stream::Streams::start().unwrap()),
    };
    let socket = dir.path().join("runtime.sock");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let socket = socket.clone();
        let images = Images::new(store.clone(), PullSettings::default());
        async move {
            skiff_runtime::cri::serve(&socket, images, Some(runtime), async {
                let _ = stopped.await;
            })
            .await
        }
    });
    while !socket.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut rt = RuntimeServiceClient::new(cri::unix_channel(&socket));

    let logs = dir.path().join("logs");
    let sandbox_config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "web".into(),
            uid: "uid-userns".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "web".into(),
        log_directory: logs.display().to_string(),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(userns()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sb = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let command = "touch /made-inside; httpd -p 80 && echo bound-80; \
                   trap 'exit 0' TERM; sleep 300 & wait";
    let id = rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: sb.clone(),
            config: Some(cri::ContainerConfig {
                metadata: Some(cri::ContainerMetadata {
                    name: "app".into(),
                    attempt: 0,
                }),
                image: Some(cri::ImageSpec {
                    image: "skiff/busybox".into(),
                    ..Default::default()
                }),
                command: ["sh", "-c", command]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                log_path: "app/0.log".into(),
                linux: Some(cri::LinuxContainerConfig {
                    security_context: Some(cri::LinuxContainerSecurityContext {
                        namespace_options: Some(userns()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            sandbox_config: Some(sandbox_config.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .container_id;
    rt.start_container(cri::StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .unwrap();
    let log = logs.join("app/0.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while !text.contains("bound-80") && Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        text.contains("stdout F bound-80"),
        "port 80 as root inside: {text}"
    );

    // Inside, through ExecSync: root of the user namespace, the image's
    // files root's, the host's own files nobody's.
    let exec = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "id -u; cat /proc/self/uid_map; stat -c '%u %g' /bin/busybox /made-inside /etc/hosts".into(),
            ],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    let out = String::from_utf8_lossy(&exec.stdout).into_owned();
    assert_eq!(
        exec.exit_code,
        0,
        "{out} {}",
        String::from_utf8_lossy(&exec.stderr)
    );
    assert_eq!(
        out,
        format!("0\n         0     {BASE}      65536\n0 0\n0 0\n65534 65534\n")
    );
    // Outside: root inside is the block's first ID on the host.
    use std::os::unix::fs::MetadataExt;
    let made = std::fs::metadata(containers.join(&id).join("upper/made-inside")).unwrap();
    assert_eq!((made.uid(), made.gid()), (BASE, BASE));

    rt.stop_container(cri::StopContainerRequest {
        container_id: id.clone(),
        timeout: 5,
    })
    .await
    .unwrap();
    rt.remove_container(cri::RemoveContainerRequest {
        container_id: id.clone(),
    })
    .await
    .unwrap();
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: sb.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: sb.clone(),
    })
    .await
    .unwrap();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let here = dir.path().display().to_string();
    assert!(
        !mounts.contains(&here),
        "mounts left under {here}:\n{mounts}"
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
