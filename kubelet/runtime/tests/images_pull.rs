//! Pulls from a real registry: Debian's `docker-registry` (the CNCF
//! distribution registry) on a loopback port, with the images from
//! `kubelet/images/build.sh` pushed to it by a real client (`skopeo`), in
//! OCI and Docker formats, with and without htpasswd auth, by tag and by
//! digest, from a multi-platform index; corrupted blobs are refused and
//! partial downloads resumed. A small fake registry in this file exercises
//! the bearer-token flow, which the real registry only offers with a
//! separate token server.

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use skiff_runtime::image::digest::Digest;
use skiff_runtime::image::error::ImageError;
use skiff_runtime::image::manifest::DOCKER_LAYER_GZIP;
use skiff_runtime::image::{Credentials, ImageStore, Login, PullOptions, import_archive, pull};

/// bcrypt("s3cret"), as `htpasswd -B` would write it.
const HTPASSWD: &str = "skiff:$2b$04$bxPNhkMI10ofLAiI7dUhCO3nHEwepFUitb6wwn89TRlnWBnNAtkzi\n";

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("skiff-rt-img-pull-")
        .tempdir()
        .unwrap()
}

fn build_images(out: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/build.sh");
    let status = Command::new("bash")
        .arg(&script)
        .arg(out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{} failed", script.display());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A docker-registry process, killed (by its PID) on drop.
struct Registry {
    child: Child,
    port: u16,
    storage: PathBuf,
}

impl Registry {
    fn start(dir: &Path, htpasswd: bool) -> Registry {
        let port = free_port();
        let storage = dir.join("registry-data");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: skiff-test\n",
            storage.display()
        );
        if htpasswd {
            fs::write(dir.join("htpasswd"), HTPASSWD).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: skiff-test\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        let config_path = dir.join("registry.yml");
        fs::write(&config_path, config).unwrap();
        let log = fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut reg = Registry {
            child,
            port,
            storage,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if buf.starts_with("HTTP/1.") {
                    break;
                }
            }
            if let Ok(Some(status)) = reg.child.try_wait() {
                panic!(
                    "docker-registry exited with {status}: {}",
                    fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        reg
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes an image with skopeo.
    fn push(&self, src: &str, repo_tag: &str, creds: Option<&str>, extra: &[&str]) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ]);
        if let Some(c) = creds {
            cmd.args(["--dest-creds", c]);
        }
        cmd.args(extra);
        cmd.arg(src)
            .arg(format!("docker://{}/{repo_tag}", self.host()));
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "skopeo copy {src}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Where the registry keeps a blob's bytes (filesystem driver layout).
    fn blob_data(&self, d: &Digest) -> PathBuf {
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&d.hex()[..2])
            .join(d.hex())
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn opts_for(reg: &Registry) -> PullOptions {
    PullOptions {
        insecure_registries: HashSet::from([reg.host()]),
        ..PullOptions::default()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn archive(dir: &Path, name: &str) -> String {
    format!("oci-archive:{}", dir.join(format!("{name}.tar")).display())
}

#[test]
#[ignore = "needs root: build.sh creates device nodes and file owners (or fakeroot)"]
fn pull_by_tag_and_by_digest_oci_and_docker_formats() {
    let tmp = tempdir();
    let images = tmp.path().join("images");
    build_images(&images);
    let reg = Registry::start(tmp.path(), false);
    reg.push(
        &archive(&images, "skiff-busybox"),
        "skiff/busybox:latest",
        None,
        &[],
    );
    reg.push(
        &archive(&images, "skiff-httpd"),
        "skiff/httpd:v1",
        None,
        &["--format", "v2s2"],
    );
    let rt = rt();
    let opts = opts_for(&reg);

    // The same image imported from the archive, to compare ids with.
    let local = ImageStore::open(tmp.path().join("local")).unwrap();
    let busybox_local = import_archive(&local, &images.join("skiff-busybox.tar"), &[]).unwrap();

    let store = ImageStore::open(tmp.path().join("store")).unwrap();
    let name = format!("{}/skiff/busybox", reg.host());
    let image = rt.block_on(pull(&store, &name, &opts)).unwrap();
    assert_eq!(image.id, busybox_local[0].id, "same config, same id");
    assert_eq!(image.names, vec![format!("{name}:latest")]);
    assert_eq!(
        image.repo_digests,
        vec![format!("{name}@{}", image.manifest)]
    );
    for b in image.blobs() {
        assert!(store.blobs().contains(&b), "{b} missing");
    }
    assert_eq!(store.resolve(&name).unwrap().id, image.id);

    // Docker schema 2 media types (skopeo --format v2s2).
    let httpd = rt
        .block_on(pull(
            &store,
            &format!("{}/skiff/httpd:v1", reg.host()),
            &opts,
        ))
        .unwrap();
    assert_eq!(httpd.layers.len(), 2);
    assert!(
        httpd
            .layers
            .iter()
            .all(|l| l.media_type == DOCKER_LAYER_GZIP)
    );
    assert_eq!(httpd.config.entrypoint, vec!["/bin/httpd", "-f", "-v"]);
    assert_eq!(
        httpd.layers[0].diff_id, image.layers[0].diff_id,
        "shared base layer"
    );

    // By digest, into a fresh store: no tag, only the repo digest.
    let fresh = ImageStore::open(tmp.path().join("fresh")).unwrap();
    let by_digest = format!("{name}@{}", image.manifest);
    let image2 = rt.block_on(pull(&fresh, &by_digest, &opts)).unwrap();
    assert_eq!(image2.id, image.id);
    assert!(image2.names.is_empty());
    assert_eq!(fresh.resolve(&by_digest).unwrap().id, image.id);

    // A digest the registry does not have, a tag it does not have.
    let missing = format!("{name}@{}", Digest::of(b"nothing"));
    let err = rt.block_on(pull(&fresh, &missing, &opts)).unwrap_err();
    assert!(matches!(err, ImageError::ImageNotFound(_)), "{err}");
    let err = rt
        .block_on(pull(&fresh, &format!("{name}:nope"), &opts))
        .unwrap_err();
    assert!(matches!(err, ImageError::ImageNotFound(_)), "{err}");

    // Not listed as insecure: HTTPS is used, and fails against plain HTTP
    // rather than silently falling back.
    let err = rt
        .block_on(pull(&fresh, &name, &PullOptions::default()))
        .unwrap_err();
    assert!(matches!(err, ImageError::Registry { .. }), "{err}");
}

#[test]
#[ignore = "needs root: build.sh creates device nodes and file owners (or fakeroot)"]
fn pull_with_htpasswd_auth() {
    let tmp = tempdir();
    let images = tmp.path().join("images");
    build_images(&images);
    let reg = Registry::start(tmp.path(), true);
    reg.push(
        &archive(&images, "skiff-layers"),
        "private/layers:1",
        Some("skiff:s3cret"),
        &[],
    );
    let rt = rt();
    let name = format!("{}/private/layers:1", reg.host());
    let store = ImageStore::open(tmp.path().join("store")).unwrap();

    let err = rt
        .block_on(pull(&store, &name, &opts_for(&reg)))
        .unwrap_err();
    assert!(err.to_string().contains("wants a login"), "{err}");

    let mut wrong = opts_for(&reg);
    wrong.credentials.insert(
        &reg.host(),
        Login {
            username: "skiff".into(),
            password: "wrong".into(),
        },
    );
    let err = rt.block_on(pull(&store, &name, &wrong)).unwrap_err();
    assert!(err.to_string().contains("check the credentials"), "{err}");
    assert!(store.list().is_empty());

    // Credentials from a per-registry file in Docker's config.json format.
    let creds_file = tmp.path().join("auth.json");
    fs::write(
        &creds_file,
        format!(
            r#"{{"auths":{{"http://{}":{{"auth":"c2tpZmY6czNjcmV0"}}}}}}"#,
            reg.host()
        ),
    )
    .unwrap();
    let opts = PullOptions {
        credentials: Credentials::load(&creds_file).unwrap(),
        ..opts_for(&reg)
    };
    let image = rt.block_on(pull(&store, &name, &opts)).unwrap();
    assert_eq!(image.layers.len(), 3);
    assert_eq!(image.names, vec![name.clone()]);
}

#[test]
#[ignore = "needs root: build.sh creates device nodes and file owners (or fakeroot)"]
fn pull_picks_linux_amd64_from_a_multi_platform_index() {
    let tmp = tempdir();
    let images = tmp.path().join("images");
    build_images(&images);
    // An OCI layout whose image is an index of two platforms: the busybox
    // image as amd64, and the same layers with an arm64 config.
    let layout = tmp.path().join("multi");
    fs::create_dir(&layout).unwrap();
    tar::Archive::new(fs::File::open(images.join("skiff-busybox.tar")).unwrap())
        .unpack(&layout)
        .unwrap();
    let blobs = layout.join("blobs/sha256");
    let read = |d: &str| fs::read(blobs.join(d.trim_start_matches("sha256:"))).unwrap();
    let put = |data: &[u8]| {
        let d = Digest::of(data);
        fs::write(blobs.join(d.hex()), data).unwrap();
        (d, data.len())
    };
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let amd64 = index["manifests"][0].clone();
    let manifest: serde_json::Value =
        serde_json::from_slice(&read(amd64["digest"].as_str().unwrap())).unwrap();
    let config = String::from_utf8(read(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    let arm_config = config.replace("\"architecture\":\"amd64\"", "\"architecture\":\"arm64\"");
    assert_ne!(config, arm_config);
    let (acd, acn) = put(arm_config.as_bytes());
    let mut arm_manifest = manifest.clone();
    arm_manifest["config"]["digest"] = acd.to_string().into();
    arm_manifest["config"]["size"] = acn.into();
    let (amd, amn) = put(arm_manifest.to_string().as_bytes());
    let inner = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd.to_string(), "size": amn,
             "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd64["digest"], "size": amd64["size"],
             "platform": {"architecture": "amd64", "os": "linux"}},
        ]
    });
    let (idx, idn) = put(inner.to_string().as_bytes());
    fs::write(
        layout.join("index.json"),
        serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idx.to_string(), "size": idn,
             "annotations": {"org.opencontainers.image.ref.name": "latest"}}]})
        .to_string(),
    )
    .unwrap();

    let reg = Registry::start(tmp.path(), false);
    reg.push(
        &format!("oci:{}:latest", layout.display()),
        "skiff/multi:latest",
        None,
        &["--all"],
    );
    let store = ImageStore::open(tmp.path().join("store")).unwrap();
    let name = format!("{}/skiff/multi", reg.host());
    let image = rt().block_on(pull(&store, &name, &opts_for(&reg))).unwrap();
    assert_eq!(image.config.architecture, "amd64");
    assert_eq!(
        image.manifest.to_string(),
        amd64["digest"].as_str().unwrap()
    );
    assert_eq!(
        image.repo_digests,
        vec![format!("{name}@{idx}")],
        "the repo digest is the index's"
    );
    assert!(store.blobs().contains(&idx));
    assert!(
        !store.blobs().contains(&acd),
        "the arm64 config is not downloaded"
    );
}

#[test]
#[ignore = "needs root: build.sh creates device nodes and file owners (or fakeroot)"]
fn corrupted_blobs_are_refused_and_partial_downloads_resume() {
    let tmp = tempdir();
    let images = tmp.path().join("images");
    build_images(&images);
    let reg = Registry::start(tmp.path(), false);
    reg.push(
        &archive(&images, "skiff-httpd"),
        "skiff/httpd:latest",
        None,
        &[],
    );
    let rt = rt();
    let opts = opts_for(&reg);
    let name = format!("{}/skiff/httpd", reg.host());
    let probe = ImageStore::open(tmp.path().join("probe")).unwrap();
    let good = rt.block_on(pull(&probe, &name, &opts)).unwrap();
    let www = good.layers[1].clone();

    // Flip a byte of the layer in the registry's storage: refused.
    let data_path = reg.blob_data(&www.digest);
    let original = fs::read(&data_path).unwrap();
    let mut bad = original.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    fs::write(&data_path, &bad).unwrap();
    let store = ImageStore::open(tmp.path().join("store")).unwrap();
    let err = rt.block_on(pull(&store, &name, &opts)).unwrap_err();
    assert!(
        matches!(&err, ImageError::DigestMismatch { expected, .. } if *expected == www.digest),
        "{err}"
    );
    assert!(!store.blobs().contains(&www.digest));
    assert!(store.list().is_empty(), "no image registered");
    assert!(
        !store.blobs().partial_path(&www.digest).exists(),
        "a download that failed verification is discarded, not resumed"
    );

    // Restore it; a partial download is resumed with a Range request. To
    // see that the range was used, the partial file holds the right number
    // of WRONG bytes: the resumed download fails verification...
    fs::write(&data_path, &original).unwrap();
    let partial = store.blobs().partial_path(&www.digest);
    fs::write(&partial, vec![b'x'; original.len() / 2]).unwrap();
    let err = rt.block_on(pull(&store, &name, &opts)).unwrap_err();
    assert!(err.is_corruption(), "resumed after the bogus prefix: {err}");
    // ...and with the right prefix it completes.
    fs::write(&partial, &original[..original.len() / 2]).unwrap();
    let image = rt.block_on(pull(&store, &name, &opts)).unwrap();
    assert_eq!(image.id, good.id);
    assert!(store.blobs().contains(&www.digest));
    assert!(!partial.exists());
}

/// A minimal registry that wants a bearer token from its own token endpoint
/// and serves an OCI layout directory. One request per connection.
struct TokenRegistry {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl TokenRegistry {
    fn start(layout: PathBuf) -> TokenRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut log = Vec::new();
            while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
                let (stream, _) = match listener.accept() {
                    Ok(s) => s,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                stream.set_nonblocking(false).unwrap();
                if let Some(line) = serve_one(stream, &layout, port) {
                    log.push(line);
                }
            }
            log
        });
        TokenRegistry {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Handles one request; returns "<auth kind> <path> -> <status>".
fn serve_one(stream: TcpStream, layout: &Path, port: u16) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let path = request_line.split_whitespace().nth(1)?.to_owned();
    let mut auth = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            auth = v.trim().to_owned();
        }
    }
    let (status, headers, body): (&str, Vec<String>, Vec<u8>) = if path.starts_with("/token?") {
        // skiff:s3cret
        if auth == "Basic c2tpZmY6czNjcmV0"
            && path.contains("scope=repository%3Askiff%2Fbusybox%3Apull")
        {
            ("200 OK", vec![], br#"{"token":"t0k3n"}"#.to_vec())
        } else {
            ("401 Unauthorized", vec![], b"{}".to_vec())
        }
    } else if auth != "Bearer t0k3n" {
        let challenge = format!(
            r#"WWW-Authenticate: Bearer realm="http://127.0.0.1:{port}/token",service="fake",scope="repository:skiff/busybox:pull""#
        );
        ("401 Unauthorized", vec![challenge], b"{}".to_vec())
    } else if let Some(rest) = path.strip_prefix("/v2/skiff/busybox/") {
        let (kind, reference) = rest.split_once('/')?;
        let digest = if kind == "manifests" && !reference.starts_with("sha256:") {
            let index: serde_json::Value =
                serde_json::from_slice(&fs::read(layout.join("index.json")).ok()?).ok()?;
            index["manifests"][0]["digest"].as_str()?.to_owned()
        } else {
            reference.to_owned()
        };
        match fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        ) {
            Ok(data) if kind == "manifests" => (
                "200 OK",
                vec!["Content-Type: application/vnd.oci.image.manifest.v1+json".into()],
                data,
            ),
            Ok(data) => ("200 OK", vec![], data),
            Err(_) => ("404 Not Found", vec![], b"{}".to_vec()),
        }
    } else {
        ("404 Not Found", vec![], b"{}".to_vec())
    };
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(&h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes()).ok()?;
    out.write_all(&body).ok()?;
    let kind = auth.split(' ').next().unwrap_or("none").to_owned();
    let kind = if kind.is_empty() { "none".into() } else { kind };
    Some(format!(
        "{kind} {} -> {}",
        path.split('?').next()?,
        &status[..3]
    ))
}

#[test]
#[ignore = "needs root: build.sh creates device nodes and file owners (or fakeroot)"]
fn pull_with_a_bearer_token() {
    let tmp = tempdir();
    let images = tmp.path().join("images");
    build_images(&images);
    let layout = tmp.path().join("layout");
    fs::create_dir(&layout).unwrap();
    tar::Archive::new(fs::File::open(images.join("skiff-busybox.tar")).unwrap())
        .unpack(&layout)
        .unwrap();
    let fake = TokenRegistry::start(layout);
    let host = format!("127.0.0.1:{}", fake.port);
    let mut opts = PullOptions {
        insecure_registries: HashSet::from([host.clone()]),
        ..PullOptions::default()
    };
    opts.credentials.insert(
        &host,
        Login {
            username: "skiff".into(),
            password: "s3cret".into(),
        },
    );
    let store = ImageStore::open(tmp.path().join("store")).unwrap();
    let image = rt()
        .block_on(pull(&store, &format!("{host}/skiff/busybox:latest"), &opts))
        .unwrap();
    assert_eq!(image.layers.len(), 1);
    let log = fake.finish();
    // The first request is challenged, the token fetched with the login,
    // then everything goes with the token.
    assert_eq!(
        log[0], "none /v2/skiff/busybox/manifests/latest -> 401",
        "{log:#?}"
    );
    assert_eq!(log[1], "Basic /token -> 200", "{log:#?}");
    assert!(
        log[2..]
            .iter()
            .all(|l| l.starts_with("Bearer ") && l.ends_with("200")),
        "{log:#?}"
    );
    assert_eq!(log.len(), 2 + 3, "manifest, config, layer: {log:#?}");
}
