//! The shim: one small process per container, outside it, that outlives the
//! kubelet. It runs the container (`run`, a child process), writes its
//! stdout and stderr to the log file in the CRI format the kubelet and
//! `kubectl logs` read — `<RFC3339Nano time> <stream> F <line>` — and, when
//! the container ends, its exit code and reason to the exit file. A restarted
//! kubelet finds both on disk.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use super::run::Exit;

/// One CRI log line.
pub fn log_line(stream: &str, line: &str, at: jiff::Timestamp) -> String {
    format!(
        "{} {stream} F {line}\n",
        at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
}

/// Runs `program args…` (the container), logging to `log` and recording how
/// it ended in `exit_file` (JSON [`Exit`] plus `finishedAt` in ns).
pub fn shim(program: &Path, args: &[String], log: &Path, exit_file: &Path) -> std::io::Result<()> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?,
    ));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pump = |stream: &'static str, reader: Box<dyn std::io::Read + Send>| {
        let file = file.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut f) = file.lock() {
                    let _ = f.write_all(log_line(stream, &line, jiff::Timestamp::now()).as_bytes());
                }
            }
        })
    };
    let out = child.stdout.take().map(|s| pump("stdout", Box::new(s)));
    let err = child.stderr.take().map(|s| pump("stderr", Box::new(s)));
    let status = child.wait()?;
    for t in [out, err].into_iter().flatten() {
        let _ = t.join();
    }
    // `run` prints "OOMKilled" on its stderr and exits with the container's code.
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let oom = text
        .lines()
        .rev()
        .take(5)
        .any(|l| l.ends_with(": OOMKilled"));
    let code = status.code().unwrap_or(137);
    let exit = Exit {
        code,
        reason: if oom {
            "OOMKilled".into()
        } else if code == 0 {
            "Completed".into()
        } else {
            "Error".into()
        },
    };
    let mut value = serde_json::to_value(&exit).unwrap_or_default();
    value["finishedAt"] = serde_json::json!(jiff::Timestamp::now().as_nanosecond() as i64);
    let tmp = exit_file.with_extension("tmp");
    std::fs::write(&tmp, value.to_string())?;
    std::fs::rename(&tmp, exit_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_log_format() {
        let at = jiff::Timestamp::from_nanosecond(1_700_000_000_123_456_789).unwrap();
        assert_eq!(
            log_line("stdout", "hello", at),
            "2023-11-14T22:13:20.123456789Z stdout F hello\n"
        );
    }

    #[test]
    fn the_shim_logs_both_streams_and_records_the_exit() {
        let dir = tempfile::tempdir().unwrap();
        let (log, exit) = (dir.path().join("c/0.log"), dir.path().join("exit.json"));
        let args = vec![
            "-c".to_string(),
            "echo out; echo err >&2; exit 3".to_string(),
        ];
        shim(Path::new("/bin/sh"), &args, &log, &exit).unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.lines().any(|l| l.ends_with(" stdout F out")), "{text}");
        assert!(text.lines().any(|l| l.ends_with(" stderr F err")), "{text}");
        let e: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&exit).unwrap()).unwrap();
        assert_eq!(
            (e["code"].as_i64(), e["reason"].as_str()),
            (Some(3), Some("Error"))
        );
        assert!(e["finishedAt"].as_i64().unwrap() > 0);
    }
}
