//! Resolving what users type (`po`, `pods`, `pod`, `Pod`, `deploy`,
//! `deployments.apps`, `deployments.v1.apps`) to an API resource, as
//! kubectl's RESTMapper does.
//!
//! kube-rs's `Discovery` drops `shortNames` and `singularName`, which the
//! resolution needs, so this reads the legacy discovery documents itself
//! (`/api/v1`, `/apis`, `/apis/<group>/<version>` of each preferred version)
//! in parallel.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroupList, APIResourceList};
use kube::core::{ApiResource, GroupVersionKind};

use crate::error::{Result, from_kube, usage};
use crate::kubeconfig::Connection;

/// One resource type the server serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, `deployments.apps`: how kubectl names the type in messages.
    pub fn plural_group(&self) -> String {
        dotted(&self.plural, &self.group)
    }

    /// `pod`, `deployment.apps`: the prefix of `-o name` and apply's lines.
    pub fn kind_group(&self) -> String {
        dotted(&self.kind.to_lowercase(), &self.group)
    }

    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(&self.group, &self.version, &self.kind),
            &self.plural,
        )
    }

    /// The collection path, in `namespace` when the type is namespaced and
    /// one is given.
    pub fn path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{base}/namespaces/{ns}/{}", self.plural),
            _ => format!("{base}/{}", self.plural),
        }
    }
}

fn dotted(name: &str, group: &str) -> String {
    if group.is_empty() {
        name.to_string()
    } else {
        format!("{name}.{group}")
    }
}

/// Everything the server serves, core group first.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub resources: Vec<Resource>,
}

impl Catalog {
    pub async fn fetch(conn: &Connection) -> Result<Catalog> {
        let get = |path: String| {
            let client = conn.client.clone();
            async move {
                let req = http::Request::get(&path)
                    .header("Accept", "application/json")
                    .body(Vec::new())
                    .unwrap();
                client.request::<serde_json::Value>(req).await
            }
        };
        let core = get("/api/v1".into());
        let groups = get("/apis".into());
        let (core, groups) = futures::join!(core, groups);
        let core = core.map_err(|e| from_kube(e, &conn.server))?;
        let groups: APIGroupList =
            serde_json::from_value(groups.map_err(|e| from_kube(e, &conn.server))?)
                .map_err(|e| usage(e.to_string()))?;
        let versions: Vec<(String, String)> = groups
            .groups
            .iter()
            .filter_map(|g| {
                let v = g
                    .preferred_version
                    .as_ref()
                    .map(|p| p.version.clone())
                    .or_else(|| g.versions.first().map(|v| v.version.clone()))?;
                Some((g.name.clone(), v))
            })
            .collect();
        let lists =
            futures::future::join_all(versions.iter().map(|(g, v)| get(format!("/apis/{g}/{v}"))))
                .await;
        let mut catalog = Catalog::default();
        catalog.add("", "v1", core);
        for ((g, v), list) in versions.iter().zip(lists) {
            // A group whose document fails (e.g. an unavailable aggregated
            // API) is skipped, as kubectl warns and goes on.
            if let Ok(list) = list {
                catalog.add(g, v, list);
            }
        }
        Ok(catalog)
    }

    fn add(&mut self, group: &str, version: &str, list: serde_json::Value) {
        let Ok(list) = serde_json::from_value::<APIResourceList>(list) else {
            return;
        };
        for r in list.resources {
            if r.name.contains('/') {
                continue;
            }
            self.resources.push(Resource {
                group: r.group.unwrap_or_else(|| group.to_string()),
                version: r.version.unwrap_or_else(|| version.to_string()),
                singular: if r.singular_name.is_empty() {
                    r.kind.to_lowercase()
                } else {
                    r.singular_name
                },
                kind: r.kind,
                plural: r.name,
                short_names: r.short_names.unwrap_or_default(),
                namespaced: r.namespaced,
                verbs: r.verbs,
            });
        }
    }

    /// Resolves what a user typed, or `the server doesn't have a resource type`.
    pub fn resolve(&self, typed: &str) -> Result<&Resource> {
        self.find(typed).ok_or_else(|| {
            usage(format!(
                "the server doesn't have a resource type \"{typed}\""
            ))
        })
    }

    pub fn find(&self, typed: &str) -> Option<&Resource> {
        let (name, rest) = typed.split_once('.').unwrap_or((typed, ""));
        // `deployments.v1.apps` or `deployments.apps`
        let (version, group) = match rest.split_once('.') {
            Some((v, g)) if is_version(v) => (Some(v), g),
            _ => (None, rest),
        };
        let lower = name.to_lowercase();
        let matches = |r: &&Resource| {
            (rest.is_empty() || r.group == group || (group.is_empty() && r.group.is_empty()))
                && version.is_none_or(|v| r.version == v)
        };
        let by =
            |f: &dyn Fn(&Resource) -> bool| self.resources.iter().filter(matches).find(|r| f(r));
        by(&|r| r.plural == lower)
            .or_else(|| by(&|r| r.singular == lower))
            .or_else(|| by(&|r| r.short_names.contains(&lower)))
            .or_else(|| by(&|r| r.kind.to_lowercase() == lower))
    }

    /// The resource serving `apiVersion`/`kind` (for manifests).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&Resource> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .or_else(|| {
                self.resources
                    .iter()
                    .find(|r| r.group == group && r.kind == kind)
            })
    }
}

fn is_version(s: &str) -> bool {
    s.starts_with('v') && s[1..].starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(group: &str, kind: &str, plural: &str, short: &[&str]) -> Resource {
        Resource {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            short_names: short.iter().map(|s| s.to_string()).collect(),
            namespaced: true,
            verbs: vec![],
        }
    }

    fn catalog() -> Catalog {
        Catalog {
            resources: vec![
                res("", "Pod", "pods", &["po"]),
                res("", "Event", "events", &["ev"]),
                res("apps", "Deployment", "deployments", &["deploy"]),
                res("events.k8s.io", "Event", "events", &["ev"]),
            ],
        }
    }

    #[test]
    fn resolves_like_kubectl() {
        let c = catalog();
        for (typed, plural_group) in [
            ("pods", "pods"),
            ("po", "pods"),
            ("pod", "pods"),
            ("Pod", "pods"),
            ("deploy", "deployments.apps"),
            ("deployment", "deployments.apps"),
            ("deployments.apps", "deployments.apps"),
            ("deployments.v1.apps", "deployments.apps"),
            ("events", "events"),
            ("events.events.k8s.io", "events.events.k8s.io"),
        ] {
            assert_eq!(
                c.resolve(typed).unwrap().plural_group(),
                plural_group,
                "{typed}"
            );
        }
    }

    #[test]
    fn an_unknown_type_reads_like_kubectl() {
        let err = catalog().resolve("foo").unwrap_err().to_string();
        assert_eq!(
            err,
            "error: the server doesn't have a resource type \"foo\""
        );
    }
}
