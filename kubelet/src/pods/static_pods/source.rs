//! The manifest directory as a source of pods: read whole every
//! `--file-check-frequency` (20 s, as upstream), and as soon as a cheap
//! look (names, sizes, modification times) says something changed — the
//! prompt reaction upstream gets from inotify, without a watcher crate.
//! A bad file is logged once per content (file, what is wrong) and left
//! out; the other files' pods are not affected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{StaticPodError, StaticPods, from_file, is_manifest};

/// How often the directory is looked at for changes (between full reads).
pub const CHANGE_CHECK: Duration = Duration::from_secs(1);

/// One read of the directory.
#[derive(Debug, Default)]
pub struct DirRead {
    pub pods: StaticPods,
    /// Files that are not run, and why.
    pub errors: Vec<(PathBuf, StaticPodError)>,
}

/// The manifests in `dir`, by name (so which of two files defining the same
/// pod wins does not depend on the filesystem's order).
fn manifests(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_manifest(p) && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Reads every manifest in `dir` for `node`. `seen` holds the `config.seen`
/// of pods already known, by uid (a pod keeps the time it was first seen);
/// new ones get `now`.
pub fn read_dir(
    dir: &Path,
    node: &str,
    seen: &BTreeMap<String, String>,
    now: &str,
) -> std::io::Result<DirRead> {
    let mut read = DirRead::default();
    // Full name (namespace/name) → the file that defined it first.
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in manifests(dir)? {
        let pod = std::fs::read_to_string(&path)
            .map_err(|e| StaticPodError::Read(e.to_string()))
            .and_then(|text| {
                let mut pod = from_file(&path, &text, node, now)?;
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                if let Some(t) = seen.get(&uid)
                    && let Some(a) = pod.metadata.annotations.as_mut()
                {
                    a.insert(super::CONFIG_SEEN.into(), t.clone());
                }
                Ok(pod)
            });
        let pod = match pod {
            Ok(p) => p,
            Err(e) => {
                read.errors.push((path, e));
                continue;
            }
        };
        let full = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()
        );
        if let Some(first) = names.get(&full) {
            let e = StaticPodError::Duplicate(full, first.display().to_string());
            read.errors.push((path, e));
            continue;
        }
        names.insert(full, path);
        read.pods
            .insert(pod.metadata.uid.clone().unwrap_or_default(), pod);
    }
    Ok(read)
}

/// What a cheap look at the directory sees: each manifest's name, size and
/// modification time. When it differs, the directory is read again.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn fingerprint(dir: &Path) -> Option<Fingerprint> {
    let files = manifests(dir).ok()?;
    Some(
        files
            .into_iter()
            .map(|p| {
                let meta = std::fs::metadata(&p).ok();
                let len = meta.as_ref().map_or(0, |m| m.len());
                let modified = meta.and_then(|m| m.modified().ok());
                (p, len, modified)
            })
            .collect(),
    )
}

/// The manifest directory of one node, and what was last read from it.
pub struct Source {
    dir: PathBuf,
    node: String,
    /// `config.seen` of the pods read last time, by uid.
    seen: BTreeMap<String, String>,
    /// The error last logged for each bad file (logged again only when
    /// it changes), and whether the directory itself was unreadable.
    reported: BTreeMap<PathBuf, String>,
    unreadable: Option<String>,
    last: Option<Fingerprint>,
}

impl Source {
    pub fn new(dir: PathBuf, node: String) -> Source {
        Source {
            dir,
            node,
            seen: BTreeMap::new(),
            reported: BTreeMap::new(),
            unreadable: None,
            last: None,
        }
    }

    /// Reads the directory, logging what is new about it. An unreadable
    /// directory holds no pods (upstream does the same: the files are the
    /// truth, and they cannot be seen).
    pub fn read(&mut self) -> StaticPods {
        self.last = fingerprint(&self.dir);
        let now = jiff::Timestamp::now().to_string();
        let read = match read_dir(&self.dir, &self.node, &self.seen, &now) {
            Ok(r) => {
                if self.unreadable.take().is_some() {
                    tracing::info!(dir = %self.dir.display(), "the static pod directory is readable again");
                }
                r
            }
            Err(e) => {
                let message = e.to_string();
                if self.unreadable.as_ref() != Some(&message) {
                    tracing::warn!(dir = %self.dir.display(), error = %message, "cannot read the static pod directory (--pod-manifest-path)");
                    self.unreadable = Some(message);
                }
                DirRead::default()
            }
        };
        let mut reported = BTreeMap::new();
        for (path, e) in &read.errors {
            let message = e.to_string();
            if self.reported.get(path) != Some(&message) {
                tracing::error!(file = %path.display(), error = %message, "static pod file skipped");
            }
            reported.insert(path.clone(), message);
        }
        for path in self.reported.keys() {
            if !reported.contains_key(path) {
                tracing::info!(file = %path.display(), "static pod file no longer in error");
            }
        }
        self.reported = reported;
        for (uid, pod) in &read.pods {
            if !self.seen.contains_key(uid) {
                tracing::info!(
                    pod = %pod.metadata.name.as_deref().unwrap_or_default(),
                    namespace = %pod.metadata.namespace.as_deref().unwrap_or_default(),
                    %uid,
                    "static pod from {}", self.dir.display()
                );
            }
        }
        self.seen = read
            .pods
            .iter()
            .filter_map(|(uid, p)| {
                let a = p.metadata.annotations.as_ref()?;
                Some((uid.clone(), a.get(super::CONFIG_SEEN)?.clone()))
            })
            .collect();
        read.pods
    }

    /// Keeps `pods` up to date with the directory until `stop`: a full
    /// read every `every`, and one as soon as the files change.
    pub async fn run(
        mut self,
        pods: watch::Sender<StaticPods>,
        every: Duration,
        stop: CancellationToken,
    ) {
        let mut last_read = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(CHANGE_CHECK.min(every)) => {}
                _ = stop.cancelled() => return,
            }
            if last_read.elapsed() < every && fingerprint(&self.dir) == self.last {
                continue;
            }
            last_read = tokio::time::Instant::now();
            let now = self.read();
            pods.send_if_modified(|current| {
                let changed = *current != now;
                if changed {
                    *current = now;
                }
                changed
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, image: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{containers: [{{name: c, image: {image}}}]}}\n"
        )
    }

    fn names(pods: &StaticPods) -> Vec<String> {
        let mut v: Vec<String> = pods
            .values()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_directory_gives_one_pod_per_good_file_and_an_error_per_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let write = |f: &str, t: &str| std::fs::write(dir.path().join(f), t).unwrap();
        write("a.yaml", &pod("a", "i:1"));
        write("b.yml", &pod("b", "i:1"));
        write("bad.yaml", "kind: Pod\n  :");
        write("dup.yaml", &pod("a", "i:2"));
        write("notes.txt", "not a manifest");
        write(".hidden.yaml", &pod("h", "i:1"));
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        let read = read_dir(dir.path(), "n1", &BTreeMap::new(), "t0").unwrap();
        assert_eq!(names(&read.pods), ["a-n1", "b-n1"]);
        let errors: Vec<(String, String)> = read
            .errors
            .iter()
            .map(|(p, e)| {
                let file = p.file_name().unwrap().to_string_lossy().into_owned();
                (file, e.to_string())
            })
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, "bad.yaml");
        assert!(errors[0].1.contains("not a valid YAML Pod"), "{errors:?}");
        assert_eq!(errors[1].0, "dup.yaml");
        assert!(
            errors[1].1.contains("default/a-n1") && errors[1].1.contains("a.yaml"),
            "{errors:?}"
        );
        // The pods keep the time they were first seen.
        let uid = read
            .pods
            .iter()
            .find(|(_, p)| p.metadata.name.as_deref() == Some("a-n1"))
            .unwrap()
            .0
            .clone();
        let seen = BTreeMap::from([(uid.clone(), "t-first".to_string())]);
        let again = read_dir(dir.path(), "n1", &seen, "t1").unwrap();
        let seen_of = |pods: &StaticPods, uid: &str| {
            pods[uid].metadata.annotations.as_ref().unwrap()[super::super::CONFIG_SEEN].clone()
        };
        assert_eq!(seen_of(&again.pods, &uid), "t-first");
        let b = again.pods.keys().find(|u| **u != uid).unwrap();
        assert_eq!(seen_of(&again.pods, b), "t1");
    }

    #[test]
    fn a_missing_directory_is_an_error_and_the_source_holds_no_pods() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(read_dir(&missing, "n1", &BTreeMap::new(), "t").is_err());
        assert!(Source::new(missing, "n1".into()).read().is_empty());
    }

    async fn next(rx: &mut watch::Receiver<StaticPods>) -> StaticPods {
        tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .expect("a change within 10 s")
            .unwrap();
        rx.borrow_and_update().clone()
    }

    #[tokio::test]
    async fn the_source_follows_the_files_as_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yaml");
        std::fs::write(&path, pod("web", "i:1")).unwrap();
        let mut source = Source::new(dir.path().into(), "n1".into());
        let first = source.read();
        assert_eq!(names(&first), ["web-n1"]);
        let (tx, mut rx) = watch::channel(first.clone());
        let stop = CancellationToken::new();
        // A long full-read period: only the change check can notice.
        let task = tokio::spawn(source.run(tx, Duration::from_secs(3600), stop.clone()));
        std::fs::write(&path, pod("web", "i:22")).unwrap();
        let changed = next(&mut rx).await;
        assert_eq!(names(&changed), ["web-n1"]);
        assert_ne!(
            changed.keys().collect::<Vec<_>>(),
            first.keys().collect::<Vec<_>>()
        );
        std::fs::remove_file(&path).unwrap();
        let removed = next(&mut rx).await;
        assert!(removed.is_empty());
        stop.cancel();
        task.await.unwrap();
    }
}
