//! The shim as the runtime starts it (`skiff-runtime shim --log … --exit-file
//! … --log-max-size … --log-max-files … -- COMMAND`), with `/bin/sh` for a
//! container: no root needed.

use std::process::Command;

#[test]
fn the_shim_binary_rotates_as_its_flags_say() {
    let dir = tempfile::tempdir().unwrap();
    let (log, exit) = (dir.path().join("app/0.log"), dir.path().join("exit.json"));
    let status = Command::new(env!("CARGO_BIN_EXE_skiff-runtime"))
        .arg("shim")
        .arg("--log")
        .arg(&log)
        .arg("--exit-file")
        .arg(&exit)
        .args(["--log-max-size=500", "--log-max-files=3", "--"])
        .args(["/bin/sh", "-c", "seq 1 100"])
        .status()
        .unwrap();
    assert!(status.success());
    let mut names: Vec<String> = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "0.log");
    for n in &names[1..] {
        // 0.log.YYYYMMDD-HHMMSS, maybe -N after it.
        let stamp = n.strip_prefix("0.log.").unwrap();
        let b = stamp.as_bytes();
        assert!(b.len() >= 15 && b[8] == b'-', "{n}");
        assert!(
            b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit),
            "{n}"
        );
    }
    let current = std::fs::read_to_string(&log).unwrap();
    assert!(current.ends_with(" stdout F 100\n"), "{current}");
    for n in &names {
        let len = std::fs::metadata(dir.path().join("app").join(n))
            .unwrap()
            .len();
        assert!(len <= 500, "{n}: {len}");
    }
    let e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&exit).unwrap()).unwrap();
    assert_eq!(e["reason"].as_str(), Some("Completed"));
    // Fewer than two files is refused, as the kubelet's flag is.
    let refused = Command::new(env!("CARGO_BIN_EXE_skiff-runtime"))
        .args([
            "shim",
            "--log",
            "l",
            "--exit-file",
            "e",
            "--log-max-files=1",
        ])
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

/// Attach sessions against the shim binary itself, with `/bin/sh` for a
/// container: what kubectl's frames (relayed by the runtime's streaming
/// server) get from the shim's attach socket.
mod attach {
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    type Ws = WebSocketStream<tokio::net::UnixStream>;

    struct Shim {
        child: Child,
        dir: tempfile::TempDir,
    }

    impl Shim {
        fn start(flags: &[&str], script: &str) -> Shim {
            let dir = tempfile::tempdir().unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_skiff-runtime"))
                .arg("shim")
                .arg("--log")
                .arg(dir.path().join("0.log"))
                .arg("--exit-file")
                .arg(dir.path().join("exit.json"))
                .arg("--attach-socket")
                .arg(dir.path().join("attach.sock"))
                .args(flags)
                .args(["--", "/bin/sh", "-c", script])
                .spawn()
                .unwrap();
            let shim = Shim { child, dir };
            let deadline = Instant::now() + Duration::from_secs(10);
            while !shim.socket().exists() {
                assert!(Instant::now() < deadline, "no attach socket");
                std::thread::sleep(Duration::from_millis(10));
            }
            shim
        }

        fn socket(&self) -> PathBuf {
            self.dir.path().join("attach.sock")
        }

        fn log(&self) -> String {
            std::fs::read_to_string(self.dir.path().join("0.log")).unwrap()
        }

        async fn attach(&self, query: &str) -> Ws {
            attach_to(&self.socket(), query).await
        }

        /// Waits for the shim (the container ended, sessions finished).
        fn wait(mut self) -> (String, serde_json::Value) {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    assert!(status.success());
                    break;
                }
                assert!(Instant::now() < deadline, "the shim did not end");
                std::thread::sleep(Duration::from_millis(20));
            }
            let exit = std::fs::read_to_string(self.dir.path().join("exit.json")).unwrap();
            assert!(!self.socket().exists(), "the socket goes with the shim");
            (self.log(), serde_json::from_str(&exit).unwrap())
        }
    }

    impl Drop for Shim {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    async fn attach_to(socket: &Path, query: &str) -> Ws {
        let unix = tokio::net::UnixStream::connect(socket).await.unwrap();
        let mut request = format!("ws://shim/attach?{query}")
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "v5.channel.k8s.io".parse().unwrap(),
        );
        let (ws, response) = tokio_tungstenite::client_async(request, unix)
            .await
            .unwrap();
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "v5.channel.k8s.io"
        );
        ws
    }

    async fn send(ws: &mut Ws, channel: u8, data: &[u8]) {
        let mut m = vec![channel];
        m.extend_from_slice(data);
        ws.send(Message::Binary(m.into())).await.unwrap();
    }

    /// What came on each channel until `until` holds of it (or the end).
    #[derive(Debug, Default)]
    struct Got {
        stdout: String,
        stderr: String,
        status: Option<serde_json::Value>,
        closed: bool,
    }

    async fn read_until(ws: &mut Ws, got: &mut Got, until: impl Fn(&Got) -> bool) {
        let read = async {
            while !until(got) {
                let Some(m) = ws.next().await else {
                    got.closed = true;
                    return;
                };
                match m.unwrap() {
                    Message::Binary(data) => {
                        let text = String::from_utf8_lossy(&data[1..]).into_owned();
                        match data[0] {
                            1 => got.stdout.push_str(&text),
                            2 => got.stderr.push_str(&text),
                            3 => got.status = Some(serde_json::from_str(&text).unwrap()),
                            other => panic!("channel {other} from the shim"),
                        }
                    }
                    Message::Close(_) => {
                        got.closed = true;
                        return;
                    }
                    _ => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .unwrap_or_else(|_| panic!("timed out; so far {got:?}"));
    }

    #[tokio::test]
    async fn stdin_once_closes_the_pipe_when_the_first_client_is_done() {
        let shim = Shim::start(
            &["--stdin", "--stdin-once"],
            "read x; echo \"got $x\"; echo oops >&2; cat; echo eof",
        );
        let mut ws = shim.attach("stdin=1&stdout=1&stderr=1").await;
        send(&mut ws, 0, b"hello\n").await;
        let mut got = Got::default();
        read_until(&mut ws, &mut got, |g| {
            g.stdout.contains("got hello\n") && g.stderr.contains("oops")
        })
        .await;
        // What cat reads, then its end: the client's stdin closes the
        // container's, and the container ends.
        send(&mut ws, 0, b"more\n").await;
        ws.send(Message::Binary(vec![255, 0].into())).await.unwrap();
        read_until(&mut ws, &mut got, |g| g.closed).await;
        assert_eq!(got.stdout, "got hello\nmore\neof\n");
        assert_eq!(got.stderr, "oops\n");
        assert_eq!(got.status.as_ref().unwrap()["status"], "Success");
        let (log, exit) = shim.wait();
        for line in [" stdout F got hello", " stderr F oops", " stdout F eof"] {
            assert!(log.contains(line), "{line}: {log}");
        }
        assert_eq!(exit["code"], 0);
    }

    #[tokio::test]
    async fn without_stdin_once_stdin_outlives_a_client() {
        let shim = Shim::start(
            &["--stdin"],
            "read x; echo \"got $x\"; read y; echo \"then $y\"; exit 4",
        );
        let mut first = shim.attach("stdin=1&stdout=1").await;
        // A second client that only watches sees the output too.
        let mut watcher = shim.attach("stdout=1").await;
        send(&mut first, 0, b"one\n").await;
        let mut got = Got::default();
        read_until(&mut first, &mut got, |g| g.stdout.contains("got one\n")).await;
        // It ends its input and leaves: stdin stays open for the next one.
        first
            .send(Message::Binary(vec![255, 0].into()))
            .await
            .unwrap();
        first.close(None).await.unwrap();
        // Input from a client that did not ask for stdin goes nowhere.
        send(&mut watcher, 0, b"ignored\n").await;
        let mut second = shim.attach("stdin=1&stdout=1&stderr=1").await;
        send(&mut second, 0, b"two\n").await;
        let mut got = Got::default();
        read_until(&mut second, &mut got, |g| g.closed).await;
        assert_eq!(got.stdout, "then two\n");
        // The status of an attach is Success whatever the exit code, as
        // upstream's kubelet sends it.
        assert_eq!(got.status.as_ref().unwrap()["status"], "Success");
        let mut seen = Got::default();
        read_until(&mut watcher, &mut seen, |g| g.closed).await;
        assert_eq!(seen.stdout, "got one\nthen two\n");
        let (_, exit) = shim.wait();
        assert_eq!(exit["code"], 4);
    }

    #[tokio::test]
    async fn a_tty_echoes_takes_resizes_and_logs_one_stream() {
        let shim = Shim::start(
            &["--stdin", "--stdin-once", "--tty"],
            "read x; echo \"got $x\"; stty size; read y; echo \"then $y\"",
        );
        let mut ws = shim.attach("stdin=1&stdout=1").await;
        send(&mut ws, 4, br#"{"Width":120,"Height":40}"#).await;
        // Typed as a raw terminal sends it.
        send(&mut ws, 0, b"hi\r").await;
        let mut got = Got::default();
        read_until(&mut ws, &mut got, |g| g.stdout.contains("40 120\r\n")).await;
        assert!(got.stdout.starts_with("hi\r\ngot hi\r\n"), "{got:?}");
        // With a TTY, stdinOnce does not close the terminal (as
        // containerd): a second client still types.
        ws.send(Message::Binary(vec![255, 0].into())).await.unwrap();
        ws.close(None).await.unwrap();
        let mut again = shim.attach("stdin=1&stdout=1").await;
        send(&mut again, 0, b"there\r").await;
        let mut got = Got::default();
        read_until(&mut again, &mut got, |g| g.closed).await;
        assert!(got.stdout.contains("then there\r\n"), "{got:?}");
        assert_eq!(got.stderr, "", "a terminal has one output");
        let (log, _) = shim.wait();
        assert!(log.contains(" stdout F got hi\n"), "{log}");
        assert!(log.contains(" stdout F 40 120\n"), "{log}");
        assert!(!log.contains(" stderr "), "{log}");
    }
}
