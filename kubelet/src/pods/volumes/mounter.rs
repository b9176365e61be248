//! The host side effects of volumes — tmpfs mounts (`emptyDir` with
//! `medium: Memory`, and every `secret` volume, so Secrets never touch the
//! disk, as upstream) and their unmounting — behind a small trait, so the
//! volume logic is tested unprivileged with [`FakeMounter`] and for real
//! as root in the end-to-end test.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub trait Mounter: Send + Sync + 'static {
    /// Mounts a tmpfs on `dir` (which exists), of at most `size` bytes.
    fn mount_tmpfs(&self, dir: &Path, size: Option<u64>) -> io::Result<()>;
    /// Unmounts what is mounted on `dir`.
    fn unmount(&self, dir: &Path) -> io::Result<()>;
    /// The mount points at or under `dir`, deepest first (the order to
    /// unmount them in).
    fn mounts_under(&self, dir: &Path) -> Vec<PathBuf>;

    fn is_mount_point(&self, dir: &Path) -> bool {
        self.mounts_under(dir).iter().any(|m| m == dir)
    }
}

/// The machine's own mounts (needs root).
pub struct HostMounter;

impl Mounter for HostMounter {
    fn mount_tmpfs(&self, dir: &Path, size: Option<u64>) -> io::Result<()> {
        use nix::mount::MsFlags;
        // Writable by any user the containers run as, as upstream's
        // emptyDir (0777); the files inside keep their own modes.
        let mut data = "mode=0777".to_string();
        if let Some(size) = size {
            data.push_str(&format!(",size={size}"));
        }
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(data.as_str()),
        )
        .map_err(io::Error::from)
    }

    fn unmount(&self, dir: &Path) -> io::Result<()> {
        // Detached: a process that still has a file open there does not
        // keep the pod's directory from going.
        nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH).map_err(io::Error::from)
    }

    fn mounts_under(&self, dir: &Path) -> Vec<PathBuf> {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        under(&mount_points(&text), dir)
    }
}

/// The mount points of a `/proc/self/mountinfo` (the fifth field, whose
/// spaces and other odd bytes the kernel writes as `\040`-style octal).
pub fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn under(points: &[PathBuf], dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = points
        .iter()
        .filter(|m| m.starts_with(dir))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found
}

/// Records what it is asked and remembers what it "mounted".
#[derive(Default)]
pub struct FakeMounter {
    calls: Mutex<Vec<String>>,
    mounted: Mutex<Vec<PathBuf>>,
}

impl FakeMounter {
    /// `tmpfs <dir> <size>` and `umount <dir>`, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Mounter for FakeMounter {
    fn mount_tmpfs(&self, dir: &Path, size: Option<u64>) -> io::Result<()> {
        if !dir.is_dir() {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let size = size.map_or("-".to_string(), |s| s.to_string());
        if let Ok(mut c) = self.calls.lock() {
            c.push(format!("tmpfs {} {size}", dir.display()));
        }
        if let Ok(mut m) = self.mounted.lock() {
            m.push(dir.to_path_buf());
        }
        Ok(())
    }

    fn unmount(&self, dir: &Path) -> io::Result<()> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(format!("umount {}", dir.display()));
        }
        let mut m = self
            .mounted
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        match m.iter().position(|p| p == dir) {
            Some(i) => {
                m.remove(i);
                Ok(())
            }
            None => Err(io::Error::from(io::ErrorKind::InvalidInput)),
        }
    }

    fn mounts_under(&self, dir: &Path) -> Vec<PathBuf> {
        under(
            &self.mounted.lock().map(|m| m.clone()).unwrap_or_default(),
            dir,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_points_unescaped_and_deepest_first() {
        let info = "\
22 1 0:21 / / rw - ext4 /dev/sda1 rw
40 22 0:40 / /var/lib/k/pods/u1/volumes/kubernetes.io~empty-dir/cache rw - tmpfs tmpfs rw
41 22 0:41 / /var/lib/k/pods/u1/volumes/kubernetes.io~secret/my\\040secret rw - tmpfs tmpfs rw
42 41 0:42 / /var/lib/k/pods/u1/volumes/kubernetes.io~secret/my\\040secret/x rw - tmpfs tmpfs rw
43 22 0:43 / /var/lib/k/pods/u10 rw - tmpfs tmpfs rw
";
        let points = mount_points(info);
        assert_eq!(
            points[2],
            Path::new("/var/lib/k/pods/u1/volumes/kubernetes.io~secret/my secret")
        );
        let found = under(&points, Path::new("/var/lib/k/pods/u1"));
        assert_eq!(found.len(), 3, "u10 is not under u1: {found:?}");
        assert!(
            found[0].ends_with("my secret/x"),
            "deepest first: {found:?}"
        );
    }

    #[test]
    fn the_fake_remembers_its_mounts() {
        let dir = tempfile::tempdir().unwrap();
        let m = FakeMounter::default();
        assert!(!m.is_mount_point(dir.path()));
        m.mount_tmpfs(dir.path(), Some(1024)).unwrap();
        assert!(m.is_mount_point(dir.path()));
        m.unmount(dir.path()).unwrap();
        assert!(m.unmount(dir.path()).is_err(), "not mounted any more");
        assert_eq!(
            m.calls(),
            [
                format!("tmpfs {} 1024", dir.path().display()),
                format!("umount {}", dir.path().display()),
                format!("umount {}", dir.path().display()),
            ]
        );
    }
}
