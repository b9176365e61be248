//! Running one CNI plugin: the binary found in the plugin dirs, the request
//! in environment variables (`CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
//! `CNI_IFNAME`, `CNI_ARGS`, `CNI_PATH`), its configuration on stdin, its
//! result (or its error object) on stdout, logs on stderr. Behind a trait so
//! the chaining logic is tested without running anything.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;
use serde_json::Value;

use super::CniError;

/// How long one plugin may take before it is killed. A plugin stuck (on an
/// iptables lock, a dead IPAM daemon) must not hold a sandbox forever.
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// One plugin call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub plugin: String,
    /// `ADD`, `DEL`, `CHECK` or `VERSION`.
    pub command: &'static str,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub stdin: Value,
}

impl Call {
    /// `VERSION`: which spec versions the plugin speaks.
    pub fn version(plugin: &str, cni_version: &str) -> Call {
        Call {
            plugin: plugin.to_string(),
            command: "VERSION",
            container_id: String::new(),
            netns: String::new(),
            ifname: String::new(),
            args: String::new(),
            stdin: serde_json::json!({ "cniVersion": cni_version }),
        }
    }
}

pub trait PluginExec: Send + Sync {
    /// Runs the call; `Ok` with the parsed stdout (Null when empty).
    fn exec(&self, call: &Call) -> Result<Value, CniError>;
}

/// Executes plugins from `dirs` (the first that has the binary).
#[derive(Debug, Clone)]
pub struct RealExec {
    pub dirs: Vec<PathBuf>,
}

impl PluginExec for RealExec {
    fn exec(&self, call: &Call) -> Result<Value, CniError> {
        let fail = |why: String| CniError::Exec {
            plugin: call.plugin.clone(),
            why,
        };
        let binary = self
            .dirs
            .iter()
            .map(|d| d.join(&call.plugin))
            .find(|p| p.is_file())
            .ok_or_else(|| CniError::NoPlugin {
                plugin: call.plugin.clone(),
                dirs: self.dirs.clone(),
            })?;
        // CNI_PATH lets a plugin find the ones it delegates to (IPAM).
        let path = std::env::join_paths(&self.dirs).unwrap_or_default();
        let started = std::time::Instant::now();
        let mut child = spawn_retrying_busy(|| {
            Command::new(&binary)
                .env_clear()
                .env("CNI_COMMAND", call.command)
                .env("CNI_CONTAINERID", &call.container_id)
                .env("CNI_NETNS", &call.netns)
                .env("CNI_IFNAME", &call.ifname)
                .env("CNI_ARGS", &call.args)
                .env("CNI_PATH", &path)
                // portmap and bridge run iptables and friends.
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
        })
        .map_err(|e| fail(format!("{}: {e}", binary.display())))?;
        let pid = Pid::from_raw(child.id() as i32);

        // The watchdog kills the plugin at the deadline. It is told to stand
        // down (the sender dropped) only once the plugin has exited but is
        // not yet reaped, so its PID cannot have been reused by then.
        let (done, deadline) = mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if deadline.recv_timeout(PLUGIN_TIMEOUT) == Err(mpsc::RecvTimeoutError::Timeout) {
                let _ = kill(pid, Signal::SIGKILL);
                return true;
            }
            false
        });
        // Writing stdin and draining stderr in threads of their own: a
        // plugin that does not read its stdin, or logs a lot, cannot
        // deadlock us.
        let input = serde_json::to_vec(&call.stdin).unwrap_or_default();
        let mut stdin = child.stdin.take();
        let writer = std::thread::spawn(move || {
            if let Some(stdin) = stdin.as_mut() {
                let _ = stdin.write_all(&input);
            }
        });
        let mut stderr_pipe = child.stderr.take();
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = stderr_pipe.as_mut() {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        });
        let mut stdout = Vec::new();
        if let Some(mut p) = child.stdout.take() {
            let _ = p.read_to_end(&mut stdout);
        }
        // Wait for the exit without reaping (WNOWAIT), then stop the watchdog.
        let waited = waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT);
        drop(done);
        let timed_out = watchdog.join().unwrap_or(false);
        let status = child.wait().map_err(|e| fail(e.to_string()))?;
        waited.map_err(|e| fail(e.to_string()))?;
        let _ = writer.join();
        let stderr = stderr_reader.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
        tracing::debug!(
            plugin = %call.plugin,
            command = call.command,
            container = %call.container_id,
            ms = started.elapsed().as_secs_f64() * 1000.0,
            %status,
            "CNI plugin"
        );
        if timed_out {
            return Err(fail(format!("killed after {PLUGIN_TIMEOUT:?} ({stderr})")));
        }

        let parsed: Option<Value> = if stdout.iter().all(u8::is_ascii_whitespace) {
            Some(Value::Null)
        } else {
            serde_json::from_slice(&stdout).ok()
        };
        let printed = || String::from_utf8_lossy(&stdout).trim().to_string();
        if status.success() {
            return parsed.ok_or_else(|| fail(format!("unreadable output: {}", printed())));
        }
        match parsed {
            // The CNI error object: {"code": N, "msg": "...", "details": "..."}.
            Some(err) if err["code"].is_u64() => Err(CniError::Plugin {
                plugin: call.plugin.clone(),
                command: call.command,
                code: err["code"].as_u64().unwrap_or(0),
                msg: err["msg"].as_str().unwrap_or_default().to_string(),
                details: err["details"].as_str().unwrap_or_default().to_string(),
            }),
            _ => Err(fail(format!(
                "{} {status} without a CNI error object: {} {stderr}",
                call.command,
                printed()
            ))),
        }
    }
}

/// Spawns, trying again while the binary is "text file busy" (ETXTBSY).
///
/// Why: exec fails with ETXTBSY while any process still holds the file open
/// for writing. A plugin just installed (or, in tests, just written) can be
/// held that way for a moment by a child forked elsewhere in this process
/// before its exec closed the inherited descriptor. Upstream libcni retries
/// the same error; here five tries 50, 100, 200, 400 ms apart (0.75 s in all).
fn spawn_retrying_busy(
    mut spawn: impl FnMut() -> std::io::Result<std::process::Child>,
) -> std::io::Result<std::process::Child> {
    let mut pause = Duration::from_millis(50);
    for _ in 1..5 {
        match spawn() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) => {
                std::thread::sleep(pause);
                pause *= 2;
            }
            other => return other,
        }
    }
    spawn()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    /// A plugin written as a shell script, to see what a real exec passes.
    fn plugin(dir: &std::path::Path, name: &str, body: &str) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn call(plugin: &str) -> Call {
        Call {
            plugin: plugin.into(),
            command: "ADD",
            container_id: "sb1".into(),
            netns: "/run/x/net".into(),
            ifname: "eth0".into(),
            args: "IgnoreUnknown=1;K8S_POD_NAME=web".into(),
            stdin: json!({"name": "n", "cniVersion": "1.0.0", "type": "echo"}),
        }
    }

    #[test]
    fn a_real_exec_passes_env_and_stdin_and_reads_the_result() {
        let dir = tempfile::tempdir().unwrap();
        // Prints its environment and stdin back as a result.
        plugin(
            dir.path(),
            "echo",
            r#"conf=$(cat)
printf '{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}],"seen":{"cmd":"%s","id":"%s","netns":"%s","if":"%s","args":"%s","path":"%s"},"conf":%s}' \
  "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH" "$conf""#,
        );
        let exec = RealExec {
            dirs: vec![dir.path().join("missing"), dir.path().to_path_buf()],
        };
        let out = exec.exec(&call("echo")).unwrap();
        assert_eq!(out["seen"]["cmd"], "ADD");
        assert_eq!(out["seen"]["id"], "sb1");
        assert_eq!(out["seen"]["netns"], "/run/x/net");
        assert_eq!(out["seen"]["if"], "eth0");
        assert_eq!(out["seen"]["args"], "IgnoreUnknown=1;K8S_POD_NAME=web");
        assert_eq!(
            out["seen"]["path"],
            format!(
                "{}:{}",
                dir.path().join("missing").display(),
                dir.path().display()
            )
        );
        assert_eq!(out["conf"]["type"], "echo");
    }

    #[test]
    fn a_plugin_held_open_for_writing_a_moment_is_run_once_it_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        plugin(dir.path(), "busy", r#"cat >/dev/null; echo '{"ok":1}'"#);
        // A writer holds the file as a racing fork would, then lets go.
        let held = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("busy"))
            .unwrap();
        let binary = dir.path().join("busy");
        assert_eq!(
            Command::new(&binary)
                .spawn()
                .map(|_| ())
                .unwrap_err()
                .raw_os_error(),
            Some(nix::libc::ETXTBSY),
            "exec of a file open for writing is refused on this kernel"
        );
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(120));
            drop(held);
        });
        let exec = RealExec {
            dirs: vec![dir.path().to_path_buf()],
        };
        let out = exec.exec(&call("busy")).unwrap();
        assert_eq!(out["ok"], 1);
        release.join().unwrap();
    }

    #[test]
    fn plugin_errors_are_read_from_the_error_object_or_stderr() {
        let dir = tempfile::tempdir().unwrap();
        plugin(
            dir.path(),
            "refuses",
            r#"echo '{"cniVersion":"1.0.0","code":7,"msg":"bad config","details":"no bridge"}'; exit 1"#,
        );
        plugin(dir.path(), "crashes", "echo 'panic: oops' >&2; exit 2");
        plugin(dir.path(), "garbles", "echo 'not json'");
        let exec = RealExec {
            dirs: vec![dir.path().to_path_buf()],
        };
        let err = exec.exec(&call("refuses")).unwrap_err().to_string();
        assert_eq!(
            err,
            "CNI plugin refuses ADD failed: code 7 (invalid network config): bad config (no bridge)"
        );
        let err = exec.exec(&call("crashes")).unwrap_err().to_string();
        assert!(
            err.contains("exit status: 2") && err.contains("panic: oops"),
            "{err}"
        );
        let err = exec.exec(&call("garbles")).unwrap_err().to_string();
        assert!(err.contains("unreadable output: not json"), "{err}");
        assert!(matches!(
            exec.exec(&call("absent")),
            Err(CniError::NoPlugin { .. })
        ));
    }
}
