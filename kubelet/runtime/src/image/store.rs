//! The image store: blobs, unpacked layers and an index of images, under
//! one root directory (the kubelet's `<data dir>/images`):
//!
//! ```text
//! <root>/blobs/sha256/<hex>   manifests, indexes, configs, layer blobs
//! <root>/layers/<diff-id>/    unpacked layers (overlayfs lower dirs)
//! <root>/images.json          the index: names -> images
//! <root>/tmp/                 blobs being written
//! ```
//!
//! An image is identified by its config digest (the image id, as in Docker
//! and CRI) and recorded under its manifest digest. Names are normalised
//! references (`docker.io/library/busybox:latest`); a name belongs to one
//! image at a time, so importing or pulling a newer image under a name moves
//! the name, as `docker tag` does.
//!
//! The index is small and rewritten whole (temporary file, fsync, rename)
//! on every change, under a mutex: simple, crash-safe, and plenty for the
//! number of images a node has.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::blobs::BlobStore;
use super::config::ImageConfig;
use super::digest::Digest;
use super::error::{ImageError, IoContext, Result};
use super::layers::LayerStore;
use super::manifest::{self, Document, Platform};
use super::reference::Reference;

const INDEX_FILE: &str = "images.json";
const INDEX_VERSION: u32 = 1;

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLayer {
    /// Digest of the blob as stored (compressed or not).
    pub digest: Digest,
    /// Digest of the uncompressed tar: names the unpacked directory.
    pub diff_id: Digest,
    /// Size of the blob.
    pub size: u64,
    pub media_type: String,
}

/// An image in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The config digest: the image id.
    pub id: Digest,
    /// The platform manifest's digest.
    pub manifest: Digest,
    /// Normalised `name:tag` references.
    pub names: Vec<String>,
    /// `name@digest` references (the digest of what was pulled or imported:
    /// an index for multi-platform images).
    pub repo_digests: Vec<String>,
    pub layers: Vec<ImageLayer>,
    /// Config plus layer blob sizes (the "size" CRI and `crictl images` show).
    pub size: u64,
    pub config: ImageConfig,
    /// Unix seconds.
    pub added: i64,
    /// Unix seconds of the last [`ImageStore::prepare`]; image GC removes
    /// the least recently used first.
    pub last_used: i64,
}

impl Image {
    /// Digests of blobs this image needs (manifest, config, layers, and the
    /// indexes its repo digests name).
    pub fn blobs(&self) -> Vec<Digest> {
        let mut out = vec![self.manifest.clone(), self.id.clone()];
        out.extend(self.layers.iter().map(|l| l.digest.clone()));
        out.extend(
            self.repo_digests
                .iter()
                .filter_map(|r| r.rsplit_once('@'))
                .filter_map(|(_, d)| d.parse().ok()),
        );
        out
    }
}

/// What the container code needs to build a rootfs.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    pub image: Image,
    /// Unpacked layer directories, TOP-MOST FIRST, the order overlayfs'
    /// `lowerdir=` option wants. Empty for an image without layers.
    pub lower_dirs: Vec<PathBuf>,
    pub config: ImageConfig,
}

impl PreparedImage {
    /// The value of overlayfs' `lowerdir=` option.
    pub fn lowerdir_option(&self) -> String {
        self.lower_dirs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// What [`ImageStore::remove`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Names taken off an image that stays (it has other names).
    pub untagged: Vec<String>,
    /// Images removed from the index (their blobs and layers go at the next
    /// [`ImageStore::gc`]).
    pub images: Vec<Digest>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    /// By manifest digest.
    images: BTreeMap<Digest, Image>,
}

/// Options for [`ImageStore::open_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Which manifest of a multi-platform index to use.
    pub platform: Platform,
    /// Keep tar owners when unpacking (needs root).
    pub preserve_owners: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            platform: Platform::host(),
            preserve_owners: nix::unistd::geteuid().is_root(),
        }
    }
}

#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    blobs: BlobStore,
    layers: LayerStore,
    index: Mutex<IndexFile>,
    platform: Platform,
    ingests: Arc<AtomicUsize>,
}

/// Held while blobs are being added (an import, a pull): garbage collection
/// leaves unreferenced blobs alone meanwhile, since they may be the new
/// image's blobs, written before the image is registered.
#[derive(Debug)]
pub struct IngestLease(Arc<AtomicUsize>);

impl Drop for IngestLease {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl ImageStore {
    /// Opens (creating) a store under `root` with default options.
    pub fn open(root: impl Into<PathBuf>) -> Result<ImageStore> {
        ImageStore::open_with(root, StoreOptions::default())
    }

    pub fn open_with(root: impl Into<PathBuf>, opts: StoreOptions) -> Result<ImageStore> {
        let root = root.into();
        let blobs = BlobStore::open(&root)?;
        let layers = LayerStore::open(&root, opts.preserve_owners)?;
        let path = root.join(INDEX_FILE);
        let index = match fs::read(&path) {
            Ok(data) => {
                let index: IndexFile = serde_json::from_slice(&data)
                    .map_err(|e| ImageError::json(path.display().to_string(), e))?;
                if index.version != INDEX_VERSION {
                    return Err(ImageError::format(format!(
                        "{}: version {}, expected {INDEX_VERSION}",
                        path.display(),
                        index.version
                    )));
                }
                index
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => IndexFile {
                version: INDEX_VERSION,
                images: BTreeMap::new(),
            },
            Err(e) => return Err(ImageError::io(format!("read {}", path.display()), e)),
        };
        Ok(ImageStore {
            root,
            blobs,
            layers,
            index: Mutex::new(index),
            platform: opts.platform,
            ingests: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }

    /// The platform picked from multi-platform indexes.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// See [`IngestLease`].
    pub fn ingest_lease(&self) -> IngestLease {
        self.ingests.fetch_add(1, Ordering::SeqCst);
        IngestLease(self.ingests.clone())
    }

    pub(crate) fn ingests_in_progress(&self) -> bool {
        self.ingests.load(Ordering::SeqCst) > 0
    }

    fn persist(&self, index: &IndexFile) -> Result<()> {
        let path = self.root.join(INDEX_FILE);
        let mut tmp =
            tempfile::NamedTempFile::new_in(&self.root).at("create temp file in", &self.root)?;
        let data = serde_json::to_vec_pretty(index)
            .map_err(|e| ImageError::json("serialise image index", e))?;
        tmp.write_all(&data).at("write", tmp.path())?;
        tmp.as_file().sync_all().at("sync", tmp.path())?;
        tmp.persist(&path)
            .map_err(|e| ImageError::io(format!("replace {}", path.display()), e.error))?;
        if let Ok(dir) = File::open(&self.root) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Records an image whose blobs are all in the blob store. `top` is the
    /// digest of a manifest, or of an index from which the store's platform
    /// is picked. Every name in `names` is moved to this image.
    pub fn register(&self, top: &Digest, names: &[Reference]) -> Result<Image> {
        let data = self.blobs.read(top)?;
        let manifest_digest = match manifest::parse(&data, None, &format!("manifest {top}"))? {
            Document::Manifest(_) => top.clone(),
            Document::Index(index) => manifest::select_platform(&index, &self.platform)?
                .digest
                .clone(),
        };
        let data = self.blobs.read(&manifest_digest)?;
        let Document::Manifest(m) =
            manifest::parse(&data, None, &format!("manifest {manifest_digest}"))?
        else {
            return Err(ImageError::format(format!(
                "{manifest_digest}: an index inside an index is not supported"
            )));
        };
        let id = m.config.digest.clone();
        let check_size = |d: &Digest, want: u64, what: &str| -> Result<()> {
            let have = self.blobs.size(d)?;
            if have != want {
                return Err(ImageError::SizeMismatch {
                    what: format!("{what} {d}"),
                    expected: want,
                    actual: have,
                });
            }
            Ok(())
        };
        check_size(&id, m.config.size, "config")?;
        let config = ImageConfig::parse(&self.blobs.read(&id)?, &format!("config {id}"))?;
        if config.diff_ids.len() != m.layers.len() {
            return Err(ImageError::format(format!(
                "image {id}: the manifest has {} layers but the config {} diff ids",
                m.layers.len(),
                config.diff_ids.len()
            )));
        }
        let mut layers = Vec::with_capacity(m.layers.len());
        let mut size = m.config.size;
        for (desc, diff_id) in m.layers.iter().zip(&config.diff_ids) {
            check_size(&desc.digest, desc.size, "layer")?;
            size += desc.size;
            layers.push(ImageLayer {
                digest: desc.digest.clone(),
                diff_id: diff_id.clone(),
                size: desc.size,
                media_type: desc.media_type.clone(),
            });
        }

        let mut index = self.index.lock().unwrap();
        let mut image = index
            .images
            .get(&manifest_digest)
            .cloned()
            .unwrap_or(Image {
                id,
                manifest: manifest_digest.clone(),
                names: Vec::new(),
                repo_digests: Vec::new(),
                layers,
                size,
                config,
                added: now(),
                last_used: 0,
            });
        for name in names {
            if let Some(tagged) = name.tagged_name() {
                for other in index.images.values_mut() {
                    other.names.retain(|n| n != &tagged);
                }
                if !image.names.contains(&tagged) {
                    image.names.push(tagged);
                }
            }
            let repo_digest = name.with_digest(top);
            if !image.repo_digests.contains(&repo_digest) {
                image.repo_digests.push(repo_digest);
            }
        }
        image.names.sort();
        image.repo_digests.sort();
        index.images.insert(manifest_digest, image.clone());
        self.persist(&index)?;
        tracing::info!(id = %image.id, names = ?image.names, "image registered");
        Ok(image)
    }

    /// Every image, sorted by first name (unnamed last), then id.
    pub fn list(&self) -> Vec<Image> {
        let index = self.index.lock().unwrap();
        let mut out: Vec<Image> = index.images.values().cloned().collect();
        out.sort_by(|a, b| {
            (a.names.is_empty(), a.names.first(), &a.id).cmp(&(
                b.names.is_empty(),
                b.names.first(),
                &b.id,
            ))
        });
        out
    }

    /// Finds an image by reference (`busybox`, `localhost:5000/a:t`,
    /// `name@sha256:...`), by id (`sha256:...`, or a unique prefix of at
    /// least 4 hex digits) or by manifest digest.
    pub fn get(&self, r: &str) -> Result<Option<Image>> {
        let index = self.index.lock().unwrap();
        Ok(find(&index, r)?.map(|k| index.images[&k].clone()))
    }

    /// Like [`ImageStore::get`] but an absent image is an error.
    pub fn resolve(&self, r: &str) -> Result<Image> {
        self.get(r)?
            .ok_or_else(|| ImageError::ImageNotFound(r.to_owned()))
    }

    /// Removes a name, or a whole image. A tagged reference untags; the
    /// image goes when its last name does. An id or digest removes the
    /// image with all its names. Blobs and layers are left for
    /// [`ImageStore::gc`], which knows which layers running containers use.
    pub fn remove(&self, r: &str) -> Result<Removed> {
        let mut index = self.index.lock().unwrap();
        let key = find(&index, r)?.ok_or_else(|| ImageError::ImageNotFound(r.to_owned()))?;
        let mut removed = Removed::default();
        let tagged = Reference::parse(r)
            .ok()
            .filter(|rf| rf.digest().is_none())
            .and_then(|rf| rf.tagged_name())
            .filter(|t| index.images[&key].names.contains(t));
        let image = index.images.get_mut(&key).expect("found above");
        match tagged {
            Some(t) if image.names.len() > 1 => {
                image.names.retain(|n| n != &t);
                let repo = t
                    .rsplit_once(':')
                    .map(|(n, _)| n.to_owned())
                    .unwrap_or_default();
                // Keep repo digests only for repositories still named.
                let names = image.names.clone();
                image.repo_digests.retain(|rd| {
                    let rd_repo = rd.split_once('@').map_or("", |(n, _)| n);
                    rd_repo != repo || names.iter().any(|n| n.starts_with(&format!("{rd_repo}:")))
                });
                removed.untagged.push(t);
            }
            _ => {
                let image = index.images.remove(&key).expect("found above");
                removed.untagged = image.names.clone();
                removed.images.push(image.id);
            }
        }
        self.persist(&index)?;
        Ok(removed)
    }

    /// Unpacks what is not unpacked yet and returns the image's lower dirs
    /// and config: everything needed to mount its rootfs.
    pub fn prepare(&self, r: &str) -> Result<PreparedImage> {
        let image = self.resolve(r)?;
        let mut lower_dirs = Vec::with_capacity(image.layers.len());
        for layer in &image.layers {
            let blob = self.blobs.path(&layer.digest);
            if !blob.is_file() {
                return Err(ImageError::BlobNotFound(layer.digest.clone()));
            }
            lower_dirs.push(self.layers.ensure(&blob, &layer.diff_id)?);
        }
        lower_dirs.reverse();
        {
            let mut index = self.index.lock().unwrap();
            if let Some(i) = index.images.get_mut(&image.manifest) {
                i.last_used = now();
                // A lost last-used time only makes GC's order less exact.
                if let Err(e) = self.persist(&index) {
                    tracing::warn!(error = %e, "could not record image use");
                }
            }
        }
        Ok(PreparedImage {
            config: image.config.clone(),
            image,
            lower_dirs,
        })
    }

    pub(crate) fn with_index<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<Digest, Image>) -> T,
    ) -> Result<T> {
        let mut index = self.index.lock().unwrap();
        let out = f(&mut index.images);
        self.persist(&index)?;
        Ok(out)
    }
}

/// The key (manifest digest) of the image `r` names.
fn find(index: &IndexFile, r: &str) -> Result<Option<Digest>> {
    let images = &index.images;
    // Ids and digests first when the string is one: "sha256:..." is not a
    // valid repository name anyway.
    if let Ok(d) = r.parse::<Digest>() {
        return Ok(images
            .values()
            .find(|i| {
                i.id == d
                    || i.manifest == d
                    || i.repo_digests
                        .iter()
                        .any(|rd| rd.ends_with(&format!("@{d}")))
            })
            .map(|i| i.manifest.clone()));
    }
    if let Ok(rf) = Reference::parse(r) {
        if let Some(d) = rf.digest() {
            let by_repo = rf.with_digest(d);
            return Ok(images
                .values()
                .find(|i| i.repo_digests.contains(&by_repo))
                .or_else(|| images.values().find(|i| &i.manifest == d || &i.id == d))
                .map(|i| i.manifest.clone()));
        }
        if let Some(t) = rf.tagged_name()
            && let Some(i) = images.values().find(|i| i.names.contains(&t))
        {
            return Ok(Some(i.manifest.clone()));
        }
    }
    if r.len() >= 4 && r.len() <= 64 && r.bytes().all(|b| b.is_ascii_hexdigit()) {
        let r = r.to_ascii_lowercase();
        let matches: Vec<&Image> = images
            .values()
            .filter(|i| i.id.hex().starts_with(&r))
            .collect();
        match matches.len() {
            0 => {}
            1 => return Ok(Some(matches[0].manifest.clone())),
            _ => {
                return Err(ImageError::format(format!(
                    "image id prefix {r:?} is ambiguous ({} images)",
                    matches.len()
                )));
            }
        }
    }
    Ok(None)
}
