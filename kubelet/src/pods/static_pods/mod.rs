//! Static pods: pods this kubelet runs from files in `--pod-manifest-path`,
//! without the API server, as upstream's kubelet does.
//!
//! A file becomes a pod here ([`from_file`]): named `<name>-<node>`, in
//! `default` when the file names no namespace, bound to this node, with a
//! uid that is a hash of what the file says and of the node's name — so
//! the same file gives the same uid after a kubelet restart (the running
//! containers are adopted) and a changed file gives a new one (the old
//! pod is stopped, the new one started). [`source`] reads the directory
//! and notices changes; [`diff`] says which workers to start and stop;
//! [`super::mirror`] shows each static pod in the API as a mirror pod.

pub mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k8s_openapi::api::core::v1::{Pod, Toleration};
use sha2::{Digest, Sha256};

/// Where the pod came from: `file` for static pods, as upstream.
pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
/// The static pod's hash (its uid).
pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
/// On a mirror pod: the hash of the static pod it mirrors.
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
/// When the kubelet first saw this version of the file.
pub const CONFIG_SEEN: &str = "kubernetes.io/config.seen";
/// [`CONFIG_SOURCE`]'s value for pods from the manifest directory.
pub const FILE_SOURCE: &str = "file";

/// Why a file in the manifest directory is not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StaticPodError {
    #[error("cannot read it: {0}")]
    Read(String),
    #[error("not a valid {format} Pod: {message}")]
    Parse {
        format: &'static str,
        message: String,
    },
    #[error("kind is {kind:?}, not Pod (one Pod per file)")]
    NotAPod { kind: String },
    #[error("apiVersion is {0:?}, not v1")]
    ApiVersion(String),
    #[error("metadata.name is missing")]
    NoName,
    #[error("spec.containers is empty")]
    NoContainers,
    #[error("a container has no image: {0}")]
    NoImage(String),
    #[error("pod {0} is also defined in {1}: only the first file (by name) runs")]
    Duplicate(String, String),
}

/// Whether the file is one the kubelet reads: `*.yaml`, `*.yml`, `*.json`,
/// not hidden (editors' swap and backup files start with a dot, and
/// upstream skips those too).
pub fn is_manifest(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    !name.starts_with('.')
        && matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        )
}

/// The hash of a static pod: of the pod as the file gives it and of the
/// node's name, as upstream (which uses it as the uid and `config.hash`).
/// 32 hex digits, like upstream's md5.
pub fn hash(pod: &Pod, node: &str) -> String {
    let mut h = Sha256::new();
    // Pod's fields serialise in a fixed order and its maps are BTreeMaps:
    // the same object always gives the same bytes, whatever the file's
    // formatting or key order.
    h.update(serde_json::to_vec(pod).unwrap_or_default());
    h.update(format!("host:{node}"));
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The static pod in the file at `path` (its `text`), for `node`;
/// `seen` is the `config.seen` time (RFC 3339).
pub fn from_file(path: &Path, text: &str, node: &str, seen: &str) -> Result<Pod, StaticPodError> {
    let json = path.extension().is_some_and(|e| e == "json");
    let value: serde_json::Value = if json {
        serde_json::from_str(text).map_err(|e| StaticPodError::Parse {
            format: "JSON",
            message: e.to_string(),
        })?
    } else {
        serde_saphyr::from_str(text).map_err(|e| StaticPodError::Parse {
            format: "YAML",
            message: e.to_string(),
        })?
    };
    let field = |k: &str| value.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    if field("kind") != "Pod" {
        return Err(StaticPodError::NotAPod {
            kind: field("kind").into(),
        });
    }
    if field("apiVersion") != "v1" {
        return Err(StaticPodError::ApiVersion(field("apiVersion").into()));
    }
    let mut pod: Pod = serde_json::from_value(value).map_err(|e| StaticPodError::Parse {
        format: if json { "JSON" } else { "YAML" },
        message: e.to_string(),
    })?;
    let name = pod
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or(StaticPodError::NoName)?;
    let spec = pod.spec.as_ref().ok_or(StaticPodError::NoContainers)?;
    if spec.containers.is_empty() {
        return Err(StaticPodError::NoContainers);
    }
    if let Some(c) = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.image.as_deref().unwrap_or_default().is_empty())
    {
        return Err(StaticPodError::NoImage(c.name.clone()));
    }
    // Hashed as the file gives it, before the kubelet's own fields.
    let hash = hash(&pod, node);
    let m = &mut pod.metadata;
    m.name = Some(format!("{name}-{node}"));
    if m.namespace.as_deref().unwrap_or_default().is_empty() {
        m.namespace = Some("default".into());
    }
    m.uid = Some(hash.clone());
    // Fields the API server would own mean nothing in a file.
    m.resource_version = None;
    m.creation_timestamp = None;
    m.deletion_timestamp = None;
    m.generate_name = None;
    let annotations = m.annotations.get_or_insert_with(Default::default);
    annotations.insert(CONFIG_SOURCE.into(), FILE_SOURCE.into());
    annotations.insert(CONFIG_HASH.into(), hash);
    annotations.insert(CONFIG_SEEN.into(), seen.into());
    annotations.remove(CONFIG_MIRROR);
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node.into());
    // As upstream: a static pod tolerates every NoExecute taint, so that
    // its mirror is not evicted from a NotReady node (the kubelet would
    // only make it again).
    let tolerate_all = Toleration {
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        ..Default::default()
    };
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    if !tolerations.contains(&tolerate_all) {
        tolerations.push(tolerate_all);
    }
    pod.status = None;
    Ok(pod)
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// The static pods of `dir` (`--pod-manifest-path`, none: no static pods),
/// and the task that keeps them and their mirrors up to date.
pub struct Started {
    pub pods: tokio::sync::watch::Receiver<StaticPods>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Reads `dir` once (so the pod manager knows the static pods before it
/// removes the sandboxes of pods it does not know), then follows it every
/// `every` and on change, and keeps the mirror pods in the API, until `stop`.
pub fn start(
    dir: Option<std::path::PathBuf>,
    every: std::time::Duration,
    node: &str,
    client: &kube::Client,
    stop: &tokio_util::sync::CancellationToken,
) -> Started {
    let Some(dir) = dir else {
        let (_, pods) = tokio::sync::watch::channel(StaticPods::new());
        return Started {
            pods,
            task: tokio::spawn(async {}),
        };
    };
    // So that `skiff up` users (and anyone) can drop files in at once.
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot create --pod-manifest-path");
    }
    let mut source = source::Source::new(dir, node.into());
    let (tx, pods) = tokio::sync::watch::channel(source.read());
    let mirrors = super::mirror::run(client.clone(), node.into(), pods.clone(), stop.clone());
    let task = tokio::spawn({
        let stop = stop.clone();
        async move {
            tokio::join!(source.run(tx, every, stop), mirrors);
        }
    });
    Started { pods, task }
}

/// A mirror pod: the API's copy of a static pod, which the kubelet shows
/// but never runs (upstream skips it the same way).
pub fn is_mirror(pod: &Pod) -> bool {
    annotation(pod, CONFIG_MIRROR).is_some()
}

/// The hash of the static pod `pod` mirrors (mirror pods) or is (static pods).
pub fn hash_of(pod: &Pod) -> Option<&str> {
    annotation(pod, CONFIG_MIRROR).or_else(|| annotation(pod, CONFIG_HASH))
}

/// The static pods wanted now, by uid.
pub type StaticPods = BTreeMap<String, Pod>;

/// What the pod manager does to make its static workers match the directory.
#[derive(Debug, Default, PartialEq)]
pub struct Diff {
    /// Pods with no worker yet (new files, and changed files: a new uid).
    pub start: Vec<Pod>,
    /// Workers whose pod is no longer in the directory (file removed or
    /// changed): stopped with the pod's grace period.
    pub stop: Vec<String>,
}

/// The static workers to start and stop so that `running` (the uids of the
/// static pods that have a worker) becomes `wanted`.
pub fn diff(wanted: &StaticPods, running: &BTreeSet<String>) -> Diff {
    Diff {
        start: wanted
            .iter()
            .filter(|(uid, _)| !running.contains(*uid))
            .map(|(_, pod)| pod.clone())
            .collect(),
        stop: running
            .iter()
            .filter(|uid| !wanted.contains_key(*uid))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: &str = "
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: app
    image: skiff/httpd:1
";

    fn parse(file: &str, text: &str) -> Result<Pod, StaticPodError> {
        from_file(Path::new(file), text, "node1", "2026-01-01T00:00:00Z")
    }

    fn annotations(pod: &Pod) -> BTreeMap<String, String> {
        pod.metadata.annotations.clone().unwrap_or_default()
    }

    #[test]
    fn a_file_becomes_a_pod_named_for_the_node_with_upstreams_annotations() {
        let pod = parse("/m/web.yaml", WEB).unwrap();
        let m = &pod.metadata;
        assert_eq!(m.name.as_deref(), Some("web-node1"));
        assert_eq!(m.namespace.as_deref(), Some("default"));
        let uid = m.uid.clone().unwrap();
        assert_eq!(uid.len(), 32);
        assert!(uid.chars().all(|c| c.is_ascii_hexdigit()));
        let a = annotations(&pod);
        assert_eq!(a[CONFIG_SOURCE], "file");
        assert_eq!(a[CONFIG_HASH], uid);
        assert_eq!(a[CONFIG_SEEN], "2026-01-01T00:00:00Z");
        assert!(!a.contains_key(CONFIG_MIRROR));
        assert_eq!(m.labels.as_ref().unwrap()["app"], "web");
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("node1"));
        assert!(spec.tolerations.as_ref().unwrap().iter().any(|t| {
            t.operator.as_deref() == Some("Exists") && t.effect.as_deref() == Some("NoExecute")
        }));
        assert!(!is_mirror(&pod));
        assert_eq!(hash_of(&pod), Some(uid.as_str()));
    }

    #[test]
    fn the_uid_follows_the_content_and_the_node_not_the_formatting() {
        let uid = |file: &str, text: &str, node: &str| {
            from_file(Path::new(file), text, node, "t")
                .unwrap()
                .metadata
                .uid
                .unwrap()
        };
        let base = uid("a.yaml", WEB, "node1");
        // Same pod, other formatting, other file name, other format, other
        // time seen: same uid.
        let reordered = "kind: Pod\napiVersion: v1\nspec: {containers: [{image: skiff/httpd:1, name: app}]}\nmetadata: {labels: {app: web}, name: web}\n";
        assert_eq!(uid("b.yml", reordered, "node1"), base);
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"}},
            "spec":{"containers":[{"name":"app","image":"skiff/httpd:1"}]}}"#;
        assert_eq!(uid("c.json", json, "node1"), base);
        assert_eq!(
            from_file(Path::new("a.yaml"), WEB, "node1", "later")
                .unwrap()
                .metadata
                .uid
                .unwrap(),
            base
        );
        // Another node, another image, another namespace: another uid.
        assert_ne!(uid("a.yaml", WEB, "node2"), base);
        assert_ne!(
            uid("a.yaml", &WEB.replace("httpd:1", "httpd:2"), "node1"),
            base
        );
        let other_ns = WEB.replace("  name: web\n", "  name: web\n  namespace: kube-system\n");
        let pod = parse("a.yaml", &other_ns).unwrap();
        assert_eq!(pod.metadata.namespace.as_deref(), Some("kube-system"));
        assert_ne!(pod.metadata.uid.unwrap(), base);
    }

    #[test]
    fn what_the_file_says_of_server_fields_and_mirrors_is_dropped() {
        let text = WEB.replace(
            "  name: web\n",
            "  name: web\n  uid: abc\n  resourceVersion: \"7\"\n  annotations: {kubernetes.io/config.mirror: x, team: blue}\n",
        );
        let pod = parse("a.yaml", &text).unwrap();
        assert_ne!(pod.metadata.uid.as_deref(), Some("abc"));
        assert_eq!(pod.metadata.resource_version, None);
        let a = annotations(&pod);
        assert!(!a.contains_key(CONFIG_MIRROR));
        assert_eq!(a["team"], "blue");
        assert!(!is_mirror(&pod));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        type Case<'a> = (&'a str, &'a str, fn(&StaticPodError) -> bool);
        let cases: &[Case] = &[
            ("a.yaml", "kind: Pod\n  bad: [indent", |e| {
                matches!(e, StaticPodError::Parse { format: "YAML", .. })
            }),
            ("a.json", "{\"kind\": ", |e| {
                matches!(e, StaticPodError::Parse { format: "JSON", .. })
            }),
            (
                "a.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
                |e| matches!(e, StaticPodError::NotAPod { kind } if kind == "Deployment"),
            ),
            (
                "a.yaml",
                "apiVersion: v2\nkind: Pod\nmetadata: {name: x}\n",
                |e| matches!(e, StaticPodError::ApiVersion(v) if v == "v2"),
            ),
            (
                "a.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {}\nspec: {containers: [{name: a, image: i}]}\n",
                |e| *e == StaticPodError::NoName,
            ),
            (
                "a.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: []}\n",
                |e| *e == StaticPodError::NoContainers,
            ),
            (
                "a.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
                |e| *e == StaticPodError::NoContainers,
            ),
            (
                "a.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: a}]}\n",
                |e| matches!(e, StaticPodError::NoImage(c) if c == "a"),
            ),
            (
                "a.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: a, image: i, ports: [{containerPort: nope}]}]}\n",
                |e| matches!(e, StaticPodError::Parse { .. }),
            ),
        ];
        for (file, text, expect) in cases {
            let got = parse(file, text);
            match &got {
                Err(e) => assert!(expect(e), "{file} {text:?}: {e}"),
                Ok(_) => panic!("{file} {text:?}: accepted"),
            }
        }
    }

    #[test]
    fn only_visible_yaml_and_json_files_are_manifests() {
        for (path, yes) in [
            ("/m/web.yaml", true),
            ("/m/web.yml", true),
            ("/m/web.json", true),
            ("/m/.web.yaml", false),
            ("/m/.web.yaml.swp", false),
            ("/m/web.yaml~", false),
            ("/m/README.md", false),
            ("/m/web", false),
        ] {
            assert_eq!(is_manifest(Path::new(path)), yes, "{path}");
        }
    }

    #[test]
    fn a_mirror_is_known_by_its_annotation() {
        let mut pod = parse("a.yaml", WEB).unwrap();
        let hash = pod.metadata.uid.clone().unwrap();
        pod.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(CONFIG_MIRROR.into(), hash.clone());
        assert!(is_mirror(&pod));
        assert_eq!(hash_of(&pod), Some(hash.as_str()));
        assert!(!is_mirror(&Pod::default()));
        assert_eq!(hash_of(&Pod::default()), None);
    }

    #[test]
    fn the_diff_starts_new_pods_and_stops_gone_ones() {
        let pod = |uid: &str| {
            let mut p = Pod::default();
            p.metadata.uid = Some(uid.into());
            p
        };
        let wanted = |uids: &[&str]| -> StaticPods {
            uids.iter().map(|u| (u.to_string(), pod(u))).collect()
        };
        let running =
            |uids: &[&str]| -> BTreeSet<String> { uids.iter().map(|u| u.to_string()).collect() };
        let uids = |d: &Diff| -> (Vec<String>, Vec<String>) {
            (
                d.start
                    .iter()
                    .map(|p| p.metadata.uid.clone().unwrap())
                    .collect(),
                d.stop.clone(),
            )
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        for (want, run, start, stop) in [
            (&[][..], &[][..], &[][..], &[][..]),
            (&["a"], &[], &["a"], &[]),
            (&["a"], &["a"], &[], &[]),
            (&[], &["a"], &[], &["a"]),
            // A changed file: new uid started, old one stopped.
            (&["a2", "b"], &["a1", "b"], &["a2"], &["a1"]),
        ] {
            let d = diff(&wanted(want), &running(run));
            assert_eq!(uids(&d), (s(start), s(stop)), "{want:?} vs {run:?}");
        }
    }
}
