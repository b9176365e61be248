//! The Deployment controller's decisions, as a pure function:
//! `plan(deployment, observed) -> Vec<Action>`. One call is one pass of
//! upstream's `syncDeployment`: claim ReplicaSets, then either sync status
//! only (deleting), scale only (paused, or `replicas` changed: proportional
//! scaling), or take one rollout step (RollingUpdate or Recreate), then
//! compute the status `kubectl rollout status` reads.
//!
//! The planner works on copies of the ReplicaSets, applying each decision to
//! them as upstream applies each write before the next; at the end every
//! ReplicaSet that changed becomes one write (so one pass never writes the same
//! object twice) and every change of size becomes a `ScalingReplicaSet` event.
//!
//! A rolling step, with replicas 7, maxSurge 2, maxUnavailable 1 (so at most
//! 9 pods by spec, at least 6 available), from an old ReplicaSet of 7:
//! pass 1 creates the new one with 2 (7 + 2 = 9) and scales the old one to 6
//! (9 − 6 available needed − 2 new unavailable = 1 may go); as new pods become
//! available, each pass scales the new one up to the surge bound and the old
//! one down by what availability allows, until the new one has 7 and the old 0.
//! One deliberate difference from upstream: when sizing the new ReplicaSet,
//! an old one counts as many pods as it still has (`status.replicas`) while
//! its controller has not yet deleted what a scale-down asked, so the pods
//! that exist never exceed replicas + maxSurge, not only the specs; and the
//! available pods an old ReplicaSet keeps are at most its `spec.replicas`.
//! Rollback is not special: `kubectl rollout undo` copies an old ReplicaSet's
//! template into the Deployment, so that ReplicaSet becomes the new one again
//! and gets the next revision number.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};

use super::hash::{HASH_LABEL, equal_ignore_hash, pod_template_hash};
use super::rolling::{is_rolling, max_surge, max_unavailable, replicas};
use crate::owner::{Claim, claim, controller_ref, is_controlled_by};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Annotations of a Deployment that are not copied to its ReplicaSets.
const SKIP_COPY: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];
/// Upstream's limit on the length of the revision-history annotation.
const MAX_REV_HISTORY_CHARS: usize = 2000;

pub const PROGRESSING: &str = "Progressing";
pub const AVAILABLE: &str = "Available";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";

/// What the controller saw in its caches.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// ReplicaSets of the Deployment's namespace (every one: the planner claims).
    pub replica_sets: &'a [ReplicaSet],
    /// Pods of the namespace (Recreate waits for old pods to be gone).
    pub pods: &'a [Pod],
    pub now: Timestamp,
}

/// A change to an existing ReplicaSet (a merge patch guarded by its resourceVersion).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSetUpdate {
    pub name: String,
    pub resource_version: Option<String>,
    pub replicas: Option<i32>,
    pub min_ready_seconds: Option<i32>,
    /// Annotations added or changed.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Set the Deployment as the ReplicaSet's controller.
    AdoptReplicaSet {
        name: String,
        uid: String,
    },
    /// Remove the Deployment's controller reference from the ReplicaSet.
    ReleaseReplicaSet {
        name: String,
        uid: String,
    },
    CreateReplicaSet(Box<ReplicaSet>),
    UpdateReplicaSet(ReplicaSetUpdate),
    DeleteReplicaSet {
        name: String,
        uid: String,
    },
    /// Set the Deployment's `deployment.kubernetes.io/revision` annotation.
    SetDeploymentRevision(String),
    UpdateStatus(Box<DeploymentStatus>),
    Event {
        warning: bool,
        reason: String,
        note: String,
    },
    /// Look again after this long (progress deadline).
    RequeueAfter(Duration),
}

pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

fn set_spec_replicas(rs: &mut ReplicaSet, n: i32) {
    rs.spec.replicas = Some(n);
}

fn status_of(rs: &ReplicaSet) -> (i32, i32, i32) {
    let s = rs.status.clone().unwrap_or_default();
    (
        s.replicas,
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0),
    )
}

fn available(rs: &ReplicaSet) -> i32 {
    status_of(rs).2
}

/// Available pods a ReplicaSet will keep: its status may not have caught up
/// with a scale-down yet, and the ReplicaSet deletes unavailable pods first.
fn kept_available(rs: &ReplicaSet) -> i32 {
    available(rs).min(spec_replicas(rs))
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    annotation(&rs.metadata, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn created(rs: &ReplicaSet) -> (Option<Timestamp>, String) {
    (
        rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
        rs.metadata.name.clone().unwrap_or_default(),
    )
}

fn name(rs: &ReplicaSet) -> String {
    rs.metadata.name.clone().unwrap_or_default()
}

fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some(type_))
}

fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: Some(type_.into()),
        status: Some(status.into()),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Upstream `SetDeploymentCondition`: no change when status and reason are the
/// same; the transition time is kept when only the reason changes.
fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    let type_ = cond.type_.clone().unwrap_or_default();
    if let Some(current) = condition(status, &type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &type_);
    status.conditions.get_or_insert_with(Vec::new).push(cond);
}

fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conds) = status.conditions.as_mut() {
        conds.retain(|c| c.type_.as_deref() != Some(type_));
    }
}

fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec.progress_deadline_seconds.filter(|s| *s != i32::MAX)
}

fn paused(d: &Deployment) -> bool {
    d.spec.paused.unwrap_or(false)
}

/// Upstream `DeploymentComplete`: every replica updated and available, and
/// the status is about the latest spec.
pub fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let want = replicas(d);
    status.updated_replicas.unwrap_or(0) == want
        && status.replicas.unwrap_or(0) == want
        && status.available_replicas.unwrap_or(0) == want
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Upstream `DeploymentProgressing`: more updated, fewer old, or more ready or
/// available replicas than the stored status says.
fn deployment_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
        || new_old < old_old
        || new.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
        || new.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

fn deployment_timed_out(d: &Deployment, new: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(cond) = condition(new, PROGRESSING) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => cond
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0 + jiff::SignedDuration::from_secs(i64::from(deadline)) < now),
    }
}

/// Plans one pass over `d`.
pub fn plan(d: &Deployment, observed: &Observed<'_>) -> Vec<Action> {
    let mut planner = Planner::new(d, observed);
    planner.run();
    planner.finish()
}

struct Planner<'a> {
    d: &'a Deployment,
    observed: &'a Observed<'a>,
    now: Timestamp,
    /// Owned ReplicaSets (working copies), oldest first.
    rss: Vec<ReplicaSet>,
    originals: BTreeMap<String, ReplicaSet>,
    /// Names in the order they were first changed (the order of the writes).
    touched: Vec<String>,
    new_rs: Option<usize>,
    /// The status being built (starts as the stored one).
    status: DeploymentStatus,
    actions: Vec<Action>,
    deletes: Vec<Action>,
    revision: Option<String>,
    requeue: Option<Duration>,
    write_status: bool,
}

impl<'a> Planner<'a> {
    fn new(d: &'a Deployment, observed: &'a Observed<'a>) -> Self {
        // Conditions carry whole seconds, as they come back from the server.
        let now = Timestamp::from_second(observed.now.as_second()).unwrap_or(observed.now);
        Planner {
            d,
            observed,
            now,
            rss: Vec::new(),
            originals: BTreeMap::new(),
            touched: Vec::new(),
            new_rs: None,
            status: d.status.clone().unwrap_or_default(),
            actions: Vec::new(),
            deletes: Vec::new(),
            revision: None,
            requeue: None,
            write_status: false,
        }
    }

    fn selector(&self) -> Option<&'a LabelSelector> {
        Some(&self.d.spec.selector)
    }

    fn d_name(&self) -> String {
        self.d.metadata.name.clone().unwrap_or_default()
    }

    fn run(&mut self) {
        let d = self.d;
        let empty_selector = self.selector().is_none_or(|s| {
            s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
        });
        if empty_selector {
            self.actions.push(Action::Event {
                warning: true,
                reason: "SelectingAll".into(),
                note: "This deployment is selecting all pods. A non-empty selector is required."
                    .into(),
            });
            return;
        }
        self.claim();
        if d.metadata.deletion_timestamp.is_some() {
            self.sync_revision(false);
            self.sync_status_only();
            return;
        }
        self.check_paused_conditions();
        if paused(d) {
            self.sync();
            return;
        }
        if self.is_scaling_event() {
            self.sync();
            return;
        }
        if is_rolling(d) {
            self.rollout_rolling();
        } else {
            self.rollout_recreate();
        }
    }

    fn claim(&mut self) {
        let d = self.d;
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let deleting = d.metadata.deletion_timestamp.is_some();
        for rs in self.observed.replica_sets {
            if rs.metadata.namespace != d.metadata.namespace {
                continue;
            }
            match claim(&uid, deleting, self.selector(), &rs.metadata) {
                Claim::Owned => {}
                Claim::Adopt => self.actions.push(Action::AdoptReplicaSet {
                    name: name(rs),
                    uid: rs.metadata.uid.clone().unwrap_or_default(),
                }),
                Claim::Release => {
                    self.actions.push(Action::ReleaseReplicaSet {
                        name: name(rs),
                        uid: rs.metadata.uid.clone().unwrap_or_default(),
                    });
                    continue;
                }
                Claim::Ignore => continue,
            }
            self.originals.insert(name(rs), rs.clone());
            self.rss.push(rs.clone());
        }
        self.rss.sort_by_key(created);
    }

    fn find_new(&self) -> Option<usize> {
        let template = &self.d.spec.template;
        self.rss.iter().position(|rs| {
            rs.spec
                .template
                .as_ref()
                .is_some_and(|t| equal_ignore_hash(t, template))
        })
    }

    fn old_indices(&self) -> Vec<usize> {
        (0..self.rss.len())
            .filter(|i| Some(*i) != self.new_rs)
            .collect()
    }

    fn sum(&self, idx: &[usize], f: impl Fn(&ReplicaSet) -> i32) -> i32 {
        idx.iter().map(|i| f(&self.rss[*i])).sum()
    }

    fn all_indices(&self) -> Vec<usize> {
        (0..self.rss.len()).collect()
    }

    fn touch(&mut self, i: usize) {
        let n = name(&self.rss[i]);
        if !self.touched.contains(&n) {
            self.touched.push(n);
        }
    }

    fn set_revision(&mut self, rev: &str) {
        if annotation(&self.d.metadata, REVISION) != Some(rev) {
            self.revision = Some(rev.to_string());
        }
    }

    /// Upstream `getAllReplicaSetsAndSyncRevision`: find (or create) the new
    /// ReplicaSet and give it the next revision. Returns false on a name
    /// collision (the collision count was bumped; the next pass retries).
    fn sync_revision(&mut self, create: bool) -> bool {
        let d = self.d;
        self.new_rs = self.find_new();
        let max_old = self
            .old_indices()
            .iter()
            .map(|i| revision(&self.rss[*i]))
            .max()
            .unwrap_or(0);
        let new_revision = (max_old + 1).to_string();
        if let Some(i) = self.new_rs {
            let mut changed = self.set_new_rs_annotations(i, &new_revision, true);
            let min_ready = d.spec.min_ready_seconds;
            let spec = &mut self.rss[i].spec;
            if spec.min_ready_seconds.unwrap_or(0) != min_ready.unwrap_or(0) {
                spec.min_ready_seconds = min_ready;
                changed = true;
            }
            if changed {
                self.touch(i);
            }
            if let Some(rev) = annotation(&self.rss[i].metadata, REVISION).map(String::from) {
                self.set_revision(&rev);
            }
            if progress_deadline(d).is_some() && condition(&self.status, PROGRESSING).is_none() {
                let msg = format!("Found new replica set {:?}", name(&self.rss[i]));
                let cond = new_condition(PROGRESSING, "True", FOUND_NEW_RS, msg, self.now);
                set_condition(&mut self.status, cond);
            }
            return true;
        }
        if !create {
            return true;
        }
        let spec = &d.spec;
        let collision_count = self.status.collision_count;
        let hash = pod_template_hash(&spec.template, collision_count);
        let rs_name = format!("{}-{}", self.d_name(), hash);
        if self.observed.replica_sets.iter().any(|rs| {
            rs.metadata.namespace == d.metadata.namespace
                && rs.metadata.name.as_deref() == Some(&rs_name)
        }) {
            // The name is taken by a ReplicaSet with another template: pick
            // another name next time (upstream's collisionCount).
            self.status.collision_count = Some(collision_count.unwrap_or(0) + 1);
            self.write_status = true;
            self.actions.push(Action::Event {
                warning: true,
                reason: "HashCollision".into(),
                note: format!(
                    "Found a hash collision for deployment {:?} ({rs_name})",
                    self.d_name()
                ),
            });
            return false;
        }
        let mut template = spec.template.clone();
        let meta = template.metadata.get_or_insert_with(Default::default);
        meta.labels
            .get_or_insert_with(Default::default)
            .insert(HASH_LABEL.into(), hash.clone());
        let labels = meta.labels.clone();
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(HASH_LABEL.into(), hash);
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(rs_name.clone()),
                namespace: d.metadata.namespace.clone(),
                labels,
                owner_references: Some(vec![controller_ref("apps/v1", "Deployment", &d.metadata)]),
                ..Default::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            },
            status: None,
        };
        self.rss.push(rs);
        let i = self.rss.len() - 1;
        self.new_rs = Some(i);
        let n = self.new_rs_new_replicas(i);
        set_spec_replicas(&mut self.rss[i], n);
        self.set_new_rs_annotations(i, &new_revision, false);
        self.touch(i);
        self.set_revision(&new_revision);
        if progress_deadline(d).is_some() {
            let msg = format!("Created new replica set {rs_name:?}");
            let cond = new_condition(PROGRESSING, "True", NEW_RS_CREATED, msg, self.now);
            set_condition(&mut self.status, cond);
        }
        true
    }

    /// Upstream `SetNewReplicaSetAnnotations`.
    fn set_new_rs_annotations(&mut self, i: usize, new_revision: &str, exists: bool) -> bool {
        let d = self.d;
        let desired = replicas(d);
        let max = desired + max_surge(d);
        let rs = &mut self.rss[i];
        let ann = rs.metadata.annotations.get_or_insert_with(Default::default);
        let mut changed = false;
        for (k, v) in d.metadata.annotations.iter().flatten() {
            if SKIP_COPY.contains(&k.as_str()) || ann.get(k) == Some(v) {
                continue;
            }
            ann.insert(k.clone(), v.clone());
            changed = true;
        }
        let old = ann.get(REVISION).cloned();
        let old_int: i64 = old.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0);
        let new_int: i64 = new_revision.parse().unwrap_or(0);
        if old_int < new_int {
            ann.insert(REVISION.into(), new_revision.into());
            changed = true;
            if let Some(old) = old {
                let history = ann.get(REVISION_HISTORY).cloned().unwrap_or_default();
                if history.is_empty() {
                    ann.insert(REVISION_HISTORY.into(), old);
                } else {
                    let mut parts: Vec<&str> = history.split(',').collect();
                    let mut total = history.len() + old.len() + 1;
                    let mut start = 0;
                    while total > MAX_REV_HISTORY_CHARS && start < parts.len() {
                        total -= parts[start].len() + 1;
                        start += 1;
                    }
                    if total <= MAX_REV_HISTORY_CHARS {
                        parts = parts.split_off(start);
                        parts.push(&old);
                        ann.insert(REVISION_HISTORY.into(), parts.join(","));
                    }
                }
            }
        }
        if !exists {
            changed |= set_replicas_annotations(rs, desired, max);
        }
        changed
    }

    /// Upstream `NewRSNewReplicas`: how big the new ReplicaSet may be now.
    fn new_rs_new_replicas(&self, i: usize) -> i32 {
        let d = self.d;
        let want = replicas(d);
        let current_new = spec_replicas(&self.rss[i]);
        if !is_rolling(d) {
            return want;
        }
        // Pods that exist or will: a ReplicaSet scaled down may still have
        // pods its controller has not deleted yet (its status says so).
        let current = self.sum(&self.all_indices(), |rs| {
            spec_replicas(rs).max(status_of(rs).0)
        });
        let max_total = want + max_surge(d);
        if current >= max_total {
            return current_new;
        }
        let up = (max_total - current).min(want - current_new).max(0);
        current_new + up
    }

    /// Upstream `scaleReplicaSet`: size and the replicas annotations. Returns
    /// whether the size changed.
    fn scale(&mut self, i: usize, n: i32) -> bool {
        let d = self.d;
        let desired = replicas(d);
        let max = desired + max_surge(d);
        let rs = &mut self.rss[i];
        let size_changed = spec_replicas(rs) != n;
        let ann_changed = set_replicas_annotations(rs, desired, max);
        if size_changed {
            set_spec_replicas(rs, n);
        }
        if size_changed || ann_changed {
            self.touch(i);
        }
        size_changed
    }

    fn check_paused_conditions(&mut self) {
        if progress_deadline(self.d).is_none() {
            return;
        }
        let reason = condition(&self.status, PROGRESSING).and_then(|c| c.reason.clone());
        let is_paused = paused(self.d);
        if is_paused && reason.as_deref() != Some(PAUSED) {
            let cond = new_condition(
                PROGRESSING,
                "Unknown",
                PAUSED,
                "Deployment is paused".into(),
                self.now,
            );
            set_condition(&mut self.status, cond);
        } else if !is_paused && reason.as_deref() == Some(PAUSED) {
            let cond = new_condition(
                PROGRESSING,
                "Unknown",
                RESUMED,
                "Deployment is resumed".into(),
                self.now,
            );
            set_condition(&mut self.status, cond);
        }
    }

    /// Upstream `isScalingEvent`: an active ReplicaSet was sized for another `replicas`.
    fn is_scaling_event(&self) -> bool {
        if self.find_new().is_none() {
            return false;
        }
        let want = replicas(self.d).to_string();
        self.rss.iter().any(|rs| {
            spec_replicas(rs) > 0
                && annotation(&rs.metadata, DESIRED_REPLICAS).is_some_and(|v| v != want)
        })
    }

    /// Upstream `sync`: scale only (paused, or a scaling event), no new ReplicaSet.
    fn sync(&mut self) {
        self.sync_revision(false);
        self.scale_proportionally();
        if paused(self.d) {
            self.cleanup();
        }
        let status = self.calculate_status();
        self.status = status;
    }

    fn sync_status_only(&mut self) {
        let status = self.calculate_status();
        self.status = status;
    }

    fn active(&self, idx: &[usize]) -> Vec<usize> {
        idx.iter()
            .copied()
            .filter(|i| spec_replicas(&self.rss[*i]) > 0)
            .collect()
    }

    /// Upstream `scale`: the one active ReplicaSet gets everything; with a
    /// saturated new one the old ones go to 0; otherwise the difference is
    /// shared in proportion to each one's size.
    fn scale_proportionally(&mut self) {
        let d = self.d;
        let want = replicas(d);
        let mut old = self.old_indices();
        // newest first
        old.sort_by_key(|i| std::cmp::Reverse(created(&self.rss[*i])));
        let mut candidates: Vec<usize> = old.clone();
        if let Some(n) = self.new_rs {
            candidates.insert(0, n);
        }
        let active = self.active(&candidates);
        let active_or_latest = match active.len() {
            0 => self.new_rs.or(old.first().copied()),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(i) = active_or_latest {
            if spec_replicas(&self.rss[i]) != want {
                self.scale(i, want);
            }
            return;
        }
        if let Some(n) = self.new_rs {
            let rs = &self.rss[n];
            let saturated = spec_replicas(rs) == want
                && annotation(&rs.metadata, DESIRED_REPLICAS) == Some(want.to_string().as_str())
                && available(rs) == want;
            if saturated {
                for i in self.active(&old) {
                    self.scale(i, 0);
                }
                return;
            }
        }
        if !is_rolling(d) {
            return;
        }
        let mut all = active;
        let all_replicas = self.sum(&all, spec_replicas);
        let allowed = if want > 0 { want + max_surge(d) } else { 0 };
        let to_add = allowed - all_replicas;
        // Larger first; on a tie, newer first when growing, older first when shrinking.
        if to_add > 0 {
            all.sort_by(|a, b| {
                let (ra, rb) = (&self.rss[*a], &self.rss[*b]);
                spec_replicas(rb)
                    .cmp(&spec_replicas(ra))
                    .then_with(|| created(rb).cmp(&created(ra)))
            });
        } else if to_add < 0 {
            all.sort_by(|a, b| {
                let (ra, rb) = (&self.rss[*a], &self.rss[*b]);
                spec_replicas(rb)
                    .cmp(&spec_replicas(ra))
                    .then_with(|| created(ra).cmp(&created(rb)))
            });
        }
        let mut added = 0;
        let mut sizes = Vec::new();
        for &i in &all {
            let rs = &self.rss[i];
            let size = spec_replicas(rs);
            if to_add != 0 {
                let p = proportion(rs, d, to_add, added);
                sizes.push(size + p);
                added += p;
            } else {
                sizes.push(size);
            }
        }
        if to_add != 0 && !sizes.is_empty() {
            sizes[0] = (sizes[0] + to_add - added).max(0);
        }
        for (k, &i) in all.iter().enumerate() {
            self.scale(i, sizes[k]);
        }
    }

    fn rollout_rolling(&mut self) {
        if !self.sync_revision(true) {
            self.sync_rollout_status();
            return;
        }
        if self.reconcile_new() {
            self.sync_rollout_status();
            return;
        }
        if self.reconcile_old() {
            self.sync_rollout_status();
            return;
        }
        if deployment_complete(self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup();
        }
        self.sync_rollout_status();
    }

    /// Upstream `reconcileNewReplicaSet`.
    fn reconcile_new(&mut self) -> bool {
        let Some(i) = self.new_rs else {
            return false;
        };
        let want = replicas(self.d);
        let current = spec_replicas(&self.rss[i]);
        if current == want {
            return false;
        }
        if current > want {
            return self.scale(i, want);
        }
        let n = self.new_rs_new_replicas(i);
        self.scale(i, n)
    }

    /// Upstream `reconcileOldReplicaSets`: scale old ReplicaSets down as far
    /// as availability allows, unhealthy replicas first.
    fn reconcile_old(&mut self) -> bool {
        let d = self.d;
        let mut old = self.active(&self.old_indices());
        if old.is_empty() {
            return false;
        }
        old.sort_by_key(|i| created(&self.rss[*i]));
        let all_count = self.sum(&self.all_indices(), spec_replicas);
        let min_available = replicas(d) - max_unavailable(d);
        let new_unavailable = self
            .new_rs
            .map(|i| (spec_replicas(&self.rss[i]) - available(&self.rss[i])).max(0))
            .unwrap_or(0);
        let max_scaled_down = all_count - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        // Unhealthy replicas first: removing them costs no availability.
        let mut cleaned = 0;
        for &i in &old {
            if cleaned >= max_scaled_down {
                break;
            }
            let spec = spec_replicas(&self.rss[i]);
            let avail = available(&self.rss[i]);
            if spec == 0 || spec <= avail {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(spec - avail);
            self.scale(i, spec - down);
            cleaned += down;
        }
        // Then as many available ones as keep minAvailable.
        let available_count = self.sum(&self.all_indices(), kept_available);
        let mut scaled = 0;
        if available_count > min_available {
            let total = available_count - min_available;
            for &i in &old {
                if scaled >= total {
                    break;
                }
                let spec = spec_replicas(&self.rss[i]);
                if spec == 0 {
                    continue;
                }
                let down = spec.min(total - scaled);
                self.scale(i, spec - down);
                scaled += down;
            }
        }
        cleaned + scaled > 0
    }

    /// Upstream `rolloutRecreate`: all old pods gone before the new
    /// ReplicaSet is created and scaled up.
    fn rollout_recreate(&mut self) {
        self.sync_revision(false);
        let old = self.active(&self.old_indices());
        let mut scaled_down = false;
        for i in old {
            scaled_down |= self.scale(i, 0);
        }
        if scaled_down || self.old_pods_running() {
            self.sync_rollout_status();
            return;
        }
        if self.new_rs.is_none() && !self.sync_revision(true) {
            self.sync_rollout_status();
            return;
        }
        if let Some(i) = self.new_rs {
            self.scale(i, replicas(self.d));
        }
        if deployment_complete(self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup();
        }
        self.sync_rollout_status();
    }

    fn old_pods_running(&self) -> bool {
        let old = self.old_indices();
        if self.sum(&old, |rs| status_of(rs).0) > 0 {
            return true;
        }
        let uids: Vec<String> = old
            .iter()
            .filter_map(|i| self.rss[*i].metadata.uid.clone())
            .collect();
        self.observed.pods.iter().any(|pod| {
            uids.iter().any(|uid| is_controlled_by(&pod.metadata, uid))
                && !matches!(
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Failed" | "Succeeded")
                )
        })
    }

    /// Upstream `cleanupDeployment`: keep `revisionHistoryLimit` old
    /// ReplicaSets, deleting the oldest revisions that are fully scaled down.
    fn cleanup(&mut self) {
        let Some(limit) = self
            .d
            .spec
            .revision_history_limit
            .filter(|l| *l != i32::MAX)
        else {
            return;
        };
        let mut cleanable: Vec<usize> = self
            .old_indices()
            .into_iter()
            .filter(|i| self.rss[*i].metadata.deletion_timestamp.is_none())
            .filter(|i| self.originals.contains_key(&name(&self.rss[*i])))
            .collect();
        let diff = cleanable.len() as i64 - i64::from(limit);
        if diff <= 0 {
            return;
        }
        cleanable.sort_by_key(|i| (revision(&self.rss[*i]), created(&self.rss[*i])));
        for &i in cleanable.iter().take(diff as usize) {
            let rs = &self.rss[i];
            let observed_gen = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if status_of(rs).0 != 0
                || spec_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed_gen
            {
                continue;
            }
            self.deletes.push(Action::DeleteReplicaSet {
                name: name(rs),
                uid: rs.metadata.uid.clone().unwrap_or_default(),
            });
        }
    }

    /// Upstream `calculateStatus`, from the ReplicaSets as this pass leaves them.
    fn calculate_status(&self) -> DeploymentStatus {
        let d = self.d;
        let all = self.all_indices();
        let available_count = self.sum(&all, available);
        let total = self.sum(&all, spec_replicas);
        let updated = self.new_rs.map(|i| status_of(&self.rss[i]).0).unwrap_or(0);
        let mut status = DeploymentStatus {
            observed_generation: d.metadata.generation,
            replicas: Some(self.sum(&all, |rs| status_of(rs).0)),
            updated_replicas: Some(updated),
            ready_replicas: Some(self.sum(&all, |rs| status_of(rs).1)),
            available_replicas: Some(available_count),
            unavailable_replicas: Some((total - available_count).max(0)),
            collision_count: self.status.collision_count,
            conditions: self.status.conditions.clone(),
            terminating_replicas: None,
        };
        let cond = if available_count >= replicas(d) - max_unavailable(d) {
            new_condition(
                AVAILABLE,
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                self.now,
            )
        } else {
            new_condition(
                AVAILABLE,
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                self.now,
            )
        };
        set_condition(&mut status, cond);
        status
    }

    /// Upstream `syncRolloutStatus`: the status plus the Progressing condition.
    fn sync_rollout_status(&mut self) {
        let d = self.d;
        let mut status = self.calculate_status();
        if progress_deadline(d).is_none() {
            remove_condition(&mut status, PROGRESSING);
        }
        let stored = d.status.clone().unwrap_or_default();
        let current = condition(&stored, PROGRESSING).cloned();
        let complete_already = status.replicas == status.updated_replicas
            && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
        let rs_name = self.new_rs.map(|i| name(&self.rss[i]));
        if progress_deadline(d).is_some() && !complete_already {
            if deployment_complete(d, &status) {
                let msg = match &rs_name {
                    Some(n) => format!("ReplicaSet {n:?} has successfully progressed."),
                    None => format!(
                        "Deployment {:?} has successfully progressed.",
                        self.d_name()
                    ),
                };
                set_condition(
                    &mut status,
                    new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, msg, self.now),
                );
            } else if deployment_progressing(d, &status) {
                let msg = match &rs_name {
                    Some(n) => format!("ReplicaSet {n:?} is progressing."),
                    None => format!("Deployment {:?} is progressing.", self.d_name()),
                };
                let mut cond = new_condition(PROGRESSING, "True", RS_UPDATED, msg, self.now);
                if let Some(cur) = condition(&status, PROGRESSING) {
                    if cur.status.as_deref() == Some("True") {
                        cond.last_transition_time = cur.last_transition_time.clone();
                    }
                    remove_condition(&mut status, PROGRESSING);
                }
                status.conditions.get_or_insert_with(Vec::new).push(cond);
            } else if deployment_timed_out(d, &status, self.now) {
                let msg = match &rs_name {
                    Some(n) => format!("ReplicaSet {n:?} has timed out progressing."),
                    None => format!("Deployment {:?} has timed out progressing.", self.d_name()),
                };
                set_condition(
                    &mut status,
                    new_condition(PROGRESSING, "False", TIMED_OUT, msg, self.now),
                );
            }
        }
        // Look again when the deadline would pass (upstream `requeueStuckDeployment`).
        if let (Some(deadline), Some(cond)) =
            (progress_deadline(d), condition(&status, PROGRESSING))
            && !deployment_complete(d, &status)
            && cond.reason.as_deref() != Some(TIMED_OUT)
            && let Some(updated) = &cond.last_update_time
        {
            let due = updated.0 + jiff::SignedDuration::from_secs(i64::from(deadline));
            let after = due.duration_since(self.now);
            let after = Duration::try_from(after).unwrap_or(Duration::ZERO);
            self.requeue = Some(after.max(Duration::from_secs(1)) + Duration::from_secs(1));
        }
        self.status = status;
    }

    fn finish(mut self) -> Vec<Action> {
        let mut out = std::mem::take(&mut self.actions);
        for n in std::mem::take(&mut self.touched) {
            let Some(rs) = self.rss.iter().find(|rs| name(rs) == n) else {
                continue;
            };
            match self.originals.get(&n) {
                None => {
                    let size = spec_replicas(rs);
                    out.push(Action::CreateReplicaSet(Box::new(rs.clone())));
                    if size > 0 {
                        out.push(scaling_event(&n, 0, size));
                    }
                }
                Some(orig) => {
                    let (from, to) = (spec_replicas(orig), spec_replicas(rs));
                    let mut annotations = BTreeMap::new();
                    let before = orig.metadata.annotations.clone().unwrap_or_default();
                    for (k, v) in rs.metadata.annotations.iter().flatten() {
                        if before.get(k) != Some(v) {
                            annotations.insert(k.clone(), v.clone());
                        }
                    }
                    let min_ready = |r: &ReplicaSet| r.spec.min_ready_seconds;
                    let update = ReplicaSetUpdate {
                        name: n.clone(),
                        resource_version: orig.metadata.resource_version.clone(),
                        replicas: (from != to).then_some(to),
                        min_ready_seconds: (min_ready(orig) != min_ready(rs))
                            .then(|| min_ready(rs).unwrap_or(0)),
                        annotations,
                    };
                    if update.replicas.is_none()
                        && update.min_ready_seconds.is_none()
                        && update.annotations.is_empty()
                    {
                        continue;
                    }
                    out.push(Action::UpdateReplicaSet(update));
                    if from != to {
                        out.push(scaling_event(&n, from, to));
                    }
                }
            }
        }
        out.append(&mut self.deletes);
        if let Some(rev) = self.revision.take() {
            out.push(Action::SetDeploymentRevision(rev));
        }
        let stored = self.d.status.clone().unwrap_or_default();
        if self.write_status || self.status != stored {
            out.push(Action::UpdateStatus(Box::new(self.status.clone())));
        }
        if let Some(after) = self.requeue {
            out.push(Action::RequeueAfter(after));
        }
        out
    }
}

fn scaling_event(rs: &str, from: i32, to: i32) -> Action {
    let way = if to > from { "up" } else { "down" };
    Action::Event {
        warning: false,
        reason: "ScalingReplicaSet".into(),
        note: format!("Scaled {way} replica set {rs} from {from} to {to}"),
    }
}

/// Upstream `SetReplicasAnnotations`.
fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let ann = rs.metadata.annotations.get_or_insert_with(Default::default);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if ann.get(k) != Some(&v) {
            ann.insert(k.into(), v);
            changed = true;
        }
    }
    changed
}

/// Upstream `GetProportion`: this ReplicaSet's share of `to_add`.
fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    let size = spec_replicas(rs);
    if size == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = replica_set_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

fn replica_set_fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    let size = spec_replicas(rs);
    if replicas(d) == 0 {
        return -size;
    }
    let max_now = replicas(d) + max_surge(d);
    let before = annotation(&rs.metadata, MAX_REPLICAS)
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|v| *v != 0)
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if before == 0 {
        return 0;
    }
    let scaled = f64::from(size) * f64::from(max_now) / f64::from(before);
    scaled.round() as i32 - size
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const NOW: i64 = 1_700_000_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(NOW + secs).unwrap()
    }

    fn template(image: &str) -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image}]}})
    }

    fn deployment(replicas: i32, image: &str, strategy: Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 1},
            "spec": {"replicas": replicas, "strategy": strategy, "revisionHistoryLimit": 10,
                     "progressDeadlineSeconds": 600,
                     "selector": {"matchLabels": {"app": "web"}}, "template": template(image)},
        }))
        .unwrap()
    }

    fn rolling(surge: Value, unavailable: Value) -> Value {
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
    }

    /// A ReplicaSet of the deployment for `image` at `revision`, with
    /// `replicas` by spec and `available` by status.
    fn rs(d: &Deployment, image: &str, revision: i64, size: i32, available: i32) -> ReplicaSet {
        let t: k8s_openapi::api::core::v1::PodTemplateSpec =
            serde_json::from_value(template(image)).unwrap();
        let hash = pod_template_hash(&t, None);
        let mut t = template(image);
        t["metadata"]["labels"][HASH_LABEL] = json!(hash);
        let desired = replicas(d);
        serde_json::from_value(json!({
            "metadata": {"name": format!("web-{hash}"), "namespace": "default", "uid": format!("uid-{hash}"),
                         "resourceVersion": "7", "generation": 1,
                         "creationTimestamp": at(revision * 10 - 1000).to_string(),
                         "labels": t["metadata"]["labels"],
                         "annotations": {REVISION: revision.to_string(), DESIRED_REPLICAS: desired.to_string(),
                                         MAX_REPLICAS: (desired + max_surge(d)).to_string()},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-uid", "controller": true}]},
            "spec": {"replicas": size, "selector": {"matchLabels": {"app": "web", HASH_LABEL: hash}}, "template": t},
            "status": {"replicas": size, "readyReplicas": available, "availableReplicas": available, "observedGeneration": 1},
        }))
        .unwrap()
    }

    fn run(d: &Deployment, rss: &[ReplicaSet]) -> Vec<Action> {
        plan(
            d,
            &Observed {
                replica_sets: rss,
                pods: &[],
                now: at(0),
            },
        )
    }

    fn scales(actions: &[Action]) -> Vec<(String, i32)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::UpdateReplicaSet(u) => u.replicas.map(|r| (u.name.clone(), r)),
                Action::CreateReplicaSet(rs) => Some((name(rs), spec_replicas(rs))),
                _ => None,
            })
            .collect()
    }

    fn events(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Event { reason, note, .. } => Some(format!("{reason}: {note}")),
                _ => None,
            })
            .collect()
    }

    fn status(actions: &[Action]) -> DeploymentStatus {
        actions
            .iter()
            .find_map(|a| match a {
                Action::UpdateStatus(s) => Some((**s).clone()),
                _ => None,
            })
            .expect("a status write")
    }

    fn cond(s: &DeploymentStatus, type_: &str) -> (String, String) {
        let c = condition(s, type_).unwrap_or_else(|| panic!("no {type_} in {s:?}"));
        (
            c.status.clone().unwrap_or_default(),
            c.reason.clone().unwrap_or_default(),
        )
    }

    #[test]
    fn first_pass_creates_the_replica_set() {
        let d = deployment(10, "nginx:1", rolling(json!(2), json!(1)));
        let actions = run(&d, &[]);
        let Some(Action::CreateReplicaSet(created)) = actions.first() else {
            panic!("{actions:?}")
        };
        let hash = pod_template_hash(&d.spec.template, None);
        assert_eq!(name(created), format!("web-{hash}"));
        let spec = &created.spec;
        assert_eq!(spec.replicas, Some(10));
        assert_eq!(
            spec.selector.match_labels.as_ref().unwrap()[HASH_LABEL],
            hash
        );
        assert_eq!(
            spec.template
                .as_ref()
                .unwrap()
                .metadata
                .as_ref()
                .unwrap()
                .labels
                .as_ref()
                .unwrap()[HASH_LABEL],
            hash
        );
        let ann = created.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            (
                ann[REVISION].as_str(),
                ann[DESIRED_REPLICAS].as_str(),
                ann[MAX_REPLICAS].as_str()
            ),
            ("1", "10", "12")
        );
        assert!(is_controlled_by(&created.metadata, "d-uid"));
        assert_eq!(
            events(&actions),
            [format!(
                "ScalingReplicaSet: Scaled up replica set web-{hash} from 0 to 10"
            )]
        );
        assert!(actions.contains(&Action::SetDeploymentRevision("1".into())));
        let s = status(&actions);
        assert_eq!(
            cond(&s, PROGRESSING),
            ("True".into(), NEW_RS_CREATED.into())
        );
        assert_eq!(
            cond(&s, AVAILABLE),
            ("False".into(), "MinimumReplicasUnavailable".into())
        );
        assert_eq!(
            (s.replicas, s.updated_replicas, s.observed_generation),
            (Some(0), Some(0), Some(1))
        );
    }

    /// The rollout arithmetic end to end: a simulated cluster runs each plan
    /// (pods appear at once but become available one step later), and at
    /// every moment the spec total stays within replicas + maxSurge and the
    /// available total at or above replicas − maxUnavailable.
    #[test]
    fn rolling_update_respects_bounds_for_every_combination() {
        let values = ["0", "1", "2", "3", "10%", "25%", "50%", "100%"];
        let parse = |s: &str| -> Value { s.parse::<i32>().map_or(json!(s), |n| json!(n)) };
        let mut combos = 0;
        for replicas_n in [1, 2, 3, 5, 7, 10] {
            for surge in values {
                for unavailable in values {
                    let strategy = rolling(parse(surge), parse(unavailable));
                    let mut d = deployment(replicas_n, "v2", strategy);
                    let (max_s, max_u) = (max_surge(&d), max_unavailable(&d));
                    if max_s == 0 && max_u == 0 {
                        continue; // refused by validation
                    }
                    combos += 1;
                    let ctx =
                        format!("replicas {replicas_n} surge {surge} unavailable {unavailable}");
                    let mut rss = vec![rs(&d, "v1", 1, replicas_n, replicas_n)];
                    let mut done = false;
                    for _step in 0..200 {
                        let actions = run(&d, &rss);
                        apply(&mut d, &mut rss, &actions);
                        let total: i32 = rss.iter().map(spec_replicas).sum();
                        let avail: i32 = rss.iter().map(available).sum();
                        assert!(total <= replicas_n + max_s, "{ctx}: {total} pods by spec");
                        assert!(avail >= replicas_n - max_u, "{ctx}: {avail} available");
                        // Pods become available.
                        for r in &mut rss {
                            let n = spec_replicas(r);
                            let st = r.status.as_mut().unwrap();
                            st.replicas = n;
                            st.ready_replicas = Some(n);
                            st.available_replicas = Some(n);
                        }
                        let new_done = rss
                            .iter()
                            .any(|r| revision(r) == 2 && spec_replicas(r) == replicas_n);
                        let old_gone = rss
                            .iter()
                            .filter(|r| revision(r) == 1)
                            .all(|r| spec_replicas(r) == 0);
                        if new_done
                            && old_gone
                            && deployment_complete(&d, d.status.as_ref().unwrap())
                        {
                            done = true;
                            break;
                        }
                    }
                    assert!(done, "{ctx}: did not finish: {rss:?}");
                }
            }
        }
        assert!(combos > 300, "{combos}");
    }

    /// Applies a plan to the simulated cluster, as the API server would.
    fn apply(d: &mut Deployment, rss: &mut Vec<ReplicaSet>, actions: &[Action]) {
        for a in actions {
            match a {
                Action::CreateReplicaSet(new) => {
                    let mut new = (**new).clone();
                    new.metadata.uid = Some(format!("uid-{}", name(&new)));
                    new.metadata.creation_timestamp = Some(Time(at(rss.len() as i64)));
                    new.status = Some(Default::default());
                    rss.push(new);
                }
                Action::UpdateReplicaSet(u) => {
                    let r = rss.iter_mut().find(|r| name(r) == u.name).unwrap();
                    if let Some(n) = u.replicas {
                        set_spec_replicas(r, n);
                        // Scaling down removes unavailable pods first.
                        let st = r.status.as_mut().unwrap();
                        st.available_replicas = Some(st.available_replicas.unwrap_or(0).min(n));
                        st.replicas = st.replicas.min(n);
                    }
                    r.metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .extend(u.annotations.clone());
                }
                Action::DeleteReplicaSet { name: n, .. } => rss.retain(|r| &name(r) != n),
                Action::UpdateStatus(s) => d.status = Some((**s).clone()),
                Action::SetDeploymentRevision(rev) => {
                    d.metadata
                        .annotations
                        .get_or_insert_with(Default::default)
                        .insert(REVISION.into(), rev.clone());
                }
                _ => {}
            }
        }
    }

    #[test]
    fn stale_status_of_a_scaled_down_replica_set_is_not_trusted() {
        let d = deployment(7, "v2", rolling(json!(2), json!(1)));
        let mut old = rs(&d, "v1", 1, 6, 6);
        old.status.as_mut().unwrap().available_replicas = Some(7); // not yet caught up
        old.status.as_mut().unwrap().replicas = 7;
        let new = rs(&d, "v2", 2, 3, 3);
        let actions = run(&d, &[old.clone(), new]);
        // 6 must stay available: 3 new + at most 3 old.
        assert_eq!(scales(&actions), [(name(&old), 3)]);
        assert_eq!(
            events(&actions),
            [format!(
                "ScalingReplicaSet: Scaled down replica set {} from 6 to 3",
                name(&old)
            )]
        );
    }

    #[test]
    fn proportional_scaling_mid_rollout() {
        // Upstream's documented example: 10 replicas, maxSurge 3, maxUnavailable 2,
        // a stuck rollout at old 8 / new 5, then scaled to 15: 3 more old, 2 more new.
        let before = deployment(10, "v2", rolling(json!(3), json!(2)));
        let old = rs(&before, "v1", 1, 8, 8);
        let new = rs(&before, "v2", 2, 5, 0);
        let d = deployment(15, "v2", rolling(json!(3), json!(2)));
        let actions = run(&d, &[old.clone(), new.clone()]);
        assert_eq!(scales(&actions), [(name(&old), 11), (name(&new), 7)]);
        for a in &actions {
            if let Action::UpdateReplicaSet(u) = a {
                assert_eq!(u.annotations[DESIRED_REPLICAS], "15");
                assert_eq!(u.annotations[MAX_REPLICAS], "18");
                assert_eq!(u.resource_version.as_deref(), Some("7"));
            }
        }
        // And back down to 5: the larger (older) one gives up more.
        let d = deployment(5, "v2", rolling(json!(3), json!(2)));
        let old = rs(
            &deployment(15, "v2", rolling(json!(3), json!(2))),
            "v1",
            1,
            11,
            11,
        );
        let new = rs(
            &deployment(15, "v2", rolling(json!(3), json!(2))),
            "v2",
            2,
            7,
            0,
        );
        let actions = run(&d, &[old.clone(), new.clone()]);
        let sizes = scales(&actions);
        let total: i32 = sizes.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 8, "5 + maxSurge 3: {sizes:?}");
        assert_eq!(sizes, [(name(&old), 5), (name(&new), 3)]);
    }

    #[test]
    fn scaling_a_settled_deployment_scales_its_only_replica_set() {
        let before = deployment(10, "v1", rolling(json!(2), json!(1)));
        let only = rs(&before, "v1", 1, 10, 10);
        let d = deployment(3, "v1", rolling(json!(2), json!(1)));
        let actions = run(&d, std::slice::from_ref(&only));
        assert_eq!(scales(&actions), [(name(&only), 3)]);
        assert_eq!(
            events(&actions),
            [format!(
                "ScalingReplicaSet: Scaled down replica set {} from 10 to 3",
                name(&only)
            )]
        );
    }

    #[test]
    fn recreate_scales_old_down_then_waits_for_pods() {
        let d = deployment(3, "v2", json!({"type": "Recreate"}));
        let old = rs(&d, "v1", 1, 3, 3);
        let actions = run(&d, std::slice::from_ref(&old));
        assert_eq!(scales(&actions), [(name(&old), 0)], "no new ReplicaSet yet");
        // Scaled to 0 but a pod is still terminating.
        let mut old0 = rs(&d, "v1", 1, 0, 0);
        old0.status.as_mut().unwrap().replicas = 0;
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name(&old0), "uid": old0.metadata.uid, "controller": true}]},
            "status": {"phase": "Running"}})).unwrap();
        let waiting = plan(
            &d,
            &Observed {
                replica_sets: std::slice::from_ref(&old0),
                pods: std::slice::from_ref(&pod),
                now: at(0),
            },
        );
        assert!(scales(&waiting).is_empty(), "{waiting:?}");
        let go = run(&d, std::slice::from_ref(&old0));
        let created: Vec<_> = scales(&go);
        assert_eq!(created.len(), 1);
        assert!(
            created[0].0 != name(&old0) && created[0].1 == 3,
            "{created:?}"
        );
        assert!(go.contains(&Action::SetDeploymentRevision("2".into())));
    }

    #[test]
    fn paused_deployment_does_not_roll_but_scales() {
        let mut d = deployment(4, "v2", rolling(json!(1), json!(1)));
        d.spec.paused = Some(true);
        let old = rs(
            &deployment(3, "v1", rolling(json!(1), json!(1))),
            "v1",
            1,
            3,
            3,
        );
        let actions = run(&d, std::slice::from_ref(&old));
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::CreateReplicaSet(_))),
            "{actions:?}"
        );
        assert_eq!(scales(&actions), [(name(&old), 4)]);
        assert_eq!(
            cond(&status(&actions), PROGRESSING),
            ("Unknown".into(), PAUSED.into())
        );
        // Resumed: the condition says so, and the rollout starts.
        d.spec.paused = Some(false);
        d.status = Some(status(&actions));
        let old = rs(&d, "v1", 1, 4, 4);
        let actions = run(&d, &[old]);
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::CreateReplicaSet(_)))
        );
        assert_eq!(cond(&status(&actions), PROGRESSING).0, "True");
    }

    #[test]
    fn rollback_reuses_the_old_replica_set_with_the_next_revision() {
        let d = deployment(3, "v1", rolling(json!(1), json!(0)));
        let v1 = rs(&d, "v1", 1, 0, 0);
        let v2 = rs(&d, "v2", 2, 3, 3);
        let actions = run(&d, &[v1.clone(), v2.clone()]);
        let update = actions
            .iter()
            .find_map(|a| match a {
                Action::UpdateReplicaSet(u) if u.name == name(&v1) => Some(u.clone()),
                _ => None,
            })
            .expect("v1 updated");
        assert_eq!(update.annotations[REVISION], "3");
        assert_eq!(update.annotations[REVISION_HISTORY], "1");
        assert_eq!(update.replicas, Some(1), "surge 1, then v2 goes down");
        assert!(actions.contains(&Action::SetDeploymentRevision("3".into())));
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::CreateReplicaSet(_)))
        );
    }

    #[test]
    fn history_limit_deletes_oldest_scaled_down_revisions() {
        let mut d = deployment(2, "v4", rolling(json!(1), json!(0)));
        d.spec.revision_history_limit = Some(1);
        let done = DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(2),
            updated_replicas: Some(2),
            available_replicas: Some(2),
            ..Default::default()
        };
        d.status = Some(done);
        let mut rss = vec![
            rs(&d, "v1", 1, 0, 0),
            rs(&d, "v2", 2, 0, 0),
            rs(&d, "v3", 3, 0, 0),
            rs(&d, "v4", 4, 2, 2),
        ];
        for r in &mut rss[..3] {
            r.status.as_mut().unwrap().replicas = 0;
        }
        let actions = run(&d, &rss);
        let deleted: Vec<String> = actions
            .iter()
            .filter_map(|a| match a {
                Action::DeleteReplicaSet { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(deleted, [name(&rss[0]), name(&rss[1])]);
    }

    #[test]
    fn complete_rollout_status() {
        let d = deployment(3, "v2", rolling(json!(1), json!(0)));
        let rss = [rs(&d, "v1", 1, 0, 0), rs(&d, "v2", 2, 3, 3)];
        let s = status(&run(&d, &rss));
        assert_eq!(
            (
                s.observed_generation,
                s.replicas,
                s.updated_replicas,
                s.ready_replicas,
                s.available_replicas,
                s.unavailable_replicas
            ),
            (Some(1), Some(3), Some(3), Some(3), Some(3), Some(0))
        );
        assert_eq!(
            cond(&s, PROGRESSING),
            ("True".into(), NEW_RS_AVAILABLE.into())
        );
        assert_eq!(
            cond(&s, AVAILABLE),
            ("True".into(), "MinimumReplicasAvailable".into())
        );
        assert_eq!(
            condition(&s, PROGRESSING).unwrap().message.as_deref(),
            Some(
                format!(
                    "ReplicaSet {:?} has successfully progressed.",
                    name(&rss[1])
                )
                .as_str()
            )
        );
    }

    #[test]
    fn progress_deadline() {
        let mut d = deployment(3, "v2", rolling(json!(1), json!(0)));
        let stuck = [rs(&d, "v1", 1, 3, 3), rs(&d, "v2", 2, 1, 0)];
        let updated = |secs_ago: i64| {
            let mut c = new_condition(
                PROGRESSING,
                "True",
                RS_UPDATED,
                "ReplicaSet is progressing.".into(),
                at(-secs_ago),
            );
            c.last_transition_time = Some(Time(at(-1000)));
            c
        };
        // 100 s into a 600 s deadline: nothing new, look again in 500 s (+1).
        let mut st = DeploymentStatus {
            observed_generation: Some(1),
            replicas: Some(4),
            updated_replicas: Some(1),
            ready_replicas: Some(3),
            available_replicas: Some(3),
            unavailable_replicas: Some(1),
            conditions: Some(vec![updated(100)]),
            ..Default::default()
        };
        d.status = Some(st.clone());
        let actions = run(&d, &stuck);
        assert!(
            actions.contains(&Action::RequeueAfter(Duration::from_secs(501))),
            "{actions:?}"
        );
        // 700 s: timed out.
        st.conditions = Some(vec![updated(700)]);
        d.status = Some(st);
        let s = status(&run(&d, &stuck));
        assert_eq!(cond(&s, PROGRESSING), ("False".into(), TIMED_OUT.into()));
        assert_eq!(
            condition(&s, PROGRESSING).unwrap().message.as_deref(),
            Some(
                format!(
                    "ReplicaSet {:?} has timed out progressing.",
                    name(&stuck[1])
                )
                .as_str()
            )
        );
    }

    #[test]
    fn hash_collision_bumps_the_count() {
        let d = deployment(2, "v1", rolling(json!(1), json!(0)));
        let hash = pod_template_hash(&d.spec.template, None);
        let squatter: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": format!("web-{hash}"), "namespace": "default", "uid": "x"},
            "spec": {"selector": {"matchLabels": {"app": "other"}}, "template": template("other")},
        }))
        .unwrap();
        let actions = run(&d, &[squatter]);
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::CreateReplicaSet(_)))
        );
        assert_eq!(status(&actions).collision_count, Some(1));
        // With the count, the name is different.
        assert_ne!(pod_template_hash(&d.spec.template, Some(1)), hash);
    }

    #[test]
    fn adopts_orphans_and_releases_strays() {
        let d = deployment(2, "v1", rolling(json!(1), json!(0)));
        let mut orphan = rs(&d, "v1", 1, 2, 2);
        orphan.metadata.owner_references = None;
        let mut stray = rs(&d, "v0", 0, 0, 0);
        stray.metadata.labels = Some(BTreeMap::from([("app".into(), "other".into())]));
        let actions = run(&d, &[orphan.clone(), stray.clone()]);
        assert!(actions.contains(&Action::AdoptReplicaSet {
            name: name(&orphan),
            uid: orphan.metadata.uid.clone().unwrap()
        }));
        assert!(actions.contains(&Action::ReleaseReplicaSet {
            name: name(&stray),
            uid: stray.metadata.uid.clone().unwrap()
        }));
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::CreateReplicaSet(_))),
            "the orphan is the new one"
        );
    }

    #[test]
    fn annotations_are_copied_but_not_kubectls_own() {
        let mut d = deployment(1, "v1", rolling(json!(1), json!(0)));
        d.metadata.annotations = Some(BTreeMap::from([
            ("kubernetes.io/change-cause".into(), "v1 please".into()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".into(),
                "{}".into(),
            ),
        ]));
        let actions = run(&d, &[]);
        let Some(Action::CreateReplicaSet(created)) = actions.first() else {
            panic!()
        };
        let ann = created.metadata.annotations.as_ref().unwrap();
        assert_eq!(ann["kubernetes.io/change-cause"], "v1 please");
        assert!(!ann.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
    }
}
