//! Applying one layer tar to an empty directory, in the form overlayfs
//! wants for a lower dir.
//!
//! The OCI layer format and overlayfs disagree on how deletions look:
//!
//! | layer tar                  | overlayfs lower dir                          |
//! |----------------------------|----------------------------------------------|
//! | `dir/.wh.name` (empty file)| `dir/name` as a character device 0/0         |
//! | `dir/.wh..wh..opq`         | xattr `trusted.overlay.opaque=y` on `dir`    |
//!
//! Everything else is extracted as it is: modes (with setuid/setgid/sticky),
//! owners (when running as root), xattrs (pax `SCHILY.xattr.*`), mtimes,
//! symlinks, hard links, device nodes and FIFOs.
//!
//! A layer comes from the network or from a file someone handed us, so
//! every entry is checked before it touches the disk: absolute paths, `..`
//! components, and paths whose parent is a symlink (which could point
//! anywhere on the host) are refused, and so are hard links to anything not
//! in this same layer.
//!
//! The filesystem side is the [`LayerFs`] trait, so the conversion rules can
//! be tested unprivileged against a recording in-memory tree
//! ([`RecordingFs`]); [`DiskFs`] does the real syscalls.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::error::{ImageError, Result};

/// The opaque-directory marker of the layer format.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The prefix of whiteout files in the layer format.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The xattr overlayfs reads to treat a directory as opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What is at a path, as far as the unpacker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File,
    Symlink,
    /// Device nodes, FIFOs, whiteouts.
    Special,
}

/// Kinds of special files a layer can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Char,
    Block,
    Fifo,
}

/// Filesystem operations, all on paths relative to the layer's root (never
/// absolute, never with `..`; the empty path is the root itself).
pub trait LayerFs {
    /// `lstat`: what is at `path`, without following a final symlink.
    fn kind(&self, path: &Path) -> io::Result<Option<NodeKind>>;
    /// Removes a file, symlink, special file or a whole directory tree.
    fn remove(&mut self, path: &Path) -> io::Result<()>;
    fn mkdir(&mut self, path: &Path) -> io::Result<()>;
    /// Creates a new regular file (never through an existing one) with
    /// `data`; returns the bytes written.
    fn write_file(&mut self, path: &Path, data: &mut dyn Read) -> io::Result<u64>;
    fn symlink(&mut self, path: &Path, target: &Path) -> io::Result<()>;
    fn hard_link(&mut self, path: &Path, target: &Path) -> io::Result<()>;
    fn mknod(&mut self, path: &Path, kind: DeviceKind, major: u32, minor: u32) -> io::Result<()>;
    /// An overlayfs whiteout: a character device 0/0.
    fn whiteout(&mut self, path: &Path) -> io::Result<()>;
    /// Marks a directory opaque for overlayfs.
    fn set_opaque(&mut self, dir: &Path) -> io::Result<()>;
    fn set_xattr(&mut self, path: &Path, name: &OsStr, value: &[u8]) -> io::Result<()>;
    /// `lchown`.
    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> io::Result<()>;
    /// `chmod` (never called on symlinks).
    fn chmod(&mut self, path: &Path, mode: u32) -> io::Result<()>;
    /// Sets atime and mtime, without following symlinks.
    fn set_mtime(&mut self, path: &Path, mtime: u64) -> io::Result<()>;
}

/// How to apply a layer.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Apply tar owners (needs root; otherwise files belong to whoever
    /// unpacks, which is all an unprivileged user can do).
    pub preserve_owners: bool,
    /// A name for error messages (the layer's digest).
    pub layer: String,
}

/// What applying a layer found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    pub entries: u64,
    /// Bytes of regular file content.
    pub bytes: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
}

/// Applies the (uncompressed) layer tar read from `tar` onto `fs`.
pub fn apply_layer(
    tar: impl Read,
    fs: &mut dyn LayerFs,
    opts: &ApplyOptions,
) -> Result<ApplyStats> {
    let mut archive = tar::Archive::new(tar);
    let mut stats = ApplyStats::default();
    // Directory modes and mtimes are applied at the end: creating children
    // changes a directory's mtime, and a read-only directory would stop an
    // unprivileged unpacker from filling it.
    let mut dirs: Vec<(PathBuf, u32, u64)> = Vec::new();
    let io_err = |what: &str, path: &Path, e: io::Error| {
        ImageError::io(
            format!("layer {}: {what} {}", opts.layer, path.display()),
            e,
        )
    };
    let entries = archive
        .entries()
        .map_err(|e| ImageError::io(format!("layer {}: read tar", opts.layer), e))?;
    for entry in entries {
        let mut entry = entry
            .map_err(|e| ImageError::io(format!("layer {}: read tar entry", opts.layer), e))?;
        stats.entries += 1;
        let raw = entry.path_bytes().into_owned();
        let refuse = |reason: &str| ImageError::UnsafePath {
            layer: opts.layer.clone(),
            path: String::from_utf8_lossy(&raw).into_owned(),
            reason: reason.to_owned(),
        };
        let path = clean_path(&raw).map_err(&refuse)?;
        let header = entry.header().clone();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let uid = header.uid().unwrap_or(0);
        let gid = header.gid().unwrap_or(0);
        let mtime = header.mtime().unwrap_or(0);
        let (uid, gid) = (
            u32::try_from(uid).map_err(|_| refuse("uid out of range"))?,
            u32::try_from(gid).map_err(|_| refuse("gid out of range"))?,
        );

        if path.as_os_str().is_empty() {
            // The layer root ("./"): only its attributes matter.
            if kind == EntryType::Directory {
                if opts.preserve_owners {
                    fs.chown(&path, uid, gid)
                        .map_err(|e| io_err("chown", &path, e))?;
                }
                dirs.push((path, mode, mtime));
            }
            continue;
        }
        ensure_parents(fs, &path).map_err(|e| match e {
            ParentError::Refused(r) => refuse(&r),
            ParentError::Io(p, e) => io_err("create parent directory", &p, e),
        })?;

        let name = path.file_name().unwrap_or_default().as_bytes();
        if name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            let parent = path.parent().unwrap_or(Path::new(""));
            if name == OPAQUE_MARKER.as_bytes() {
                fs.set_opaque(parent)
                    .map_err(|e| io_err("mark opaque", parent, e))?;
                stats.opaque_dirs += 1;
            } else if name.starts_with(b".wh..wh.") {
                // Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): no
                // meaning for overlayfs.
                tracing::debug!(layer = %opts.layer, path = %path.display(), "skipping aufs metadata");
            } else {
                let hidden = &name[WHITEOUT_PREFIX.len()..];
                if hidden.is_empty() || hidden == b"." || hidden == b".." {
                    return Err(refuse("whiteout of an invalid name"));
                }
                let target = parent.join(OsStr::from_bytes(hidden));
                // A whiteout only hides lower layers; if this layer also
                // has the file, it already hides them and must stay.
                if fs
                    .kind(&target)
                    .map_err(|e| io_err("stat", &target, e))?
                    .is_none()
                {
                    fs.whiteout(&target)
                        .map_err(|e| io_err("create whiteout", &target, e))?;
                    stats.whiteouts += 1;
                }
            }
            continue;
        }

        let existing = fs.kind(&path).map_err(|e| io_err("stat", &path, e))?;
        // Replacing anything but a directory by a directory (or anything by
        // a non-directory) removes what was there first (the spec's
        // "changeset over existing files").
        let replace = |fs: &mut dyn LayerFs| -> Result<()> {
            if existing.is_some() {
                fs.remove(&path).map_err(|e| io_err("remove", &path, e))?;
            }
            Ok(())
        };
        let xattrs = read_xattrs(&mut entry).map_err(|e| io_err("read xattrs of", &path, e))?;
        match kind {
            EntryType::Directory => {
                if existing != Some(NodeKind::Dir) {
                    replace(fs)?;
                    fs.mkdir(&path).map_err(|e| io_err("mkdir", &path, e))?;
                }
                if opts.preserve_owners {
                    fs.chown(&path, uid, gid)
                        .map_err(|e| io_err("chown", &path, e))?;
                }
                set_xattrs(fs, &path, &xattrs, opts)?;
                dirs.push((path, mode, mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                replace(fs)?;
                let n = fs
                    .write_file(&path, &mut entry)
                    .map_err(|e| io_err("write", &path, e))?;
                stats.bytes += n;
                // chown before chmod (chown clears setuid bits) and before
                // xattrs (chown clears security.capability).
                if opts.preserve_owners {
                    fs.chown(&path, uid, gid)
                        .map_err(|e| io_err("chown", &path, e))?;
                }
                fs.chmod(&path, mode)
                    .map_err(|e| io_err("chmod", &path, e))?;
                set_xattrs(fs, &path, &xattrs, opts)?;
                fs.set_mtime(&path, mtime)
                    .map_err(|e| io_err("set mtime of", &path, e))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("symlink without a target"))?;
                let target = PathBuf::from(OsStr::from_bytes(&target));
                replace(fs)?;
                // The target is stored as is: it is resolved inside the
                // container's root at run time, and the unpacker itself
                // never follows it (parents are checked for symlinks).
                fs.symlink(&path, &target)
                    .map_err(|e| io_err("symlink", &path, e))?;
                if opts.preserve_owners {
                    fs.chown(&path, uid, gid)
                        .map_err(|e| io_err("chown", &path, e))?;
                }
                fs.set_mtime(&path, mtime)
                    .map_err(|e| io_err("set mtime of", &path, e))?;
            }
            EntryType::Link => {
                let raw_target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refuse("hard link without a target"))?;
                let target = clean_path(&raw_target)
                    .map_err(|r| refuse(&format!("hard link target: {r}")))?;
                if target == path {
                    continue;
                }
                check_no_symlink_parents(fs, &target).map_err(|e| match e {
                    ParentError::Refused(r) => refuse(&format!("hard link target: {r}")),
                    ParentError::Io(p, e) => io_err("stat", &p, e),
                })?;
                match fs.kind(&target).map_err(|e| io_err("stat", &target, e))? {
                    None => {
                        return Err(refuse(&format!(
                            "hard link to {:?}, which is not in this layer",
                            target.display()
                        )));
                    }
                    Some(NodeKind::Dir) => return Err(refuse("hard link to a directory")),
                    Some(_) => {}
                }
                replace(fs)?;
                fs.hard_link(&path, &target)
                    .map_err(|e| io_err("hard link", &path, e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let dev = match kind {
                    EntryType::Char => DeviceKind::Char,
                    EntryType::Block => DeviceKind::Block,
                    _ => DeviceKind::Fifo,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                replace(fs)?;
                fs.mknod(&path, dev, major, minor)
                    .map_err(|e| io_err("mknod", &path, e))?;
                if opts.preserve_owners {
                    fs.chown(&path, uid, gid)
                        .map_err(|e| io_err("chown", &path, e))?;
                }
                fs.chmod(&path, mode)
                    .map_err(|e| io_err("chmod", &path, e))?;
                set_xattrs(fs, &path, &xattrs, opts)?;
                fs.set_mtime(&path, mtime)
                    .map_err(|e| io_err("set mtime of", &path, e))?;
            }
            other => {
                tracing::warn!(layer = %opts.layer, path = %path.display(), kind = ?other, "skipping tar entry of unsupported type");
            }
        }
    }
    // Deepest first, so setting a parent's mtime is the last change to it.
    dirs.sort_by_key(|(p, _, _)| std::cmp::Reverse(p.components().count()));
    for (path, mode, mtime) in dirs {
        fs.chmod(&path, mode)
            .map_err(|e| io_err("chmod", &path, e))?;
        fs.set_mtime(&path, mtime)
            .map_err(|e| io_err("set mtime of", &path, e))?;
    }
    Ok(stats)
}

/// A tar path as a clean relative path: leading `./` and `/.` parts
/// dropped; absolute paths and `..` refused.
pub fn clean_path(raw: &[u8]) -> Result<PathBuf, &'static str> {
    if raw.first() == Some(&b'/') {
        return Err("absolute path");
    }
    if raw.contains(&0) {
        return Err("NUL byte in path");
    }
    let mut out = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains '..'"),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
        }
    }
    Ok(out)
}

enum ParentError {
    Refused(String),
    Io(PathBuf, io::Error),
}

/// Refuses a path whose parents include a symlink or a non-directory.
fn check_no_symlink_parents(fs: &dyn LayerFs, path: &Path) -> Result<(), ParentError> {
    let mut prefix = PathBuf::new();
    let parent = path.parent().unwrap_or(Path::new(""));
    for c in parent.components() {
        prefix.push(c);
        match fs.kind(&prefix) {
            Ok(Some(NodeKind::Dir)) | Ok(None) => {}
            Ok(Some(NodeKind::Symlink)) => {
                return Err(ParentError::Refused(format!(
                    "path goes through the symlink {:?}",
                    prefix.display()
                )));
            }
            Ok(Some(_)) => {
                return Err(ParentError::Refused(format!(
                    "parent {:?} is not a directory",
                    prefix.display()
                )));
            }
            Err(e) => return Err(ParentError::Io(prefix, e)),
        }
    }
    Ok(())
}

/// Creates missing parents (tars need not list every directory), refusing
/// to go through a symlink.
fn ensure_parents(fs: &mut dyn LayerFs, path: &Path) -> Result<(), ParentError> {
    check_no_symlink_parents(fs, path)?;
    let mut prefix = PathBuf::new();
    let parent = path.parent().unwrap_or(Path::new(""));
    for c in parent.components() {
        prefix.push(c);
        match fs.kind(&prefix) {
            Ok(Some(_)) => {}
            Ok(None) => {
                fs.mkdir(&prefix)
                    .map_err(|e| ParentError::Io(prefix.clone(), e))?;
                fs.chmod(&prefix, 0o755)
                    .map_err(|e| ParentError::Io(prefix.clone(), e))?;
            }
            Err(e) => return Err(ParentError::Io(prefix, e)),
        }
    }
    Ok(())
}

fn read_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(OsString, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                out.push((
                    OsStr::from_bytes(name).to_owned(),
                    ext.value_bytes().to_vec(),
                ));
            }
        }
    }
    Ok(out)
}

fn set_xattrs(
    fs: &mut dyn LayerFs,
    path: &Path,
    xattrs: &[(OsString, Vec<u8>)],
    opts: &ApplyOptions,
) -> Result<()> {
    for (name, value) in xattrs {
        // overlayfs' own attributes must only come from whiteouts: a layer
        // that set them directly could make overlayfs redirect lookups.
        if name.as_bytes().starts_with(b"trusted.overlay.") {
            tracing::warn!(layer = %opts.layer, path = %path.display(), name = ?name, "ignoring overlayfs xattr in layer");
            continue;
        }
        fs.set_xattr(path, name, value).map_err(|e| {
            ImageError::io(
                format!(
                    "layer {}: set xattr {:?} on {}",
                    opts.layer,
                    name,
                    path.display()
                ),
                e,
            )
        })?;
    }
    Ok(())
}

/// The real filesystem, under `root` (a fresh private directory: the parent
/// checks above are only race-free because nobody else writes there).
#[derive(Debug)]
pub struct DiskFs {
    root: PathBuf,
}

impl DiskFs {
    pub fn new(root: impl Into<PathBuf>) -> DiskFs {
        DiskFs { root: root.into() }
    }

    fn p(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }
}

fn nix_io(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl LayerFs for DiskFs {
    fn kind(&self, path: &Path) -> io::Result<Option<NodeKind>> {
        match fs::symlink_metadata(self.p(path)) {
            Ok(m) => {
                let t = m.file_type();
                Ok(Some(if t.is_dir() {
                    NodeKind::Dir
                } else if t.is_symlink() {
                    NodeKind::Symlink
                } else if t.is_file() {
                    NodeKind::File
                } else {
                    NodeKind::Special
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn remove(&mut self, path: &Path) -> io::Result<()> {
        let p = self.p(path);
        if fs::symlink_metadata(&p)?.is_dir() {
            fs::remove_dir_all(p)
        } else {
            fs::remove_file(p)
        }
    }

    fn mkdir(&mut self, path: &Path) -> io::Result<()> {
        fs::create_dir(self.p(path))
    }

    fn write_file(&mut self, path: &Path, data: &mut dyn Read) -> io::Result<u64> {
        // create_new: O_EXCL never follows a symlink at the final component.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(self.p(path))?;
        io::copy(data, &mut f)
    }

    fn symlink(&mut self, path: &Path, target: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, self.p(path))
    }

    fn hard_link(&mut self, path: &Path, target: &Path) -> io::Result<()> {
        // linkat without AT_SYMLINK_FOLLOW: a link to a symlink links the
        // symlink itself.
        fs::hard_link(self.p(target), self.p(path))
    }

    fn mknod(&mut self, path: &Path, kind: DeviceKind, major: u32, minor: u32) -> io::Result<()> {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        let flag = match kind {
            DeviceKind::Char => SFlag::S_IFCHR,
            DeviceKind::Block => SFlag::S_IFBLK,
            DeviceKind::Fifo => SFlag::S_IFIFO,
        };
        mknod(
            &self.p(path),
            flag,
            Mode::from_bits_truncate(0o600),
            makedev(major.into(), minor.into()),
        )
        .map_err(nix_io)
    }

    fn whiteout(&mut self, path: &Path) -> io::Result<()> {
        use nix::sys::stat::{Mode, SFlag, mknod};
        mknod(&self.p(path), SFlag::S_IFCHR, Mode::empty(), 0).map_err(nix_io)
    }

    fn set_opaque(&mut self, dir: &Path) -> io::Result<()> {
        xattr::set(self.p(dir), OVERLAY_OPAQUE_XATTR, b"y")
    }

    fn set_xattr(&mut self, path: &Path, name: &OsStr, value: &[u8]) -> io::Result<()> {
        xattr::set(self.p(path), name, value)
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        std::os::unix::fs::lchown(self.p(path), Some(uid), Some(gid))
    }

    fn chmod(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        fs::set_permissions(self.p(path), fs::Permissions::from_mode(mode))
    }

    fn set_mtime(&mut self, path: &Path, mtime: u64) -> io::Result<()> {
        use nix::sys::time::TimeVal;
        let t = TimeVal::new(i64::try_from(mtime).unwrap_or(i64::MAX), 0);
        nix::sys::stat::lutimes(&self.p(path), &t, &t).map_err(nix_io)
    }
}

/// One recorded operation of [`RecordingFs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Remove(String),
    Mkdir(String),
    Write(String, Vec<u8>),
    Symlink(String, String),
    HardLink(String, String),
    Mknod(String, DeviceKind, u32, u32),
    Whiteout(String),
    Opaque(String),
    Xattr(String, String, Vec<u8>),
    Chown(String, u32, u32),
    Chmod(String, u32),
    Mtime(String, u64),
}

/// An in-memory [`LayerFs`] that records every operation: lets the
/// conversion rules be tested without root and without touching the disk.
#[derive(Debug, Default)]
pub struct RecordingFs {
    pub ops: Vec<Op>,
    pub nodes: BTreeMap<PathBuf, NodeKind>,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

impl LayerFs for RecordingFs {
    fn kind(&self, path: &Path) -> io::Result<Option<NodeKind>> {
        if path.as_os_str().is_empty() {
            return Ok(Some(NodeKind::Dir));
        }
        Ok(self.nodes.get(path).copied())
    }
    fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.nodes.retain(|p, _| !p.starts_with(path));
        self.ops.push(Op::Remove(s(path)));
        Ok(())
    }
    fn mkdir(&mut self, path: &Path) -> io::Result<()> {
        self.nodes.insert(path.to_owned(), NodeKind::Dir);
        self.ops.push(Op::Mkdir(s(path)));
        Ok(())
    }
    fn write_file(&mut self, path: &Path, data: &mut dyn Read) -> io::Result<u64> {
        let mut buf = Vec::new();
        data.read_to_end(&mut buf)?;
        self.nodes.insert(path.to_owned(), NodeKind::File);
        let n = buf.len() as u64;
        self.ops.push(Op::Write(s(path), buf));
        Ok(n)
    }
    fn symlink(&mut self, path: &Path, target: &Path) -> io::Result<()> {
        self.nodes.insert(path.to_owned(), NodeKind::Symlink);
        self.ops.push(Op::Symlink(s(path), s(target)));
        Ok(())
    }
    fn hard_link(&mut self, path: &Path, target: &Path) -> io::Result<()> {
        let k = self.nodes.get(target).copied().unwrap_or(NodeKind::File);
        self.nodes.insert(path.to_owned(), k);
        self.ops.push(Op::HardLink(s(path), s(target)));
        Ok(())
    }
    fn mknod(&mut self, path: &Path, kind: DeviceKind, major: u32, minor: u32) -> io::Result<()> {
        self.nodes.insert(path.to_owned(), NodeKind::Special);
        self.ops.push(Op::Mknod(s(path), kind, major, minor));
        Ok(())
    }
    fn whiteout(&mut self, path: &Path) -> io::Result<()> {
        self.nodes.insert(path.to_owned(), NodeKind::Special);
        self.ops.push(Op::Whiteout(s(path)));
        Ok(())
    }
    fn set_opaque(&mut self, dir: &Path) -> io::Result<()> {
        self.ops.push(Op::Opaque(s(dir)));
        Ok(())
    }
    fn set_xattr(&mut self, path: &Path, name: &OsStr, value: &[u8]) -> io::Result<()> {
        self.ops.push(Op::Xattr(
            s(path),
            name.to_string_lossy().into_owned(),
            value.to_vec(),
        ));
        Ok(())
    }
    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> io::Result<()> {
        self.ops.push(Op::Chown(s(path), uid, gid));
        Ok(())
    }
    fn chmod(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        self.ops.push(Op::Chmod(s(path), mode));
        Ok(())
    }
    fn set_mtime(&mut self, path: &Path, mtime: u64) -> io::Result<()> {
        self.ops.push(Op::Mtime(s(path), mtime));
        Ok(())
    }
}

/// Tests, with a small builder of layer tars.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) enum E<'a> {
        Dir(&'a str, u32),
        File(&'a str, u32, &'a [u8]),
        Owned(&'a str, u32, u32, u32, &'a [u8]),
        Link(&'a str, &'a str),
        Sym(&'a str, &'a str),
        Char(&'a str, u32, u32),
        Xattr(&'a str, &'a str, &'a [u8]),
        /// A raw path, bypassing the tar crate's own checks.
        Raw(&'a [u8], EntryType, &'a [u8]),
    }

    pub(crate) fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(1_700_000_000);
            match e {
                E::Dir(p, m) => {
                    h.set_entry_type(EntryType::Directory);
                    h.set_mode(*m);
                    h.set_size(0);
                    b.append_data(&mut h, p, &[][..]).unwrap();
                }
                E::File(p, m, d) => {
                    h.set_entry_type(EntryType::Regular);
                    h.set_mode(*m);
                    h.set_size(d.len() as u64);
                    b.append_data(&mut h, p, *d).unwrap();
                }
                E::Owned(p, m, u, g, d) => {
                    h.set_entry_type(EntryType::Regular);
                    h.set_mode(*m);
                    h.set_uid((*u).into());
                    h.set_gid((*g).into());
                    h.set_size(d.len() as u64);
                    b.append_data(&mut h, p, *d).unwrap();
                }
                E::Link(p, t) => {
                    h.set_entry_type(EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, p, t).unwrap();
                }
                E::Sym(p, t) => {
                    h.set_entry_type(EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    b.append_link(&mut h, p, t).unwrap();
                }
                E::Char(p, maj, min) => {
                    h.set_entry_type(EntryType::Char);
                    h.set_mode(0o666);
                    h.set_device_major(*maj).unwrap();
                    h.set_device_minor(*min).unwrap();
                    h.set_size(0);
                    b.append_data(&mut h, p, &[][..]).unwrap();
                }
                E::Xattr(p, name, value) => {
                    b.append_pax_extensions([(format!("SCHILY.xattr.{name}").as_str(), *value)])
                        .unwrap();
                    h.set_entry_type(EntryType::Regular);
                    h.set_mode(0o644);
                    h.set_size(0);
                    b.append_data(&mut h, p, &[][..]).unwrap();
                }
                E::Raw(p, t, d) => {
                    h.set_entry_type(*t);
                    h.set_mode(0o644);
                    h.set_size(d.len() as u64);
                    let name = &mut h.as_old_mut().name;
                    name[..p.len()].copy_from_slice(p);
                    h.set_cksum();
                    b.append(&h, *d).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn apply(entries: &[E<'_>]) -> Result<RecordingFs> {
        let mut fs = RecordingFs::default();
        apply_layer(
            &tar_of(entries)[..],
            &mut fs,
            &ApplyOptions {
                preserve_owners: true,
                layer: "test".into(),
            },
        )?;
        Ok(fs)
    }

    fn has(fs: &RecordingFs, op: Op) -> bool {
        fs.ops.contains(&op)
    }

    #[test]
    fn whiteouts_become_char_devices_and_opaque_markers_xattrs() {
        let fs = apply(&[
            E::Dir("etc/", 0o755),
            E::File("etc/.wh.passwd", 0o644, b""),
            E::Dir("usr/", 0o755),
            E::Dir("usr/share/", 0o755),
            E::File("usr/share/.wh..wh..opq", 0o644, b""),
            E::File("usr/share/new", 0o644, b"n"),
        ])
        .unwrap();
        assert!(has(&fs, Op::Whiteout("etc/passwd".into())), "{:?}", fs.ops);
        assert!(has(&fs, Op::Opaque("usr/share".into())), "{:?}", fs.ops);
        // The markers themselves never appear as files.
        assert!(
            !fs.ops
                .iter()
                .any(|o| matches!(o, Op::Write(p, _) if p.contains(".wh.")))
        );
        assert!(has(&fs, Op::Write("usr/share/new".into(), b"n".to_vec())));
    }

    #[test]
    fn opaque_marker_after_siblings_still_marks_the_dir() {
        let fs = apply(&[
            E::Dir("a/", 0o755),
            E::Dir("a/b/", 0o755),
            E::File("a/b/foo", 0o644, b"x"),
            E::File("a/.wh..wh..opq", 0o644, b""),
        ])
        .unwrap();
        assert!(has(&fs, Op::Opaque("a".into())));
        assert!(has(&fs, Op::Write("a/b/foo".into(), b"x".to_vec())));
    }

    #[test]
    fn whiteout_does_not_hide_a_file_of_the_same_layer() {
        let fs = apply(&[
            E::File("f", 0o644, b"mine"),
            E::File(".wh.f", 0o644, b""),
            E::File(".wh.g", 0o644, b""),
            E::File("g", 0o644, b"later"),
        ])
        .unwrap();
        assert!(!has(&fs, Op::Whiteout("f".into())), "{:?}", fs.ops);
        // A whiteout followed by the file: the file replaces the whiteout.
        let g_ops: Vec<_> = fs
            .ops
            .iter()
            .filter(|o| matches!(o, Op::Whiteout(p) | Op::Remove(p) | Op::Write(p, _) if p == "g"))
            .collect();
        assert_eq!(
            g_ops,
            vec![
                &Op::Whiteout("g".into()),
                &Op::Remove("g".into()),
                &Op::Write("g".into(), b"later".to_vec())
            ]
        );
        assert_eq!(fs.nodes.get(Path::new("g")), Some(&NodeKind::File));
    }

    #[test]
    fn aufs_metadata_is_skipped() {
        let fs = apply(&[E::File(".wh..wh.plnk", 0o644, b"")]).unwrap();
        assert!(
            fs.ops.is_empty()
                || !fs
                    .ops
                    .iter()
                    .any(|o| matches!(o, Op::Whiteout(_) | Op::Write(..)))
        );
    }

    #[test]
    fn metadata_order_chown_then_chmod_then_xattr() {
        let fs = apply(&[
            E::Owned("bin/su", 0o4755, 0, 0, b"su"),
            E::Owned("home/u/f", 0o600, 1000, 1001, b"f"),
            E::Xattr("bin/ping", "security.capability", b"\x01\x02"),
        ])
        .unwrap();
        let su: Vec<&Op> = fs
            .ops
            .iter()
            .filter(|o| format!("{o:?}").contains("\"bin/su\""))
            .collect();
        assert_eq!(
            su,
            vec![
                &Op::Write("bin/su".into(), b"su".to_vec()),
                &Op::Chown("bin/su".into(), 0, 0),
                &Op::Chmod("bin/su".into(), 0o4755),
                &Op::Mtime("bin/su".into(), 1_700_000_000),
            ]
        );
        assert!(has(&fs, Op::Chown("home/u/f".into(), 1000, 1001)));
        // Implicit parents are created 0755.
        assert!(has(&fs, Op::Mkdir("home/u".into())));
        assert!(has(&fs, Op::Chmod("home/u".into(), 0o755)));
        let ping: Vec<&Op> = fs
            .ops
            .iter()
            .filter(|o| format!("{o:?}").contains("\"bin/ping\""))
            .collect();
        assert!(matches!(ping[1], Op::Chown(..)));
        assert!(matches!(ping[2], Op::Chmod(..)));
        assert_eq!(
            ping[3],
            &Op::Xattr("bin/ping".into(), "security.capability".into(), vec![1, 2])
        );
    }

    #[test]
    fn overlay_xattrs_in_a_layer_are_ignored() {
        let fs = apply(&[E::Xattr("d", "trusted.overlay.redirect", b"/etc")]).unwrap();
        assert!(!fs.ops.iter().any(|o| matches!(o, Op::Xattr(..))));
    }

    #[test]
    fn links_devices_and_dirs() {
        let fs = apply(&[
            E::Dir("d/", 0o1777),
            E::File("d/a", 0o644, b"a"),
            E::Link("d/b", "d/a"),
            E::Sym("d/c", "/etc/passwd"),
            E::Char("dev/null", 1, 3),
        ])
        .unwrap();
        assert!(has(&fs, Op::HardLink("d/b".into(), "d/a".into())));
        // Symlink targets are kept verbatim, even absolute ones.
        assert!(has(&fs, Op::Symlink("d/c".into(), "/etc/passwd".into())));
        assert!(has(
            &fs,
            Op::Mknod("dev/null".into(), DeviceKind::Char, 1, 3)
        ));
        // Directory modes are applied after the children were written.
        let chmod_d = fs
            .ops
            .iter()
            .position(|o| o == &Op::Chmod("d".into(), 0o1777))
            .unwrap();
        let write_a = fs
            .ops
            .iter()
            .position(|o| matches!(o, Op::Write(p, _) if p == "d/a"))
            .unwrap();
        assert!(chmod_d > write_a);
    }

    #[test]
    fn escaping_entries_are_refused() {
        let cases: Vec<(Vec<E<'_>>, &str)> = vec![
            (
                vec![E::Raw(b"../evil", EntryType::Regular, b"x")],
                "path contains '..'",
            ),
            (
                vec![E::Raw(b"a/../../evil", EntryType::Regular, b"x")],
                "path contains '..'",
            ),
            (
                vec![E::Raw(b"/etc/evil", EntryType::Regular, b"x")],
                "absolute path",
            ),
            (
                vec![E::Sym("l", "/etc"), E::File("l/passwd", 0o644, b"x")],
                "through the symlink \"l\"",
            ),
            (
                vec![E::Sym("l", "../.."), E::Dir("l/x/", 0o755)],
                "through the symlink",
            ),
            (vec![E::Link("h", "etc/shadow")], "not in this layer"),
            (
                vec![E::File("f", 0o644, b""), E::File("f/g", 0o644, b"")],
                "not a directory",
            ),
            (vec![E::File(".wh...", 0o644, b"")], "invalid name"),
        ];
        for (entries, want) in cases {
            let err = apply(&entries).expect_err(want).to_string();
            assert!(err.contains(want), "got {err:?}, want {want:?}");
            assert!(err.contains("refused"), "{err}");
        }
    }

    #[test]
    fn hard_link_through_symlink_is_refused() {
        let err = apply(&[E::Sym("l", "/etc"), E::Link("h", "l/shadow")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("hard link target"), "{err}");
    }

    #[test]
    fn clean_path_table() {
        let ok: &[(&[u8], &str)] = &[
            (b"./", ""),
            (b".", ""),
            (b"./etc/passwd", "etc/passwd"),
            (b"etc//x/./y/", "etc/x/y"),
        ];
        for (raw, want) in ok {
            assert_eq!(clean_path(raw).unwrap(), PathBuf::from(want));
        }
        for raw in [&b"/x"[..], b"..", b"a/..", b"a/\0b"] {
            assert!(clean_path(raw).is_err(), "{raw:?}");
        }
    }
}
