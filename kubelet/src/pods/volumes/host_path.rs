//! `hostPath` volumes: a path of the node, checked against the volume's
//! `type` before any container uses it, with upstream's words when it does
//! not match (`hostPath type check failed: /x is not a directory`). The
//! `…OrCreate` types make what is missing: a directory (0755, with its
//! parents) or an empty file (0644, in an existing directory).

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPathType {
    /// `""`: no check.
    Unset,
    DirectoryOrCreate,
    Directory,
    FileOrCreate,
    File,
    Socket,
    CharDevice,
    BlockDevice,
}

#[derive(Debug, thiserror::Error)]
pub enum HostPathError {
    #[error("invalid HostPathType {0:?}")]
    Type(String),
    #[error("hostPath type check failed: {path} is not {what}")]
    Mismatch { path: String, what: &'static str },
    #[error("hostPath {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl HostPathType {
    pub fn parse(t: Option<&str>) -> Result<HostPathType, HostPathError> {
        Ok(match t.unwrap_or_default() {
            "" => HostPathType::Unset,
            "DirectoryOrCreate" => HostPathType::DirectoryOrCreate,
            "Directory" => HostPathType::Directory,
            "FileOrCreate" => HostPathType::FileOrCreate,
            "File" => HostPathType::File,
            "Socket" => HostPathType::Socket,
            "CharDevice" => HostPathType::CharDevice,
            "BlockDevice" => HostPathType::BlockDevice,
            other => return Err(HostPathError::Type(other.into())),
        })
    }

    /// What the check wants, as upstream's message says it.
    fn wanted(self) -> &'static str {
        match self {
            HostPathType::Unset => "anything",
            HostPathType::DirectoryOrCreate | HostPathType::Directory => "a directory",
            HostPathType::FileOrCreate | HostPathType::File => "a file",
            HostPathType::Socket => "a socket file",
            HostPathType::CharDevice => "a character device",
            HostPathType::BlockDevice => "a block device",
        }
    }
}

/// Checks `path` against `t`, creating it for the `…OrCreate` types.
/// Symbolic links are followed, as upstream's `os.Stat`.
pub fn check(path: &Path, t: HostPathType) -> Result<(), HostPathError> {
    let io_err = |source| HostPathError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(e)),
    };
    let meta = match (meta, t) {
        (_, HostPathType::Unset) => return Ok(()),
        (None, HostPathType::DirectoryOrCreate) => {
            std::fs::create_dir_all(path).map_err(io_err)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
                .map_err(io_err)?;
            return Ok(());
        }
        (None, HostPathType::FileOrCreate) => {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(io_err)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
                .map_err(io_err)?;
            return Ok(());
        }
        (Some(m), _) => Some(m),
        (None, _) => None,
    };
    let ft = meta.as_ref().map(|m| m.file_type());
    let ok = ft.is_some_and(|ft| match t {
        HostPathType::Unset => true,
        HostPathType::DirectoryOrCreate | HostPathType::Directory => ft.is_dir(),
        HostPathType::FileOrCreate | HostPathType::File => ft.is_file(),
        HostPathType::Socket => ft.is_socket(),
        HostPathType::CharDevice => ft.is_char_device(),
        HostPathType::BlockDevice => ft.is_block_device(),
    });
    if ok {
        Ok(())
    } else {
        Err(HostPathError::Mismatch {
            path: path.display().to_string(),
            what: t.wanted(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HostPathType::*;

    #[test]
    fn type_checks_on_real_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("dir");
        let file = tmp.path().join("file");
        let sock = tmp.path().join("sock");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(&file, "x").unwrap();
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let missing = tmp.path().join("missing");
        let null = Path::new("/dev/null");
        let cases: &[(&Path, HostPathType, Option<&str>)] = &[
            (&dir, Unset, None),
            (&missing, Unset, None),
            (&dir, Directory, None),
            (&file, Directory, Some("is not a directory")),
            (&missing, Directory, Some("is not a directory")),
            (&file, DirectoryOrCreate, Some("is not a directory")),
            (&file, File, None),
            (&dir, File, Some("is not a file")),
            (&dir, FileOrCreate, Some("is not a file")),
            (&sock, Socket, None),
            (&file, Socket, Some("is not a socket file")),
            (null, CharDevice, None),
            (&file, CharDevice, Some("is not a character device")),
            (null, BlockDevice, Some("is not a block device")),
        ];
        for (path, t, want) in cases {
            let got = check(path, *t);
            match want {
                None => assert!(got.is_ok(), "{path:?} {t:?}: {got:?}"),
                Some(w) => {
                    let msg = got.expect_err(&format!("{path:?} {t:?}")).to_string();
                    assert_eq!(
                        msg,
                        format!("hostPath type check failed: {} {w}", path.display())
                    );
                }
            }
        }
    }

    #[test]
    fn or_create_makes_what_is_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        check(&dir, DirectoryOrCreate).unwrap();
        let meta = std::fs::metadata(&dir).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        let file = tmp.path().join("f");
        check(&file, FileOrCreate).unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        assert!(meta.is_file() && meta.len() == 0);
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
        // An existing file is not truncated.
        std::fs::write(&file, "keep").unwrap();
        check(&file, FileOrCreate).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
        // No parents for a file, as upstream.
        assert!(check(&tmp.path().join("no/such/f"), FileOrCreate).is_err());
        assert_eq!(
            HostPathType::parse(Some("Dir")).unwrap_err().to_string(),
            "invalid HostPathType \"Dir\""
        );
        assert_eq!(HostPathType::parse(None).unwrap(), Unset);
    }
}
