//! The files of `configMap`, `secret`, `downwardAPI` and `projected`
//! volumes, computed from the pod and the objects it names — pure, as
//! upstream's volume plugins compute their payload before the
//! [`super::atomic_writer`] writes it:
//!
//! - without `items`, every key is a file (a ConfigMap's `data` and
//!   `binaryData`; a Secret's decoded `data`); with `items`, only those
//!   keys, each at its `path`, with its own `mode` if it has one;
//! - modes default to `defaultMode`, itself 0644 by default;
//! - a missing object is an error unless `optional: true` (then the volume
//!   is empty); so is a missing key named in `items`;
//! - downward API files: `metadata.name`, `.namespace`, `.uid`,
//!   `.labels` and `.annotations` (one `key="value"` line each, sorted, as
//!   upstream formats them), one label or annotation by key, and
//!   `resourceFieldRef` (limits and requests of a container, in units of
//!   `divisor`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, DownwardAPIVolumeFile, KeyToPath, Pod, ProjectedVolumeSource,
    SecretVolumeSource,
};

use super::VolumeError;
use super::atomic_writer::{FileContent, Payload};
use crate::pods::config;
use crate::pods::sources::Sources;

/// Upstream's default for `defaultMode` in each of these volume kinds.
pub const DEFAULT_MODE: i32 = 0o644;

fn mode(m: Option<i32>, default: i32) -> u32 {
    (m.unwrap_or(default) & 0o777) as u32
}

/// Files from `data` per `items` (all keys without).
fn from_data(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
    missing_key: impl Fn(&str) -> VolumeError,
    out: &mut Payload,
) -> Result<(), VolumeError> {
    match items {
        None => {
            for (k, v) in data {
                out.insert(
                    k.clone(),
                    FileContent {
                        data: v.clone(),
                        mode: mode(None, default_mode),
                    },
                );
            }
        }
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(v) => {
                        out.insert(
                            item.path.clone(),
                            FileContent {
                                data: v.clone(),
                                mode: mode(item.mode, default_mode),
                            },
                        );
                    }
                    None if optional => {}
                    None => return Err(missing_key(&item.key)),
                }
            }
        }
    }
    Ok(())
}

/// A ConfigMap's `data` and `binaryData`, or why there is none (`None`
/// when it does not exist and is optional).
fn config_map_data(
    sources: &Sources,
    name: &str,
    optional: bool,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, VolumeError> {
    match sources.config_maps.get(name) {
        Some(cm) => {
            let mut data: BTreeMap<String, Vec<u8>> = cm
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
                .collect();
            for (k, v) in cm.binary_data.iter().flatten() {
                data.insert(k.clone(), v.0.clone());
            }
            Ok(Some(data))
        }
        None => missing(sources, "configmaps", name, optional),
    }
}

fn secret_data(
    sources: &Sources,
    name: &str,
    optional: bool,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, VolumeError> {
    match sources.secrets.get(name) {
        Some(s) => {
            let mut data: BTreeMap<String, Vec<u8>> = s
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect();
            // The API server folds stringData into data on write; a
            // Secret from elsewhere may still carry it.
            for (k, v) in s.string_data.iter().flatten() {
                data.insert(k.clone(), v.as_bytes().to_vec());
            }
            Ok(Some(data))
        }
        None => missing(sources, "secrets", name, optional),
    }
}

fn missing<T>(
    sources: &Sources,
    kind: &'static str,
    name: &str,
    optional: bool,
) -> Result<Option<T>, VolumeError> {
    if let Some(e) = sources.errors.get(&format!("{kind}/{name}")) {
        return Err(VolumeError::Fetch(e.clone()));
    }
    if optional {
        Ok(None)
    } else {
        Err(VolumeError::NotFound {
            kind,
            name: name.into(),
        })
    }
}

pub fn config_map(src: &ConfigMapVolumeSource, sources: &Sources) -> Result<Payload, VolumeError> {
    let optional = src.optional.unwrap_or(false);
    let mut out = Payload::new();
    if let Some(data) = config_map_data(sources, &src.name, optional)? {
        from_data(
            &data,
            src.items.as_deref(),
            src.default_mode.unwrap_or(DEFAULT_MODE),
            optional,
            |k| VolumeError::ConfigMapKey(k.into()),
            &mut out,
        )?;
    }
    Ok(out)
}

pub fn secret(src: &SecretVolumeSource, sources: &Sources) -> Result<Payload, VolumeError> {
    let optional = src.optional.unwrap_or(false);
    let name = src.secret_name.clone().unwrap_or_default();
    let mut out = Payload::new();
    if let Some(data) = secret_data(sources, &name, optional)? {
        from_data(
            &data,
            src.items.as_deref(),
            src.default_mode.unwrap_or(DEFAULT_MODE),
            optional,
            |k| VolumeError::SecretKey(k.into()),
            &mut out,
        )?;
    }
    Ok(out)
}

pub fn downward_api(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
    out: &mut Payload,
) -> Result<(), VolumeError> {
    let spec = pod.spec.clone().unwrap_or_default();
    for item in items {
        let text = if let Some(f) = &item.field_ref {
            let m = &pod.metadata;
            match f.field_path.as_str() {
                "metadata.labels" => format_map(m.labels.as_ref()),
                "metadata.annotations" => format_map(m.annotations.as_ref()),
                // The same fields as the environment's (one label by key…);
                // the pod's IPs are not known when the files are written,
                // so upstream allows only metadata here.
                p if p.starts_with("metadata.") => {
                    config::field(pod, p, "", "").map_err(|e| VolumeError::Field(e.to_string()))?
                }
                p => return Err(VolumeError::Field(format!("unsupported fieldRef {p}"))),
            }
        } else if let Some(r) = &item.resource_field_ref {
            let name = r.container_name.clone().unwrap_or_default();
            let c = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|c| c.name == name)
                .ok_or_else(|| {
                    VolumeError::Field(format!("resourceFieldRef: no container {name:?}"))
                })?;
            config::resource_value(c, &r.resource, r.divisor.as_ref())
        } else {
            continue;
        };
        out.insert(
            item.path.clone(),
            FileContent {
                data: text.into_bytes(),
                mode: mode(item.mode, default_mode),
            },
        );
    }
    Ok(())
}

/// Labels or annotations as upstream writes them: `key="value"` lines
/// sorted by key, values quoted as Go's `%q`, no newline at the end.
pub fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A `projected` volume: its sources' files in one directory.
/// `serviceAccountToken`, `clusterTrustBundle` and `podCertificate`
/// sources are not served (Skiff issues no bound tokens yet): they add
/// no file.
pub fn projected(
    pod: &Pod,
    src: &ProjectedVolumeSource,
    sources: &Sources,
) -> Result<Payload, VolumeError> {
    let default_mode = src.default_mode.unwrap_or(DEFAULT_MODE);
    let mut out = Payload::new();
    for s in src.sources.iter().flatten() {
        if let Some(c) = &s.config_map {
            let optional = c.optional.unwrap_or(false);
            if let Some(data) = config_map_data(sources, &c.name, optional)? {
                from_data(
                    &data,
                    c.items.as_deref(),
                    default_mode,
                    optional,
                    |k| VolumeError::ConfigMapKey(k.into()),
                    &mut out,
                )?;
            }
        }
        if let Some(c) = &s.secret {
            let optional = c.optional.unwrap_or(false);
            if let Some(data) = secret_data(sources, &c.name, optional)? {
                from_data(
                    &data,
                    c.items.as_deref(),
                    default_mode,
                    optional,
                    |k| VolumeError::SecretKey(k.into()),
                    &mut out,
                )?;
            }
        }
        if let Some(d) = &s.downward_api {
            downward_api(
                pod,
                d.items.as_deref().unwrap_or_default(),
                default_mode,
                &mut out,
            )?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use serde_json::json;

    fn sources() -> Sources {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "cfg"},
            "data": {"color": "blue", "app.ini": "[app]\n"},
            "binaryData": {"logo.bin": "AAEC"}
        }))
        .unwrap();
        let mut s = Secret {
            data: Some(BTreeMap::from([(
                "token".to_string(),
                ByteString(b"t0k3n".to_vec()),
            )])),
            ..Default::default()
        };
        s.metadata.name = Some("creds".into());
        let mut sources = Sources::default();
        sources.config_maps.insert("cfg".into(), cm);
        sources.secrets.insert("creds".into(), s);
        sources
            .errors
            .insert("configmaps/flaky".into(), "connection refused".into());
        sources
    }

    fn files(p: &Payload) -> Vec<(String, String, u32)> {
        p.iter()
            .map(|(k, f)| {
                (
                    k.clone(),
                    String::from_utf8_lossy(&f.data).into_owned(),
                    f.mode,
                )
            })
            .collect()
    }

    fn own(v: &[(&str, &str, u32)]) -> Vec<(String, String, u32)> {
        v.iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
            .collect()
    }

    #[test]
    fn config_maps_and_secrets() {
        let src =
            |v: serde_json::Value| -> ConfigMapVolumeSource { serde_json::from_value(v).unwrap() };
        let sec =
            |v: serde_json::Value| -> SecretVolumeSource { serde_json::from_value(v).unwrap() };
        let s = sources();
        type Case = (
            &'static str,
            Result<Payload, VolumeError>,
            Result<Vec<(&'static str, &'static str, u32)>, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "every key, binaryData too, 0644",
                config_map(&src(json!({"name": "cfg"})), &s),
                Ok(vec![
                    ("app.ini", "[app]\n", 0o644),
                    ("color", "blue", 0o644),
                    ("logo.bin", "\0\u{1}\u{2}", 0o644),
                ]),
            ),
            (
                "items with their own paths and modes, defaultMode for the rest",
                config_map(
                    &src(json!({"name": "cfg", "defaultMode": 0o600, "items": [
                    {"key": "color", "path": "colors/main"},
                    {"key": "app.ini", "path": "app.ini", "mode": 0o444}]})),
                    &s,
                ),
                Ok(vec![
                    ("app.ini", "[app]\n", 0o444),
                    ("colors/main", "blue", 0o600),
                ]),
            ),
            (
                "a missing key",
                config_map(
                    &src(json!({"name": "cfg", "items": [{"key": "size", "path": "s"}]})),
                    &s,
                ),
                Err("configmap references non-existent config key: size"),
            ),
            (
                "a missing key of an optional ConfigMap is skipped",
                config_map(
                    &src(
                        json!({"name": "cfg", "optional": true, "items": [{"key": "size", "path": "s"}]}),
                    ),
                    &s,
                ),
                Ok(vec![]),
            ),
            (
                "a missing ConfigMap",
                config_map(&src(json!({"name": "nope"})), &s),
                Err("configmaps \"nope\" not found"),
            ),
            (
                "a missing optional ConfigMap: an empty volume",
                config_map(&src(json!({"name": "nope", "optional": true})), &s),
                Ok(vec![]),
            ),
            (
                "optional does not hide a failed read",
                config_map(&src(json!({"name": "flaky", "optional": true})), &s),
                Err("connection refused"),
            ),
            (
                "a Secret, decoded",
                secret(&sec(json!({"secretName": "creds"})), &s),
                Ok(vec![("token", "t0k3n", 0o644)]),
            ),
            (
                "a Secret's items and defaultMode",
                secret(
                    &sec(json!({"secretName": "creds", "defaultMode": 0o400,
                    "items": [{"key": "token", "path": "auth/token"}]})),
                    &s,
                ),
                Ok(vec![("auth/token", "t0k3n", 0o400)]),
            ),
            (
                "a missing Secret key",
                secret(
                    &sec(json!({"secretName": "creds", "items": [{"key": "user", "path": "u"}]})),
                    &s,
                ),
                Err("references non-existent secret key: user"),
            ),
            (
                "a missing Secret",
                secret(&sec(json!({"secretName": "other"})), &s),
                Err("secrets \"other\" not found"),
            ),
        ];
        for (what, got, want) in cases {
            match (got, want) {
                (Ok(p), Ok(w)) => assert_eq!(files(&p), own(&w), "{what}"),
                (Err(e), Err(w)) => assert_eq!(e.to_string(), w, "{what}"),
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
    }

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1",
                         "labels": {"app": "web", "tier": "front \"end\""},
                         "annotations": {"note": "a\nb"}},
            "spec": {"containers": [{"name": "app", "resources": {
                "limits": {"cpu": "1500m", "memory": "64Mi"}, "requests": {"memory": "32Mi"}}}]}
        }))
        .unwrap()
    }

    #[test]
    fn downward_api_files() {
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(json!([
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400},
            {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
            {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
            {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu"}},
            {"path": "cpu_m", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}},
            {"path": "mem_mi", "resourceFieldRef": {"containerName": "app", "resource": "requests.memory", "divisor": "1Mi"}}
        ]))
        .unwrap();
        let mut out = Payload::new();
        downward_api(&pod(), &items, DEFAULT_MODE, &mut out).unwrap();
        assert_eq!(
            files(&out),
            own(&[
                ("annotations", "note=\"a\\nb\"", 0o644),
                ("app", "web", 0o644),
                ("cpu", "2", 0o644),
                ("cpu_m", "1500", 0o644),
                ("labels", "app=\"web\"\ntier=\"front \\\"end\\\"\"", 0o644),
                ("mem_mi", "32", 0o644),
                ("name", "web-1", 0o400),
                ("ns", "shop", 0o644),
                ("uid", "u1", 0o644),
            ])
        );
        let bad: Vec<DownwardAPIVolumeFile> = serde_json::from_value(json!([
            {"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}}
        ]))
        .unwrap();
        let err = downward_api(&pod(), &bad, DEFAULT_MODE, &mut out).unwrap_err();
        assert_eq!(err.to_string(), "unsupported fieldRef status.podIP");
    }

    #[test]
    fn projected_sources_in_one_directory() {
        let src: ProjectedVolumeSource = serde_json::from_value(json!({
            "defaultMode": 0o440,
            "sources": [
                {"configMap": {"name": "cfg", "items": [{"key": "color", "path": "color"}]}},
                {"secret": {"name": "creds", "items": [{"key": "token", "path": "token", "mode": 0o400}]}},
                {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                {"serviceAccountToken": {"path": "sa-token"}},
                {"configMap": {"name": "absent", "optional": true}}
            ]
        }))
        .unwrap();
        let out = projected(&pod(), &src, &sources()).unwrap();
        assert_eq!(
            files(&out),
            own(&[
                ("color", "blue", 0o440),
                ("name", "web-1", 0o440),
                ("token", "t0k3n", 0o400),
            ])
        );
        let src: ProjectedVolumeSource = serde_json::from_value(json!({
            "sources": [{"secret": {"name": "missing"}}]
        }))
        .unwrap();
        assert_eq!(
            projected(&pod(), &src, &sources()).unwrap_err().to_string(),
            "secrets \"missing\" not found"
        );
    }
}
