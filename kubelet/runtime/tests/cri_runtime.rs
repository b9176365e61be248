//! The embedded runtime end to end through the CRI, as the kubelet calls it,
//! as root: the busybox images imported, a sandbox on a real CNI bridge (its
//! subnet fenced in by nftables), a container from the image on an overlay
//! rootfs started by its shim, its log in the CRI format, ExecSync and
//! streaming exec (pipes and a TTY) inside it, attach to containers made
//! with stdin (a pipe with stdinOnce, and a TTY that is the container's
//! controlling terminal), a stop with SIGTERM and its exit code, writes that stay in the
//! container's upper dir and never reach the image layers, and removal that
//! leaves no mount behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_proto::cri;
use skiff_proto::cri::runtime_service_client::RuntimeServiceClient;
use skiff_runtime::cni::exec::RealExec;
use skiff_runtime::cni::{Cni, NetworkList};
use skiff_runtime::cri::images::{Images, PullSettings};
use skiff_runtime::cri::runtime::{RuntimeSvc, ShimCommand};
use skiff_runtime::image::{ImageStore, import_dir};
use skiff_runtime::sandbox::Sandboxes;
use skiff_runtime::sandbox::namespaces::LinuxNamespaces;
use skiff_runtime::sandbox::testnet::TestNet;
use tonic::transport::Channel;

/// Removes what the test's runtime left under its dir (dropped before it).
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        skiff_runtime::cleanup::remove_all(&self.0);
    }
}

async fn client(socket: &Path) -> RuntimeServiceClient<Channel> {
    RuntimeServiceClient::new(cri::unix_channel(socket))
}

/// What a streaming exec session gave back: stdout, stderr, and the status
/// on channel 3.
#[derive(Debug, Default)]
struct Session {
    stdout: String,
    stderr: String,
    status: serde_json::Value,
}

/// Runs the session at `url` as kubectl does (v5.channel.k8s.io), sending
/// `messages` (channel byte first) once connected.
async fn session(
    url: &str,
    messages: &[Vec<u8>],
) -> Result<Session, tokio_tungstenite::tungstenite::Error> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    // The CRI hands out http:// URLs; the WebSocket client wants ws://.
    let mut request = url.replacen("http://", "ws://", 1).into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "v5.channel.k8s.io".parse().unwrap(),
    );
    let host = url.trim_start_matches("http://").split('/').next().unwrap();
    let tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async(request, tcp).await?;
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "v5.channel.k8s.io"
    );
    for m in messages {
        ws.send(Message::Binary(m.clone().into())).await?;
    }
    let mut out = Session::default();
    let collect = async {
        while let Some(m) = ws.next().await {
            let Message::Binary(data) = m? else { continue };
            let text = String::from_utf8_lossy(&data[1..]).into_owned();
            match data[0] {
                1 => out.stdout.push_str(&text),
                2 => out.stderr.push_str(&text),
                3 => out.status = serde_json::from_str(&text).unwrap(),
                other => panic!("channel {other} from the server"),
            }
        }
        Ok::<_, tokio_tungstenite::tungstenite::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(20), collect)
        .await
        .expect("the session ends")?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: namespaces, overlayfs, cgroups, CNI, nftables"]
async fn a_pod_through_the_cri() {
    let dir = tempfile::Builder::new()
        .prefix("skiff-rt-cri-run-")
        .tempdir()
        .unwrap();
    // A failed assertion half-way must not leave shims, mounts or cgroups.
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
    let net = TestNet::new(dir.path(), 2).expect("fence and CNI config");
    let sandboxes = Arc::new(Sandboxes {
        pod_cidr: Default::default(),
        run_dir: dir.path().join("sandboxes"),
        namespaces: Arc::new(LinuxNamespaces),
        cni: Some(Cni {
            list: NetworkList::load_dir(&net.conf_dir).unwrap(),
            exec: Arc::new(RealExec {
                dirs: vec![PathBuf::from("/usr/lib/cni")],
            }),
            cache_dir: dir.path().join("cni-cache"),
        }),
    });
    let runtime = RuntimeSvc {
        sandboxes,
        images: store.clone(),
        dir: dir.path().join("containers"),
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
    let mut rt = client(&socket).await;

    let status = rt
        .status(cri::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    assert!(status.status.unwrap().conditions.iter().all(|c| c.status));

    let logs = dir.path().join("logs");
    let sandbox_config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "web".into(),
            uid: "uid-1".into(),
            namespace: "shop".into(),
            attempt: 0,
        }),
        hostname: "web".into(),
        log_directory: logs.display().to_string(),
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
    let sb_status = rt
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: sb.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    let ip = sb_status.network.unwrap().ip;
    assert!(ip.starts_with(net.subnet.trim_end_matches("0/24")), "{ip}");

    let container = |name: &str, command: &[&str]| cri::CreateContainerRequest {
        pod_sandbox_id: sb.clone(),
        config: Some(cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: "skiff/busybox".into(),
                ..Default::default()
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            envs: vec![cri::KeyValue {
                key: "GREETING".into(),
                value: "hello".into(),
            }],
            log_path: format!("{name}/0.log"),
            ..Default::default()
        }),
        sandbox_config: Some(sandbox_config.clone()),
    };
    let id = rt
        .create_container(container(
            "app",
            &[
                "sh",
                "-c",
                "trap 'echo bye; exit 0' TERM; echo $GREETING from $(hostname); echo written > /bin/new-file; sleep 300 & wait",
            ],
        ))
        .await
        .unwrap()
        .into_inner()
        .container_id;
    rt.start_container(cri::StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .unwrap();
    let state = |s: &cri::ContainerStatus| cri::ContainerState::try_from(s.state).unwrap();
    let st = rt
        .container_status(cri::ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(state(&st), cri::ContainerState::ContainerRunning);
    assert!(st.image_ref.starts_with("sha256:"));

    // Its log, in the CRI format, where the kubelet said.
    let log = logs.join("app/0.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while !text.contains("stdout F hello from web") && Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(text.contains(" stdout F hello from web"), "{text}");

    // ExecSync inside: the pod's hosts file, its IP, its processes only,
    // and the container's environment (not the runtime's: no ~/.cargo/bin
    // from this test's PATH).
    let exec = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "cat /etc/hosts; ip -o -4 addr show eth0; ps -o comm | wc -l; echo \"env: $GREETING $PATH\"; exit 4".into(),
            ],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    let out = String::from_utf8_lossy(&exec.stdout);
    assert_eq!(
        exec.exit_code,
        4,
        "{out} {}",
        String::from_utf8_lossy(&exec.stderr)
    );
    assert!(
        out.contains(&format!("{ip}\tweb")) && out.contains(&format!("inet {ip}/")),
        "{out}"
    );
    assert!(out.contains("env: hello /"), "{out}");
    assert!(!out.contains(".cargo"), "{out}");

    // Streaming exec (kubectl exec): the URL CRI Exec answers with, then
    // stdin in, stdout and stderr apart, stdin's EOF, and the exit code.
    let exec = |cmd: &str, tty: bool| cri::ExecRequest {
        container_id: id.clone(),
        cmd: vec!["sh".into(), "-c".into(), cmd.into()],
        tty,
        stdin: true,
        stdout: true,
        stderr: !tty,
    };
    let url = rt
        .exec(exec(
            "while read x; do echo \"got $x $GREETING\"; done; echo oops >&2; exit 3",
            false,
        ))
        .await
        .unwrap()
        .into_inner()
        .url;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let piped = session(&url, &[b"\x00one\ntwo\n".to_vec(), vec![255, 0]])
        .await
        .unwrap();
    assert_eq!(piped.stdout, "got one hello\ngot two hello\n");
    assert_eq!(piped.stderr, "oops\n");
    assert_eq!(piped.status["reason"], "NonZeroExitCode", "{piped:?}");
    assert_eq!(piped.status["details"]["causes"][0]["message"], "3");
    // A URL is good once.
    assert!(session(&url, &[]).await.is_err());

    // With a TTY: a terminal of the size the client sends, which echoes.
    let url = rt
        .exec(exec("read x; stty size; tty; exit 0", true))
        .await
        .unwrap()
        .into_inner()
        .url;
    let tty = session(
        &url,
        &[
            b"\x04{\"Width\":120,\"Height\":40}".to_vec(),
            b"\x00go\r".to_vec(),
        ],
    )
    .await
    .unwrap();
    assert!(tty.stdout.contains("go\r\n"), "{tty:?}");
    assert!(tty.stdout.contains("40 120\r\n"), "{tty:?}");
    assert!(tty.stdout.contains("/dev/pts/"), "{tty:?}");
    assert_eq!(tty.status["status"], "Success", "{tty:?}");
    // tty and stderr together is refused, as the CRI says.
    let both = rt
        .exec(cri::ExecRequest {
            stderr: true,
            ..exec("true", true)
        })
        .await
        .unwrap_err();
    assert_eq!(both.code(), tonic::Code::InvalidArgument);

    // Attach (kubectl attach, kubectl run -i): containers made with stdin,
    // whose shim holds it; the CRI answers a URL on the same streaming
    // server, which relays to the shim.
    let with_stdin = |name: &str, script: &str, tty: bool| {
        let mut request = container(name, &["sh", "-c", script]);
        let config = request.config.as_mut().unwrap();
        (config.stdin, config.stdin_once, config.tty) = (true, true, tty);
        request
    };
    let started = async |rt: &mut RuntimeServiceClient<Channel>, request| {
        let id = rt
            .create_container(request)
            .await
            .unwrap()
            .into_inner()
            .container_id;
        rt.start_container(cri::StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap();
        id
    };
    let attach = |id: &str, tty: bool| cri::AttachRequest {
        container_id: id.into(),
        stdin: true,
        stdout: true,
        stderr: !tty,
        tty,
    };
    // A pipe, stdinOnce: the client's input, then its end is the
    // container's end of input (cat ends).
    let piped = started(
        &mut rt,
        with_stdin(
            "piped",
            "read x; echo \"got $x $GREETING\"; echo oops >&2; cat; echo done",
            false,
        ),
    )
    .await;
    let url = rt
        .attach(attach(&piped, false))
        .await
        .unwrap()
        .into_inner()
        .url;
    assert!(url.contains("/attach/"), "{url}");
    let out = session(
        &url,
        &[
            b"\x00hello\n".to_vec(),
            b"\x00more\n".to_vec(),
            vec![255, 0],
        ],
    )
    .await
    .unwrap();
    assert_eq!(out.stdout, "got hello hello\nmore\ndone\n", "{out:?}");
    assert_eq!(out.stderr, "oops\n", "{out:?}");
    assert_eq!(out.status["status"], "Success", "{out:?}");
    let piped_log = std::fs::read_to_string(logs.join("piped/0.log")).unwrap();
    assert!(
        piped_log.contains(" stdout F got hello hello\n") && piped_log.contains(" stderr F oops\n"),
        "{piped_log}"
    );
    // It has ended: nothing to attach to any more.
    let deadline = Instant::now() + Duration::from_secs(10);
    let gone = loop {
        match rt.attach(attach(&piped, false)).await {
            Err(e) => break e,
            Ok(_) => {
                assert!(Instant::now() < deadline, "still attachable");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(gone.code(), tonic::Code::FailedPrecondition, "{gone:?}");
    // A TTY: echo, the client's size, one output stream, and the terminal
    // is the container's controlling one (/dev/tty opens). Its exit code
    // is the pod status's business: the attach ends in Success.
    let term = started(
        &mut rt,
        with_stdin(
            "term",
            "read x; echo \"got $x\"; stty size; : </dev/tty && echo ctty; exit 3",
            true,
        ),
    )
    .await;
    let url = rt
        .attach(attach(&term, true))
        .await
        .unwrap()
        .into_inner()
        .url;
    let out = session(
        &url,
        &[
            b"\x04{\"Width\":120,\"Height\":40}".to_vec(),
            b"\x00hi\r".to_vec(),
        ],
    )
    .await
    .unwrap();
    assert!(out.stdout.starts_with("hi\r\ngot hi\r\n"), "{out:?}");
    assert!(out.stdout.contains("40 120\r\n"), "{out:?}");
    assert!(out.stdout.contains("ctty\r\n"), "{out:?}");
    assert_eq!(out.stderr, "");
    assert_eq!(out.status["status"], "Success", "{out:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let st = loop {
        let st = rt
            .container_status(cri::ContainerStatusRequest {
                container_id: term.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        if state(&st) == cri::ContainerState::ContainerExited || Instant::now() > deadline {
            break st;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (state(&st), st.exit_code),
        (cri::ContainerState::ContainerExited, 3)
    );
    let term_log = std::fs::read_to_string(logs.join("term/0.log")).unwrap();
    assert!(term_log.contains(" stdout F got hi\n"), "{term_log}");
    for id in [piped, term] {
        rt.remove_container(cri::RemoveContainerRequest { container_id: id })
            .await
            .unwrap();
    }

    // The write went to the container's upper dir, not to any image layer.
    let layers = store.prepare("skiff/busybox").unwrap().lower_dirs;
    assert!(layers.iter().all(|l| !l.join("bin/new-file").exists()));
    let upper = dir
        .path()
        .join("containers")
        .join(&id)
        .join("upper/bin/new-file");
    assert_eq!(std::fs::read_to_string(upper).unwrap(), "written\n");

    // Stop: SIGTERM, which its trap answers at once (a PID 1 without a
    // handler would ignore it and get SIGKILL after the timeout: 137).
    let asked = Instant::now();
    rt.stop_container(cri::StopContainerRequest {
        container_id: id.clone(),
        timeout: 5,
    })
    .await
    .unwrap();
    let st = rt
        .container_status(cri::ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(state(&st), cri::ContainerState::ContainerExited);
    assert_eq!((st.exit_code, st.reason.as_str()), (0, "Completed"));
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "stopped by SIGTERM, not the timeout"
    );
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains(" stdout F bye")
    );
    assert!(st.finished_at >= st.started_at && st.started_at > 0);

    rt.remove_container(cri::RemoveContainerRequest {
        container_id: id.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: sb.clone(),
    })
    .await
    .unwrap();
    let listed = rt
        .list_containers(cri::ListContainersRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(listed.is_empty());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir.path().display().to_string()),
        "no mount left"
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// A `hostNetwork` pod through the CRI, as the kubelet asks for one (network
/// mode NODE, no hostname, no DNS config, a hostPort): its container is in
/// this process's network and UTS namespaces (the node's) but has IPC and
/// mount namespaces of its own, sees the node's interfaces, /etc/hosts and
/// resolv.conf, the sandbox has no IP of its own, and no CNI plugin is ever
/// called (ADD, CHECK, DEL: the recording exec stays empty), portmap included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: namespaces, overlayfs, cgroups"]
async fn a_host_network_pod_through_the_cri() {
    use skiff_runtime::cni::fake::FakeExec;
    let dir = tempfile::Builder::new()
        .prefix("skiff-rt-cri-hostnet-")
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
    // A CNI network whose plugin calls are recorded: none may happen.
    let cni = Arc::new(FakeExec::new("10.244.9."));
    let sandboxes = Arc::new(Sandboxes {
        pod_cidr: Default::default(),
        run_dir: dir.path().join("sandboxes"),
        namespaces: Arc::new(LinuxNamespaces),
        cni: Some(Cni {
            list: NetworkList::parse(
                r#"{"cniVersion": "1.0.0", "name": "t", "plugins": [
                    {"type": "bridge"},
                    {"type": "portmap", "capabilities": {"portMappings": true}}]}"#,
                "t",
            )
            .unwrap(),
            exec: cni.clone(),
            cache_dir: dir.path().join("cni-cache"),
        }),
    });
    let runtime = RuntimeSvc {
        sandboxes,
        images: store.clone(),
        dir: dir.path().join("containers"),
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
    let mut rt = client(&socket).await;

    let logs = dir.path().join("logs");
    let sandbox_config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "agent".into(),
            uid: "uid-hn".into(),
            namespace: "kube-system".into(),
            attempt: 0,
        }),
        log_directory: logs.display().to_string(),
        port_mappings: vec![cri::PortMapping {
            protocol: cri::Protocol::Tcp as i32,
            container_port: 18081,
            host_port: 18081,
            host_ip: String::new(),
        }],
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Node as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ipc: cri::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
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
        .expect("a host-network sandbox is made")
        .into_inner()
        .pod_sandbox_id;
    let sb_status = rt
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: sb.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(sb_status.state, cri::PodSandboxState::SandboxReady as i32);
    assert_eq!(sb_status.network.unwrap().ip, "", "no IP of its own");
    assert_eq!(
        sb_status
            .linux
            .and_then(|l| l.namespaces)
            .and_then(|n| n.options)
            .map(|o| o.network),
        Some(cri::NamespaceMode::Node as i32)
    );

    let id = rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: sb.clone(),
            config: Some(cri::ContainerConfig {
                metadata: Some(cri::ContainerMetadata {
                    name: "agent".into(),
                    attempt: 0,
                }),
                image: Some(cri::ImageSpec {
                    image: "skiff/busybox".into(),
                    ..Default::default()
                }),
                command: ["sh", "-c", "echo \"net=$(readlink /proc/self/ns/net) uts=$(readlink /proc/self/ns/uts) ipc=$(readlink /proc/self/ns/ipc) host=$(hostname)\"; trap 'exit 0' TERM; sleep 300 & wait"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                log_path: "agent/0.log".into(),
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

    // What the container's PID 1 saw, against this process (the node).
    let mine = |kind: &str| {
        std::fs::read_link(format!("/proc/self/ns/{kind}"))
            .unwrap()
            .display()
            .to_string()
    };
    let node_name = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let log = logs.join("agent/0.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while !text.contains(" host=") && Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        text.contains(&format!("net={} uts={} ", mine("net"), mine("uts"))),
        "the node's network and UTS namespaces: {text}"
    );
    assert!(text.contains(&format!(" host={node_name}\n")), "{text}");
    assert!(
        !text.contains(&format!("ipc={} ", mine("ipc"))),
        "an IPC namespace of its own: {text}"
    );

    // Inside (ExecSync enters the container's namespaces): the node's
    // interfaces, its /etc/hosts under upstream's header, its resolv.conf.
    let exec = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "ls /sys/class/net | sort | tr '\\n' ' '; echo; cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hostname".into(),
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
    let mut node_links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    node_links.sort();
    assert!(node_links.len() > 1, "this node has more than lo");
    let mut parts = out.split("---\n");
    let (links_and_hosts, resolv, hostname) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    assert!(
        links_and_hosts.starts_with(&format!("{} \n", node_links.join(" "))),
        "the node's interfaces {node_links:?}: {out}"
    );
    let node_hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(
        links_and_hosts.ends_with(&format!(
            "# Kubernetes-managed hosts file (host network).\n{node_hosts}"
        )),
        "{out}"
    );
    assert_eq!(
        resolv,
        std::fs::read_to_string("/etc/resolv.conf").unwrap(),
        "no DNS config: the node's resolv.conf"
    );
    assert_eq!(hostname, format!("{node_name}\n"));

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
    assert!(
        cni.seen().is_empty(),
        "no CNI call for a host-network pod: {:?}",
        cni.seen()
    );
    let listed = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(listed.is_empty());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&dir.path().display().to_string()),
        "no mount left"
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
