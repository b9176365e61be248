//! A container's cgroup: CPU, memory and pids limits, on cgroups v1 (one
//! directory per controller, as this machine has) or v2 (one unified
//! directory). The root is passed in, so the arithmetic and file names are
//! tested on a plain directory.
//!
//! v1 ↔ v2: `cpu.shares` becomes `cpu.weight` = 1 + (shares − 2) × 9999 / 262142
//! (e.g. shares 1024 → weight 39), `cpu.cfs_quota_us`/`cpu.cfs_period_us`
//! become `cpu.max` "quota period", `memory.limit_in_bytes` becomes
//! `memory.max`, `pids.max` is the same.

use std::path::{Path, PathBuf};

use super::bundle::Resources;

#[derive(Debug, Clone)]
pub enum Hierarchy {
    V1 { root: PathBuf },
    V2 { root: PathBuf },
}

/// cgroups v2 when `/sys/fs/cgroup` is cgroup2, else v1.
pub fn detect() -> Hierarchy {
    let root = PathBuf::from("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        Hierarchy::V2 { root }
    } else {
        Hierarchy::V1 { root }
    }
}

pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// One container's cgroup directories.
#[derive(Debug, Clone)]
pub struct Cgroup {
    pub dirs: Vec<(String, PathBuf)>,
    pub v2: bool,
    /// Directories this cgroup created (parents included), removed with it.
    created: Vec<PathBuf>,
}

impl Cgroup {
    /// Creates `path` (relative) in every controller we use and writes `r`.
    pub fn create(h: &Hierarchy, path: &str, r: &Resources) -> std::io::Result<Cgroup> {
        let rel = path.trim_start_matches('/');
        let cg = match h {
            Hierarchy::V1 { root } => Cgroup {
                dirs: ["cpu", "memory", "pids"]
                    .iter()
                    .map(|c| (c.to_string(), root.join(c).join(rel)))
                    .collect(),
                v2: false,
                created: Vec::new(),
            },
            Hierarchy::V2 { root } => Cgroup {
                dirs: vec![("unified".into(), root.join(rel))],
                v2: true,
                created: Vec::new(),
            },
        };
        let mut cg = cg;
        for (_, d) in &cg.dirs {
            let missing: Vec<PathBuf> = d
                .ancestors()
                .take_while(|a| !a.exists())
                .map(Path::to_path_buf)
                .collect();
            std::fs::create_dir_all(d)?;
            cg.created.extend(missing);
        }
        let cg = cg;
        let dir = |c: &str| {
            cg.dirs
                .iter()
                .find(|(n, _)| n == c || n == "unified")
                .map(|(_, d)| d.clone())
                .unwrap_or_default()
        };
        if let Some(cpu) = &r.cpu {
            if let Some(shares) = cpu.shares {
                if cg.v2 {
                    write(
                        &dir("cpu").join("cpu.weight"),
                        &shares_to_weight(shares).to_string(),
                    )?;
                } else {
                    write(&dir("cpu").join("cpu.shares"), &shares.to_string())?;
                }
            }
            if let Some(quota) = cpu.quota.filter(|q| *q > 0) {
                let period = cpu.period.unwrap_or(100_000);
                if cg.v2 {
                    write(&dir("cpu").join("cpu.max"), &format!("{quota} {period}"))?;
                } else {
                    write(&dir("cpu").join("cpu.cfs_period_us"), &period.to_string())?;
                    write(&dir("cpu").join("cpu.cfs_quota_us"), &quota.to_string())?;
                }
            }
        }
        if let Some(limit) = r.memory.as_ref().and_then(|m| m.limit).filter(|l| *l > 0) {
            let file = if cg.v2 {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            };
            write(&dir("memory").join(file), &limit.to_string())?;
            if !cg.v2 {
                // No swap beyond the limit, so the limit is the limit.
                let _ = write(
                    &dir("memory").join("memory.memsw.limit_in_bytes"),
                    &limit.to_string(),
                );
            }
        }
        if let Some(limit) = r.pids.as_ref().and_then(|p| p.limit).filter(|l| *l > 0) {
            write(&dir("pids").join("pids.max"), &limit.to_string())?;
        }
        Ok(cg)
    }

    /// Moves process `pid` into every directory.
    pub fn enter(&self, pid: i32) -> std::io::Result<()> {
        for (_, d) in &self.dirs {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Whether the OOM killer killed something here.
    pub fn oom_killed(&self) -> bool {
        let (file, key) = if self.v2 {
            ("memory.events", "oom_kill")
        } else {
            ("memory.oom_control", "oom_kill")
        };
        let Some((_, d)) = self
            .dirs
            .iter()
            .find(|(n, _)| n == "memory" || n == "unified")
        else {
            return false;
        };
        std::fs::read_to_string(d.join(file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
            .any(|n| n > 0)
    }

    /// Removes the directories (they must be empty of processes).
    pub fn remove(&self) {
        // Deepest first: `created` lists each leaf before its parents.
        for d in &self.created {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::bundle::{Cpu, Memory, Pids};

    #[test]
    fn weights() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    fn resources() -> Resources {
        Resources {
            memory: Some(Memory {
                limit: Some(64 << 20),
            }),
            cpu: Some(Cpu {
                shares: Some(1024),
                quota: Some(50_000),
                period: Some(100_000),
            }),
            pids: Some(Pids { limit: Some(32) }),
        }
    }

    #[test]
    fn v1_and_v2_files() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = Cgroup::create(
            &Hierarchy::V1 {
                root: dir.path().into(),
            },
            "/skiff/c1",
            &resources(),
        )
        .unwrap();
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
        assert_eq!(read("cpu/skiff/c1/cpu.shares"), "1024");
        assert_eq!(read("cpu/skiff/c1/cpu.cfs_quota_us"), "50000");
        assert_eq!(
            read("memory/skiff/c1/memory.limit_in_bytes"),
            (64 << 20).to_string()
        );
        assert_eq!(read("pids/skiff/c1/pids.max"), "32");
        assert!(!v1.v2);
        Cgroup::create(
            &Hierarchy::V2 {
                root: dir.path().join("u"),
            },
            "skiff/c2",
            &resources(),
        )
        .unwrap();
        assert_eq!(read("u/skiff/c2/cpu.weight"), "39");
        assert_eq!(read("u/skiff/c2/cpu.max"), "50000 100000");
        assert_eq!(read("u/skiff/c2/memory.max"), (64 << 20).to_string());
    }
}
