//! The content-addressed blob store: `blobs/sha256/<hex>` under the image
//! root, the same shape as an OCI image layout so a store can be inspected
//! with ordinary tools.
//!
//! A blob is written to a temporary file in `tmp/` (same filesystem, so the
//! final rename is atomic), hashed while written, fsynced, and renamed into
//! place only once its digest matches the one it was announced with. A blob
//! that is present under its name is therefore always complete and correct;
//! a crash leaves at worst a stray temporary file, removed on the next open.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::NamedTempFile;

use super::digest::{Digest, Hasher, HashingWriter};
use super::error::{ImageError, IoContext, Result};

/// Temporary files older than this are leftovers of a crash.
const STALE_TMP: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the blob store under `root`.
    pub fn open(root: &Path) -> Result<BlobStore> {
        let blobs = root.join("blobs").join("sha256");
        let tmp = root.join("tmp");
        fs::create_dir_all(&blobs).at("create", &blobs)?;
        fs::create_dir_all(&tmp).at("create", &tmp)?;
        let store = BlobStore { blobs, tmp };
        store.remove_stale_tmp();
        Ok(store)
    }

    fn remove_stale_tmp(&self) {
        let Ok(entries) = fs::read_dir(&self.tmp) else {
            return;
        };
        let now = SystemTime::now();
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > STALE_TMP);
            if old {
                let p = e.path();
                let _ = fs::remove_file(&p).or_else(|_| fs::remove_dir_all(&p));
            }
        }
    }

    /// Where temporary files go (on the store's filesystem, for renames).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// The path of a blob (whether or not it is present).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The size of a stored blob.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        match fs::metadata(self.path(digest)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ImageError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(ImageError::io(format!("stat blob {digest}"), e)),
        }
    }

    /// Starts writing a new blob.
    pub fn writer(&self) -> Result<BlobWriter> {
        let file = NamedTempFile::new_in(&self.tmp).at("create temporary file in", &self.tmp)?;
        Ok(BlobWriter {
            file: HashingWriter::new(file),
            blobs: self.blobs.clone(),
        })
    }

    /// Stores `data`; with `expected`, refuses it unless it has that digest.
    pub fn put(&self, data: &[u8], expected: Option<&Digest>, what: &str) -> Result<Digest> {
        let mut w = self.writer()?;
        w.write_all(data).ctx(|| format!("write {what}"))?;
        w.commit(expected, None, what)
    }

    /// Stores everything `reader` yields, verified like [`BlobStore::put`]
    /// (and against `expected_size` when known).
    pub fn put_reader(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
        what: &str,
    ) -> Result<Digest> {
        if let Some(d) = expected
            && self.contains(d)
        {
            return Ok(d.clone());
        }
        let mut w = self.writer()?;
        io::copy(&mut reader, &mut w).ctx(|| format!("copy {what}"))?;
        w.commit(expected, expected_size, what)
    }

    /// Moves an already written file (in [`BlobStore::tmp_dir`]) into the
    /// store after checking it has the digest it claims.
    pub fn adopt(&self, file: NamedTempFile, digest: &Digest) -> Result<()> {
        let target = self.path(digest);
        if target.exists() {
            return Ok(());
        }
        file.as_file()
            .sync_all()
            .ctx(|| format!("sync blob {digest}"))?;
        file.persist(&target)
            .map_err(|e| ImageError::io(format!("store blob {digest}"), e.error))?;
        Ok(())
    }

    /// Where a resumable download of `digest` keeps its bytes so far.
    pub fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.tmp.join(format!("{}.partial", digest.hex()))
    }

    /// Hashes the file at `path` (a finished download in [`Self::tmp_dir`])
    /// and moves it into the store if it has the digest (and size) it was
    /// announced with. A file that does not match is deleted, so the next
    /// attempt starts from scratch rather than resuming garbage.
    pub fn commit_file(
        &self,
        path: &Path,
        expected: &Digest,
        expected_size: Option<u64>,
        what: &str,
    ) -> Result<()> {
        let check = || -> Result<()> {
            let mut hasher = Hasher::new();
            let mut f = File::open(path).at("open", path)?;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = f.read(&mut buf).at("read", path)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            let size = hasher.len();
            let actual = hasher.finish();
            if &actual != expected {
                return Err(ImageError::DigestMismatch {
                    what: what.to_owned(),
                    expected: expected.clone(),
                    actual,
                });
            }
            if let Some(want) = expected_size
                && want != size
            {
                return Err(ImageError::SizeMismatch {
                    what: what.to_owned(),
                    expected: want,
                    actual: size,
                });
            }
            f.sync_all().at("sync", path)?;
            Ok(())
        };
        if let Err(e) = check() {
            let _ = fs::remove_file(path);
            return Err(e);
        }
        fs::rename(path, self.path(expected)).ctx(|| format!("store {what} as {expected}"))
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        File::open(self.path(digest)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::BlobNotFound(digest.clone()),
            _ => ImageError::io(format!("open blob {digest}"), e),
        })
    }

    /// Reads a (small: manifest, config, index) blob and re-verifies its
    /// digest: these are parsed and trusted, so a bit flip on disk since it
    /// was stored must not go unnoticed.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut data)
            .ctx(|| format!("read blob {digest}"))?;
        let actual = Digest::of(&data);
        if &actual != digest {
            return Err(ImageError::DigestMismatch {
                what: format!("stored blob {}", self.path(digest).display()),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(data)
    }

    /// Removes a blob; false if it was not there.
    pub fn remove(&self, digest: &Digest) -> Result<bool> {
        match fs::remove_file(self.path(digest)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ImageError::io(format!("remove blob {digest}"), e)),
        }
    }

    /// Every blob in the store (names that are not digests are skipped).
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.blobs).at("list", &self.blobs)? {
            let e = e.at("list", &self.blobs)?;
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
}

/// A blob being written; dropped without [`BlobWriter::commit`], its
/// temporary file is removed.
pub struct BlobWriter {
    file: HashingWriter<NamedTempFile>,
    blobs: PathBuf,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter {
    /// Checks the digest (and size) of what was written and, if it matches,
    /// moves it into the store. Returns the digest.
    pub fn commit(
        self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
        what: &str,
    ) -> Result<Digest> {
        let (file, hasher): (NamedTempFile, Hasher) = self.file.into_parts();
        let size = hasher.len();
        let actual = hasher.finish();
        if let Some(expected) = expected
            && expected != &actual
        {
            return Err(ImageError::DigestMismatch {
                what: what.to_owned(),
                expected: expected.clone(),
                actual,
            });
        }
        if let Some(expected) = expected_size
            && expected != size
        {
            return Err(ImageError::SizeMismatch {
                what: what.to_owned(),
                expected,
                actual: size,
            });
        }
        let target = self.blobs.join(actual.hex());
        if !target.exists() {
            file.as_file().sync_all().ctx(|| format!("sync {what}"))?;
            file.persist(&target)
                .map_err(|e| ImageError::io(format!("store {what} as {actual}"), e.error))?;
        }
        Ok(actual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::Builder::new()
            .prefix("skiff-blobs-")
            .tempdir()
            .unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn put_stores_under_digest() {
        let (dir, s) = store();
        let d = s.put(b"hello", None, "test blob").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        let p = dir.path().join("blobs/sha256").join(d.hex());
        assert_eq!(fs::read(p).unwrap(), b"hello");
        assert_eq!(s.read(&d).unwrap(), b"hello");
        assert_eq!(s.size(&d).unwrap(), 5);
        assert_eq!(s.list().unwrap(), vec![d.clone()]);
        assert!(s.remove(&d).unwrap());
        assert!(!s.remove(&d).unwrap());
        assert!(matches!(s.read(&d), Err(ImageError::BlobNotFound(_))));
    }

    #[test]
    fn corrupted_blob_is_refused_and_leaves_nothing() {
        let (dir, s) = store();
        let claimed = Digest::of(b"the real content");
        let err = s
            .put_reader(&b"tampered content"[..], Some(&claimed), None, "layer x")
            .unwrap_err();
        assert!(err.is_corruption(), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("layer x") && msg.contains(&claimed.to_string()),
            "{msg}"
        );
        assert!(!s.contains(&claimed));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert!(s.list().unwrap().is_empty());
    }

    #[test]
    fn size_mismatch_is_refused() {
        let (_dir, s) = store();
        let d = Digest::of(b"abc");
        let err = s
            .put_reader(&b"abc"[..], Some(&d), Some(4), "blob")
            .unwrap_err();
        assert!(matches!(
            err,
            ImageError::SizeMismatch {
                expected: 4,
                actual: 3,
                ..
            }
        ));
        assert!(!s.contains(&d));
    }

    #[test]
    fn bit_rot_on_disk_is_detected_on_read() {
        let (_dir, s) = store();
        let d = s.put(b"{\"a\":1}", None, "config").unwrap();
        fs::write(s.path(&d), b"{\"a\":2}").unwrap();
        let err = s.read(&d).unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    }
}
