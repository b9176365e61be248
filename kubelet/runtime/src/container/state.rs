//! A container's state on disk, under a state root passed in (runc's
//! `--root`): `<root>/<id>/state.json` (id, status, PID, bundle, creation
//! time, its cgroup, its exit once known) and `<root>/<id>/exec.fifo`, the
//! FIFO its init blocks on until `start`. Any process can read it, so a
//! restarted kubelet finds every container.
//!
//! The status is refreshed from the kernel when read: a PID that is gone,
//! a zombie, or a PID reused by another process (start time differs) means
//! stopped.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;
use crate::linux::cgroups::CgroupState;

/// The OCI lifecycle states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The exit status, or 128 + the signal that killed it.
    pub code: i32,
    /// "Completed" (0), "Error", or "OOMKilled" when the cgroup's OOM
    /// killer struck — the CRI's reasons.
    pub reason: String,
}

impl Exit {
    pub fn new(code: i32, oom_killed: bool) -> Exit {
        let reason = if oom_killed {
            "OOMKilled"
        } else if code == 0 {
            "Completed"
        } else {
            "Error"
        };
        Exit {
            code,
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    /// The container's init as the host sees it; 0 once stopped and reaped.
    pub pid: i32,
    /// Its start time (clock ticks after boot), to tell it from a later
    /// process given the same PID.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339.
    pub created: String,
    pub cgroup: CgroupState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<Exit>,
}

/// `(state, start time)` of a process from `/proc/<pid>/stat`.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after it.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 of the line is the 20th after the name.
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

impl State {
    /// Whether the init process still runs (not a zombie, not a new
    /// process with a recycled PID).
    pub fn alive(&self) -> bool {
        self.pid > 0
            && matches!(proc_stat(self.pid), Some((s, start)) if s != 'Z' && start == self.pid_start)
    }

    /// The status as the kernel has it now.
    pub fn refresh(&mut self, fifo_exists: bool) {
        if matches!(self.status, Status::Created | Status::Running) {
            self.status = if !self.alive() {
                Status::Stopped
            } else if fifo_exists {
                Status::Created
            } else {
                Status::Running
            };
        }
    }
}

/// The state root: one directory per container.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
}

/// Container ids name directories and cgroups: letters, digits, `_.-`.
pub fn check_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.into()))
    }
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn fifo(&self, id: &str) -> PathBuf {
        self.dir(id).join("exec.fifo")
    }

    /// Claims `id`: its directory is made, or the id is taken.
    pub fn claim(&self, id: &str) -> Result<PathBuf, Error> {
        check_id(id)?;
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let dir = self.dir(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::Exists(id.into()))
            }
            Err(e) => Err(Error::io(&dir, e)),
        }
    }

    pub fn save(&self, state: &State) -> Result<(), Error> {
        let dir = self.dir(&state.id);
        let tmp = dir.join(".state.json.tmp");
        let text = serde_json::to_vec_pretty(state).map_err(|e| Error::io(&tmp, e.into()))?;
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, dir.join("state.json")).map_err(|e| Error::io(&dir, e))
    }

    /// The saved state, refreshed from the kernel.
    pub fn load(&self, id: &str) -> Result<State, Error> {
        check_id(id)?;
        let path = self.dir(id).join("state.json");
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.into()));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut state: State =
            serde_json::from_slice(&text).map_err(|e| Error::io(&path, e.into()))?;
        state.refresh(self.fifo(id).exists());
        Ok(state)
    }

    /// Every container under the root.
    pub fn list(&self) -> Result<Vec<State>, Error> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(&self.root, e)),
        };
        for entry in entries.flatten() {
            if let Some(id) = entry.file_name().to_str()
                && let Ok(s) = self.load(id)
            {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub fn remove(&self, id: &str) -> Result<(), Error> {
        check_id(id)?;
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&dir, e)),
            _ => Ok(()),
        }
    }
}

/// Now, RFC 3339 (what `state` prints as `created`).
pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// Reads a PID file as runc writes them.
pub fn read_pid_file(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::cgroups::Version;

    fn state(id: &str, pid: i32, start: u64) -> State {
        State {
            oci_version: "1.0.2".into(),
            id: id.into(),
            status: Status::Created,
            pid,
            pid_start: start,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now(),
            cgroup: CgroupState {
                version: Version::V1,
                dirs: vec![],
                created: vec![],
            },
            exit: None,
        }
    }

    #[test]
    fn ids_are_names_not_paths() {
        for ok in ["abc", "a-b_c.1", "skiff-test-1-2"] {
            check_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn saved_state_reads_back_with_the_status_the_kernel_gives() {
        let d = tempfile::tempdir().unwrap();
        let dirs = StateDir::new(d.path().join("root"));
        dirs.claim("c1").unwrap();
        assert!(matches!(dirs.claim("c1"), Err(Error::Exists(_))));
        // Ourselves: alive; running once the fifo is gone.
        let me = std::process::id() as i32;
        let (_, start) = proc_stat(me).unwrap();
        dirs.save(&state("c1", me, start)).unwrap();
        assert_eq!(dirs.load("c1").unwrap().status, Status::Running);
        std::fs::write(dirs.fifo("c1"), "").unwrap();
        assert_eq!(dirs.load("c1").unwrap().status, Status::Created);
        // Same PID, other start time: a recycled PID, so stopped.
        dirs.save(&state("c1", me, start + 1)).unwrap();
        assert_eq!(dirs.load("c1").unwrap().status, Status::Stopped);
        assert_eq!(dirs.list().unwrap().len(), 1);
        dirs.remove("c1").unwrap();
        assert!(matches!(dirs.load("c1"), Err(Error::NotFound(_))));
        assert!(dirs.list().unwrap().is_empty());
    }

    #[test]
    fn exit_reasons() {
        assert_eq!(Exit::new(0, false).reason, "Completed");
        assert_eq!(Exit::new(3, false).reason, "Error");
        assert_eq!(Exit::new(137, true).reason, "OOMKilled");
    }
}
