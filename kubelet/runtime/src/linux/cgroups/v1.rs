//! cgroups v1: one directory per hierarchy. Like runc, the container joins
//! every mounted hierarchy (so `/proc/self/cgroup` inside names its cgroup
//! everywhere), and limits are written where they belong: `cpu.shares`,
//! `cpu.cfs_period_us`/`cpu.cfs_quota_us`, `memory.limit_in_bytes`,
//! `memory.memsw.limit_in_bytes`, `pids.max`, and the device allow-list.
//! `cpuset` needs `cpuset.cpus`/`cpuset.mems` copied from the parent into
//! each new directory before a process may join it.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::{Cgroup, CgroupState, Host, Version, keyed, mkdirs, read_pids, under, write};
use crate::linux::Result;

/// The devices every container may use whatever its spec says (runc's
/// list): mknod of anything, and null, zero, full, random, urandom, tty,
/// the pty master and slaves.
pub const DEFAULT_DEVICE_RULES: [&str; 10] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

#[derive(Debug, Clone)]
pub struct V1 {
    state: CgroupState,
}

/// The v1 hierarchies in `/proc/self/cgroup` text: (directory name under
/// the root, this process's cgroup in it).
pub fn hierarchies(root: &Path, self_cgroup: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(own)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            // The v2 hierarchy of a hybrid setup, at `unified`: joined (as
            // runc does, so the container's processes are found there too)
            // but holds no limits.
            if root.join("unified").is_dir() {
                out.push(("unified".to_string(), own.to_string()));
            }
            continue;
        }
        let names: Vec<&str> = controllers
            .split(',')
            .map(|c| c.trim_start_matches("name="))
            .collect();
        let joined = names.join(",");
        let dir = if root.join(&joined).is_dir() {
            joined
        } else if let Some(one) = names.iter().find(|n| root.join(n).is_dir()) {
            one.to_string()
        } else {
            continue;
        };
        out.push((dir, own.to_string()));
    }
    out
}

impl V1 {
    pub fn new(host: &Host, path: &Path) -> V1 {
        let dirs = hierarchies(&host.root, &host.self_cgroup)
            .into_iter()
            .map(|(name, own)| {
                let base = host.root.join(&name);
                let dir = if path.is_absolute() {
                    under(&base, path)
                } else {
                    under(&under(&base, Path::new(&own)), path)
                };
                (name, dir)
            })
            .collect();
        V1 {
            state: CgroupState {
                version: Version::V1,
                dirs,
                created: Vec::new(),
            },
        }
    }

    pub fn from_state(state: CgroupState) -> V1 {
        V1 { state }
    }

    /// The directory of the hierarchy holding `controller`.
    fn dir(&self, controller: &str) -> Option<&PathBuf> {
        self.state
            .dirs
            .iter()
            .find(|(n, _)| n.split(',').any(|c| c == controller))
            .map(|(_, d)| d)
    }
}

impl Cgroup for V1 {
    fn create(&mut self) -> Result<()> {
        let mut created = Vec::new();
        for (name, dir) in &self.state.dirs {
            let made = mkdirs(dir)?;
            if name.split(',').any(|c| c == "cpuset") {
                // Top-down: each level inherits from the one above it.
                for d in made.iter().rev() {
                    for file in ["cpuset.cpus", "cpuset.mems"] {
                        let mine = std::fs::read_to_string(d.join(file)).unwrap_or_default();
                        if mine.trim().is_empty()
                            && let Some(parent) = d.parent()
                        {
                            let theirs =
                                std::fs::read_to_string(parent.join(file)).unwrap_or_default();
                            write(d, file, theirs.trim())?;
                        }
                    }
                }
            }
            created.extend(made);
        }
        self.state.created = created;
        Ok(())
    }

    fn set(&self, r: &LinuxResources) -> Result<()> {
        if let (Some(cpu), Some(dir)) = (r.cpu(), self.dir("cpu")) {
            if let Some(shares) = cpu.shares().filter(|s| *s > 0) {
                write(dir, "cpu.shares", &shares.to_string())?;
            }
            if let Some(quota) = cpu.quota().filter(|q| *q != 0) {
                // Period first: the kernel checks quota against it.
                let period = cpu.period().unwrap_or(100_000);
                write(dir, "cpu.cfs_period_us", &period.to_string())?;
                write(dir, "cpu.cfs_quota_us", &quota.to_string())?;
            }
        }
        if let (Some(mem), Some(dir)) = (r.memory(), self.dir("memory")) {
            if let Some(limit) = mem.limit().filter(|l| *l != 0) {
                write(dir, "memory.limit_in_bytes", &limit.to_string())?;
            }
            // Memory+swap must be at least the limit: written after it.
            // Absent when the kernel does no swap accounting.
            if let Some(swap) = mem.swap().filter(|s| *s != 0)
                && dir.join("memory.memsw.limit_in_bytes").exists()
            {
                write(dir, "memory.memsw.limit_in_bytes", &swap.to_string())?;
            }
        }
        if let (Some(pids), Some(dir)) = (r.pids(), self.dir("pids")) {
            let v = if pids.limit() > 0 {
                pids.limit().to_string()
            } else {
                "max".into()
            };
            write(dir, "pids.max", &v)?;
        }
        if let (Some(rules), Some(dir)) = (r.devices(), self.dir("devices")) {
            // The spec's rules in order, then the defaults every container
            // needs; "a" (deny everything) first, as it resets the list.
            write(dir, "devices.deny", "a")?;
            for rule in rules {
                let file = if rule.allow() {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                write(dir, file, &rule.to_string())?;
            }
            for rule in DEFAULT_DEVICE_RULES {
                write(dir, "devices.allow", rule)?;
            }
        }
        Ok(())
    }

    fn apply(&self, pid: i32) -> Result<()> {
        for (_, dir) in &self.state.dirs {
            write(dir, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    fn oom_kills(&self) -> u64 {
        self.dir("memory")
            .map(|d| keyed(d, "memory.oom_control", "oom_kill"))
            .unwrap_or(0)
    }

    fn pids(&self) -> Vec<i32> {
        self.dir("pids")
            .or_else(|| self.state.dirs.first().map(|(_, d)| d))
            .map(|d| read_pids(d))
            .unwrap_or_default()
    }

    fn mounts(&self) -> Vec<(String, PathBuf)> {
        // runc shows the v1 hierarchies only.
        self.state
            .dirs
            .iter()
            .filter(|(n, _)| n != "unified")
            .cloned()
            .collect()
    }

    fn state(&self) -> CgroupState {
        self.state.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxPidsBuilder,
        LinuxResourcesBuilder,
    };

    const SELF: &str = "9:name=systemd:/\n8:pids:/\n5:devices:/\n4:memory:/agent/abc\n\
                        3:cpuset:/\n1:cpu,cpuacct:/\n0::/\n";

    fn host(root: &Path) -> Host {
        for d in [
            "systemd",
            "pids",
            "devices",
            "memory/agent/abc",
            "cpuset",
            "cpu,cpuacct",
            "unified",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
        std::fs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
        Host {
            root: root.into(),
            version: Version::V1,
            self_cgroup: SELF.into(),
        }
    }

    #[test]
    fn relative_paths_hang_under_the_runtimes_own_cgroup_absolute_from_the_root() {
        let d = tempfile::tempdir().unwrap();
        let h = host(d.path());
        let rel = V1::new(&h, Path::new("skiff/c1"));
        let dirs: Vec<(String, PathBuf)> = rel.state().dirs;
        let names: Vec<&str> = dirs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "systemd",
                "pids",
                "devices",
                "memory",
                "cpuset",
                "cpu,cpuacct",
                "unified"
            ]
        );
        assert_eq!(rel.mounts().len(), 6, "unified is joined, not shown");
        assert_eq!(dirs[3].1, d.path().join("memory/agent/abc/skiff/c1"));
        let abs = V1::new(&h, Path::new("/kubepods/pod1/c1"));
        assert_eq!(
            abs.state().dirs[3].1,
            d.path().join("memory/kubepods/pod1/c1")
        );
    }

    #[test]
    fn limits_land_in_the_v1_files() {
        let d = tempfile::tempdir().unwrap();
        let mut cg = V1::new(&host(d.path()), Path::new("/skiff/c1"));
        cg.create().unwrap();
        std::fs::write(
            d.path().join("memory/skiff/c1/memory.memsw.limit_in_bytes"),
            "",
        )
        .unwrap();
        let r = LinuxResourcesBuilder::default()
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(512u64)
                    .quota(50_000i64)
                    .period(100_000u64)
                    .build()
                    .unwrap(),
            )
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64i64 << 20)
                    .swap(64i64 << 20)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(32).build().unwrap())
            .devices(vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        cg.set(&r).unwrap();
        let read = |p: &str| std::fs::read_to_string(d.path().join(p)).unwrap();
        assert_eq!(read("cpu,cpuacct/skiff/c1/cpu.shares"), "512");
        assert_eq!(read("cpu,cpuacct/skiff/c1/cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu,cpuacct/skiff/c1/cpu.cfs_quota_us"), "50000");
        assert_eq!(read("memory/skiff/c1/memory.limit_in_bytes"), "67108864");
        assert_eq!(
            read("memory/skiff/c1/memory.memsw.limit_in_bytes"),
            "67108864"
        );
        assert_eq!(read("pids/skiff/c1/pids.max"), "32");
        // A plain file keeps only the last write: the last default rule.
        assert_eq!(read("devices/skiff/c1/devices.allow"), "c 136:* rwm");
        assert_eq!(read("devices/skiff/c1/devices.deny"), "a *:* rwm");
        // cpuset inherited from the parent, level by level.
        assert_eq!(read("cpuset/skiff/cpuset.cpus"), "0-1");
        assert_eq!(read("cpuset/skiff/c1/cpuset.mems"), "0");
        // Created: leaf then parent, in each hierarchy.
        let created = cg.state().created;
        assert!(created.contains(&d.path().join("memory/skiff")));
        let leaf = created
            .iter()
            .position(|p| *p == d.path().join("memory/skiff/c1"))
            .unwrap();
        assert_eq!(created[leaf + 1], d.path().join("memory/skiff"));
    }

    #[test]
    fn oom_kills_from_memory_oom_control() {
        let d = tempfile::tempdir().unwrap();
        let mut cg = V1::new(&host(d.path()), Path::new("/c"));
        cg.create().unwrap();
        assert_eq!(cg.oom_kills(), 0);
        std::fs::write(
            d.path().join("memory/c/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 1);
        cg.apply(42).unwrap();
        assert_eq!(cg.pids(), [42]);
    }
}
