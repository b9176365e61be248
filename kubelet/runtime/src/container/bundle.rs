//! An OCI bundle on disk for a container: its directory, the rootfs —
//! an overlayfs of the image's unpacked layers (read-only, shared) under the
//! container's own upper directory — and the `config.json` from a
//! [`ContainerConfig`]. Removing it unmounts the rootfs and deletes the
//! directory.
//!
//! For a container in a user namespace the layers are seen through
//! idmapped mounts ([`Overlay::idmap`]): the layers are unpacked once,
//! owned by host IDs (root = 0), and a container whose root is host
//! 131072 must see them owned by its root. Each layer is bound idmapped
//! (on-disk 0 → 131072) on a staging directory, overlayfs (Linux 5.19+)
//! stacks those, and the staging mounts are detached again: overlayfs holds
//! its own clones of its layers. The upper directory is *not* idmapped but
//! owned by the container's root on the host, so what the container writes
//! is owned on the host by the mapped IDs (a file made by root inside is
//! 131072's), as with upstream runtimes. (The alternative, a chowned copy
//! of the layers per pod, costs disk and time for nothing on this kernel.)

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::Error;
use crate::linux::userns::{self, Mappings};
use crate::linux::{Context, SysError};
use crate::oci::spec::{self, ContainerConfig};

/// An overlayfs rootfs: `lowerdirs` topmost layer first (overlayfs order),
/// `upperdir` and `workdir` on the same filesystem, owned by the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    pub lowerdirs: Vec<PathBuf>,
    pub upperdir: PathBuf,
    pub workdir: PathBuf,
    /// The container's user namespace mappings: the layers are seen
    /// through them (see the module doc).
    pub idmap: Option<Mappings>,
}

impl Overlay {
    /// Mounts the overlay on `target` (made if missing), with the upper
    /// and work directories; with [`Overlay::idmap`], through idmapped
    /// layers staged in `<target>.idmapped/`.
    pub fn mount(&self, target: &Path) -> Result<(), SysError> {
        for d in [target, &self.upperdir, &self.workdir] {
            std::fs::create_dir_all(d).ctx(|| format!("mkdir {}", d.display()))?;
        }
        let Some(maps) = &self.idmap else {
            return mount_overlay(target, &self.options());
        };
        let (uid, gid) = maps.host_root().ok_or_else(|| {
            SysError::other("idmapped rootfs", "the mappings leave root (0) unmapped")
        })?;
        // The root of the merged tree is the upper directory's: root's.
        nix::unistd::chown(
            &self.upperdir,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .ctx(|| format!("chown {}", self.upperdir.display()))?;
        let ns = userns::create(maps)?;
        let mut name = target.as_os_str().to_owned();
        name.push(".idmapped");
        let staging = PathBuf::from(name);
        let mut staged = Vec::new();
        let result = (|| {
            for (i, lower) in self.lowerdirs.iter().enumerate() {
                let at = staging.join(i.to_string());
                std::fs::create_dir_all(&at).ctx(|| format!("mkdir {}", at.display()))?;
                userns::idmapped_bind(lower, &at, std::os::fd::AsFd::as_fd(&ns), false)?;
                staged.push(at);
            }
            let idmapped = Overlay {
                lowerdirs: staged.clone(),
                idmap: None,
                ..self.clone()
            };
            mount_overlay(target, &idmapped.options())
        })();
        for at in &staged {
            let _ = nix::mount::umount2(at, MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&staging);
        result
    }

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
            if o.idmap.is_some() && config.user_namespace.is_none() {
                config.user_namespace = o.idmap.clone();
            }
            o.mount(&dir.join("rootfs"))?;
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

fn mount_overlay(target: &Path, data: &str) -> Result<(), SysError> {
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data),
    )
    .ctx(|| format!("mount overlay on {} ({data})", target.display()))
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
            idmap: None,
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
