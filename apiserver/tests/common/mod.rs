//! Starts the real `skiff-apiserver` binary (over the embedded store or a
//! real etcd) and runs the real `kubectl` against it.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use skiff_store::harness::{Binaries, Kind, ServerProcess, ServerSettings};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Etcd,
}

pub struct ApiServer {
    child: Option<Child>,
    /// The arguments it was started with, to start it again.
    args: Vec<String>,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub kubeconfig: PathBuf,
    cache: tempfile::TempDir,
    _etcd: Option<ServerProcess>,
}

/// What a kubectl run printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "kubectl failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// Asserts failure and returns stderr.
    #[track_caller]
    pub fn fails(self) -> String {
        assert_ne!(
            self.code, 0,
            "kubectl should have failed:\nstdout: {}",
            self.stdout
        );
        self.stderr
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ApiServer {
    pub async fn start(backend: Backend) -> ApiServer {
        Self::start_with(backend, &[]).await
    }

    pub async fn start_with(backend: Backend, extra: &[&str]) -> ApiServer {
        let dir = tempfile::Builder::new()
            .prefix("skiff-test-apiserver-")
            .tempdir()
            .unwrap();
        let etcd = match backend {
            Backend::Embedded => None,
            Backend::Etcd => {
                let binaries = Binaries::new("/nonexistent/skiff-store");
                Some(
                    ServerProcess::start(Kind::Etcd, &binaries, ServerSettings::default())
                        .await
                        .expect("start etcd (the README's test command installs etcd-server)"),
                )
            }
        };
        let kubeconfig = dir.path().join("data/admin.kubeconfig");
        let cache = tempfile::Builder::new()
            .prefix("skiff-test-kubectl-cache-")
            .tempdir()
            .unwrap();
        let mut server = ApiServer {
            child: None,
            args: Vec::new(),
            dir,
            url: String::new(),
            kubeconfig,
            cache,
            _etcd: etcd,
        };
        // A port probed free can be taken (by another test's etcd) before the
        // server binds it: then the server exits saying so, and we try another.
        for attempt in 1.. {
            let port = free_port();
            let mut args: Vec<String> = vec![
                "--data-dir".into(),
                server
                    .dir
                    .path()
                    .join("data")
                    .to_string_lossy()
                    .into_owned(),
            ];
            args.extend(["--bind-address", "127.0.0.1", "--secure-port"].map(String::from));
            args.push(port.to_string());
            args.extend(extra.iter().map(|a| a.to_string()));
            if let Some(etcd) = &server._etcd {
                args.extend(["--etcd-servers".to_string(), etcd.endpoint.clone()]);
            }
            server.args = args;
            server.url = format!("https://127.0.0.1:{port}");
            server.spawn();
            match server.try_ready() {
                Ok(()) => break,
                Err(log) if attempt < 5 && log.contains("Address already in use") => continue,
                Err(log) => panic!("{log}"),
            }
        }
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("apiserver.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_skiff-apiserver"))
            .args(&self.args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start skiff-apiserver");
        self.child = Some(child);
    }

    /// Kills the server (SIGKILL) and starts it again on the same data and port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_ready();
    }

    /// The etcd this server uses, when it has one of its own.
    pub fn etcd_endpoint(&self) -> Option<&str> {
        self._etcd.as_ref().map(|e| e.endpoint.as_str())
    }

    fn wait_ready(&mut self) {
        if let Err(why) = self.try_ready() {
            panic!("{why}");
        }
    }

    fn try_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "skiff-apiserver exited ({status}):\n{}",
                    self.log()
                ));
            }
            if self.kubeconfig.exists()
                && self.kubectl(&["get", "--raw", "/readyz"]).stdout.trim() == "ok"
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "skiff-apiserver did not become ready in 60s:\n{}",
            self.log()
        ))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("apiserver.log")).unwrap_or_default()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args);
        cmd.env_remove("KUBECONFIG");
        cmd
    }

    /// Runs `kubectl <args>` against this server.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .expect("kubectl is on PATH");
        run(out)
    }

    pub fn kubectl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd
            .stdin(Stdio::null())
            .output()
            .expect("kubectl is on PATH"))
    }

    /// Runs kubectl with `input` on stdin (`apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        run(child.wait_with_output().unwrap())
    }

    /// A long-running kubectl (e.g. `get --watch`), ended when dropped.
    pub fn kubectl_spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl")
    }

    /// Writes a file in the test's directory and returns its path.
    pub fn file(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn run(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs each named `async fn(&ApiServer)` twice: over the embedded store
/// (`embedded::name`) and over a real etcd (`etcd::name`).
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = $crate::common::ApiServer::start($crate::common::Backend::Embedded).await;
                    super::$case(&server).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = $crate::common::ApiServer::start($crate::common::Backend::Etcd).await;
                    super::$case(&server).await;
                }
            )*
        }
    };
}

/// The whitespace-separated columns of each line.
pub fn columns(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}
