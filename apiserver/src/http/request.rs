//! Which API a request path names.
//!
//! `/api/v1/...` is the core group, `/apis/<group>/<version>/...` every
//! other. Below a group-version:
//!
//! | path                                       | what                                  |
//! |--------------------------------------------|---------------------------------------|
//! | `pods`                                     | all pods (list, watch)                |
//! | `namespaces/ns/pods`                       | a namespace's pods (list, create)     |
//! | `namespaces/ns/pods/web`                   | one pod                               |
//! | `namespaces/ns/pods/web/log`               | a subresource                         |
//! | `nodes/n1`, `nodes/n1/status`              | cluster-scoped objects                |
//! | `namespaces/ns`, `namespaces/ns/status`    | a namespace itself                    |
//! | `watch/namespaces/ns/pods`                 | the old way to ask for a watch        |

use crate::registry::{self, Resource, Sub};

/// A request for objects of one resource.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: &'static Resource,
    /// "" for cluster-scoped resources and for lists across namespaces.
    pub namespace: String,
    pub name: Option<String>,
    pub sub: Option<Sub>,
    /// Path after a proxy subresource (`pods/web/proxy/<rest>`).
    pub rest: Option<String>,
    /// The path used the old `/watch/` prefix.
    pub legacy_watch: bool,
}

/// Every kind of path the server answers.
#[derive(Debug, Clone)]
pub enum Route {
    /// `/api` (core group versions).
    CoreGroup,
    /// `/apis` (every other group).
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`: the resources of a group-version.
    Resources {
        group: String,
        version: String,
    },
    Objects(Target),
    /// A known group-version but an unknown resource or a malformed path.
    NotFound(String),
}

/// Splits the path; percent-encoded names are decoded.
fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

pub fn route(path: &str) -> Option<Route> {
    let parts = segments(path);
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["api"] => Some(Route::CoreGroup),
        ["apis"] => Some(Route::Groups),
        ["api", "v1"] => Some(Route::Resources {
            group: String::new(),
            version: "v1".into(),
        }),
        ["apis", group] => known_group(group).then(|| Route::Group(group.to_string())),
        ["apis", group, version] => known_version(group, version).then(|| Route::Resources {
            group: group.to_string(),
            version: version.to_string(),
        }),
        ["api", "v1", rest @ ..] => Some(objects("", "v1", rest)),
        ["apis", group, version, rest @ ..] if known_version(group, version) => {
            Some(objects(group, version, rest))
        }
        _ => None,
    }
}

fn known_group(group: &str) -> bool {
    registry::groups()
        .iter()
        .any(|(g, _)| *g == group && !g.is_empty())
}

fn known_version(group: &str, version: &str) -> bool {
    registry::groups()
        .iter()
        .any(|(g, v)| *g == group && *v == version)
}

fn objects(group: &str, version: &str, rest: &[&str]) -> Route {
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let lookup = |plural: &str| registry::find(group, version, plural);
    let not_found =
        || Route::NotFound("the server could not find the requested resource".to_string());
    let target = |resource: &'static Resource,
                  namespace: &str,
                  name: Option<&str>,
                  sub: Option<&str>,
                  tail: &[&str]|
     -> Route {
        let sub = match sub {
            None => None,
            Some(s) => match Sub::parse(s).filter(|s| resource.has(*s)) {
                Some(s) => Some(s),
                None => return not_found(),
            },
        };
        if !tail.is_empty() && sub != Some(Sub::Proxy) {
            return not_found();
        }
        Route::Objects(Target {
            resource,
            namespace: namespace.to_string(),
            name: name.map(String::from),
            sub,
            rest: (sub == Some(Sub::Proxy)).then(|| tail.join("/")),
            legacy_watch,
        })
    };
    match rest {
        // A namespace itself, and its subresources.
        ["namespaces", name] if group.is_empty() => match lookup("namespaces") {
            Some(ns) => target(ns, "", Some(name), None, &[]),
            None => not_found(),
        },
        ["namespaces", name, sub]
            if group.is_empty()
                && Sub::parse(sub).is_some()
                && registry::find("", "v1", sub).is_none() =>
        {
            match lookup("namespaces") {
                Some(ns) => target(ns, "", Some(name), Some(sub), &[]),
                None => not_found(),
            }
        }
        ["namespaces", namespace, plural, tail @ ..] => match lookup(plural) {
            Some(resource) if resource.namespaced => match tail {
                [] => target(resource, namespace, None, None, &[]),
                [name] => target(resource, namespace, Some(name), None, &[]),
                [name, sub, tail @ ..] => target(resource, namespace, Some(name), Some(sub), tail),
            },
            _ => not_found(),
        },
        [plural, tail @ ..] => match lookup(plural) {
            Some(resource) => match tail {
                [] => target(resource, "", None, None, &[]),
                [name] if !resource.namespaced => target(resource, "", Some(name), None, &[]),
                [name, sub, tail @ ..] if !resource.namespaced => {
                    target(resource, "", Some(name), Some(sub), tail)
                }
                _ => not_found(),
            },
            None => not_found(),
        },
        [] => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(path: &str) -> Target {
        match route(path) {
            Some(Route::Objects(t)) => t,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths() {
        let t = objects("/api/v1/namespaces/default/pods/web");
        assert_eq!(
            (
                t.resource.plural,
                t.namespace.as_str(),
                t.name.as_deref(),
                t.sub
            ),
            ("pods", "default", Some("web"), None)
        );
        let t = objects("/api/v1/namespaces/default/pods");
        assert_eq!((t.resource.plural, t.name), ("pods", None));
        let t = objects("/api/v1/pods");
        assert_eq!((t.resource.plural, t.namespace.as_str()), ("pods", ""));
        let t = objects("/apis/apps/v1/namespaces/default/deployments/web/scale");
        assert_eq!(
            (t.resource.plural, t.sub),
            ("deployments", Some(Sub::Scale))
        );
        let t = objects("/api/v1/nodes/n1/status");
        assert_eq!(
            (t.resource.plural, t.name.as_deref(), t.sub),
            ("nodes", Some("n1"), Some(Sub::Status))
        );
        let t = objects("/api/v1/namespaces/kube-system");
        assert_eq!(
            (t.resource.plural, t.name.as_deref(), t.namespace.as_str()),
            ("namespaces", Some("kube-system"), "")
        );
        let t = objects("/api/v1/namespaces/kube-system/status");
        assert_eq!(
            (t.resource.plural, t.sub),
            ("namespaces", Some(Sub::Status))
        );
        let t = objects("/api/v1/namespaces/default/pods/web/proxy/healthz/x");
        assert_eq!(
            (t.sub, t.rest.as_deref()),
            (Some(Sub::Proxy), Some("healthz/x"))
        );
        let t = objects("/api/v1/watch/namespaces/default/pods");
        assert!(t.legacy_watch);
        let t = objects("/api/v1/namespaces/default/configmaps/a%2Fb");
        assert_eq!(t.name.as_deref(), Some("a/b"));
    }

    #[test]
    fn not_found() {
        for path in [
            "/api/v1/nosuch",
            "/api/v1/namespaces/default/nodes",
            "/api/v1/namespaces/default/configmaps/x/scale",
            "/api/v1/pods/web",
            "/apis/apps/v1/namespaces/default/deployments/web/log",
        ] {
            assert!(
                matches!(route(path), Some(Route::NotFound(_))),
                "{path}: {:?}",
                route(path)
            );
        }
        assert!(route("/apis/nosuch.io/v1/things").is_none());
        assert!(route("/healthz").is_none());
        assert!(matches!(route("/apis/apps"), Some(Route::Group(g)) if g == "apps"));
        assert!(matches!(
            route("/apis/apps/v1"),
            Some(Route::Resources { .. })
        ));
    }
}
