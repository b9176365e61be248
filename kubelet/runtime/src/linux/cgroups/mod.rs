//! A container's cgroup, on cgroups v1 ([`v1`]: one directory per
//! hierarchy, as this machine has) or v2 ([`v2`]: one unified directory),
//! behind [`Cgroup`]. Both work on a root directory passed in, so the file
//! names and values are unit-tested on a temporary directory; the root
//! tests use `/sys/fs/cgroup`.
//!
//! Where the cgroup goes follows runc: an absolute `cgroupsPath` is taken
//! from the root of each hierarchy; a relative one from the cgroup the
//! runtime itself is in (v1, per hierarchy) or from its parent (v2, whose
//! "no internal processes" rule forbids children beside the runtime).
//!
//! v1 ↔ v2: `cpu.shares` becomes `cpu.weight` = 1 + (shares − 2) × 9999 /
//! 262142 (shares 1024 → weight 39), `cpu.cfs_quota_us` and
//! `cpu.cfs_period_us` become `cpu.max` "quota period",
//! `memory.limit_in_bytes` becomes `memory.max`, the memory+swap limit
//! becomes `memory.swap.max` = swap − memory, `pids.max` stays.

pub mod v1;
pub mod v2;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use super::{Context, Result};

/// Which cgroup version, and the directories a container's cgroup is made
/// of — everything `delete` needs, saved in the container's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupState {
    pub version: Version,
    /// Hierarchy name (v1: "memory", "cpu,cpuacct", "systemd"; v2: "")
    /// and the container's directory in it.
    pub dirs: Vec<(String, PathBuf)>,
    /// Directories this container created, deepest first: removed on delete.
    pub created: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

/// A container's cgroup.
pub trait Cgroup {
    /// Makes the directories (and records which were made).
    fn create(&mut self) -> Result<()>;
    /// Writes the limits.
    fn set(&self, resources: &LinuxResources) -> Result<()>;
    /// Moves process `pid` in.
    fn apply(&self, pid: i32) -> Result<()>;
    /// How many times the OOM killer killed a process here.
    fn oom_kills(&self) -> u64;
    /// The processes in it.
    fn pids(&self) -> Vec<i32>;
    /// What to show at `/sys/fs/cgroup` inside: (name, host directory).
    fn mounts(&self) -> Vec<(String, PathBuf)>;
    fn state(&self) -> CgroupState;
    /// Removes the directories, waiting up to `timeout` for the kernel to
    /// let go of exiting processes.
    fn remove(&self, timeout: Duration) -> Result<()> {
        remove_dirs(&self.state(), timeout)
    }
}

/// The cgroup filesystem mounted at `root`: its version, and the cgroups
/// the runtime itself is in (the text of `/proc/self/cgroup`).
#[derive(Debug, Clone)]
pub struct Host {
    pub root: PathBuf,
    pub version: Version,
    pub self_cgroup: String,
}

impl Host {
    /// `/sys/fs/cgroup` as this process sees it.
    pub fn detect() -> Result<Host> {
        let root = PathBuf::from("/sys/fs/cgroup");
        let version = if root.join("cgroup.controllers").exists() {
            Version::V2
        } else {
            Version::V1
        };
        let self_cgroup =
            std::fs::read_to_string("/proc/self/cgroup").ctx(|| "read /proc/self/cgroup".into())?;
        Ok(Host {
            root,
            version,
            self_cgroup,
        })
    }

    /// The cgroup at `path` (the spec's `cgroupsPath`), not yet created.
    pub fn cgroup(&self, path: &Path) -> Box<dyn Cgroup> {
        match self.version {
            Version::V1 => Box::new(v1::V1::new(self, path)),
            Version::V2 => Box::new(v2::V2::new(self, path)),
        }
    }
}

/// Reopens a container's cgroup from its saved state (for `delete`).
pub fn from_state(state: &CgroupState) -> Box<dyn Cgroup> {
    match state.version {
        Version::V1 => Box::new(v1::V1::from_state(state.clone())),
        Version::V2 => Box::new(v2::V2::from_state(state.clone())),
    }
}

/// cgroup v2 `cpu.weight` for v1 `cpu.shares` (the conversion runc and the
/// kubelet use).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// `parent/rel`, where an absolute `rel` still stays under `parent`.
pub(crate) fn under(parent: &Path, rel: &Path) -> PathBuf {
    let clean: PathBuf = rel
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .collect();
    parent.join(clean)
}

pub(crate) fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value).ctx(|| format!("write {value:?} to {}", path.display()))
}

/// Creates `dir` and its missing parents; returns those created, deepest
/// first.
pub(crate) fn mkdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.exists())
        .map(Path::to_path_buf)
        .collect();
    std::fs::create_dir_all(dir).ctx(|| format!("mkdir {}", dir.display()))?;
    Ok(missing)
}

/// The count after `key` in a flat keyed file (`memory.events`,
/// `memory.oom_control`).
pub(crate) fn keyed(dir: &Path, file: &str, key: &str) -> u64 {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0)
}

pub(crate) fn read_pids(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn remove_dirs(state: &CgroupState, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    // The leaves, even when they were there before us (a re-used id), then
    // the parents this container made. Every one is tried; the first
    // failure to remove a leaf is reported.
    let mut todo: Vec<PathBuf> = state.dirs.iter().map(|(_, d)| d.clone()).collect();
    for d in &state.created {
        if !todo.contains(d) {
            todo.push(d.clone());
        }
    }
    let mut first_error = None;
    for dir in todo {
        loop {
            match std::fs::remove_dir(&dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                // Busy: exiting processes not yet gone.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    // ENOTEMPTY on a parent: a sibling lives there, not ours.
                    if state.dirs.iter().any(|(_, d)| *d == dir) && first_error.is_none() {
                        first_error = Some(Err(e).ctx(|| format!("rmdir {}", dir.display())));
                    }
                    break;
                }
            }
        }
    }
    first_error.unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_matches_the_kubelet() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 100);
    }

    #[test]
    fn keyed_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(keyed(d.path(), "memory.events", "oom_kill"), 2);
        assert_eq!(keyed(d.path(), "memory.events", "oom"), 1);
        assert_eq!(keyed(d.path(), "missing", "oom"), 0);
    }

    #[test]
    fn removal_takes_the_leaf_and_the_parents_it_made_only() {
        let d = tempfile::tempdir().unwrap();
        let leaf = d.path().join("pre/made/leaf");
        std::fs::create_dir_all(d.path().join("pre")).unwrap();
        let created = mkdirs(&leaf).unwrap();
        assert_eq!(created, [leaf.clone(), d.path().join("pre/made")]);
        let state = CgroupState {
            version: Version::V2,
            dirs: vec![(String::new(), leaf.clone())],
            created,
        };
        remove_dirs(&state, Duration::from_millis(10)).unwrap();
        assert!(!d.path().join("pre/made").exists());
        assert!(d.path().join("pre").exists());
    }
}
