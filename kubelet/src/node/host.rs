//! What the kubelet reads about its machine: CPUs, memory, the disk under its
//! root dir, kernel and OS, machine and boot ids, and the pressure samples
//! (available memory, disk and process ids). Paths are passed in (a fake
//! `/proc` in tests), so everything here is read, never assumed.

use std::io;
use std::path::{Path, PathBuf};

/// Where the kubelet reads its machine from: `/proc` and `/etc` normally.
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub proc: PathBuf,
    pub etc: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            proc: "/proc".into(),
            etc: "/etc".into(),
        }
    }
}

/// The machine's fixed facts, read once at start.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInfo {
    pub milli_cpu: u64,
    pub memory_bytes: u64,
    /// Size of the filesystem holding the kubelet's root dir.
    pub ephemeral_bytes: u64,
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
    /// Go's name for the architecture, as Kubernetes labels it (`amd64`, `arm64`).
    pub architecture: String,
}

/// What pressure is judged on, read at every status update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub memory_available: u64,
    pub nodefs_available: u64,
    pub nodefs_capacity: u64,
    pub pids_available: u64,
    pub pid_max: u64,
}

fn read(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// A `/proc/meminfo` field in bytes (`MemTotal:  16318412 kB`).
pub fn meminfo_field(meminfo: &str, field: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

/// `PRETTY_NAME` from os-release, as `kubectl get nodes -o wide` shows it.
pub fn os_image(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|line| {
        let value = line.strip_prefix("PRETTY_NAME=")?;
        Some(value.trim().trim_matches('"').to_string())
    })
}

/// The number of threads running, from `/proc/loadavg`'s `running/total` field.
pub fn threads(loadavg: &str) -> Option<u64> {
    loadavg
        .split_whitespace()
        .nth(3)?
        .split_once('/')?
        .1
        .parse()
        .ok()
}

/// `(capacity, available)` bytes of the filesystem holding `dir`.
pub fn statvfs(dir: &Path) -> io::Result<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    let frag = st.fragment_size() as u64;
    Ok((
        st.blocks() as u64 * frag,
        st.blocks_available() as u64 * frag,
    ))
}

/// Reads the machine's facts; `root_dir` must exist (its filesystem is measured).
pub fn info(paths: &HostPaths, root_dir: &Path) -> io::Result<HostInfo> {
    let meminfo = read(paths.proc.join("meminfo"))?;
    let memory_bytes = meminfo_field(&meminfo, "MemTotal")
        .ok_or_else(|| io::Error::other("meminfo: no MemTotal"))?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let (ephemeral_bytes, _) = statvfs(root_dir)?;
    let os_release = read(paths.etc.join("os-release")).unwrap_or_default();
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    Ok(HostInfo {
        milli_cpu: cpus * 1000,
        memory_bytes,
        ephemeral_bytes,
        kernel_version: read(paths.proc.join("sys/kernel/osrelease"))?
            .trim()
            .to_string(),
        os_image: os_image(&os_release).unwrap_or_else(|| "Linux".into()),
        machine_id: read(paths.etc.join("machine-id"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        boot_id: read(paths.proc.join("sys/kernel/random/boot_id"))?
            .trim()
            .to_string(),
        architecture: architecture.to_string(),
    })
}

/// Reads what pressure is judged on now.
pub fn sample(paths: &HostPaths, root_dir: &Path) -> io::Result<Sample> {
    let meminfo = read(paths.proc.join("meminfo"))?;
    let memory_available = meminfo_field(&meminfo, "MemAvailable")
        .ok_or_else(|| io::Error::other("meminfo: no MemAvailable"))?;
    let (nodefs_capacity, nodefs_available) = statvfs(root_dir)?;
    let pid_max: u64 = read(paths.proc.join("sys/kernel/pid_max"))?
        .trim()
        .parse()
        .map_err(|_| io::Error::other("pid_max: not a number"))?;
    let running = threads(&read(paths.proc.join("loadavg"))?)
        .ok_or_else(|| io::Error::other("loadavg: no running/total field"))?;
    Ok(Sample {
        memory_available,
        nodefs_available,
        nodefs_capacity,
        pids_available: pid_max.saturating_sub(running),
        pid_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        let meminfo = "MemTotal:       16318412 kB\nMemFree:  100 kB\nMemAvailable:   8000000 kB\n";
        assert_eq!(meminfo_field(meminfo, "MemTotal"), Some(16_318_412 * 1024));
        assert_eq!(
            meminfo_field(meminfo, "MemAvailable"),
            Some(8_000_000 * 1024)
        );
        assert_eq!(meminfo_field(meminfo, "Mem"), None);
        assert_eq!(
            os_image("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
            Some("Debian GNU/Linux 12 (bookworm)".into())
        );
        assert_eq!(threads("0.52 0.58 0.59 3/467 12345\n"), Some(467));
        assert_eq!(threads("garbage"), None);
    }

    #[test]
    fn this_machine_is_read() {
        let dir = std::env::temp_dir();
        let info = info(&HostPaths::default(), &dir).unwrap();
        assert!(info.milli_cpu >= 1000 && info.memory_bytes > 0 && info.ephemeral_bytes > 0);
        assert!(!info.kernel_version.is_empty() && !info.boot_id.is_empty());
        let s = sample(&HostPaths::default(), &dir).unwrap();
        assert!(s.memory_available <= info.memory_bytes);
        assert!(s.nodefs_available <= s.nodefs_capacity && s.pids_available < s.pid_max);
    }
}
