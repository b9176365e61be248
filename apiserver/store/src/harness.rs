//! Starting a `skiff-store` or a real `etcd` as a child process on loopback,
//! for the conformance tests, the crash test and the benchmark.
//!
//! Each server gets its own fresh data directory under a unique temporary
//! directory and free loopback ports. Dropping a [`ServerProcess`] ends the
//! process it started (by its PID, never by name) and removes its directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Which server a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// This crate's `skiff-store` binary.
    SkiffStore,
    /// A real etcd (Debian's `etcd-server`).
    Etcd,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::SkiffStore => "skiff-store",
            Kind::Etcd => "etcd",
        }
    }
}

/// Where the binaries are and how to start them.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub skiff_store: PathBuf,
    pub etcd: PathBuf,
}

impl Binaries {
    /// `skiff_store` as given; etcd from `$SKIFF_ETCD_BIN`, else `etcd` on PATH.
    pub fn new(skiff_store: impl Into<PathBuf>) -> Self {
        let etcd =
            std::env::var_os("SKIFF_ETCD_BIN").map_or_else(|| PathBuf::from("etcd"), PathBuf::from);
        Binaries {
            skiff_store: skiff_store.into(),
            etcd,
        }
    }
}

/// Extra settings for a server, applied the same way to both kinds.
#[derive(Debug, Clone, Default)]
pub struct ServerSettings {
    /// Progress notifications for idle watches this often (both kinds accept
    /// `--experimental-watch-progress-notify-interval`).
    pub progress_notify_interval: Option<Duration>,
    /// More flags for skiff-store only (etcd gets none).
    pub skiff_store_args: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("cannot start {what}: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("{what} did not become ready within {seconds}s; last lines of its log:\n{log}")]
    NotReady {
        what: String,
        seconds: u64,
        log: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A server process this harness started.
pub struct ServerProcess {
    pub kind: Kind,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    binaries: Binaries,
    settings: ServerSettings,
    ports: (u16, u16),
    child: Option<Child>,
    /// Holds the data directory and the log; removed on drop.
    root: TempDir,
}

const READY_TIMEOUT: Duration = Duration::from_secs(30);

impl ServerProcess {
    /// Starts a server of `kind` with an empty data directory and waits until
    /// it answers a read.
    pub async fn start(
        kind: Kind,
        binaries: &Binaries,
        settings: ServerSettings,
    ) -> Result<Self, HarnessError> {
        let mut last_error = None;
        // A free port can be taken by someone else between our probe and the
        // server's bind; try a few times, each with a fresh directory.
        for _ in 0..3 {
            let ports = (free_port()?, free_port()?);
            let mut server = ServerProcess {
                kind,
                endpoint: format!("http://127.0.0.1:{}", ports.0),
                binaries: binaries.clone(),
                settings: settings.clone(),
                ports,
                child: None,
                root: tempfile::Builder::new()
                    .prefix(&format!("skiff-test-{}-", kind.name()))
                    .tempdir()?,
            };
            match server.launch().await {
                Ok(()) => return Ok(server),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.root.path().join("server.log")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn command(&self) -> Command {
        let (client, peer) = self.ports;
        let client_url = format!("http://127.0.0.1:{client}");
        let mut cmd;
        match self.kind {
            Kind::SkiffStore => {
                cmd = Command::new(&self.binaries.skiff_store);
                cmd.arg("--data-dir")
                    .arg(self.data_dir())
                    .arg("--listen-client-urls")
                    .arg(&client_url);
                cmd.args(&self.settings.skiff_store_args);
                cmd.env("RUST_LOG", "warn");
            }
            Kind::Etcd => {
                let peer_url = format!("http://127.0.0.1:{peer}");
                cmd = Command::new(&self.binaries.etcd);
                cmd.arg("--name")
                    .arg("skiff-test")
                    .arg("--data-dir")
                    .arg(self.data_dir())
                    .arg("--listen-client-urls")
                    .arg(&client_url)
                    .arg("--advertise-client-urls")
                    .arg(&client_url)
                    .arg("--listen-peer-urls")
                    .arg(&peer_url)
                    .arg("--initial-advertise-peer-urls")
                    .arg(&peer_url)
                    .arg("--initial-cluster")
                    .arg(format!("skiff-test={peer_url}"))
                    .arg("--log-level")
                    .arg("warn")
                    .arg("--logger")
                    .arg("zap");
            }
        }
        if let Some(interval) = self.settings.progress_notify_interval {
            cmd.arg("--experimental-watch-progress-notify-interval")
                .arg(format!("{}ms", interval.as_millis()));
        }
        cmd
    }

    /// Starts the process (again) on the same data directory and ports.
    pub async fn launch(&mut self) -> Result<(), HarnessError> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut cmd = self.command();
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let what = format!(
            "{} ({})",
            self.kind.name(),
            cmd.get_program().to_string_lossy()
        );
        let child = cmd.spawn().map_err(|source| HarnessError::Spawn {
            what: what.clone(),
            source,
        })?;
        self.child = Some(child);
        self.wait_ready(&what).await
    }

    async fn wait_ready(&mut self, what: &str) -> Result<(), HarnessError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let not_ready = |this: &Self| HarnessError::NotReady {
            what: what.to_string(),
            seconds: READY_TIMEOUT.as_secs(),
            log: tail(&this.log_path(), 20),
        };
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_status)) = child.try_wait()
            {
                return Err(not_ready(self));
            }
            let options =
                etcd_client::ConnectOptions::new().with_connect_timeout(Duration::from_millis(500));
            if let Ok(mut client) =
                etcd_client::Client::connect([&self.endpoint], Some(options)).await
                && client.get("skiff-harness-ready", None).await.is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(not_ready(self))
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill9(&mut self) -> Result<(), HarnessError> {
        if let Some(mut child) = self.child.take() {
            child.kill()?; // SIGKILL to this child's PID
            child.wait()?;
        }
        Ok(())
    }

    /// Stops the process gracefully (SIGTERM, then SIGKILL after 10s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (resident, peak resident) memory of the process, in KiB.
    pub fn memory_kib(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let field = |name: &str| {
            status.lines().find_map(|line| {
                line.strip_prefix(name)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// A client connected to this server.
    pub async fn client(&self) -> Result<etcd_client::Client, etcd_client::Error> {
        etcd_client::Client::connect([&self.endpoint], None).await
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
