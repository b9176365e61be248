//! Termination messages, as upstream's kubelet keeps them: each container
//! instance gets an empty file of its own, bind-mounted at its
//! `terminationMessagePath` (default `/dev/termination-log`); what the
//! program writes there (at most 4 KiB) becomes
//! `state.terminated.message` once it exits. With
//! `terminationMessagePolicy: FallbackToLogsOnError`, a failed container
//! that wrote nothing gets the end of its log instead (its last 80 lines,
//! at most 2 KiB).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container;

/// Upstream's limits.
const MAX_MESSAGE: usize = 4096;
const FALLBACK_LINES: u64 = 80;
const FALLBACK_BYTES: usize = 2048;

/// Where the file of instance `attempt` of container `name` lives.
pub fn file(pods_dir: &Path, uid: &str, name: &str, attempt: u32) -> PathBuf {
    pods_dir
        .join(uid)
        .join("containers")
        .join(name)
        .join(format!("{attempt}.termination-log"))
}

/// The path in the container.
pub fn container_path(c: &Container) -> String {
    c.termination_message_path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/dev/termination-log".into())
}

/// Makes the empty file, writable by any user the container runs as.
pub fn prepare(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, b"")?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
}

/// The message of an exited instance: its file's text, else (with the
/// fallback policy and a failure) the end of its CRI log file.
pub fn message(c: &Container, file: &Path, exit_code: i32, log_file: &Path) -> Option<String> {
    let written = std::fs::read(file).ok().unwrap_or_default();
    if !written.is_empty() {
        let end = written.len().min(MAX_MESSAGE);
        return Some(String::from_utf8_lossy(&written[..end]).into_owned());
    }
    let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
    if !fallback || exit_code == 0 {
        return None;
    }
    let log = std::fs::read_to_string(log_file).ok()?;
    let tail = crate::server::logs::render(
        &log,
        &crate::server::logs::LogOptions {
            tail_lines: Some(FALLBACK_LINES),
            ..Default::default()
        },
    );
    let start = tail.len().saturating_sub(FALLBACK_BYTES);
    let text = String::from_utf8_lossy(&tail[start..]).into_owned();
    (!text.is_empty()).then_some(text)
}

/// Removes a pod's files once it is gone.
pub fn forget(pods_dir: &Path, uid: &str) {
    let dir = pods_dir.join(uid);
    if dir.exists()
        && let Err(e) = std::fs::remove_dir_all(&dir)
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the pod's files");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_wins_then_the_log_on_error_with_the_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path(), "u1", "app", 2);
        assert!(f.ends_with("u1/containers/app/2.termination-log"));
        prepare(&f).unwrap();
        let log = dir.path().join("2.log");
        let mut lines = String::new();
        for i in 0..100 {
            lines.push_str(&format!("2026-11-22T10:00:00Z stderr F line {i}\n"));
        }
        std::fs::write(&log, &lines).unwrap();
        let plain = Container::default();
        let fallback = Container {
            termination_message_policy: Some("FallbackToLogsOnError".into()),
            ..Default::default()
        };
        // Nothing written: no message, unless falling back on a failure.
        assert_eq!(message(&plain, &f, 1, &log), None);
        assert_eq!(message(&fallback, &f, 0, &log), None);
        let tail = message(&fallback, &f, 1, &log).unwrap();
        assert!(
            tail.ends_with("line 99\n") && !tail.contains("line 19\n"),
            "{tail}"
        );
        assert!(tail.len() <= FALLBACK_BYTES);
        // Written: the file, cut at 4 KiB, whatever the policy.
        std::fs::write(&f, "x".repeat(5000)).unwrap();
        assert_eq!(message(&plain, &f, 0, &log).unwrap().len(), MAX_MESSAGE);
        std::fs::write(&f, "disk full").unwrap();
        assert_eq!(
            message(&fallback, &f, 1, &log).as_deref(),
            Some("disk full")
        );
        assert_eq!(container_path(&plain), "/dev/termination-log".to_string());
        forget(dir.path(), "u1");
        assert!(!dir.path().join("u1").exists());
    }
}
