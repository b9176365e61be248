//! Image garbage collection, as upstream's kubelet does it, through the CRI:
//! every `--image-gc-period` (5 min) the kubelet looks at the disk of its
//! root dir; when it is at least `--image-gc-high-threshold` percent full
//! (85) it removes images no container uses, least recently used first,
//! until the disk would be below `--image-gc-low-threshold` (80). An image
//! the kubelet has known for less than `--minimum-image-ttl-duration` (2 min)
//! is never removed (it may be about to be used). Under disk pressure the
//! eviction manager asks for every unused image to go before it evicts a
//! pod ([`ImageGc::collect`] with `everything`).
//!
//! "Used" is what the runtime's containers, running or exited, were created
//! from. "Last used" is the last time the kubelet saw that so: it detects
//! at each pass, keeping its records in memory (a restarted kubelet starts
//! them again, as upstream's does).
//!
//! Worked example: a 100 GiB disk with 10 GiB available is 90 % full, over
//! a high threshold of 85; the low threshold of 80 wants 20 GiB available,
//! so 10 GiB must be freed: unused images go, oldest use first, until their
//! sizes add up to 10 GiB (or none is left).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use skiff_proto::cri;

use crate::runtime::{Runtime, RuntimeError};

/// When images go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Percent of the disk used from which images are collected (100: never).
    pub high_percent: u8,
    /// Percent collection brings the disk below.
    pub low_percent: u8,
    /// Images known for less than this stay.
    pub min_age: Duration,
}

impl Policy {
    /// The flags' values, checked as upstream does.
    pub fn new(high: u8, low: u8, min_age: Duration) -> Result<Policy, String> {
        if high > 100 || low > 100 {
            return Err("the image GC thresholds are percentages (0-100)".into());
        }
        if low >= high && high != 100 {
            return Err(format!(
                "--image-gc-low-threshold ({low}) must be lower than --image-gc-high-threshold ({high})"
            ));
        }
        Ok(Policy {
            high_percent: high,
            low_percent: low,
            min_age,
        })
    }

    /// Bytes to free on a disk of `capacity` bytes with `available` free;
    /// 0 while below the high threshold.
    pub fn bytes_to_free(&self, capacity: u64, available: u64) -> u64 {
        if self.high_percent >= 100 || capacity == 0 {
            return 0;
        }
        let used = capacity.saturating_sub(available) as u128;
        if used * 100 < u128::from(self.high_percent) * capacity as u128 {
            return 0;
        }
        let want_available = (capacity as u128 * u128::from(100 - self.low_percent) / 100) as u64;
        want_available.saturating_sub(available)
    }
}

/// What the kubelet knows of one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    pub first_seen: Instant,
    /// The last pass that saw a container of it.
    pub last_used: Option<Instant>,
    pub size: u64,
}

/// The collector's memory between passes.
#[derive(Debug)]
pub struct ImageGc {
    pub policy: Policy,
    pub records: HashMap<String, Record>,
}

/// What one pass removed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Freed {
    pub removed: Vec<String>,
    pub bytes: u64,
}

impl ImageGc {
    pub fn new(policy: Policy) -> ImageGc {
        ImageGc {
            policy,
            records: HashMap::new(),
        }
    }

    /// Brings the records up to date with the runtime's images and the ids
    /// containers use.
    pub fn detect(&mut self, images: &[cri::Image], in_use: &HashSet<String>, now: Instant) {
        let present: HashSet<&str> = images.iter().map(|i| i.id.as_str()).collect();
        self.records.retain(|id, _| present.contains(id.as_str()));
        for image in images {
            let r = self.records.entry(image.id.clone()).or_insert(Record {
                first_seen: now,
                last_used: None,
                size: image.size,
            });
            r.size = image.size;
            if in_use.contains(&image.id) {
                r.last_used = Some(now);
            }
        }
    }

    /// The unused images to remove to free `want` bytes, least recently
    /// used first (never used: by when first seen), skipping the young.
    pub fn choose(&self, in_use: &HashSet<String>, want: u64, now: Instant) -> Vec<(String, u64)> {
        let mut candidates: Vec<(&String, &Record)> = self
            .records
            .iter()
            .filter(|(id, _)| !in_use.contains(*id))
            .filter(|(_, r)| now.saturating_duration_since(r.first_seen) >= self.policy.min_age)
            .collect();
        candidates.sort_by_key(|(id, r)| (r.last_used.unwrap_or(r.first_seen), r.first_seen, *id));
        let mut out = Vec::new();
        let mut freed = 0u64;
        for (id, r) in candidates {
            if freed >= want {
                break;
            }
            freed = freed.saturating_add(r.size);
            out.push((id.clone(), r.size));
        }
        out
    }

    /// One pass: detect, then remove what [`Self::choose`] picks for a disk
    /// of `capacity` bytes with `available` free — or, with `everything`,
    /// every unused image old enough (disk pressure).
    pub async fn collect<R: Runtime>(
        &mut self,
        runtime: &R,
        capacity: u64,
        available: u64,
        everything: bool,
    ) -> Result<Freed, RuntimeError> {
        let now = Instant::now();
        let images = runtime.list_images().await?;
        let containers = runtime.list_containers("").await?;
        let in_use = images_in_use(&images, &containers);
        self.detect(&images, &in_use, now);
        let want = if everything {
            u64::MAX
        } else {
            self.policy.bytes_to_free(capacity, available)
        };
        let mut freed = Freed::default();
        if want == 0 {
            return Ok(freed);
        }
        for (id, size) in self.choose(&in_use, want, now) {
            runtime.remove_image(&id).await?;
            self.records.remove(&id);
            freed.removed.push(id);
            freed.bytes = freed.bytes.saturating_add(size);
        }
        Ok(freed)
    }
}

/// The ids of the images `containers` were made from: the runtime's image
/// reference when it names an image it holds, else the image name asked for
/// (a tag or digest), looked up among the images' names.
pub fn images_in_use(images: &[cri::Image], containers: &[cri::Container]) -> HashSet<String> {
    let mut by_name: HashMap<&str, &str> = HashMap::new();
    for i in images {
        by_name.insert(i.id.as_str(), i.id.as_str());
        for n in i.repo_tags.iter().chain(&i.repo_digests) {
            by_name.insert(n.as_str(), i.id.as_str());
        }
    }
    let mut used = HashSet::new();
    for c in containers {
        let asked = c.image.as_ref().map(|s| s.image.as_str()).unwrap_or("");
        for name in [c.image_ref.as_str(), asked] {
            if let Some(id) = by_name.get(name) {
                used.insert(id.to_string());
            }
        }
    }
    used
}

/// The periodic pass, until `stop`.
pub async fn run<R: Runtime>(
    runtime: std::sync::Arc<R>,
    gc: std::sync::Arc<tokio::sync::Mutex<ImageGc>>,
    root_dir: std::path::PathBuf,
    period: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.cancelled() => return,
        }
        let (capacity, available) = match crate::node::host::statvfs(&root_dir) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(dir = %root_dir.display(), error = %e, "image GC: cannot read the disk's usage");
                continue;
            }
        };
        let outcome = gc
            .lock()
            .await
            .collect(runtime.as_ref(), capacity, available, false)
            .await;
        match outcome {
            Ok(f) if f.removed.is_empty() => {}
            Ok(f) => {
                tracing::info!(images = ?f.removed, bytes = f.bytes, "image GC removed unused images")
            }
            Err(e) => tracing::warn!(error = %e, "image GC failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn bytes_to_free_follows_the_thresholds() {
        let p = Policy::new(85, 80, Duration::ZERO).unwrap();
        // (capacity, available) → bytes to free
        let cases = [
            (100 * GIB, 50 * GIB, 0),        // 50 % used: below high
            (100 * GIB, 16 * GIB, 0),        // 84 %
            (100 * GIB, 15 * GIB, 5 * GIB),  // 85 %: free to 80 %
            (100 * GIB, 10 * GIB, 10 * GIB), // the worked example
            (100 * GIB, 0, 20 * GIB),
            (0, 0, 0),
        ];
        for (cap, avail, want) in cases {
            assert_eq!(p.bytes_to_free(cap, avail), want, "{cap} {avail}");
        }
        let off = Policy::new(100, 80, Duration::ZERO).unwrap();
        assert_eq!(off.bytes_to_free(100 * GIB, 0), 0);
    }

    #[test]
    fn thresholds_are_checked() {
        assert!(Policy::new(80, 85, Duration::ZERO).is_err());
        assert!(Policy::new(80, 80, Duration::ZERO).is_err());
        assert!(Policy::new(101, 80, Duration::ZERO).is_err());
        assert!(Policy::new(1, 0, Duration::ZERO).is_ok());
    }

    fn image(id: &str, tag: &str, size: u64) -> cri::Image {
        cri::Image {
            id: id.into(),
            repo_tags: vec![tag.into()],
            size,
            ..Default::default()
        }
    }

    #[test]
    fn least_recently_used_unused_old_images_go_first() {
        let t0 = Instant::now();
        let mut gc = ImageGc::new(Policy::new(85, 80, Duration::from_secs(120)).unwrap());
        let images = [
            image("a", "a:1", 3),
            image("b", "b:1", 5),
            image("c", "c:1", 7),
            image("d", "d:1", 11),
        ];
        // At t0 all are seen; a and b are in use.
        let used: HashSet<String> = ["a".into(), "b".into()].into();
        gc.detect(&images, &used, t0);
        // At t0+60 s only b is in use; d appeared just now.
        let t1 = t0 + Duration::from_secs(60);
        let only_b: HashSet<String> = ["b".into()].into();
        gc.records.remove("d");
        gc.detect(&images, &only_b, t1);
        let t2 = t0 + Duration::from_secs(150);
        // c (never used, seen at t0) before a (used at t0... same instant,
        // but seen first at t0 too: tie broken by id); d is too young;
        // b is in use.
        let picked = gc.choose(&only_b, 1, t2);
        assert_eq!(picked, [("a".to_string(), 3)]);
        let picked = gc.choose(&only_b, 4, t2);
        assert_eq!(picked, [("a".to_string(), 3), ("c".to_string(), 7)]);
        let all = gc.choose(&only_b, u64::MAX, t2);
        assert_eq!(all.len(), 2, "{all:?}");
        // Later d is old enough.
        let all = gc.choose(&only_b, u64::MAX, t1 + Duration::from_secs(121));
        assert_eq!(all.len(), 3, "{all:?}");
    }

    #[test]
    fn containers_use_images_by_reference_or_by_name() {
        let images = [
            image("sha256:a", "busybox:latest", 1),
            image("sha256:b", "web:1", 1),
        ];
        let by_ref = cri::Container {
            image_ref: "sha256:a".into(),
            ..Default::default()
        };
        let by_name = cri::Container {
            image: Some(cri::ImageSpec {
                image: "web:1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            images_in_use(&images, std::slice::from_ref(&by_ref)),
            ["sha256:a".to_string()].into()
        );
        assert_eq!(images_in_use(&images, &[by_ref, by_name]).len(), 2);
        assert!(images_in_use(&images, &[]).is_empty());
    }
}
