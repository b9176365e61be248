//! Unpacked layers: `layers/<diff-id hex>/`, each unpacked once and shared
//! read-only (as overlayfs lower dirs) by every container of every image
//! that has the layer.
//!
//! A layer is unpacked into a private `layers/.tmp-*` directory and renamed
//! into place only after its diff id (the sha256 of the uncompressed tar)
//! matched the image config; a directory under its final name is therefore
//! always complete. Removal renames the directory to `.trash-*` first, so a
//! crash halfway through a removal never leaves a half-empty layer under a
//! name that looks valid. Leftovers of both are removed on open.
//!
//! "Once" holds across threads: callers asking for the same layer at the
//! same time wait on a per-layer lock and the second finds it done.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::digest::{Digest, HashingReader};
use super::error::{ImageError, IoContext, Result};
use super::unpack::{ApplyOptions, ApplyStats, DiskFs, apply_layer};

#[derive(Debug)]
pub struct LayerStore {
    dir: PathBuf,
    preserve_owners: bool,
    locks: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
}

/// How a layer blob is compressed, from its first bytes (Docker archives
/// and some registries do not say, or say it wrongly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// Opens `blob` and returns a reader of the uncompressed tar.
pub fn open_layer_tar(blob: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(blob).at("open layer blob", blob)?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let head = reader.fill_buf().at("read layer blob", blob)?;
    match Compression::sniff(head) {
        Compression::None => Ok(Box::new(reader)),
        Compression::Gzip => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(reader))),
        Compression::Zstd => Err(ImageError::Unsupported(format!(
            "zstd-compressed layer {}",
            blob.display()
        ))),
    }
}

impl LayerStore {
    /// Opens (creating) `root/layers`. `preserve_owners` should be true
    /// when running as root (see [`ApplyOptions`]).
    pub fn open(root: &Path, preserve_owners: bool) -> Result<LayerStore> {
        let dir = root.join("layers");
        fs::create_dir_all(&dir).at("create", &dir)?;
        for e in fs::read_dir(&dir).at("list", &dir)?.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".tmp-") || name.starts_with(".trash-") {
                tracing::info!(path = %e.path().display(), "removing leftover of an interrupted unpack or removal");
                let _ = fs::remove_dir_all(e.path());
            }
        }
        Ok(LayerStore {
            dir,
            preserve_owners,
            locks: Mutex::new(HashMap::new()),
        })
    }

    /// The directory every layer is unpacked in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the layer with this diff id is (or would be) unpacked.
    pub fn path(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(diff_id.hex())
    }

    pub fn contains(&self, diff_id: &Digest) -> bool {
        self.path(diff_id).is_dir()
    }

    fn lock_for(&self, diff_id: &Digest) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap();
        locks.entry(diff_id.clone()).or_default().clone()
    }

    /// Unpacks the layer blob at `blob` unless a layer with `diff_id` is
    /// already there; returns its directory.
    pub fn ensure(&self, blob: &Path, diff_id: &Digest) -> Result<PathBuf> {
        let target = self.path(diff_id);
        if target.is_dir() {
            return Ok(target);
        }
        let lock = self.lock_for(diff_id);
        let _guard = lock.lock().unwrap();
        if target.is_dir() {
            return Ok(target);
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".tmp-{}-", diff_id.short()))
            .tempdir_in(&self.dir)
            .at("create temporary layer directory in", &self.dir)?;
        // tempdir is 0700; the layer root becomes the container's "/" where
        // the tar does not say otherwise.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
            .at("chmod", tmp.path())?;
        let stats = unpack_verified(blob, tmp.path(), diff_id, self.preserve_owners)?;
        // Make the content durable before the rename publishes it.
        let dir = File::open(tmp.path()).at("open", tmp.path())?;
        nix::unistd::syncfs(&dir)
            .map_err(|e| ImageError::io("syncfs", std::io::Error::from_raw_os_error(e as i32)))?;
        let unpacked = tmp.keep();
        if let Err(e) = fs::rename(&unpacked, &target) {
            let _ = fs::remove_dir_all(&unpacked);
            if !target.is_dir() {
                return Err(ImageError::io(
                    format!("rename unpacked layer to {}", target.display()),
                    e,
                ));
            }
        }
        tracing::info!(layer = %diff_id, entries = stats.entries, bytes = stats.bytes, whiteouts = stats.whiteouts, "layer unpacked");
        Ok(target)
    }

    /// Every unpacked layer.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).at("list", &self.dir)? {
            let e = e.at("list", &self.dir)?;
            if let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes an unpacked layer; false if it was not there.
    pub fn remove(&self, diff_id: &Digest) -> Result<bool> {
        let lock = self.lock_for(diff_id);
        let _guard = lock.lock().unwrap();
        let target = self.path(diff_id);
        if !target.is_dir() {
            return Ok(false);
        }
        let trash = self
            .dir
            .join(format!(".trash-{}-{}", diff_id.hex(), std::process::id()));
        fs::rename(&target, &trash).at("move aside", &target)?;
        fs::remove_dir_all(&trash).at("remove", &trash)?;
        Ok(true)
    }

    /// Bytes used by an unpacked layer (allocated blocks, hard links
    /// counted once).
    pub fn disk_usage(&self, diff_id: &Digest) -> u64 {
        du(&self.path(diff_id))
    }
}

/// Unpacks `blob` (gzip or plain tar) into the empty directory `dest` and
/// checks that the uncompressed stream has the digest `diff_id`.
pub fn unpack_verified(
    blob: &Path,
    dest: &Path,
    diff_id: &Digest,
    preserve_owners: bool,
) -> Result<ApplyStats> {
    let mut tar = HashingReader::new(open_layer_tar(blob)?);
    let mut fs = DiskFs::new(dest);
    let opts = ApplyOptions {
        preserve_owners,
        layer: diff_id.to_string(),
    };
    let stats = apply_layer(&mut tar, &mut fs, &opts)?;
    let (actual, _) = tar
        .finish()
        .ctx(|| format!("layer {diff_id}: read to the end"))?;
    if &actual != diff_id {
        return Err(ImageError::DigestMismatch {
            what: format!("uncompressed layer {}", blob.display()),
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok(stats)
}

/// Disk usage of a tree, in bytes of allocated blocks.
pub fn du(path: &Path) -> u64 {
    use std::collections::HashSet;
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_owned()];
    while let Some(p) = stack.pop() {
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
            continue;
        }
        total += m.blocks() * 512;
        if m.is_dir()
            && let Ok(rd) = fs::read_dir(&p)
        {
            stack.extend(rd.flatten().map(|e| e.path()));
        }
    }
    total
}
