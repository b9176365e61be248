//! An OCI bundle on disk for a container: its directory, the rootfs —
//! an overlayfs of the image's unpacked layers (read-only, shared) under the
//! container's own upper directory — and the `config.json` from a
//! [`ContainerConfig`]. Removing it unmounts the rootfs and deletes the
//! directory.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::Error;
use crate::linux::Context;
use crate::oci::spec::{self, ContainerConfig};

/// An overlayfs rootfs: `lowerdirs` topmost layer first (overlayfs order),
/// `upperdir` and `workdir` on the same filesystem, owned by the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    pub lowerdirs: Vec<PathBuf>,
    pub upperdir: PathBuf,
    pub workdir: PathBuf,
}

impl Overlay {
    /// The mount data (the kernel takes at most a page of it: about forty
    /// layers with long paths).
    pub fn options(&self) -> String {
        let lower: Vec<String> = self
            .lowerdirs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            self.upperdir.display(),
            self.workdir.display()
        )
    }
}

#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    /// Whether `dir/rootfs` is an overlay this bundle mounted.
    pub mounted: bool,
}

impl Bundle {
    /// Makes `dir` with `config.json` for `config`; with `overlay`, mounts
    /// it at `dir/rootfs` and points the config there.
    pub fn create(
        dir: &Path,
        config: &ContainerConfig,
        overlay: Option<&Overlay>,
    ) -> Result<Bundle, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut config = config.clone();
        let mut bundle = Bundle {
            dir: dir.to_path_buf(),
            mounted: false,
        };
        if let Some(o) = overlay {
            config.rootfs = "rootfs".into();
            let rootfs = dir.join("rootfs");
            for d in [&rootfs, &o.upperdir, &o.workdir] {
                std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
            }
            let data = o.options();
            nix::mount::mount(
                Some("overlay"),
                &rootfs,
                Some("overlay"),
                MsFlags::empty(),
                Some(data.as_str()),
            )
            .ctx(|| format!("mount overlay on {} ({data})", rootfs.display()))?;
            bundle.mounted = true;
        }
        let written = spec::build(&config).and_then(|s| spec::write(dir, &s));
        if let Err(e) = written {
            let _ = bundle.clone().remove();
            return Err(e.into());
        }
        Ok(bundle)
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Unmounts the rootfs if this bundle mounted it, and deletes the
    /// directory. (The overlay's upper and work directories are the
    /// caller's: they may live elsewhere.)
    pub fn remove(self) -> Result<(), Error> {
        if self.mounted {
            let rootfs = self.rootfs();
            match nix::mount::umount2(&rootfs, MntFlags::MNT_DETACH) {
                Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => return Err(Error::io(&rootfs, e.into())),
            }
        }
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&self.dir, e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_top_layer_first() {
        let o = Overlay {
            lowerdirs: vec!["/l/top".into(), "/l/base".into()],
            upperdir: "/c/upper".into(),
            workdir: "/c/work".into(),
        };
        assert_eq!(
            o.options(),
            "lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work"
        );
    }

    #[test]
    fn a_bundle_without_overlay_is_a_dir_and_a_config() {
        let d = tempfile::tempdir().unwrap();
        let c = ContainerConfig {
            args: vec!["true".into()],
            rootfs: "rootfs".into(),
            ..Default::default()
        };
        let b = Bundle::create(&d.path().join("b"), &c, None).unwrap();
        let spec = crate::oci::load(&b.dir).unwrap();
        assert_eq!(crate::oci::rootfs(&b.dir, &spec), b.rootfs());
        b.remove().unwrap();
        assert!(!d.path().join("b").exists());
        let bad = ContainerConfig::default();
        assert!(Bundle::create(&d.path().join("c"), &bad, None).is_err());
        assert!(
            !d.path().join("c").exists(),
            "a failed bundle leaves nothing"
        );
    }
}
