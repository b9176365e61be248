//! The API objects a pod's containers read, fetched by the worker in one
//! place for both users: the environment (`valueFrom`, `envFrom`:
//! ConfigMaps and Secrets) and the volumes (ConfigMaps, Secrets, and the
//! claims of `persistentVolumeClaim` volumes with their PersistentVolumes).
//! What is fetched is then used by pure functions ([`super::config`],
//! [`super::volumes`]).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use kube::Client;
use kube::api::Api;

/// The names to fetch, in the pod's namespace (PersistentVolumes: the
/// ones the claims are bound to).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct References {
    pub config_maps: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
    pub claims: BTreeSet<String>,
}

/// What was fetched, by name. An object that does not exist is absent; one
/// that could not be read for another reason is absent too, with the reason
/// in `errors` under `<resource>/<name>` (so that `optional` does not hide
/// an API server that is down).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub config_maps: BTreeMap<String, ConfigMap>,
    pub secrets: BTreeMap<String, Secret>,
    pub claims: BTreeMap<String, PersistentVolumeClaim>,
    pub persistent_volumes: BTreeMap<String, PersistentVolume>,
    pub errors: BTreeMap<String, String>,
}

/// The objects the pod's volumes name.
pub fn volume_references(pod: &Pod) -> References {
    let mut r = References::default();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        if let Some(c) = &v.config_map {
            r.config_maps.insert(c.name.clone());
        }
        if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            r.secrets.insert(s);
        }
        if let Some(c) = &v.persistent_volume_claim {
            r.claims.insert(c.claim_name.clone());
        }
        for s in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(c) = &s.config_map {
                r.config_maps.insert(c.name.clone());
            }
            if let Some(c) = &s.secret {
                r.secrets.insert(c.name.clone());
            }
        }
    }
    r
}

async fn get<K>(
    api: &Api<K>,
    name: &str,
    resource: &str,
    errors: &mut BTreeMap<String, String>,
) -> Option<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await {
        Ok(found) => found,
        Err(e) => {
            errors.insert(format!("{resource}/{name}"), e.to_string());
            None
        }
    }
}

/// Fetches what `refs` names in `namespace`.
pub async fn fetch(client: &Client, namespace: &str, refs: &References) -> Sources {
    let mut s = Sources::default();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for name in &refs.config_maps {
        if let Some(cm) = get(&cms, name, "configmaps", &mut s.errors).await {
            s.config_maps.insert(name.clone(), cm);
        }
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for name in &refs.secrets {
        if let Some(x) = get(&secrets, name, "secrets", &mut s.errors).await {
            s.secrets.insert(name.clone(), x);
        }
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    for name in &refs.claims {
        let Some(claim) = get(&claims, name, "persistentvolumeclaims", &mut s.errors).await else {
            continue;
        };
        let bound = claim
            .spec
            .as_ref()
            .and_then(|sp| sp.volume_name.clone())
            .filter(|v| !v.is_empty());
        if let Some(pv) = bound
            && let Some(found) = get(&pvs, &pv, "persistentvolumes", &mut s.errors).await
        {
            s.persistent_volumes.insert(pv, found);
        }
        s.claims.insert(name.clone(), claim);
    }
    s
}
