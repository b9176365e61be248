//! `emptyDir` volumes: a directory of the pod's, shared by its containers
//! and gone with the pod. `medium: Memory` mounts a tmpfs there, limited to
//! `sizeLimit` when the volume has one (else the kernel's default, half of
//! the RAM). The directory is 0777, as upstream, so containers running as
//! any user can write to it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use k8s_openapi::api::core::v1::EmptyDirVolumeSource;

use super::VolumeError;
use super::mounter::Mounter;
use crate::node::quantity::parse_bytes;

/// Where an emptyDir lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Medium {
    Disk,
    /// A tmpfs of at most this many bytes (`None`: no `size=`).
    Memory(Option<u64>),
}

pub fn medium(src: &EmptyDirVolumeSource) -> Result<Medium, VolumeError> {
    match src.medium.as_deref().unwrap_or_default() {
        "" => Ok(Medium::Disk),
        "Memory" => {
            let size = src
                .size_limit
                .as_ref()
                .map(|q| parse_bytes(&q.0))
                .transpose()
                .map_err(VolumeError::SizeLimit)?
                .filter(|s| *s > 0);
            Ok(Medium::Memory(size))
        }
        other => Err(VolumeError::Medium(other.into())),
    }
}

/// Makes the directory (and mounts its tmpfs once).
pub fn set_up(mounter: &dyn Mounter, dir: &Path, medium: &Medium) -> Result<(), VolumeError> {
    make_shared_dir(dir)?;
    if let Medium::Memory(size) = medium
        && !mounter.is_mount_point(dir)
    {
        mounter
            .mount_tmpfs(dir, *size)
            .map_err(|source| VolumeError::Io {
                what: "mount a tmpfs on",
                path: dir.to_path_buf(),
                source,
            })?;
        make_shared_dir(dir)?;
    }
    Ok(())
}

/// The directory, 0777 whatever the umask.
pub fn make_shared_dir(dir: &Path) -> Result<(), VolumeError> {
    let io = |what| {
        move |source| VolumeError::Io {
            what,
            path: dir.to_path_buf(),
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io("create"))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).map_err(io("chmod"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::volumes::mounter::FakeMounter;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn media() {
        let src = |medium: Option<&str>, size: Option<&str>| EmptyDirVolumeSource {
            medium: medium.map(String::from),
            size_limit: size.map(|s| Quantity(s.into())),
            ..Default::default()
        };
        assert_eq!(medium(&src(None, Some("1Gi"))).unwrap(), Medium::Disk);
        assert_eq!(medium(&src(Some(""), None)).unwrap(), Medium::Disk);
        assert_eq!(
            medium(&src(Some("Memory"), Some("64Mi"))).unwrap(),
            Medium::Memory(Some(64 << 20))
        );
        assert_eq!(
            medium(&src(Some("Memory"), None)).unwrap(),
            Medium::Memory(None)
        );
        assert_eq!(
            medium(&src(Some("HugePages"), None))
                .unwrap_err()
                .to_string(),
            "emptyDir medium \"HugePages\" is not supported (\"\" or Memory)"
        );
        assert!(medium(&src(Some("Memory"), Some("lots"))).is_err());
    }

    #[test]
    fn memory_is_mounted_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let m = FakeMounter::default();
        set_up(&m, &dir, &Medium::Memory(Some(1 << 20))).unwrap();
        set_up(&m, &dir, &Medium::Memory(Some(1 << 20))).unwrap();
        assert_eq!(m.calls(), [format!("tmpfs {} 1048576", dir.display())]);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o777);
        let disk = tmp.path().join("disk");
        set_up(&m, &disk, &Medium::Disk).unwrap();
        assert!(disk.is_dir());
        assert_eq!(m.calls().len(), 1);
    }
}
