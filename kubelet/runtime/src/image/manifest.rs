//! Manifests and indexes, in both dialects: OCI
//! (`application/vnd.oci.image.manifest.v1+json`, `...index.v1+json`) and
//! Docker schema 2 (`application/vnd.docker.distribution.manifest.v2+json`,
//! `...manifest.list.v2+json`). They have the same JSON shape, so one set of
//! tolerant types reads both; the media type only decides which of the two
//! shapes a document is.
//!
//! An index lists one manifest per platform; [`select_platform`] picks the
//! one this node can run (linux/amd64 here), as the kubelet would.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::{ImageError, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The `Accept` header a registry client sends for manifests.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// A content descriptor: what a manifest or index says about a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this process runs on, in GOARCH/GOOS words.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            architecture: architecture.to_owned(),
            os: "linux".to_owned(),
            variant: None,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest: one config and its layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (manifest list): one manifest per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A parsed manifest document.
#[derive(Debug, Clone)]
pub enum Document {
    Manifest(Manifest),
    Index(Index),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sniff {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// Parses a manifest or index. `declared` is the media type the document
/// came with (a registry's Content-Type, a descriptor's mediaType); the
/// document's own `mediaType` field wins, and without either the shape
/// decides.
pub fn parse(data: &[u8], declared: Option<&str>, what: &str) -> Result<Document> {
    let sniff: Sniff =
        serde_json::from_slice(data).map_err(|e| ImageError::json(what.to_owned(), e))?;
    if sniff.schema_version == Some(1) {
        return Err(ImageError::Unsupported(format!(
            "{what}: Docker schema 1 manifests"
        )));
    }
    let media_type = sniff
        .media_type
        .as_deref()
        .or(declared.filter(|d| !d.is_empty()))
        .map(str::to_owned);
    let is_index = match media_type.as_deref() {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(other) if sniff.manifests.is_none() && sniff.config.is_none() => {
            return Err(ImageError::Unsupported(format!(
                "{what}: media type {other:?}"
            )));
        }
        _ => sniff.manifests.is_some(),
    };
    if is_index {
        let index: Index =
            serde_json::from_slice(data).map_err(|e| ImageError::json(what.to_owned(), e))?;
        Ok(Document::Index(index))
    } else {
        let manifest: Manifest =
            serde_json::from_slice(data).map_err(|e| ImageError::json(what.to_owned(), e))?;
        for layer in &manifest.layers {
            check_layer_media_type(&layer.media_type, what)?;
        }
        Ok(Document::Manifest(manifest))
    }
}

/// Layers we can unpack: plain or gzip tars, OCI or Docker flavoured.
fn check_layer_media_type(media_type: &str, what: &str) -> Result<()> {
    if media_type.contains("zstd") {
        return Err(ImageError::Unsupported(format!(
            "{what}: zstd-compressed layers ({media_type})"
        )));
    }
    let known = media_type.is_empty()
        || media_type.starts_with("application/vnd.oci.image.layer.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.");
    if !known {
        return Err(ImageError::Unsupported(format!(
            "{what}: layer media type {media_type:?}"
        )));
    }
    Ok(())
}

/// Picks the manifest for `want` from an index. Entries without a platform
/// are skipped (they are attestations and the like), and so are entries
/// that are not image manifests.
pub fn select_platform<'a>(index: &'a Index, want: &Platform) -> Result<&'a Descriptor> {
    let candidates = index
        .manifests
        .iter()
        .filter(|d| matches!(d.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST | ""));
    let mut fallback = None;
    for d in candidates {
        match &d.platform {
            Some(p)
                if p.os == want.os
                    && p.architecture == want.architecture
                    && (want.variant.is_none() || p.variant == want.variant) =>
            {
                return Ok(d);
            }
            // An index with a single platform-less manifest (as in many OCI
            // layouts written by tools) means "this is the image".
            None if index.manifests.len() == 1 => fallback = Some(d),
            _ => {}
        }
    }
    fallback.ok_or_else(|| ImageError::NoPlatform {
        wanted: want.to_string(),
        available: index
            .manifests
            .iter()
            .map(|d| {
                d.platform
                    .as_ref()
                    .map_or_else(|| format!("{} (no platform)", d.digest), |p| p.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn entry(arch: &str, n: u8) -> Descriptor {
        let mut e = Descriptor::new(OCI_MANIFEST, d(n), 10);
        e.platform = Some(Platform {
            architecture: arch.into(),
            os: "linux".into(),
            variant: None,
        });
        e
    }

    #[test]
    fn picks_linux_amd64_from_an_index() {
        let index = Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: vec![entry("arm64", 1), entry("amd64", 2), entry("s390x", 3)],
            annotations: BTreeMap::new(),
        };
        let want = Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
        };
        assert_eq!(select_platform(&index, &want).unwrap().digest, d(2));

        let only_arm = Index {
            manifests: vec![entry("arm64", 1)],
            ..index
        };
        let err = select_platform(&only_arm, &want).unwrap_err().to_string();
        assert!(
            err.contains("linux/amd64") && err.contains("linux/arm64"),
            "{err}"
        );
    }

    #[test]
    fn parse_tells_manifests_from_indexes() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":1}},"layers":[{{"mediaType":"{DOCKER_LAYER_GZIP}","digest":"{}","size":2}}]}}"#,
            d(1),
            d(2)
        );
        assert!(matches!(
            parse(m.as_bytes(), None, "m").unwrap(),
            Document::Manifest(_)
        ));
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1}}]}}"#,
            d(1)
        );
        assert!(matches!(
            parse(i.as_bytes(), None, "i").unwrap(),
            Document::Index(_)
        ));
        let err = parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None, "old")
            .unwrap_err()
            .to_string();
        assert!(err.contains("schema 1"), "{err}");
        let z = m.replace(
            DOCKER_LAYER_GZIP,
            "application/vnd.oci.image.layer.v1.tar+zstd",
        );
        let err = parse(z.as_bytes(), None, "z").unwrap_err().to_string();
        assert!(err.contains("zstd"), "{err}");
    }
}
