//! Leader election on a Lease (`kube-system/kube-controller-manager`,
//! `kube-system/kube-scheduler`), the way client-go's `leaderelection` does
//! it: an instance takes the Lease when
//! nobody holds it or the holder has not renewed it for `lease_duration`,
//! renews it every `retry_period`, and gives up leadership (the process
//! exits, as upstream's does) when it could not renew for `renew_deadline`.
//! On a clean shutdown the holder releases the Lease so another instance
//! takes over at once. Writes carry the resourceVersion read, so two
//! instances can never both win the same round.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};

/// Where the Leases of the control plane live, as upstream.
pub const LEASE_NAMESPACE: &str = "kube-system";

/// Why a round of the election could not be decided.
#[derive(Debug, thiserror::Error)]
#[error("lease {name}: {source}")]
pub struct LeaseError {
    name: String,
    source: kube::Error,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// The Lease's name in `kube-system`: the program's upstream name.
    pub lease_name: String,
    /// Who we are in `holderIdentity` (see [`identity`]).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// Whether `me` may take (or keep) `lease` at `now`.
pub fn can_take(lease: Option<&LeaseSpec>, me: &str, now: Timestamp) -> bool {
    let Some(spec) = lease else {
        return true;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() || holder == me {
        return true;
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    match &spec.renew_time {
        None => true,
        Some(MicroTime(renewed)) => *renewed + SignedDuration::from_secs(duration) < now,
    }
}

/// The Lease spec `me` writes when taking or renewing `current`.
pub fn next_spec(
    current: Option<&LeaseSpec>,
    me: &str,
    now: Timestamp,
    duration: Duration,
) -> LeaseSpec {
    let held_by_me = current
        .and_then(|s| s.holder_identity.as_deref())
        .is_some_and(|h| h == me);
    let transitions = current.and_then(|s| s.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(duration.as_secs().max(1) as i32),
        acquire_time: if held_by_me {
            current.and_then(|s| s.acquire_time.clone())
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(if held_by_me || current.is_none() {
            transitions
        } else {
            transitions + 1
        }),
        ..Default::default()
    }
}

/// The `--leader-elect*` flags, with upstream's names and defaults; every
/// control-plane program flattens them into its command line.
#[derive(Debug, Clone, clap::Args)]
pub struct Flags {
    /// Take a Lease in kube-system before doing any work, so that only one of
    /// several instances acts (`--leader-elect=false` to run without).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub leader_elect: bool,

    /// How long a leader's Lease lasts without renewal before another instance takes it.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub leader_elect_lease_duration: Duration,

    /// How long the leader keeps trying to renew before it gives up (and exits).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub leader_elect_renew_deadline: Duration,

    /// How often instances try to take or renew the Lease.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub leader_elect_retry_period: Duration,
}

impl Flags {
    /// Upstream's defaults with the election off (tests, a single instance).
    pub fn off() -> Flags {
        Flags {
            leader_elect: false,
            leader_elect_lease_duration: Duration::from_secs(15),
            leader_elect_renew_deadline: Duration::from_secs(10),
            leader_elect_retry_period: Duration::from_secs(2),
        }
    }

    /// An elector for the Lease `kube-system/<lease_name>`, when the election is on.
    pub fn elector(&self, client: Client, lease_name: &str) -> Option<Elector> {
        self.leader_elect.then(|| {
            Elector::new(
                client,
                Settings {
                    lease_name: lease_name.into(),
                    identity: identity(),
                    lease_duration: self.leader_elect_lease_duration,
                    renew_deadline: self.leader_elect_renew_deadline,
                    retry_period: self.leader_elect_retry_period,
                },
            )
        })
    }
}

pub struct Elector {
    api: Api<Lease>,
    pub settings: Settings,
}

impl Elector {
    pub fn new(client: Client, settings: Settings) -> Self {
        Elector {
            api: Api::namespaced(client, LEASE_NAMESPACE),
            settings,
        }
    }

    /// One attempt to take or renew the Lease; `Ok(true)` when we hold it.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, LeaseError> {
        let me = self.settings.identity.as_str();
        let name = self.settings.lease_name.as_str();
        let failed = |source| LeaseError {
            name: name.to_string(),
            source,
        };
        let now = Timestamp::now();
        match self.api.get_opt(name).await.map_err(failed)? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.into()),
                        namespace: Some(LEASE_NAMESPACE.into()),
                        ..Default::default()
                    },
                    spec: Some(next_spec(None, me, now, self.settings.lease_duration)),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    // Another instance created it first: it won this round.
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                    Err(err) => Err(failed(err)),
                }
            }
            Some(mut lease) => {
                if !can_take(lease.spec.as_ref(), me, now) {
                    return Ok(false);
                }
                lease.spec = Some(next_spec(
                    lease.spec.as_ref(),
                    me,
                    now,
                    self.settings.lease_duration,
                ));
                // resourceVersion kept: a concurrent writer makes this a 409.
                match self.api.replace(name, &PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                    Err(err) => Err(failed(err)),
                }
            }
        }
    }

    /// Waits until this instance holds the Lease.
    pub async fn acquire(&self) {
        let mut logged = false;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(identity = %self.settings.identity, "became leader ({LEASE_NAMESPACE}/{})", self.settings.lease_name);
                    return;
                }
                Ok(false) if !logged => {
                    tracing::info!("another instance leads; waiting for the lease");
                    logged = true;
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(error = %err, "cannot read or take the lease"),
            }
            tokio::time::sleep(self.settings.retry_period).await;
        }
    }

    /// Renews until a renewal has failed for `renew_deadline`; returns then
    /// (leadership lost).
    pub async fn keep(&self) {
        let mut last_ok = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.settings.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_ok = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!("the lease was taken by another instance");
                    return;
                }
                Err(err) => tracing::warn!(error = %err, "cannot renew the lease"),
            }
            if last_ok.elapsed() > self.settings.renew_deadline {
                tracing::error!(
                    "could not renew the lease for {:?}",
                    self.settings.renew_deadline
                );
                return;
            }
        }
    }

    /// Gives the Lease up (clean shutdown), so another instance need not wait.
    pub async fn release(&self) {
        let name = self.settings.lease_name.as_str();
        if let Ok(Some(mut lease)) = self.api.get_opt(name).await {
            let mine = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.settings.identity.as_str());
            if mine {
                if let Some(spec) = lease.spec.as_mut() {
                    spec.holder_identity = None;
                    spec.lease_duration_seconds = Some(1);
                }
                let _ = self.api.replace(name, &PostParams::default(), &lease).await;
            }
        }
    }
}

/// A holder identity unique to this process: `<hostname>_<pid>_<nanos>`, as
/// upstream's `<hostname>_<uuid>`, so two instances on one host differ.
pub fn identity() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}_{}_{nanos:08x}", hostname(), std::process::id())
}

/// This machine's hostname, as the kernel reports it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed_ago: i64, duration: i32) -> LeaseSpec {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        LeaseSpec {
            holder_identity: (!holder.is_empty()).then(|| holder.to_string()),
            lease_duration_seconds: Some(duration),
            renew_time: Some(MicroTime(now - SignedDuration::from_secs(renewed_ago))),
            lease_transitions: Some(3),
            acquire_time: Some(MicroTime(now - SignedDuration::from_secs(100))),
            ..Default::default()
        }
    }

    #[test]
    fn who_may_take_the_lease() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let cases = [
            (None, true),                        // no lease yet
            (Some(spec("", 1, 15)), true),       // released
            (Some(spec("me", 1, 15)), true),     // ours: renew
            (Some(spec("other", 1, 15)), false), // held and fresh
            (Some(spec("other", 14, 15)), false),
            (Some(spec("other", 16, 15)), true), // expired
        ];
        for (lease, want) in cases {
            assert_eq!(can_take(lease.as_ref(), "me", now), want, "{lease:?}");
        }
    }

    #[test]
    fn transitions_and_acquire_time() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let renewed = next_spec(Some(&spec("me", 2, 15)), "me", now, Duration::from_secs(15));
        assert_eq!(renewed.lease_transitions, Some(3));
        assert_eq!(renewed.acquire_time, spec("me", 2, 15).acquire_time);
        assert_eq!(renewed.renew_time, Some(MicroTime(now)));
        let taken = next_spec(
            Some(&spec("other", 20, 15)),
            "me",
            now,
            Duration::from_secs(15),
        );
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(MicroTime(now)));
        assert_eq!(taken.holder_identity.as_deref(), Some("me"));
        let first = next_spec(None, "me", now, Duration::from_secs(15));
        assert_eq!(
            (first.lease_transitions, first.lease_duration_seconds),
            (Some(0), Some(15))
        );
    }
}
