//! The supervisor: starts the programs in order — the API server first,
//! the others once it serves — each with its log in the data dir and its
//! pid in `run/`; restarts one that dies after a back-off (1 s doubling to
//! 30 s, back to 1 s after a minute up); on SIGTERM or Ctrl-C stops them in
//! reverse order (SIGTERM, SIGKILL after 10 s). Pods' containers are not
//! stopped: they outlive their kubelet, as upstream's do, and the next
//! kubelet adopts them.
//!
//! With --nodes, each node's kubelet and proxy start inside the node's
//! network namespace (`setns` between fork and exec), and while
//! `skiff node stop` holds a node down (its marker in `run/`) its programs
//! are not restarted; `skiff node start` removes the marker and they come
//! back within a tick.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::cluster::{Layout, Settings};
use crate::programs::{Program, programs};
use crate::{Error, Result};

/// A line in the supervisor's log (`<data>/skiff.log` when detached).
pub fn say(line: impl AsRef<str>) {
    println!(
        "{} skiff: {}",
        k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
        line.as_ref()
    );
}

struct Supervised {
    program: Program,
    child: Option<Child>,
    started: Instant,
    backoff: Duration,
    restart_at: Option<Instant>,
}

fn spawn(p: &Program, bin: &Path, l: &Layout) -> Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(l.log(&p.name))
        .map_err(Error::io(format!("{}'s log", p.name)))?;
    let err = log.try_clone().map_err(Error::io("the log"))?;
    let mut cmd = Command::new(bin.join(p.binary));
    // Opened here, entered in the child: only the network namespace (the
    // node shares this machine's mounts, so `skiff reset` finds them).
    let netns = match &p.node {
        Some(n) => Some(
            std::fs::File::open(Path::new("/run/netns").join(&n.netns))
                .map_err(Error::io(format!("{}'s network namespace", n.name)))?,
        ),
        None => None,
    };
    if let Some(ns) = netns {
        // SAFETY: the closure makes one system call (setns) on a file
        // opened before the fork: nothing that allocates or locks.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
            });
        }
    }
    let child = cmd
        .args(&p.args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        // Its own process group: a Ctrl-C to `skiff up --foreground` reaches
        // the supervisor, which stops the programs in order.
        .process_group(0)
        .spawn()
        .map_err(Error::io(format!("start {}", bin.join(p.binary).display())))?;
    if let Some(pid) = child.id() {
        let _ = std::fs::write(l.program_pid(&p.name), pid.to_string());
    }
    say(format!(
        "started {} (pid {}, log {})",
        p.name,
        child.id().unwrap_or(0),
        l.log(&p.name).display()
    ));
    Ok(child)
}

/// Waits until the API server serves (its admin kubeconfig written, its
/// port open), or says why not.
async fn api_ready(s: &Settings, l: &Layout, apiserver: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if l.kubeconfig().exists()
            && tokio::net::TcpStream::connect((s.api_host(), s.port))
                .await
                .is_ok()
        {
            return Ok(());
        }
        if let Ok(Some(status)) = apiserver.try_wait() {
            return Err(Error::Failed(format!(
                "skiff-apiserver exited ({status}); see {}",
                l.log("apiserver").display()
            )));
        }
        if Instant::now() > deadline {
            return Err(Error::Failed(format!(
                "skiff-apiserver did not serve on {}:{} within 60 s; see {}",
                s.api_host(),
                s.port,
                l.log("apiserver").display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `p` belongs to a node `skiff node stop` holds down.
fn held_down(p: &Program, l: &Layout) -> bool {
    p.node
        .as_ref()
        .is_some_and(|n| l.node_stopped(&n.name).exists())
}

/// `skiff server`'s join service on the API port + 1, every address.
async fn start_join_service(s: &Settings, l: &Layout) -> Result<tokio::task::JoinHandle<()>> {
    // The API server made the CA and its serving certificate; loaded as they are.
    // (127.0.0.1 is in its certificate already: nothing is re-issued.)
    let pki = skiff_apiserver::pki::Pki::load_or_create(&l.data.join("pki"), &["127.0.0.1".into()])
        .map_err(|e| Error::Failed(format!("the join service: {e}")))?;
    let port = crate::join::join_port(s.port);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .map_err(Error::io(format!("the join port {port}")))?;
    say(format!("join service on port {port}"));
    let service = std::sync::Arc::new(crate::join::service::Service {
        pki,
        tokens: crate::join::token::Store::new(&l.data),
        pod_subnet: s.pod_subnet.clone(),
    });
    Ok(tokio::spawn(crate::join::service::serve(listener, service)))
}

async fn stop(child: &mut Child, name: &str) {
    let Some(pid) = child.id() else { return };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        say(format!("{name} did not stop within 10 s: SIGKILL"));
        let _ = child.kill().await;
    }
    say(format!("stopped {name}"));
}

/// Runs the cluster until SIGTERM or SIGINT.
pub async fn run(s: &Settings, l: &Layout, bin: &Path) -> Result<()> {
    std::fs::create_dir_all(l.data.join("run")).map_err(Error::io("the run dir"))?;
    std::fs::write(l.supervisor_pid(), std::process::id().to_string())
        .map_err(Error::io("the supervisor's pid file"))?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(Error::io("SIGTERM handler"))?;
    let mut all: Vec<Supervised> = Vec::new();
    let mut join_service: Option<tokio::task::JoinHandle<()>> = None;
    let result = async {
        for p in programs(s, l) {
            if !bin.join(p.binary).exists() {
                if p.optional {
                    say(format!("{} is not built: not started", p.binary));
                    continue;
                }
                return Err(Error::Failed(format!(
                    "{} not found next to skiff in {}: build the workspace (cargo build --release)",
                    p.binary,
                    bin.display()
                )));
            }
            // A node `skiff node stop` holds down stays down (parked).
            let held = held_down(&p, l);
            let child = if held { None } else { Some(spawn(&p, bin, l)?) };
            let is_apiserver = p.name == "apiserver";
            // Supervised from here on: stopped at the end even if what
            // follows fails (an API server that never serves, a join port taken).
            all.push(Supervised {
                program: p,
                child,
                started: Instant::now(),
                backoff: Duration::from_secs(1),
                restart_at: None,
            });
            if is_apiserver && let Some(child) = all.last_mut().and_then(|sup| sup.child.as_mut()) {
                api_ready(s, l, child).await?;
                if s.server {
                    join_service = Some(start_join_service(s, l).await?);
                }
            }
        }
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            for sup in all.iter_mut() {
                let held = held_down(&sup.program, l);
                if let Some(child) = &mut sup.child
                    && let Ok(Some(status)) = child.try_wait()
                {
                    if held {
                        say(format!(
                            "{} stopped with its node ({status})",
                            sup.program.name
                        ));
                        sup.child = None;
                        sup.restart_at = None;
                        continue;
                    }
                    if sup.started.elapsed() > Duration::from_secs(60) {
                        sup.backoff = Duration::from_secs(1);
                    }
                    say(format!(
                        "{} exited ({status}); restarting in {} s (log: {})",
                        sup.program.name,
                        sup.backoff.as_secs(),
                        l.log(&sup.program.name).display()
                    ));
                    sup.child = None;
                    sup.restart_at = Some(Instant::now() + sup.backoff);
                    sup.backoff = (sup.backoff * 2).min(Duration::from_secs(30));
                }
                // A parked program whose node was started again: now.
                if sup.child.is_none() && sup.restart_at.is_none() && !held {
                    sup.restart_at = Some(Instant::now());
                    sup.backoff = Duration::from_secs(1);
                }
                if sup.child.is_none()
                    && !held
                    && sup.restart_at.is_some_and(|t| Instant::now() >= t)
                {
                    match spawn(&sup.program, bin, l) {
                        Ok(c) => {
                            sup.child = Some(c);
                            sup.started = Instant::now();
                            sup.restart_at = None;
                        }
                        Err(e) => {
                            say(format!("cannot restart {}: {e}", sup.program.name));
                            sup.restart_at = Some(Instant::now() + sup.backoff);
                        }
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    if let Some(task) = join_service {
        task.abort();
    }
    for sup in all.iter_mut().rev() {
        if let Some(child) = &mut sup.child {
            stop(child, &sup.program.name).await;
        }
        let _ = std::fs::remove_file(l.program_pid(&sup.program.name));
    }
    let _ = std::fs::remove_file(l.supervisor_pid());
    result
}
