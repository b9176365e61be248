//! Garbage collection: removing unpacked layers and blobs no image uses,
//! and, when the disk is fuller than a threshold, whole images that no
//! container uses, least recently used first — the kubelet's image GC
//! (`--image-gc-high-threshold` / `--image-gc-low-threshold`).
//!
//! The store cannot see containers, so the caller says what is in use:
//! images that containers were created from, and layers mounted as lower
//! dirs (these matter when an image was removed while a container of it
//! still runs: its layers must stay until that container goes).

use std::collections::HashSet;
use std::path::Path;

use super::digest::Digest;
use super::error::{ImageError, Result};
use super::store::ImageStore;

/// When to remove images, in percent of the image filesystem used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GcPolicy {
    /// Start removing unused images above this usage...
    pub high_percent: f64,
    /// ...and stop once below this one.
    pub low_percent: f64,
}

impl Default for GcPolicy {
    /// The kubelet's defaults.
    fn default() -> Self {
        GcPolicy {
            high_percent: 85.0,
            low_percent: 80.0,
        }
    }
}

/// What containers use; never removed.
#[derive(Debug, Clone, Default)]
pub struct InUse {
    /// Image ids (config digests).
    pub images: HashSet<Digest>,
    /// Layer diff ids.
    pub layers: HashSet<Digest>,
}

/// How full the filesystem holding the store is.
pub trait DiskUsage {
    /// Percent (0-100) of `path`'s filesystem in use.
    fn used_percent(&self, path: &Path) -> Result<f64>;
}

/// The real [`DiskUsage`], from `statvfs(2)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StatvfsUsage;

impl DiskUsage for StatvfsUsage {
    fn used_percent(&self, path: &Path) -> Result<f64> {
        let s = nix::sys::statvfs::statvfs(path).map_err(|e| {
            ImageError::io(
                format!("statvfs {}", path.display()),
                std::io::Error::from_raw_os_error(e as i32),
            )
        })?;
        let total = s.blocks() as f64;
        if total == 0.0 {
            return Ok(0.0);
        }
        // Like df: blocks reserved for root count as used.
        Ok(100.0 * (total - s.blocks_available() as f64) / total)
    }
}

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcReport {
    /// Ids of images removed for space.
    pub images: Vec<Digest>,
    /// Diff ids of unpacked layers removed.
    pub layers: Vec<Digest>,
    pub blobs: Vec<Digest>,
    /// Bytes freed (blob sizes plus unpacked layer disk usage).
    pub freed_bytes: u64,
    pub used_percent_before: f64,
    pub used_percent_after: f64,
    /// Blob pruning was skipped because an import or pull was running.
    pub blobs_skipped: bool,
}

/// The unpacked layers of `layers_dir` that overlay mounts in `mountinfo`
/// (the text of `/proc/self/mountinfo`) use as lower dirs: a running
/// container's, even when its image has been removed.
pub fn layers_mounted(mountinfo: &str, layers_dir: &Path) -> HashSet<Digest> {
    let mut out = HashSet::new();
    for line in mountinfo.lines() {
        // "… - overlay overlay rw,lowerdir=/a:/b,upperdir=…,workdir=…"
        let Some((_, tail)) = line.split_once(" - ") else {
            continue;
        };
        let mut fields = tail.split(' ');
        if fields.next() != Some("overlay") {
            continue;
        }
        let options = fields.nth(1).unwrap_or("");
        for option in options.split(',') {
            let Some(dirs) = option.strip_prefix("lowerdir=") else {
                continue;
            };
            for dir in dirs.split(':') {
                let dir = Path::new(dir);
                if dir.parent() == Some(layers_dir)
                    && let Some(d) = dir
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| Digest::from_hex(n).ok())
                {
                    out.insert(d);
                }
            }
        }
    }
    out
}

impl ImageStore {
    /// Removes the layers and blobs no image in the index needs and no
    /// mounted container uses (after an image removal: what frees the disk).
    pub fn prune_unused(&self, in_use: &InUse) -> Result<GcReport> {
        let mut report = GcReport::default();
        self.prune(in_use, &mut report)?;
        Ok(report)
    }

    /// Removes layers and blobs no image uses; then, while the disk is used
    /// above `policy.high_percent`, removes unused images (least recently
    /// prepared first) with their layers and blobs until it is below
    /// `policy.low_percent` or no unused image is left.
    pub fn gc(&self, policy: &GcPolicy, in_use: &InUse, disk: &dyn DiskUsage) -> Result<GcReport> {
        let mut report = GcReport {
            used_percent_before: disk.used_percent(self.root())?,
            ..GcReport::default()
        };
        self.prune(in_use, &mut report)?;
        let mut used = disk.used_percent(self.root())?;
        if used > policy.high_percent {
            let mut candidates: Vec<_> = self
                .list()
                .into_iter()
                .filter(|i| !in_use.images.contains(&i.id))
                .collect();
            candidates.sort_by_key(|i| (i.last_used, i.added));
            for image in candidates {
                if used < policy.low_percent {
                    break;
                }
                tracing::info!(id = %image.id, names = ?image.names, used_percent = used, "image gc: removing unused image");
                let removed = self.with_index(|images| images.remove(&image.manifest).is_some())?;
                if removed {
                    report.images.push(image.id.clone());
                }
                self.prune(in_use, &mut report)?;
                used = disk.used_percent(self.root())?;
            }
        }
        report.used_percent_after = used;
        Ok(report)
    }

    /// Removes unpacked layers and blobs that no image in the index (and no
    /// in-use layer) needs.
    fn prune(&self, in_use: &InUse, report: &mut GcReport) -> Result<()> {
        let images = self.list();
        let mut keep_layers: HashSet<Digest> = in_use.layers.clone();
        let mut keep_blobs: HashSet<Digest> = HashSet::new();
        for i in &images {
            keep_layers.extend(i.layers.iter().map(|l| l.diff_id.clone()));
            keep_blobs.extend(i.blobs());
        }
        for diff_id in self.layers().list()? {
            if !keep_layers.contains(&diff_id) {
                let bytes = self.layers().disk_usage(&diff_id);
                if self.layers().remove(&diff_id)? {
                    report.freed_bytes += bytes;
                    report.layers.push(diff_id);
                }
            }
        }
        if self.ingests_in_progress() {
            // The blobs of an image being imported are unreferenced until
            // it is registered.
            report.blobs_skipped = true;
            return Ok(());
        }
        for digest in self.blobs().list()? {
            if !keep_blobs.contains(&digest) {
                let bytes = self.blobs().size(&digest).unwrap_or(0);
                if self.blobs().remove(&digest)? {
                    report.freed_bytes += bytes;
                    report.blobs.push(digest);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_under_overlay_mounts_are_in_use() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let mountinfo = format!(
            "22 1 8:1 / / rw - ext4 /dev/vda rw\n\
             40 22 0:50 / /skiff/containers/c1/bundle/rootfs rw - overlay overlay \
             rw,lowerdir=/skiff/images/layers/{a}:/skiff/images/layers/{b},upperdir=/u,workdir=/w\n\
             41 22 0:51 / /elsewhere rw - overlay overlay rw,lowerdir=/other/{a},upperdir=/u,workdir=/w\n"
        );
        let used = layers_mounted(&mountinfo, Path::new("/skiff/images/layers"));
        let want: HashSet<Digest> =
            [Digest::from_hex(&a).unwrap(), Digest::from_hex(&b).unwrap()].into();
        assert_eq!(used, want);
        assert!(layers_mounted(&mountinfo, Path::new("/nowhere")).is_empty());
    }
}
