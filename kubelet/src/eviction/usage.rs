//! What a pod uses of memory, disk and PIDs — read from the host behind a
//! trait, so the manager's tests give numbers of their own.
//!
//! - memory: the working set of the pod's cgroup (usage minus inactive
//!   file cache, as upstream counts it): `memory.current` and `memory.stat`
//!   on cgroup v2, `memory.usage_in_bytes` and `total_inactive_file` on v1;
//! - PIDs: `pids.current` of the pod's cgroup;
//! - disk: the bytes under the pod's directory (its volumes; a tmpfs
//!   emptyDir counts as memory, so another filesystem is not entered) and
//!   its log directory.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

use crate::pods::config::{log_directory, pod_cgroup};

pub trait PodUsage: Send + Sync {
    fn memory(&self, pod: &Pod) -> Option<u64>;
    fn disk(&self, pod: &Pod) -> Option<u64>;
    fn pids(&self, pod: &Pod) -> Option<u64>;
}

/// The real [`PodUsage`].
#[derive(Debug, Clone)]
pub struct HostUsage {
    /// `/sys/fs/cgroup`.
    pub cgroup_root: PathBuf,
    /// `<root-dir>/pods`.
    pub pods_dir: PathBuf,
    /// Where the pods' log directories are.
    pub log_root: String,
}

impl HostUsage {
    fn v2(&self) -> bool {
        self.cgroup_root.join("cgroup.controllers").exists()
    }

    /// The pod's directory in `controller`'s hierarchy.
    fn dir(&self, controller: &str, pod: &Pod) -> PathBuf {
        if self.v2() {
            self.cgroup_root.join(pod_cgroup(pod))
        } else {
            self.cgroup_root.join(controller).join(pod_cgroup(pod))
        }
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A field of a `memory.stat` file.
pub fn stat_field(stat: &str, field: &str) -> Option<u64> {
    stat.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == field).then(|| v.trim().parse().ok()).flatten()
    })
}

impl PodUsage for HostUsage {
    fn memory(&self, pod: &Pod) -> Option<u64> {
        let dir = self.dir("memory", pod);
        let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
        let (usage, inactive) = if self.v2() {
            (
                read_u64(&dir.join("memory.current"))?,
                stat_field(&stat, "inactive_file"),
            )
        } else {
            (
                read_u64(&dir.join("memory.usage_in_bytes"))?,
                stat_field(&stat, "total_inactive_file"),
            )
        };
        Some(usage.saturating_sub(inactive.unwrap_or(0)))
    }

    fn disk(&self, pod: &Pod) -> Option<u64> {
        let uid = pod.metadata.uid.as_deref()?;
        let pod_dir = du(&self.pods_dir.join(uid));
        let logs = du(Path::new(&log_directory(&self.log_root, pod)));
        Some(pod_dir + logs)
    }

    fn pids(&self, pod: &Pod) -> Option<u64> {
        read_u64(&self.dir("pids", pod).join("pids.current"))
    }
}

/// Bytes allocated under `dir` on its own filesystem (links not followed,
/// mounts of other filesystems not entered); 0 when it is not there.
pub fn du(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != top.dev() {
                continue;
            }
            total = total.saturating_add(m.blocks() * 512);
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "uid": uid},
            "spec": {"containers": [{"name": "c", "image": "x"}]}
        }))
        .unwrap()
    }

    /// Every path of the usage under one test directory.
    fn under(d: &Path) -> HostUsage {
        HostUsage {
            cgroup_root: d.to_path_buf(),
            pods_dir: d.join("pods"),
            log_root: d.join("logs").display().to_string(),
        }
    }

    #[test]
    fn cgroup_v1_and_v2_files_are_read_as_working_sets() {
        let d = tempfile::tempdir().unwrap();
        let usage = under(d.path());
        let p = pod("u1");
        // v1: a directory per controller.
        let mem = d.path().join("memory/skiff/besteffort/podu1");
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::write(mem.join("memory.usage_in_bytes"), "1000000\n").unwrap();
        std::fs::write(
            mem.join("memory.stat"),
            "cache 5\ntotal_inactive_file 400000\n",
        )
        .unwrap();
        let pids = d.path().join("pids/skiff/besteffort/podu1");
        std::fs::create_dir_all(&pids).unwrap();
        std::fs::write(pids.join("pids.current"), "7\n").unwrap();
        assert_eq!(usage.memory(&p), Some(600_000));
        assert_eq!(usage.pids(&p), Some(7));
        // v2: one hierarchy.
        std::fs::write(d.path().join("cgroup.controllers"), "memory pids\n").unwrap();
        let dir = d.path().join("skiff/besteffort/podu1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.current"), "2000000\n").unwrap();
        std::fs::write(dir.join("memory.stat"), "anon 1\ninactive_file 500000\n").unwrap();
        std::fs::write(dir.join("pids.current"), "3\n").unwrap();
        assert_eq!(usage.memory(&p), Some(1_500_000));
        assert_eq!(usage.pids(&p), Some(3));
        assert_eq!(usage.memory(&pod("other")), None);
    }

    #[test]
    fn disk_counts_the_pod_directory_and_its_logs() {
        let d = tempfile::tempdir().unwrap();
        let usage = under(d.path());
        let p = pod("u1");
        assert_eq!(usage.disk(&p), Some(0));
        let vol = d
            .path()
            .join("pods/u1/volumes/kubernetes.io~empty-dir/scratch");
        std::fs::create_dir_all(&vol).unwrap();
        std::fs::write(vol.join("big"), vec![7u8; 256 * 1024]).unwrap();
        let logs = d.path().join("logs/default_web_u1/c");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("0.log"), vec![b'x'; 64 * 1024]).unwrap();
        let n = usage.disk(&p).unwrap();
        assert!((320 * 1024..400 * 1024).contains(&n), "{n}");
    }
}
