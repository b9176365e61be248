//! `cp SRC DEST` where one side is `[NAMESPACE/]POD:PATH`: files in and
//! out of a container over `exec` with `tar` on both ends, as kubectl cp
//! does (the container needs a `tar`; busybox's will do).
//!
//! - Into the pod: a tar of the local file or directory, its one top
//!   entry named as DEST's last element, unpacked by `tar -xmf - -C
//!   <DEST's directory>`.
//! - Out of the pod: `tar cf - -C <SRC's directory> <SRC's name>`, whose
//!   top entry is written as DEST locally (and what is under it, for a
//!   directory). Entries that would land outside DEST are refused.

use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::exec::{exit_code, pick_container};
use crate::error::{Result, from_kube, usage};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Source: a local path or [NAMESPACE/]POD:PATH.
    pub src: String,
    /// Destination: a local path or [NAMESPACE/]POD:PATH.
    pub dest: String,
    /// Container name (default: the pod's default or first container).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
}

/// A path inside a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    pub namespace: Option<String>,
    pub pod: String,
    pub path: String,
}

/// `[ns/]pod:path`, or None for a local path (kubectl's rule: a colon
/// before any slash, and not a Windows drive or `./x:y`).
pub fn remote(spec: &str) -> Option<Remote> {
    let (head, path) = spec.split_once(':')?;
    if head.is_empty() || head.starts_with('.') || head.contains("\\") {
        return None;
    }
    let (namespace, pod) = match head.split_once('/') {
        Some((ns, pod)) if !pod.contains('/') => (Some(ns.to_string()), pod.to_string()),
        Some(_) => return None,
        None => (None, head.to_string()),
    };
    Some(Remote {
        namespace,
        pod,
        path: path.to_string(),
    })
}

/// (directory, last element) of a path in the pod: `/a/b` → (`/a`, `b`).
fn split_remote(path: &str) -> (String, String) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some(("", name)) => ("/".into(), name.into()),
        Some((dir, name)) => (dir.into(), name.into()),
        None => (".".into(), trimmed.into()),
    }
}

/// The tar of `local` with its top entry named `name`.
fn pack(local: &Path, name: &str) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let io = |e: std::io::Error| usage(format!("{}: {e}", local.display()));
    let meta = std::fs::symlink_metadata(local).map_err(io)?;
    if meta.is_dir() {
        b.append_dir_all(name, local).map_err(io)?;
    } else {
        b.append_path_with_name(local, name).map_err(io)?;
    }
    b.into_inner().map_err(io)
}

/// Unpacks `archive`, whose entries start with `top`, so that `top`
/// becomes `dest`. Refuses entries that climb out.
fn unpack(archive: &[u8], top: &str, dest: &Path) -> Result<usize> {
    let mut a = tar::Archive::new(archive);
    let io = |e: std::io::Error| usage(format!("{}: {e}", dest.display()));
    let mut n = 0;
    for entry in a.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.into_owned();
        let rest: PathBuf = match path.strip_prefix(top) {
            Ok(rest) => rest.to_path_buf(),
            Err(_) => continue,
        };
        if rest
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(usage(format!(
                "illegal file path in the archive: {}",
                path.display()
            )));
        }
        let target = if rest.as_os_str().is_empty() {
            dest.to_path_buf()
        } else {
            dest.join(&rest)
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        entry.unpack(&target).map_err(io)?;
        n += 1;
    }
    Ok(n)
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let (from, to) = (remote(&args.src), remote(&args.dest));
    let (r, inbound) = match (&from, &to) {
        (None, Some(r)) => (r.clone(), true),
        (Some(r), None) => (r.clone(), false),
        (Some(_), Some(_)) => {
            return Err(usage(
                "one of src or dest must be a local file specification",
            ));
        }
        (None, None) => {
            return Err(usage(
                "one of src or dest must be a remote file specification",
            ));
        }
    };
    if r.path.is_empty() {
        return Err(usage("filepath can not be empty"));
    }
    let ns = r
        .namespace
        .clone()
        .unwrap_or_else(|| session.namespace().to_string());
    let pods: Api<Pod> = Api::namespaced(session.conn.client.clone(), &ns);
    let pod = pods
        .get(&r.pod)
        .await
        .map_err(|e| from_kube(e, &session.conn.server))?;
    let (container, _) = pick_container(&pod, args.container.as_deref())?;
    let (dir, name) = split_remote(&r.path);
    let command: Vec<String> = if inbound {
        ["tar", "-xmf", "-", "-C", &dir].map(String::from).to_vec()
    } else {
        ["tar", "cf", "-", "-C", &dir, &name]
            .map(String::from)
            .to_vec()
    };
    let params = AttachParams {
        container: Some(container),
        stdin: inbound,
        stdout: true,
        stderr: true,
        ..AttachParams::default()
    };
    let mut process = pods
        .exec(&r.pod, command, &params)
        .await
        .map_err(|e| from_kube(e, &session.conn.server))?;
    let feed = if inbound {
        let archive = pack(Path::new(&args.src), &name)?;
        process.stdin().map(|mut remote| {
            tokio::spawn(async move {
                let _ = remote.write_all(&archive).await;
                let _ = remote.shutdown().await;
            })
        })
    } else {
        None
    };
    let stderr = process.stderr().map(|mut remote| {
        tokio::spawn(async move {
            let mut text = Vec::new();
            let _ = remote.read_to_end(&mut text).await;
            text
        })
    });
    let mut received = Vec::new();
    if let Some(mut out) = process.stdout() {
        out.read_to_end(&mut received)
            .await
            .map_err(|e| usage(e.to_string()))?;
    }
    if let Some(f) = feed {
        let _ = f.await;
    }
    let status = process.take_status();
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    let errors = match stderr {
        Some(t) => t.await.unwrap_or_default(),
        None => Vec::new(),
    };
    // The container's tar talks on stderr ("Removing leading '/'"), as kubectl shows it.
    let errors = String::from_utf8_lossy(&errors);
    if !errors.trim().is_empty() {
        eprint!("{errors}");
    }
    exit_code(status.as_ref())?;
    if !inbound && unpack(&received, &name, Path::new(&args.dest))? == 0 {
        return Err(usage(format!("{}: No such file or directory", r.path)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_specs_are_told_from_local_paths() {
        let r = |ns: Option<&str>, pod: &str, path: &str| Remote {
            namespace: ns.map(str::to_string),
            pod: pod.into(),
            path: path.into(),
        };
        assert_eq!(remote("web:/tmp/x"), Some(r(None, "web", "/tmp/x")));
        assert_eq!(
            remote("shop/web:/tmp/x"),
            Some(r(Some("shop"), "web", "/tmp/x"))
        );
        assert_eq!(remote("/tmp/x"), None);
        assert_eq!(remote("./a:b"), None);
        assert_eq!(remote("a/b/c:d"), None);
        assert_eq!(
            split_remote("/var/www/index.html"),
            ("/var/www".into(), "index.html".into())
        );
        assert_eq!(split_remote("/top/"), ("/".into(), "top".into()));
        assert_eq!(split_remote("rel"), (".".into(), "rel".into()));
    }

    #[test]
    fn what_is_packed_unpacks_under_the_new_name_and_escapes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("a.txt"), "A").unwrap();
        std::fs::write(src.join("sub/b.txt"), "B").unwrap();
        let tarball = pack(&src, "copy").unwrap();
        let dest = dir.path().join("out");
        assert!(unpack(&tarball, "copy", &dest).unwrap() >= 3);
        assert_eq!(
            std::fs::read_to_string(dest.join("sub/b.txt")).unwrap(),
            "B"
        );
        // A hostile archive: an entry climbing out of DEST.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        let name = b"copy/../../evil";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let evil = b.into_inner().unwrap();
        assert!(unpack(&evil, "copy", &dir.path().join("x")).is_err());
        assert!(!dir.path().join("evil").exists());
    }
}
