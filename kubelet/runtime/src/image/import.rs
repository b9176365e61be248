//! Importing images without a registry: OCI image layout directories, OCI
//! layout tar archives (`oci-archive`, what `skopeo copy ... oci-archive:`
//! and our `kubelet/images/build.sh` write) and `docker save` archives.
//!
//! `docker save` archives are made OCI-shaped on the way in: the config
//! file becomes the config blob (its digest is the image id, as in Docker),
//! each layer file becomes a layer blob as it is stored (plain tar, or gzip
//! if it is gzipped), and a generated OCI manifest ties them together. The
//! layer's diff id comes from the config and is checked when the layer is
//! unpacked.
//!
//! Archives are read in one pass, as a stream (they can be gigabytes, and
//! `docker save` puts `manifest.json` last): every file is hashed into the
//! blob store as it goes by, except the small JSON documents, kept in
//! memory. Blobs under `blobs/sha256/<hex>` are verified against their
//! names; a mismatch refuses the archive. Archives may themselves be
//! gzip-compressed (`docker save | gzip`).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::digest::Digest;
use super::error::{ImageError, IoContext, Result};
use super::layers::Compression;
use super::manifest::{
    self, Descriptor, Document, Index, Manifest, OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP,
    OCI_MANIFEST,
};
use super::reference::Reference;
use super::store::{Image, ImageStore};

/// Annotation containerd (and Docker 25+) put the full image name in.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI annotation naming a manifest in a layout: a tag, or a full name.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// JSON documents larger than this inside an archive are refused.
const MAX_JSON: u64 = 16 << 20;

/// Imports an image layout directory or an archive file, whichever `path`
/// is. `names`, if given, name the image (the archive must then hold
/// exactly one); otherwise names come from the archive.
pub fn import_path(store: &ImageStore, path: &Path, names: &[Reference]) -> Result<Vec<Image>> {
    if path.is_dir() {
        import_oci_dir(store, path, names)
    } else {
        import_archive(store, path, names)
    }
}

/// What [`import_dir`] did with each entry of the directory.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub imported: Vec<(PathBuf, Vec<Image>)>,
    pub failed: Vec<(PathBuf, ImageError)>,
}

/// Imports every archive (and OCI layout directory) in `dir`, in name
/// order; the kubelet calls this at start for air-gapped labs. A bad file
/// is reported and skipped, it does not stop the others. A missing `dir`
/// is an empty one.
pub fn import_dir(store: &ImageStore, dir: &Path) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(ImageError::io(format!("list {}", dir.display()), e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .filter(|p| p.is_file() || p.join("oci-layout").is_file())
        .collect();
    paths.sort();
    for path in paths {
        match import_path(store, &path, &[]) {
            Ok(images) => {
                for i in &images {
                    tracing::info!(archive = %path.display(), id = %i.id, names = ?i.names, "image imported");
                }
                report.imported.push((path, images));
            }
            Err(e) => {
                tracing::warn!(archive = %path.display(), error = %e, "image import failed");
                report.failed.push((path, e));
            }
        }
    }
    Ok(report)
}

/// Imports an OCI image layout directory (`oci-layout`, `index.json`,
/// `blobs/`). Only blobs the chosen manifests reach are copied.
pub fn import_oci_dir(store: &ImageStore, dir: &Path, names: &[Reference]) -> Result<Vec<Image>> {
    let _lease = store.ingest_lease();
    check_layout_version(&fs::read(dir.join("oci-layout")).at("read", &dir.join("oci-layout"))?)?;
    let index_path = dir.join("index.json");
    let index = fs::read(&index_path).at("read", &index_path)?;
    let fetch = |d: &Descriptor| -> Result<()> {
        if store.blobs().contains(&d.digest) {
            return Ok(());
        }
        let path = dir.join("blobs").join("sha256").join(d.digest.hex());
        let file = File::open(&path).at("open", &path)?;
        store.blobs().put_reader(
            file,
            Some(&d.digest),
            Some(d.size),
            &format!("blob {}", path.display()),
        )?;
        Ok(())
    };
    import_layout(store, &index, &fetch, names, &dir.display().to_string())
}

fn check_layout_version(data: &[u8]) -> Result<()> {
    #[derive(Deserialize)]
    struct Layout {
        #[serde(rename = "imageLayoutVersion")]
        version: String,
    }
    let l: Layout = serde_json::from_slice(data).map_err(|e| ImageError::json("oci-layout", e))?;
    if !l.version.starts_with("1.") {
        return Err(ImageError::Unsupported(format!(
            "OCI image layout version {}",
            l.version
        )));
    }
    Ok(())
}

/// The shared part of directory and archive imports: walk `index.json`,
/// make sure every needed blob is in the store (`fetch`), register images.
fn import_layout(
    store: &ImageStore,
    index_json: &[u8],
    fetch: &dyn Fn(&Descriptor) -> Result<()>,
    names: &[Reference],
    source: &str,
) -> Result<Vec<Image>> {
    let Document::Index(index) = manifest::parse(
        index_json,
        Some(manifest::OCI_INDEX),
        &format!("{source}: index.json"),
    )?
    else {
        return Err(ImageError::format(format!(
            "{source}: index.json is not an image index"
        )));
    };
    let tops = choose_tops(store, &index, names, source)?;
    let mut images = Vec::new();
    for (top, top_names) in tops {
        fetch(&top)?;
        let data = store.blobs().read(&top.digest)?;
        let manifest_desc = match manifest::parse(
            &data,
            Some(&top.media_type),
            &format!("{source}: {}", top.digest),
        )? {
            Document::Manifest(_) => top.clone(),
            Document::Index(inner) => {
                let chosen = manifest::select_platform(&inner, store.platform())?.clone();
                fetch(&chosen)?;
                chosen
            }
        };
        let data = store.blobs().read(&manifest_desc.digest)?;
        let Document::Manifest(m) = manifest::parse(
            &data,
            Some(&manifest_desc.media_type),
            &format!("{source}: {}", manifest_desc.digest),
        )?
        else {
            return Err(ImageError::format(format!(
                "{source}: nested image indexes are not supported"
            )));
        };
        fetch(&m.config)?;
        for layer in &m.layers {
            fetch(layer)?;
        }
        images.push(store.register(&top.digest, &top_names)?);
    }
    Ok(images)
}

/// Which entries of a layout's `index.json` to import, each with its names.
fn choose_tops(
    store: &ImageStore,
    index: &Index,
    names: &[Reference],
    source: &str,
) -> Result<Vec<(Descriptor, Vec<Reference>)>> {
    let named_of = |d: &Descriptor| -> Option<Reference> {
        d.annotations
            .get(ANNOTATION_CONTAINERD_NAME)
            .or_else(|| {
                d.annotations
                    .get(ANNOTATION_REF_NAME)
                    .filter(|r| r.contains(['/', ':', '@']))
            })
            .and_then(|r| match Reference::parse(r) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(source, error = %e, "ignoring unparsable image name annotation");
                    None
                }
            })
    };
    let mut tops: Vec<(Descriptor, Vec<Reference>)> = Vec::new();
    let mut unnamed: Vec<&Descriptor> = Vec::new();
    for d in &index.manifests {
        match named_of(d) {
            Some(r) => match tops.iter_mut().find(|(t, _)| t.digest == d.digest) {
                Some((_, n)) => n.push(r),
                None => tops.push((d.clone(), vec![r])),
            },
            None if tops.iter().any(|(t, _)| t.digest == d.digest) => {}
            None => unnamed.push(d),
        }
    }
    // Unnamed entries with platforms are the platforms of one image (a
    // layout whose index.json is itself the multi-platform index).
    if unnamed.len() > 1 && unnamed.iter().all(|d| d.platform.is_some()) {
        let sub = Index {
            manifests: unnamed.iter().map(|d| (*d).clone()).collect(),
            ..index.clone()
        };
        let chosen = manifest::select_platform(&sub, store.platform())?.clone();
        tops.push((chosen, Vec::new()));
    } else {
        tops.extend(unnamed.into_iter().map(|d| (d.clone(), Vec::new())));
    }
    if tops.is_empty() {
        return Err(ImageError::format(format!(
            "{source}: the index lists no images"
        )));
    }
    if !names.is_empty() {
        if tops.len() != 1 {
            return Err(ImageError::format(format!(
                "{source}: holds {} images; cannot give them all the names {names:?}",
                tops.len()
            )));
        }
        tops[0].1 = names.to_vec();
    }
    Ok(tops)
}

/// An archive's files as seen in one streaming pass.
#[derive(Default)]
struct ArchiveFiles {
    /// Small JSON documents, by cleaned path.
    json: HashMap<String, Vec<u8>>,
    /// Everything else, hashed into the blob store: path -> digest.
    blobs: HashMap<String, Digest>,
    /// Symlinks and hard links: path -> target path (cleaned, archive-relative).
    links: HashMap<String, String>,
}

impl ArchiveFiles {
    /// Follows links (a bounded number of times: a loop is an error).
    fn resolve<'a>(&'a self, mut path: &'a str) -> Result<&'a str> {
        for _ in 0..16 {
            match self.links.get(path) {
                Some(t) => path = t,
                None => return Ok(path),
            }
        }
        Err(ImageError::format(format!("archive: link loop at {path}")))
    }

    fn blob(&self, path: &str) -> Result<Digest> {
        let p = self.resolve(path)?;
        self.blobs
            .get(p)
            .cloned()
            .ok_or_else(|| ImageError::format(format!("archive: no file {path:?}")))
    }
}

/// `a/./b/../c` → `a/c`, staying inside the archive (`None` if it leaves).
fn clean(path: &Path) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

fn is_small_document(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".json") || name == "oci-layout" || name == "repositories"
}

/// Imports an `oci-archive` or a `docker save` archive (either may be
/// gzip-compressed).
pub fn import_archive(store: &ImageStore, path: &Path, names: &[Reference]) -> Result<Vec<Image>> {
    let _lease = store.ingest_lease();
    let source = path.display().to_string();
    let file = File::open(path).at("open", path)?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let head = reader.fill_buf().at("read", path)?;
    let stream: Box<dyn Read> = match Compression::sniff(head) {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::None => Box::new(reader),
        Compression::Zstd => {
            return Err(ImageError::Unsupported(format!(
                "{source}: zstd-compressed archives"
            )));
        }
    };
    let files = read_archive(store, stream, &source)?;
    if files.json.contains_key("oci-layout") && files.json.contains_key("index.json") {
        check_layout_version(&files.json["oci-layout"])?;
        let fetch = |d: &Descriptor| -> Result<()> {
            // Every blob of the archive went into the store while reading.
            if store.blobs().contains(&d.digest) {
                let have = store.blobs().size(&d.digest)?;
                if have != d.size {
                    return Err(ImageError::SizeMismatch {
                        what: format!("{source}: blob {}", d.digest),
                        expected: d.size,
                        actual: have,
                    });
                }
                Ok(())
            } else {
                Err(ImageError::format(format!(
                    "{source}: blob {} is not in the archive",
                    d.digest
                )))
            }
        };
        import_layout(store, &files.json["index.json"], &fetch, names, &source)
    } else if files.json.contains_key("manifest.json") {
        import_docker(store, &files, names, &source)
    } else {
        Err(ImageError::format(format!(
            "{source}: neither an OCI image layout archive (oci-layout, index.json) nor a docker save archive (manifest.json)"
        )))
    }
}

fn read_archive(store: &ImageStore, stream: impl Read, source: &str) -> Result<ArchiveFiles> {
    let mut files = ArchiveFiles::default();
    let mut archive = tar::Archive::new(stream);
    let entries = archive.entries().ctx(|| format!("{source}: read tar"))?;
    for entry in entries {
        let mut entry = entry.ctx(|| format!("{source}: read tar entry"))?;
        let raw = entry
            .path()
            .ctx(|| format!("{source}: entry path"))?
            .into_owned();
        let Some(path) = clean(&raw) else {
            return Err(ImageError::format(format!(
                "{source}: entry {} leaves the archive",
                raw.display()
            )));
        };
        let kind = entry.header().entry_type();
        let size = entry.size();
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let expected = path
                    .strip_prefix("blobs/sha256/")
                    .map(Digest::from_hex)
                    .transpose()
                    .map_err(|_| {
                        ImageError::format(format!(
                            "{source}: {path} is not named by a sha256 digest"
                        ))
                    })?;
                if expected.is_none() && is_small_document(&path) {
                    if size > MAX_JSON {
                        return Err(ImageError::format(format!(
                            "{source}: {path} is {size} bytes, too large for a JSON document"
                        )));
                    }
                    let mut data = Vec::with_capacity(size as usize);
                    entry
                        .read_to_end(&mut data)
                        .ctx(|| format!("{source}: read {path}"))?;
                    files.json.insert(path, data);
                } else {
                    let digest = store.blobs().put_reader(
                        &mut entry,
                        expected.as_ref(),
                        Some(size),
                        &format!("{source}: {path}"),
                    )?;
                    files.blobs.insert(path, digest);
                }
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .ctx(|| format!("{source}: link target of {path}"))?
                    .ok_or_else(|| {
                        ImageError::format(format!("{source}: link {path} has no target"))
                    })?
                    .into_owned();
                // Symlink targets are relative to the link's directory,
                // hard link targets to the archive root.
                let joined = if kind == tar::EntryType::Symlink {
                    Path::new(&path)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(&target)
                } else {
                    target
                };
                let Some(t) = clean(&joined) else {
                    return Err(ImageError::format(format!(
                        "{source}: link {path} points outside the archive"
                    )));
                };
                files.links.insert(path, t);
            }
            _ => {}
        }
    }
    Ok(files)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A `docker save` archive: `manifest.json` lists, per image, its config
/// file, its tags and its layer files.
fn import_docker(
    store: &ImageStore,
    files: &ArchiveFiles,
    names: &[Reference],
    source: &str,
) -> Result<Vec<Image>> {
    let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&files.json["manifest.json"])
        .map_err(|e| ImageError::json(format!("{source}: manifest.json"), e))?;
    if entries.is_empty() {
        return Err(ImageError::format(format!(
            "{source}: manifest.json lists no images"
        )));
    }
    if !names.is_empty() && entries.len() != 1 {
        return Err(ImageError::format(format!(
            "{source}: holds {} images; cannot give them all the names {names:?}",
            entries.len()
        )));
    }
    let mut images = Vec::new();
    for entry in entries {
        let config_path = files.resolve(&entry.config)?.to_owned();
        let config_digest = match files.json.get(&config_path) {
            Some(data) => store
                .blobs()
                .put(data, None, &format!("{source}: {config_path}"))?,
            None => files.blob(&config_path)?,
        };
        let config_size = store.blobs().size(&config_digest)?;
        let mut layers = Vec::with_capacity(entry.layers.len());
        for layer_path in &entry.layers {
            let digest = files.blob(layer_path)?;
            let size = store.blobs().size(&digest)?;
            let mut head = [0u8; 4];
            let n = store
                .blobs()
                .open_blob(&digest)?
                .read(&mut head)
                .ctx(|| format!("{source}: read {layer_path}"))?;
            let media_type = match Compression::sniff(&head[..n]) {
                Compression::Gzip => OCI_LAYER_GZIP,
                Compression::None => OCI_LAYER,
                Compression::Zstd => {
                    return Err(ImageError::Unsupported(format!(
                        "{source}: zstd-compressed layer {layer_path}"
                    )));
                }
            };
            layers.push(Descriptor::new(media_type, digest, size));
        }
        let m = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_owned()),
            config: Descriptor::new(OCI_CONFIG, config_digest, config_size),
            layers,
            annotations: BTreeMap::new(),
        };
        let data = serde_json::to_vec(&m).map_err(|e| ImageError::json("serialise manifest", e))?;
        let manifest_digest = store.blobs().put(&data, None, "generated manifest")?;
        let image_names = if names.is_empty() {
            entry
                .repo_tags
                .unwrap_or_default()
                .iter()
                .map(|t| Reference::parse(t))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            names.to_vec()
        };
        images.push(store.register(&manifest_digest, &image_names)?);
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths_in_archives() {
        assert_eq!(clean(Path::new("./a/b")).as_deref(), Some("a/b"));
        assert_eq!(clean(Path::new("a/../b")).as_deref(), Some("b"));
        assert_eq!(clean(Path::new("../b")), None);
        assert_eq!(clean(Path::new("/blobs/x")).as_deref(), Some("blobs/x"));
    }
}
