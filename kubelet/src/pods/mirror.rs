//! Mirror pods: the API's view of this node's static pods, as upstream's
//! kubelet keeps them. Each static pod gets a Pod of the same name and
//! namespace in the API, annotated `kubernetes.io/config.mirror: <hash>`
//! and owned by the Node (so it goes with the Node), so that `kubectl get
//! pods` shows it; the pod's worker posts its status there (it patches the
//! pod by name, which is the mirror's).
//!
//! The kubelet never runs a mirror (the pod manager skips them) and the
//! API cannot stop a static pod: a deleted mirror is made again. A mirror
//! whose static pod is gone is deleted, and one whose static pod changed
//! is replaced. [`plan`] decides from the static pods and the mirrors the
//! watch shows; [`run`] applies it whenever either changes, and every
//! [`RESYNC`] (which is also how mirrors appear once an API server that
//! was down comes up).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::static_pods::{self, CONFIG_MIRROR, StaticPods};

/// How often the mirrors are compared with the static pods without an
/// event to prompt it.
pub const RESYNC: Duration = Duration::from_secs(10);
/// How soon a round that left something undone (the Node not registered
/// yet, the API server failing) is tried again.
pub const RETRY: Duration = Duration::from_secs(1);

/// One step toward "every static pod has its mirror, and only those".
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Delete this mirror (this very one: its uid is the precondition).
    Delete {
        namespace: String,
        name: String,
        uid: String,
        why: &'static str,
    },
    /// Make the mirror of this static pod.
    Create(Box<Pod>),
}

/// `namespace/name`: how a static pod and its mirror find each other.
pub fn full_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// What to do so that `mirrors` (the mirror pods on this node, by full
/// name) mirror `statics`: deletions first, then creations.
pub fn plan(statics: &StaticPods, mirrors: &BTreeMap<String, Pod>) -> Vec<Action> {
    let by_name: BTreeMap<String, &Pod> = statics.values().map(|p| (full_name(p), p)).collect();
    let mut deletes = Vec::new();
    let mut creates = Vec::new();
    for (name, mirror) in mirrors {
        let why = match by_name.get(name) {
            None => Some("its static pod is gone"),
            Some(s) if static_pods::hash_of(mirror) != static_pods::hash_of(s) => {
                Some("its static pod changed")
            }
            // Someone deleted it through the API: the static pod runs on,
            // so it is finished off and made again, as upstream does.
            Some(_) if mirror.metadata.deletion_timestamp.is_some() => {
                Some("it was deleted through the API")
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            deletes.push(Action::Delete {
                namespace: mirror.metadata.namespace.clone().unwrap_or_default(),
                name: mirror.metadata.name.clone().unwrap_or_default(),
                uid: mirror.metadata.uid.clone().unwrap_or_default(),
                why,
            });
        }
    }
    for (name, pod) in &by_name {
        let replaced = deletes
            .iter()
            .any(|d| matches!(d, Action::Delete { namespace, name: n, .. } if format!("{namespace}/{n}") == *name));
        if !mirrors.contains_key(name) || replaced {
            creates.push(Action::Create(Box::new((*pod).clone())));
        }
    }
    deletes.extend(creates);
    deletes
}

/// The mirror of `static_pod`: the same pod, without the kubelet's uid
/// (the API server gives it its own), marked as a mirror and owned by the
/// Node `node` (uid `node_uid`) as upstream, so the garbage collector
/// removes it with the Node.
pub fn mirror_pod(static_pod: &Pod, node: &str, node_uid: &str) -> Pod {
    let mut pod = static_pod.clone();
    let hash = static_pods::hash_of(static_pod)
        .unwrap_or_default()
        .to_string();
    let m = &mut pod.metadata;
    m.uid = None;
    m.resource_version = None;
    m.annotations
        .get_or_insert_with(Default::default)
        .insert(CONFIG_MIRROR.into(), hash);
    m.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.into(),
        uid: node_uid.into(),
        controller: Some(true),
        block_owner_deletion: None,
    }]);
    pod.status = None;
    pod
}

/// What the loop remembers between rounds.
#[derive(Default)]
struct State {
    /// Mirrors on this node, by full name, as the watch last showed them
    /// (plus the ones just made, until the watch catches up).
    mirrors: BTreeMap<String, Pod>,
    /// The newest status seen on each name's mirror: a mirror made again
    /// gets it at once (the worker posts only changes, and it already
    /// posted this one to the mirror that was deleted).
    statuses: BTreeMap<String, PodStatus>,
    /// The last failure logged per name, so a down API server is one line.
    failures: BTreeMap<String, String>,
}

impl State {
    fn seen(&mut self, pod: &Pod) {
        if let Some(s) = pod.status.as_ref().filter(|s| s.phase.is_some()) {
            self.statuses.insert(full_name(pod), s.clone());
        }
    }

    fn failed(&mut self, name: &str, what: &str, e: &kube::Error) {
        let message = format!("{what}: {e}");
        if self.failures.get(name) != Some(&message) {
            tracing::warn!(pod = %name, "mirror pod: {message}");
            self.failures.insert(name.into(), message);
        }
    }
}

/// Keeps the mirrors of `statics` in the API until `stop`. Nothing is done
/// before the watch has listed this node's pods once (until then the
/// kubelet does not know which mirrors exist); static pods run meanwhile.
pub async fn run(
    client: kube::Client,
    node: String,
    mut statics: watch::Receiver<StaticPods>,
    stop: CancellationToken,
) {
    let api: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut state = State::default();
    let mut relist: Option<BTreeMap<String, Pod>> = None;
    let mut synced = false;
    let mut next_round = RESYNC;
    loop {
        tokio::select! {
            e = events.next() => match e {
                Some(Ok(Event::Apply(p))) => {
                    state.seen(&p);
                    if static_pods::is_mirror(&p) {
                        state.mirrors.insert(full_name(&p), p);
                    } else {
                        state.mirrors.remove(&full_name(&p));
                    }
                }
                Some(Ok(Event::Delete(p))) => {
                    state.seen(&p);
                    let name = full_name(&p);
                    if state.mirrors.get(&name).is_some_and(|m| m.metadata.uid == p.metadata.uid) {
                        state.mirrors.remove(&name);
                    }
                }
                Some(Ok(Event::Init)) => relist = Some(BTreeMap::new()),
                Some(Ok(Event::InitApply(p))) => {
                    state.seen(&p);
                    if static_pods::is_mirror(&p) {
                        relist.get_or_insert_with(BTreeMap::new).insert(full_name(&p), p);
                    }
                }
                Some(Ok(Event::InitDone)) => {
                    state.mirrors = relist.take().unwrap_or_default();
                    synced = true;
                }
                // The pod manager's watch of the same pods says so already.
                Some(Err(e)) => tracing::debug!(error = %e, "mirror pods: watching this node's pods"),
                None => return,
            },
            changed = statics.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(next_round) => {}
            _ = stop.cancelled() => return,
        }
        if !synced {
            continue;
        }
        let actions = plan(&statics.borrow(), &state.mirrors);
        let done = apply(&client, &node, actions, &mut state).await;
        next_round = if done { RESYNC } else { RETRY };
    }
}

/// Carries `actions` out; false when some could not be (tried again soon).
async fn apply(client: &kube::Client, node: &str, actions: Vec<Action>, state: &mut State) -> bool {
    let mut done = true;
    // Read when needed: the Node may be registered again with a new uid,
    // and a mirror owned by the old one would be collected at once.
    let mut node_uid: Option<Option<String>> = None;
    for action in actions {
        match action {
            Action::Delete {
                namespace,
                name,
                uid,
                why,
            } => {
                let full = format!("{namespace}/{name}");
                let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
                let params = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match api.delete(&name, &params).await {
                    Ok(_) => tracing::info!(pod = %full, "mirror pod deleted: {why}"),
                    // Gone already, or another pod by now.
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                    Err(e) => {
                        state.failed(&full, "cannot delete it", &e);
                        done = false;
                        continue;
                    }
                }
                if state
                    .mirrors
                    .get(&full)
                    .is_some_and(|m| m.metadata.uid.as_deref() == Some(uid.as_str()))
                {
                    state.mirrors.remove(&full);
                }
                state.failures.remove(&full);
            }
            Action::Create(static_pod) => {
                let full = full_name(&static_pod);
                if node_uid.is_none() {
                    let nodes: Api<Node> = Api::all(client.clone());
                    node_uid = Some(match nodes.get_opt(node).await {
                        Ok(n) => n.and_then(|n| n.metadata.uid),
                        Err(e) => {
                            state.failed(&full, "cannot read the Node", &e);
                            None
                        }
                    });
                }
                let Some(Some(owner)) = &node_uid else {
                    // Not registered yet: the next round will do.
                    done = false;
                    continue;
                };
                let mirror = mirror_pod(&static_pod, node, owner);
                let api: Api<Pod> = Api::namespaced(
                    client.clone(),
                    mirror.metadata.namespace.as_deref().unwrap_or_default(),
                );
                match api.create(&PostParams::default(), &mirror).await {
                    Ok(mut created) => {
                        tracing::info!(pod = %full, "mirror pod created");
                        state.failures.remove(&full);
                        // The API server drops status on create; put the
                        // last one back — only onto this very version, so
                        // a newer status the worker posted meanwhile wins.
                        if let Some(status) = state.statuses.get(&full).cloned() {
                            created.status = Some(status);
                            let name = created.metadata.name.clone().unwrap_or_default();
                            if let Ok(updated) = api
                                .replace_status(&name, &PostParams::default(), &created)
                                .await
                            {
                                created = updated;
                            }
                        }
                        state.mirrors.insert(full, created);
                    }
                    Err(e) => {
                        state.failed(&full, "cannot create it", &e);
                        done = false;
                    }
                }
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn static_pod(name: &str, image: &str) -> Pod {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{containers: [{{name: c, image: {image}}}]}}\n"
        );
        static_pods::from_file(Path::new("f.yaml"), &text, "n1", "t").unwrap()
    }

    fn mirror_of(p: &Pod, uid: &str) -> Pod {
        let mut m = mirror_pod(p, "n1", "node-uid");
        m.metadata.uid = Some(uid.into());
        m
    }

    fn statics(pods: &[&Pod]) -> StaticPods {
        pods.iter()
            .map(|p| (p.metadata.uid.clone().unwrap(), (*p).clone()))
            .collect()
    }

    fn mirrors(pods: &[Pod]) -> BTreeMap<String, Pod> {
        pods.iter().map(|p| (full_name(p), p.clone())).collect()
    }

    /// Actions as short strings: `create default/a-n1`, `delete default/a-n1 m1 (why)`.
    fn show(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Create(p) => format!("create {}", full_name(p)),
                Action::Delete {
                    namespace,
                    name,
                    uid,
                    why,
                } => format!("delete {namespace}/{name} {uid} ({why})"),
            })
            .collect()
    }

    #[test]
    fn the_mirror_is_the_static_pod_marked_and_owned_by_the_node() {
        let s = static_pod("web", "i:1");
        let m = mirror_pod(&s, "n1", "node-uid");
        assert_eq!(m.metadata.name.as_deref(), Some("web-n1"));
        assert_eq!(m.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(m.metadata.uid, None);
        let a = m.metadata.annotations.as_ref().unwrap();
        let hash = s.metadata.uid.clone().unwrap();
        assert_eq!(a[CONFIG_MIRROR], hash);
        assert_eq!(a[static_pods::CONFIG_HASH], hash);
        assert_eq!(a[static_pods::CONFIG_SOURCE], "file");
        assert!(a.contains_key(static_pods::CONFIG_SEEN));
        let owner = &m.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Node", "n1", "node-uid")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(m.spec, s.spec);
        assert!(static_pods::is_mirror(&m));
    }

    #[test]
    fn plan_makes_missing_mirrors_and_removes_stale_ones() {
        let a = static_pod("a", "i:1");
        let a2 = static_pod("a", "i:2");
        let b = static_pod("b", "i:1");
        let mut deleted = mirror_of(&a, "m1");
        deleted.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        type Case<'a> = (&'a str, StaticPods, BTreeMap<String, Pod>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            ("nothing", statics(&[]), mirrors(&[]), vec![]),
            (
                "new static pods",
                statics(&[&a, &b]),
                mirrors(&[]),
                vec!["create default/a-n1", "create default/b-n1"],
            ),
            (
                "in sync",
                statics(&[&a]),
                mirrors(&[mirror_of(&a, "m1")]),
                vec![],
            ),
            (
                "file removed",
                statics(&[]),
                mirrors(&[mirror_of(&a, "m1")]),
                vec!["delete default/a-n1 m1 (its static pod is gone)"],
            ),
            (
                "file changed",
                statics(&[&a2]),
                mirrors(&[mirror_of(&a, "m1")]),
                vec![
                    "delete default/a-n1 m1 (its static pod changed)",
                    "create default/a-n1",
                ],
            ),
            (
                "mirror deleted through the API",
                statics(&[&a]),
                mirrors(&[deleted]),
                vec![
                    "delete default/a-n1 m1 (it was deleted through the API)",
                    "create default/a-n1",
                ],
            ),
            (
                "one of each",
                statics(&[&a, &b]),
                mirrors(&[
                    mirror_of(&a, "m1"),
                    mirror_of(&static_pod("c", "i:1"), "m3"),
                ]),
                vec![
                    "delete default/c-n1 m3 (its static pod is gone)",
                    "create default/b-n1",
                ],
            ),
        ];
        for (what, s, m, want) in cases {
            assert_eq!(show(&plan(&s, &m)), want, "{what}");
        }
    }
}
