//! One worker per pod: it syncs the pod whenever its desired state changes
//! (the newest wins: a `watch` channel keeps only the latest) and once a
//! second to notice exits; it ends after the pod is torn down.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::config::{self, DnsSettings, EnvSources};
use super::hooks;
use super::observed::{self, Observed};
use super::plan::{self, Action, Waiting};
use super::probe::{self, Kind, Tracker};
use super::sources;
use super::status::{self, Notes};
use super::termination;
use super::userns;
use super::volumes::{self, mounter::Mounter};
use crate::runtime::Runtime;

/// What every worker shares.
pub struct PodContext<R> {
    pub runtime: Arc<R>,
    pub client: Client,
    /// Events on pods (probe failures, kills), as `kubelet` on this node.
    pub events: Recorder,
    pub host_ip: String,
    pub log_root: String,
    /// Per-pod files (termination messages): `<root-dir>/pods/<uid>/…`.
    pub pods_dir: std::path::PathBuf,
    pub dns: DnsSettings,
    /// The cap of the restart back-off.
    pub max_restart_period: Duration,
    /// Volume mounts on the node (tmpfs of emptyDirs and Secrets).
    pub mounter: Arc<dyn Mounter>,
    /// Pods the eviction manager chose; their workers act on it.
    pub evictions: Arc<super::evict::Evictions>,
}

/// A worker's memory between syncs.
#[derive(Default)]
struct WorkerState {
    backoff: Backoff,
    /// Why a container could not be started (image pull, config), until it is.
    errors: BTreeMap<String, Waiting>,
    /// Image pulls that failed: (failures, when) per container, for ImagePullBackOff.
    pulls: BTreeMap<String, (u32, Timestamp)>,
    last_status: Option<serde_json::Value>,
    /// Each running container's probes, by container name and kind.
    probes: BTreeMap<(String, Kind), Tracker>,
    /// The pod's volumes that have been set up (at least once), by name.
    volumes: BTreeMap<String, volumes::Ready>,
    /// Volumes whose last set-up failed, and why (each new reason is a
    /// `FailedMount` event).
    volume_failures: BTreeMap<String, String>,
    /// When the volumes were last set up.
    volumes_synced: Option<std::time::Instant>,
    /// The exited instance (container id) each `BackOff` event was for: one
    /// event per back-off, not one per sync.
    backoff_events: BTreeMap<String, String>,
    /// The failed-pull count each image `BackOff` event was for.
    pull_backoff_events: BTreeMap<String, u32>,
}

fn now_nanos() -> i64 {
    Timestamp::now().as_nanosecond() as i64
}

pub async fn run<R: Runtime>(
    ctx: Arc<PodContext<R>>,
    uid: String,
    mut desired: watch::Receiver<Option<Pod>>,
    stop: CancellationToken,
) {
    let mut state = WorkerState {
        backoff: Backoff::with_max(ctx.max_restart_period),
        ..WorkerState::default()
    };
    loop {
        let pod = desired.borrow_and_update().clone();
        // Evicted (now, or before a restart): stopped for good; the pod
        // stays Failed in the API until it is deleted.
        if let Some(p) = pod
            .as_ref()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
        {
            if let Some(message) = ctx.evictions.take(&uid) {
                super::evict::evict(&ctx, p, &uid, &message).await;
                return;
            }
            if super::evict::is_evicted(p) {
                teardown(&ctx, &uid, 0, Some(p)).await;
                return;
            }
        }
        match pod {
            None => {
                teardown(&ctx, &uid, 0, None).await;
                return;
            }
            Some(pod) if pod.metadata.deletion_timestamp.is_some() => {
                let grace = pod
                    .metadata
                    .deletion_grace_period_seconds
                    .or_else(|| {
                        pod.spec
                            .as_ref()
                            .and_then(|s| s.termination_grace_period_seconds)
                    })
                    .unwrap_or(30);
                teardown(&ctx, &uid, grace, Some(&pod)).await;
                finish_deletion(&ctx, &pod, &uid).await;
                return;
            }
            Some(pod) => {
                if let Err(e) = sync(&ctx, &pod, &mut state).await {
                    tracing::warn!(pod = %name(&pod), error = %e, "sync failed");
                }
            }
        }
        tokio::select! {
            changed = desired.changed() => if changed.is_err() {
                // The manager is gone (the kubelet stops): leave the pod running.
                return;
            },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.cancelled() => return,
        }
    }
}

pub(super) fn name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

async fn sync<R: Runtime>(
    ctx: &PodContext<R>,
    pod: &Pod,
    state: &mut WorkerState,
) -> crate::runtime::Result<()> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let observed = observed::observe(ctx.runtime.as_ref(), &uid).await?;
    let p = plan::plan(pod, &observed, &state.backoff, now_nanos());
    // A container waiting out its crash back-off: upstream's BackOff event,
    // once per exited instance.
    for (c, w) in &p.waiting {
        if w.reason != "CrashLoopBackOff" {
            continue;
        }
        let exited = observed.latest(c).map(|x| x.id.clone()).unwrap_or_default();
        if state.backoff_events.get(c) != Some(&exited) {
            state.backoff_events.insert(c.clone(), exited);
            let note = format!(
                "Back-off restarting failed container {c} in pod {}",
                hook_pod(pod)
            );
            event(ctx, pod, EventType::Warning, "BackOff", note).await;
        }
    }
    let mut sandbox = observed.current_sandbox().cloned();
    let mut actions = p.actions;
    let starts = |a: &Action| {
        matches!(
            a,
            Action::CreateSandbox { .. } | Action::StartContainer { .. }
        )
    };
    // Volumes before the sandbox, as upstream; then again every RESYNC
    // while the pod runs (ConfigMap and Secret updates), and at every sync
    // while one fails.
    let due = state
        .volumes_synced
        .is_none_or(|t| t.elapsed() >= volumes::RESYNC)
        || !state.volume_failures.is_empty();
    if due && (actions.iter().any(starts) || sandbox.is_some()) {
        sync_volumes(ctx, pod, state).await;
    }
    // A volume never set up holds every start back (the pod stays
    // ContainerCreating); one that fails only to refresh keeps its files.
    if state
        .volume_failures
        .keys()
        .any(|v| !state.volumes.contains_key(v))
    {
        actions.retain(|a| !starts(a));
    }
    for action in actions {
        match action {
            Action::StopSandbox { id } => ctx.runtime.stop_pod_sandbox(&id).await?,
            Action::RemoveContainer { id } => ctx.runtime.remove_container(&id).await?,
            Action::CreateSandbox { attempt } => {
                let mut config = config::sandbox(pod, attempt, &ctx.log_root, &ctx.dns);
                let block = userns::block(&ctx.pods_dir, pod)
                    .map_err(|e| tonic::Status::resource_exhausted(e.to_string()))?;
                userns::set_sandbox(&mut config, block);
                let id = ctx.runtime.run_pod_sandbox(config).await?;
                tracing::info!(pod = %name(pod), sandbox = %id, "sandbox created");
                let status = ctx.runtime.pod_sandbox_status(&id).await?;
                sandbox = Some(observed::SandboxView {
                    id,
                    ready: true,
                    attempt,
                    created_at: status.created_at,
                    ip: status.network.map(|n| n.ip).unwrap_or_default(),
                });
            }
            Action::StartContainer {
                name: c, attempt, ..
            } => {
                let Some(sb) = &sandbox else { continue };
                if attempt > 0
                    && let Some(prev) = observed.latest(&c)
                {
                    let ran = prev.finished_at.saturating_sub(prev.started_at).max(0) as u64;
                    state.backoff.restarted(&c, Duration::from_nanos(ran));
                }
                match start(ctx, pod, &c, attempt, sb, state).await {
                    Ok(()) => {
                        state.errors.remove(&c);
                    }
                    Err(w) => {
                        tracing::warn!(pod = %name(pod), container = %c, reason = %w.reason, "{}", w.message);
                        state.errors.insert(c, w);
                    }
                }
            }
        }
    }
    let mut observed = observed::observe(ctx.runtime.as_ref(), &uid).await?;
    let probed = run_probes(ctx, pod, &observed, state).await;
    if probed.killed {
        observed = observed::observe(ctx.runtime.as_ref(), &uid).await?;
    }
    termination_messages(ctx, pod, &mut observed);
    let mut notes = Notes {
        waiting: p.waiting,
        failed: p.failed,
        not_ready: probed.not_ready,
        not_started: probed.not_started,
    };
    for (c, w) in &state.errors {
        notes.waiting.entry(c.clone()).or_insert_with(|| w.clone());
    }
    post_status(ctx, pod, &observed, &notes, state).await;
    Ok(())
}

/// Exited instances without a message from the runtime get their
/// termination message (file, or log tail with the fallback policy).
fn termination_messages<R>(ctx: &PodContext<R>, pod: &Pod, observed: &mut Observed) {
    let spec = pod.spec.clone().unwrap_or_default();
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let log_dir = config::log_directory(&ctx.log_root, pod);
    for v in observed.containers.iter_mut() {
        if !v.exited() || !v.message.is_empty() {
            continue;
        }
        let Some(c) = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == v.name)
        else {
            continue;
        };
        let file = termination::file(&ctx.pods_dir, uid, &v.name, v.attempt);
        let log = std::path::Path::new(&log_dir).join(config::log_path(&v.name, v.attempt));
        if let Some(m) = termination::message(c, &file, v.exit_code, &log) {
            v.message = m;
        }
    }
}

/// What this sync's probes decided.
#[derive(Default)]
struct Probed {
    not_ready: std::collections::BTreeSet<String>,
    not_started: std::collections::BTreeSet<String>,
    /// A container was killed for failing its liveness or startup probe.
    killed: bool,
}

/// Runs the probes that are due on the pod's running containers, records
/// failures as `Unhealthy` events, and kills (for a restart per the pod's
/// policy) containers whose liveness or startup probe has failed.
async fn run_probes<R: Runtime>(
    ctx: &PodContext<R>,
    pod: &Pod,
    observed: &Observed,
    state: &mut WorkerState,
) -> Probed {
    let mut probed = Probed::default();
    let spec = pod.spec.clone().unwrap_or_default();
    let pod_ip = status::pod_ip(
        pod,
        observed.current_sandbox().map(|s| s.ip.as_str()),
        &ctx.host_ip,
    )
    .unwrap_or_default();
    let now = now_nanos();
    let mut due = Vec::new();
    let mut keep = std::collections::BTreeSet::new();
    for c in &spec.containers {
        let Some(running) = observed.latest(&c.name).filter(|x| x.running()) else {
            continue;
        };
        let has = |k: Kind| k.of(c).is_some();
        // Until the startup probe passes, the others wait.
        let started = !has(Kind::Startup)
            || state
                .probes
                .get(&(c.name.clone(), Kind::Startup))
                .is_some_and(|t| t.container_id == running.id && t.verdict == Some(true));
        for kind in Kind::ALL {
            let Some(p) = kind.of(c) else { continue };
            let key = (c.name.clone(), kind);
            keep.insert(key.clone());
            let tracker = state
                .probes
                .entry(key.clone())
                .or_insert_with(|| Tracker::new(&running.id, running.started_at));
            if tracker.container_id != running.id {
                *tracker = Tracker::new(&running.id, running.started_at);
            }
            let timing = probe::Timing::of(p, kind);
            if (kind == Kind::Startup) == started || !tracker.due(&timing, now) {
                continue;
            }
            due.push((key, timing, probe::check(p, c, &pod_ip), running.id.clone()));
        }
        if !started {
            probed.not_started.insert(c.name.clone());
            probed.not_ready.insert(c.name.clone());
        }
    }
    state.probes.retain(|k, _| keep.contains(k));
    let runs = due
        .iter()
        .map(|(_, timing, check, id)| probe::run(ctx.runtime.as_ref(), id, check, timing.timeout));
    let outcomes = futures::future::join_all(runs).await;
    for ((key, timing, _, id), outcome) in due.into_iter().zip(outcomes) {
        let (container, kind) = key.clone();
        if !outcome.ok {
            tracing::info!(pod = %name(pod), %container, probe = kind.name(), "probe failed: {}", outcome.message);
            event(
                ctx,
                pod,
                EventType::Warning,
                "Unhealthy",
                format!("{} probe failed: {}", kind.name(), outcome.message),
            )
            .await;
        }
        let Some(tracker) = state.probes.get_mut(&key) else {
            continue;
        };
        let changed = tracker.record(&timing, outcome.ok, now_nanos());
        if changed == Some(false) && kind != Kind::Readiness {
            let why = if kind == Kind::Liveness {
                "liveness"
            } else {
                "startup"
            };
            tracing::info!(pod = %name(pod), %container, "failed its {why} probe: restarting it");
            event(
                ctx,
                pod,
                EventType::Normal,
                "Killing",
                format!("Container {container} failed {why} probe, will be restarted"),
            )
            .await;
            let grace = kind
                .of_spec(&spec, &container)
                .and_then(|p| p.termination_grace_period_seconds)
                .or(spec.termination_grace_period_seconds)
                .unwrap_or(30);
            let spec_of = spec.containers.iter().find(|x| x.name == container);
            kill(ctx, pod, spec_of, &id, grace, &pod_ip).await;
            probed.killed = true;
        }
    }
    // Readiness as it stands after this round.
    for c in &spec.containers {
        if Kind::Readiness.of(c).is_some()
            && state
                .probes
                .get(&(c.name.clone(), Kind::Readiness))
                .is_none_or(|t| t.verdict != Some(true))
        {
            probed.not_ready.insert(c.name.clone());
        }
    }
    probed
}

/// Records an event on the pod; failing to is logged, never fatal.
pub(super) async fn event<R>(
    ctx: &PodContext<R>,
    pod: &Pod,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let e = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    if let Err(err) = ctx.events.publish(&e, &pod.object_ref(&())).await {
        tracing::warn!(pod = %name(pod), error = %err, "cannot record the {reason} event");
    }
}

/// Pulls (per `imagePullPolicy`), creates and starts container `c`.
async fn start<R: Runtime>(
    ctx: &PodContext<R>,
    pod: &Pod,
    c: &str,
    attempt: u32,
    sandbox: &observed::SandboxView,
    state: &mut WorkerState,
) -> Result<(), Waiting> {
    let spec = pod.spec.clone().unwrap_or_default();
    let container = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .find(|x| x.name == c)
        .cloned()
        .ok_or_else(|| Waiting {
            reason: "CreateContainerConfigError".into(),
            message: format!("no container {c} in the pod"),
        })?;
    let image = container.image.clone().unwrap_or_default();
    let latest_tag = !image.contains('@')
        && (image
            .rsplit('/')
            .next()
            .is_some_and(|last| !last.contains(':'))
            || image.ends_with(":latest"));
    let policy = container
        .image_pull_policy
        .clone()
        .unwrap_or_else(|| if latest_tag { "Always" } else { "IfNotPresent" }.into());
    let present = ctx
        .runtime
        .image_status(&image)
        .await
        .ok()
        .flatten()
        .is_some();
    let pull = match policy.as_str() {
        "Always" => true,
        "Never" if !present => {
            let message =
                format!("Container image \"{image}\" is not present with pull policy of Never");
            event(ctx, pod, EventType::Warning, "ErrImageNeverPull", message).await;
            return Err(Waiting {
                reason: "ErrImageNeverPull".into(),
                message: format!(
                    "Container image \"{image}\" is not present with pull policy of Never"
                ),
            });
        }
        _ => !present,
    };
    if pull {
        if let Some((failures, when)) = state.pulls.get(c) {
            let wait = Duration::from_secs((10u64 << (failures - 1).min(5)).min(300));
            if Timestamp::now() < *when + wait {
                // Once per failed pull, not once per sync.
                if *failures > state.pull_backoff_events.get(c).copied().unwrap_or(0) {
                    state.pull_backoff_events.insert(c.to_string(), *failures);
                    let note = format!("Back-off pulling image \"{image}\"");
                    event(ctx, pod, EventType::Normal, "BackOff", note).await;
                }
                return Err(Waiting {
                    reason: "ImagePullBackOff".into(),
                    message: format!("Back-off pulling image \"{image}\""),
                });
            }
        }
        event(
            ctx,
            pod,
            EventType::Normal,
            "Pulling",
            format!("Pulling image \"{image}\""),
        )
        .await;
        let pulling = std::time::Instant::now();
        if let Err(e) = ctx.runtime.pull_image(&image, None).await {
            let note = format!("Failed to pull image \"{image}\": {e}");
            event(ctx, pod, EventType::Warning, "Failed", note).await;
            let entry = state
                .pulls
                .entry(c.to_string())
                .or_insert((0, Timestamp::now()));
            *entry = (entry.0 + 1, Timestamp::now());
            return Err(Waiting {
                reason: "ErrImagePull".into(),
                message: format!("failed to pull image \"{image}\": {e}"),
            });
        }
        state.pulls.remove(c);
        state.pull_backoff_events.remove(c);
        let note = format!(
            "Successfully pulled image \"{image}\" in {:.3}s",
            pulling.elapsed().as_secs_f64()
        );
        event(ctx, pod, EventType::Normal, "Pulled", note).await;
    } else {
        let note = format!("Container image \"{image}\" already present on machine");
        event(ctx, pod, EventType::Normal, "Pulled", note).await;
    }
    let sources = env_sources(ctx, pod, &container).await;
    let config_error = |message: String| Waiting {
        reason: "CreateContainerConfigError".into(),
        message,
    };
    let pod_ip = status::pod_ip(pod, Some(&sandbox.ip), &ctx.host_ip).unwrap_or_default();
    let env = config::environment(pod, &container, &sources, &ctx.host_ip, &pod_ip)
        .map_err(|e| config_error(e.to_string()))?;
    let vars: BTreeMap<String, String> = env.iter().cloned().collect();
    let mounts = volumes::container_mounts(&container, &state.volumes, &vars)
        .map_err(|e| config_error(e.to_string()))?;
    let mut config = config::container(pod, &container, attempt, env);
    config.mounts.extend(mounts);
    let block = userns::block(&ctx.pods_dir, pod).map_err(|e| config_error(e.to_string()))?;
    userns::set_container(&mut config, block);
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let message_file = termination::file(&ctx.pods_dir, uid, c, attempt);
    termination::prepare(&message_file).map_err(|e| Waiting {
        reason: "CreateContainerConfigError".into(),
        message: format!("termination message file {}: {e}", message_file.display()),
    })?;
    if let Some(k) = block {
        // What the pod writes to: its root's, not host root's.
        let empty_dirs = config
            .mounts
            .iter()
            .map(|m| std::path::Path::new(&m.host_path))
            .filter(|p| p.parent().is_some_and(|d| d.ends_with(volumes::EMPTY_DIR)));
        for path in empty_dirs.chain([message_file.as_path()]) {
            userns::give_to_pod(path, k).map_err(|e| {
                config_error(format!("user namespace: chown {}: {e}", path.display()))
            })?;
        }
    }
    config.mounts.push(skiff_proto::cri::Mount {
        container_path: termination::container_path(&container),
        host_path: message_file.display().to_string(),
        ..Default::default()
    });
    let mut sandbox_config = config::sandbox(pod, sandbox.attempt, &ctx.log_root, &ctx.dns);
    userns::set_sandbox(&mut sandbox_config, block);
    let id = ctx
        .runtime
        .create_container(&sandbox.id, config, sandbox_config)
        .await
        .map_err(|e| Waiting {
            reason: "CreateContainerError".into(),
            message: e.to_string(),
        })?;
    event(
        ctx,
        pod,
        EventType::Normal,
        "Created",
        format!("Created container {c}"),
    )
    .await;
    ctx.runtime
        .start_container(&id)
        .await
        .map_err(|e| Waiting {
            reason: "RunContainerError".into(),
            message: e.to_string(),
        })?;
    event(
        ctx,
        pod,
        EventType::Normal,
        "Started",
        format!("Started container {c}"),
    )
    .await;
    tracing::info!(pod = %name(pod), container = %c, attempt, "container started");
    if let Some(h) = hooks::Which::PostStart.of(&container) {
        let hook = hooks::hook(h, &container, &pod_ip);
        let grace = spec.termination_grace_period_seconds.unwrap_or(30);
        let limit = Duration::from_secs(grace.max(1) as u64);
        let outcome = hooks::run(ctx.runtime.as_ref(), &id, &hook, limit, c, &hook_pod(pod)).await;
        if !outcome.ok {
            // As upstream: the event, then the container is killed and
            // restarted per the pod's restartPolicy.
            tracing::warn!(pod = %name(pod), container = %c, "{}", outcome.message);
            event(
                ctx,
                pod,
                EventType::Warning,
                "FailedPostStartHook",
                outcome.message,
            )
            .await;
            let _ = ctx.runtime.stop_container(&id, grace).await;
        }
    }
    Ok(())
}

/// The pod as upstream's hook messages name it: `name_namespace(uid)`.
fn hook_pod(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// Stops container `id`: its preStop hook (when `c` has one) within
/// `grace` seconds, then SIGTERM with what is left of the grace period —
/// at least 2 s after a hook, as upstream — and SIGKILL after that.
async fn kill<R: Runtime>(
    ctx: &PodContext<R>,
    pod: &Pod,
    c: Option<&k8s_openapi::api::core::v1::Container>,
    id: &str,
    grace: i64,
    pod_ip: &str,
) {
    let mut left = grace;
    if let Some(c) = c {
        let note = format!("Stopping container {}", c.name);
        event(ctx, pod, EventType::Normal, "Killing", note).await;
    }
    if let Some((c, h)) = c.and_then(|c| Some((c, hooks::Which::PreStop.of(c)?))) {
        let started = std::time::Instant::now();
        let hook = hooks::hook(h, c, pod_ip);
        let limit = Duration::from_secs(grace.max(0) as u64);
        let outcome = hooks::run(
            ctx.runtime.as_ref(),
            id,
            &hook,
            limit,
            &c.name,
            &hook_pod(pod),
        )
        .await;
        if !outcome.ok {
            tracing::warn!(pod = %name(pod), container = %c.name, "{}", outcome.message);
            event(
                ctx,
                pod,
                EventType::Warning,
                "FailedPreStopHook",
                outcome.message,
            )
            .await;
        }
        left = (grace - started.elapsed().as_secs() as i64).max(2);
    }
    if let Err(e) = ctx.runtime.stop_container(id, left).await {
        tracing::warn!(pod = %name(pod), container = id, error = %e, "cannot stop the container");
    }
}

/// The ConfigMaps and Secrets the container's environment reads (missing
/// ones are left out: the environment says which is missing).
async fn env_sources<R>(
    ctx: &PodContext<R>,
    pod: &Pod,
    c: &k8s_openapi::api::core::v1::Container,
) -> EnvSources {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let (cms, secrets) = config::env_references(c);
    let refs = sources::References {
        config_maps: cms.into_iter().collect(),
        secrets: secrets.into_iter().collect(),
        ..Default::default()
    };
    EnvSources::from_sources(&sources::fetch(&ctx.client, &ns, &refs).await)
}

/// Sets the pod's volumes up (or refreshes their files); each new failure
/// is a `FailedMount` event in upstream's words.
async fn sync_volumes<R>(ctx: &PodContext<R>, pod: &Pod, state: &mut WorkerState) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let fetched = sources::fetch(&ctx.client, &ns, &sources::volume_references(pod)).await;
    let mut failures = BTreeMap::new();
    for (volume, planned) in volumes::plan(pod, &fetched, &ctx.pods_dir) {
        let done = planned.and_then(|v| {
            let changed = volumes::set_up(ctx.mounter.as_ref(), &v)?;
            Ok((v, changed))
        });
        match done {
            Ok((v, changed)) => {
                if changed && state.volumes.contains_key(&volume) {
                    tracing::info!(pod = %name(pod), %volume, "volume files updated");
                }
                state.volumes.insert(volume, volumes::Ready::from(&v));
            }
            Err(e) => {
                failures.insert(volume, e.to_string());
            }
        }
    }
    for (volume, message) in &failures {
        if state.volume_failures.get(volume) == Some(message) {
            continue;
        }
        let note = format!("MountVolume.SetUp failed for volume \"{volume}\" : {message}");
        tracing::warn!(pod = %name(pod), "{note}");
        event(ctx, pod, EventType::Warning, "FailedMount", note).await;
    }
    state.volume_failures = failures;
    state.volumes_synced = Some(std::time::Instant::now());
}

async fn post_status<R>(
    ctx: &PodContext<R>,
    pod: &Pod,
    observed: &Observed,
    notes: &Notes,
    state: &mut WorkerState,
) {
    let status = status::status(pod, observed, notes, &ctx.host_ip, Timestamp::now());
    let value = serde_json::to_value(&status).unwrap_or_default();
    // Times that move on every sync (none today) would make this write each second.
    if state.last_status.as_ref() == Some(&value) {
        return;
    }
    let api: Api<Pod> = Api::namespaced(
        ctx.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let patch = serde_json::json!({ "status": value });
    match api
        .patch_status(
            pod.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => state.last_status = Some(value),
        // A static pod's status goes to its mirror, which may not be made
        // yet (or was just deleted): the mirror loop makes it, this is retried.
        Err(kube::Error::Api(s)) if s.code == 404 && super::static_pods::hash_of(pod).is_some() => {
            tracing::debug!(pod = %name(pod), "no mirror pod for the status yet")
        }
        Err(e) => tracing::warn!(pod = %name(pod), error = %e, "cannot post the pod status"),
    }
}

/// Stops every container of the pod (preStop hooks when the pod is known,
/// SIGTERM, SIGKILL after `grace` seconds), its sandboxes, and removes them.
pub(super) async fn teardown<R: Runtime>(
    ctx: &PodContext<R>,
    uid: &str,
    grace: i64,
    pod: Option<&Pod>,
) {
    let runtime = ctx.runtime.as_ref();
    let observed = match observed::observe(runtime, uid).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(uid, error = %e, "cannot read the pod's containers to stop them");
            return;
        }
    };
    let sandbox_ip = observed.current_sandbox().map(|s| s.ip.as_str());
    let pod_ip = match pod {
        Some(p) => status::pod_ip(p, sandbox_ip, &ctx.host_ip),
        None => sandbox_ip.map(String::from),
    }
    .unwrap_or_default();
    let stops = observed
        .containers
        .iter()
        .filter(|c| c.running())
        .map(|c| async {
            let spec = pod.and_then(|p| {
                let s = p.spec.as_ref()?;
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
                    .find(|x| x.name == c.name)
            });
            match pod {
                Some(p) => kill(ctx, p, spec, &c.id, grace, &pod_ip).await,
                None => {
                    if let Err(e) = runtime.stop_container(&c.id, grace).await {
                        tracing::warn!(uid, error = %e, "cannot stop a container");
                    }
                }
            }
        });
    futures::future::join_all(stops).await;
    for c in &observed.containers {
        let _ = runtime.remove_container(&c.id).await;
    }
    for s in &observed.sandboxes {
        let _ = runtime.stop_pod_sandbox(&s.id).await;
        let _ = runtime.remove_pod_sandbox(&s.id).await;
    }
    forget_pod(ctx, uid);
}

/// Unmounts the pod's volumes and removes its directory — not while
/// something is still mounted there.
pub(super) fn forget_pod<R>(ctx: &PodContext<R>, uid: &str) {
    match volumes::tear_down(ctx.mounter.as_ref(), &ctx.pods_dir, uid) {
        Ok(()) => termination::forget(&ctx.pods_dir, uid),
        Err(e) => {
            tracing::warn!(uid, error = %e, "cannot unmount the pod's volumes: its directory stays")
        }
    }
}

/// The kubelet ends a graceful deletion once the pod has stopped: delete
/// with grace 0, only this very pod (its uid).
async fn finish_deletion<R>(ctx: &PodContext<R>, pod: &Pod, uid: &str) {
    let api: Api<Pod> = Api::namespaced(
        ctx.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api
        .delete(pod.metadata.name.as_deref().unwrap_or_default(), &params)
        .await
    {
        Ok(_) => tracing::info!(pod = %name(pod), "pod stopped and deleted"),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
        Err(e) => tracing::warn!(pod = %name(pod), error = %e, "cannot finish the pod's deletion"),
    }
}
