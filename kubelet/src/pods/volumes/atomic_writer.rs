//! Files of `configMap`, `secret`, `downwardAPI` and `projected` volumes,
//! written as upstream's AtomicWriter does, so that a program reading them
//! never sees half of an update:
//!
//! ```text
//! <dir>/..2026_01_02_15_04_05.123456789/   the files of this version
//! <dir>/..data -> ..2026_01_02_15_04_05.123456789
//! <dir>/color  -> ..data/color             one link per top-level name
//! ```
//!
//! An update writes a new timestamped directory, points a fresh
//! `..data_tmp` link at it and renames that over `..data` (one atomic
//! step), adds links for new names, removes the links of names that are
//! gone, then the old directory. The links are relative, so they resolve
//! inside the container too, where the volume is bind-mounted elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

pub const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// One file of a volume: its bytes and permission bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// A volume's files by relative path (`a/b.txt`).
pub type Payload = BTreeMap<String, FileContent>;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "invalid path {0:?}: must be relative, must not contain '..' and must not start with '..'"
    )]
    Path(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> WriteError {
    let path = path.to_path_buf();
    move |source| WriteError::Io { what, path, source }
}

/// Upstream's rules for a file's path in a volume.
pub fn validate(path: &str) -> Result<(), WriteError> {
    let bad = || WriteError::Path(path.to_string());
    let p = Path::new(path);
    if path.is_empty() || p.is_absolute() || path.starts_with("..") || path.len() > 4096 {
        return Err(bad());
    }
    for c in p.components() {
        match c {
            Component::Normal(n) if n.len() <= 255 => {}
            Component::CurDir => {}
            _ => return Err(bad()),
        }
    }
    Ok(())
}

/// Makes `dir` hold exactly `payload`; whether anything changed.
pub fn write(dir: &Path, payload: &Payload) -> Result<bool, WriteError> {
    for path in payload.keys() {
        validate(path)?;
    }
    std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let data_link = dir.join(DATA);
    let old = std::fs::read_link(&data_link).ok();
    if let Some(old) = &old
        && read_payload(&dir.join(old)).ok().as_ref() == Some(payload)
    {
        // Unchanged, but a link may still be missing (a crash half-way).
        link_names(dir, payload)?;
        return Ok(false);
    }

    let version = new_version_dir(dir)?;
    for (path, file) in payload {
        let target = version.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        std::fs::write(&target, &file.data).map_err(io_err("write", &target))?;
        // Set after writing: the umask does not apply.
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(file.mode))
            .map_err(io_err("chmod", &target))?;
    }
    let tmp = dir.join(DATA_TMP);
    let _ = std::fs::remove_file(&tmp);
    let name = version.file_name().unwrap_or_default();
    std::os::unix::fs::symlink(name, &tmp).map_err(io_err("link", &tmp))?;
    std::fs::rename(&tmp, &data_link).map_err(io_err("rename", &tmp))?;
    link_names(dir, payload)?;
    if let Some(old) = old
        && Path::new(&old) != Path::new(name)
    {
        let old = dir.join(old);
        std::fs::remove_dir_all(&old).map_err(io_err("remove", &old))?;
    }
    Ok(true)
}

/// `<name> -> ..data/<name>` for each top-level name of `payload`; links
/// of names that are not in it any more are removed.
fn link_names(dir: &Path, payload: &Payload) -> Result<(), WriteError> {
    let names: BTreeSet<String> = payload
        .keys()
        .filter_map(|p| Path::new(p).components().find_map(normal))
        .collect();
    for name in &names {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA).join(name), &link)
                .map_err(io_err("link", &link))?;
        }
    }
    for entry in std::fs::read_dir(dir)
        .map_err(io_err("read", dir))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") || names.contains(&name) {
            continue;
        }
        let path = entry.path();
        let ours = std::fs::read_link(&path).is_ok_and(|t| t.starts_with(DATA));
        if ours {
            std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
        }
    }
    Ok(())
}

fn normal(c: Component) -> Option<String> {
    match c {
        Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
        _ => None,
    }
}

/// `<dir>/..<UTC time>.<nanoseconds>`, 0755.
fn new_version_dir(dir: &Path) -> Result<PathBuf, WriteError> {
    let now = jiff::Timestamp::now();
    let stamp = now.strftime("%Y_%m_%d_%H_%M_%S").to_string();
    let mut n = now.subsec_nanosecond();
    loop {
        let path = dir.join(format!("..{stamp}.{n:09}"));
        match std::fs::create_dir(&path) {
            Ok(()) => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(io_err("chmod", &path))?;
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(io_err("create", &path)(e)),
        }
    }
}

/// What a version directory holds.
pub fn read_payload(dir: &Path) -> io::Result<Payload> {
    let mut out = Payload::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(rel);
            } else {
                let data = std::fs::read(entry.path())?;
                let mode = meta.permissions().mode() & 0o7777;
                out.insert(rel.display().to_string(), FileContent { data, mode });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &str, mode: u32) -> FileContent {
        FileContent {
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    fn versions(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..2"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_links_and_swaps_versions() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("vol");
        let first = Payload::from([
            ("color".to_string(), file("blue", 0o644)),
            ("conf/app.ini".to_string(), file("[app]\n", 0o400)),
            ("gone".to_string(), file("x", 0o644)),
        ]);
        assert!(write(&dir, &first).unwrap());
        let v1 = versions(&dir);
        assert_eq!(v1.len(), 1);
        assert_eq!(
            std::fs::read_link(dir.join(DATA)).unwrap(),
            Path::new(&v1[0])
        );
        assert_eq!(
            std::fs::read_link(dir.join("color")).unwrap(),
            Path::new("..data/color")
        );
        assert_eq!(
            std::fs::read_link(dir.join("conf")).unwrap(),
            Path::new("..data/conf")
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("conf/app.ini")).unwrap(),
            "[app]\n"
        );
        let mode = std::fs::metadata(dir.join("conf/app.ini"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o400, "the mode, whatever the umask");
        assert_eq!(read_payload(&dir.join(DATA)).unwrap(), first);

        // The same again: nothing is rewritten.
        assert!(!write(&dir, &first).unwrap());
        assert_eq!(versions(&dir), v1);

        // An update: a new version, new names linked, stale ones gone, the
        // old version removed.
        let second = Payload::from([
            ("color".to_string(), file("green", 0o644)),
            ("conf/app.ini".to_string(), file("[app]\n", 0o400)),
            ("new".to_string(), file("y", 0o600)),
        ]);
        assert!(write(&dir, &second).unwrap());
        let v2 = versions(&dir);
        assert_eq!(v2.len(), 1);
        assert_ne!(v2, v1);
        assert_eq!(std::fs::read_to_string(dir.join("color")).unwrap(), "green");
        assert_eq!(std::fs::read_to_string(dir.join("new")).unwrap(), "y");
        assert!(
            std::fs::symlink_metadata(dir.join("gone")).is_err(),
            "stale key removed"
        );
        assert!(std::fs::symlink_metadata(dir.join(DATA_TMP)).is_err());
        // A file of the user's own (not a link into ..data) is left alone.
        std::fs::write(dir.join("mine"), "keep").unwrap();
        write(&dir, &first).unwrap();
        assert!(dir.join("mine").exists());
        assert!(dir.join("gone").exists());
        assert!(!dir.join("new").exists());

        // Emptied: only the bookkeeping remains.
        write(&dir, &Payload::new()).unwrap();
        assert!(!dir.join("color").exists());
        assert!(std::fs::read_dir(dir.join(DATA)).unwrap().next().is_none());
    }

    #[test]
    fn path_rules() {
        for ok in ["a", "a/b", "a..b", "./a", "dir/.hidden"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/etc/passwd", "..data", "../x", "a/../b", "..", "a/.."] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let err = write(
            tmp.path(),
            &Payload::from([("../escape".to_string(), file("x", 0o644))]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid path \"../escape\": must be relative, must not contain '..' and must not start with '..'"
        );
    }
}
