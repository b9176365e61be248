//! cgroups v2: one unified directory. The controllers a container uses
//! (cpu, memory, pids) must be enabled in every ancestor's
//! `cgroup.subtree_control` first; limits go to `cpu.weight`, `cpu.max`,
//! `memory.max`, `memory.swap.max`, `pids.max`; OOM kills are counted in
//! `memory.events`. (Device rules on v2 need an eBPF program: not done.)

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{
    Cgroup, CgroupState, Host, Version, keyed, mkdirs, read_pids, shares_to_weight, under, write,
};
use crate::linux::Result;

const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

#[derive(Debug, Clone)]
pub struct V2 {
    root: PathBuf,
    state: CgroupState,
}

/// This process's cgroup in `/proc/self/cgroup` text (the `0::` line).
fn own(self_cgroup: &str) -> &str {
    self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
}

impl V2 {
    pub fn new(host: &Host, path: &Path) -> V2 {
        let dir = if path.is_absolute() {
            under(&host.root, path)
        } else {
            // The parent of our own cgroup: ours has processes (us), so it
            // may not have children with controllers enabled.
            let mine = Path::new(own(&host.self_cgroup));
            under(&under(&host.root, mine.parent().unwrap_or(mine)), path)
        };
        V2 {
            root: host.root.clone(),
            state: CgroupState {
                version: Version::V2,
                dirs: vec![(String::new(), dir)],
                created: Vec::new(),
            },
        }
    }

    pub fn from_state(state: CgroupState) -> V2 {
        V2 {
            root: PathBuf::new(),
            state,
        }
    }

    fn dir(&self) -> &Path {
        &self.state.dirs[0].1
    }
}

impl Cgroup for V2 {
    fn create(&mut self) -> Result<()> {
        let dir = self.dir().to_path_buf();
        self.state.created = mkdirs(&dir)?;
        // Enable the controllers from the root down to the leaf's parent.
        let mut ancestors: Vec<&Path> = dir
            .ancestors()
            .skip(1)
            .take_while(|a| a.starts_with(&self.root))
            .collect();
        ancestors.reverse();
        for a in ancestors {
            let enabled =
                std::fs::read_to_string(a.join("cgroup.subtree_control")).unwrap_or_default();
            for c in CONTROLLERS {
                if !enabled.split_whitespace().any(|e| e == c) {
                    // A controller the kernel lacks stays off; its limit
                    // write fails later, naming the file.
                    let _ = write(a, "cgroup.subtree_control", &format!("+{c}"));
                }
            }
        }
        Ok(())
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        let dir = self.dir();
        if let Some(cpu) = r.cpu() {
            if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
                write(dir, "cpu.weight", &shares_to_weight(shares).to_string())?;
            }
            if let Some(quota) = cpu.quota().filter(|q| *q != 0) {
                let period = cpu.period().unwrap_or(100_000);
                let quota = if quota > 0 {
                    quota.to_string()
                } else {
                    "max".into()
                };
                write(dir, "cpu.max", &format!("{quota} {period}"))?;
            }
        }
        if let Some(mem) = r.memory() {
            let limit = mem.limit().filter(|l| *l != 0);
            if let Some(limit) = limit {
                let v = if limit > 0 {
                    limit.to_string()
                } else {
                    "max".into()
                };
                write(dir, "memory.max", &v)?;
            }
            // The spec's swap is memory+swap (v1 semantics); v2 counts swap
            // alone. Absent without swap accounting.
            if let (Some(swap), Some(limit)) = (mem.swap().filter(|s| *s != 0), limit)
                && dir.join("memory.swap.max").exists()
            {
                let v = if swap > 0 && limit > 0 {
                    (swap - limit).max(0).to_string()
                } else {
                    "max".into()
                };
                write(dir, "memory.swap.max", &v)?;
            }
        }
        if let Some(pids) = r.pids() {
            let v = if pids.limit() > 0 {
                pids.limit().to_string()
            } else {
                "max".into()
            };
            write(dir, "pids.max", &v)?;
        }
        Ok(())
    }

    fn apply(&self, pid: i32) -> Result<()> {
        write(self.dir(), "cgroup.procs", &pid.to_string())
    }

    fn oom_kills(&self) -> u64 {
        keyed(self.dir(), "memory.events", "oom_kill")
    }

    fn pids(&self) -> Vec<i32> {
        read_pids(self.dir())
    }

    fn mounts(&self) -> Vec<(String, PathBuf)> {
        self.state.dirs.clone()
    }

    fn state(&self) -> CgroupState {
        self.state.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    fn host(root: &Path) -> Host {
        std::fs::create_dir_all(root.join("user.slice/session-1.scope")).unwrap();
        Host {
            root: root.into(),
            version: Version::V2,
            self_cgroup: "0::/user.slice/session-1.scope\n".into(),
        }
    }

    #[test]
    fn relative_paths_go_beside_the_runtimes_cgroup() {
        let d = tempfile::tempdir().unwrap();
        let cg = V2::new(&host(d.path()), Path::new("skiff/c1"));
        assert_eq!(cg.dir(), d.path().join("user.slice/skiff/c1"));
        let cg = V2::new(&host(d.path()), Path::new("/kubepods/c1"));
        assert_eq!(cg.dir(), d.path().join("kubepods/c1"));
    }

    #[test]
    fn controllers_enabled_down_the_tree_and_limits_in_v2_files() {
        let d = tempfile::tempdir().unwrap();
        let mut cg = V2::new(&host(d.path()), Path::new("/kubepods/c1"));
        cg.create().unwrap();
        // A plain file keeps the last write; the real one accumulates.
        assert_eq!(
            std::fs::read_to_string(d.path().join("kubepods/cgroup.subtree_control")).unwrap(),
            "+pids"
        );
        assert!(d.path().join("cgroup.subtree_control").exists());
        assert!(!d.path().join("kubepods/c1/cgroup.subtree_control").exists());
        std::fs::write(d.path().join("kubepods/c1/memory.swap.max"), "max").unwrap();
        let r = LinuxResourcesBuilder::default()
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(1024u64)
                    .quota(25_000i64)
                    .period(50_000u64)
                    .build()
                    .unwrap(),
            )
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(32i64 << 20)
                    .swap(32i64 << 20)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
            .build()
            .unwrap();
        cg.set(&r).unwrap();
        let read = |p: &str| std::fs::read_to_string(d.path().join("kubepods/c1").join(p)).unwrap();
        assert_eq!(read("cpu.weight"), "39");
        assert_eq!(read("cpu.max"), "25000 50000");
        assert_eq!(read("memory.max"), "33554432");
        assert_eq!(read("memory.swap.max"), "0");
        assert_eq!(read("pids.max"), "10");
        std::fs::write(
            d.path().join("kubepods/c1/memory.events"),
            "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 1);
        assert_eq!(
            cg.state().created,
            [d.path().join("kubepods/c1"), d.path().join("kubepods")]
        );
    }
}
