//! ImageLocality: prefer nodes that already have the pod's images, weighted by image size and
//! by how many nodes have the image (an image on every node is no reason to prefer one).
//! Scaled between 23 MB (score 0) and 1000 MB per container (score 100), as upstream.

use crate::framework::{CycleState, MAX_NODE_SCORE, ScorePlugin};
use crate::snapshot::{NodeInfo, PodInfo, Snapshot, normalized_image_name};

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub struct ImageLocality;

struct State {
    images: Vec<String>,
    /// Per image: nodes that have it / all nodes.
    spread: Vec<f64>,
}

impl ScorePlugin for ImageLocality {
    fn name(&self) -> &'static str {
        "ImageLocality"
    }

    fn pre_score(
        &self,
        pod: &PodInfo,
        _: &[&NodeInfo],
        snapshot: &Snapshot,
        state: &mut CycleState,
    ) {
        let spec = pod.pod.spec.as_ref();
        let images: Vec<String> = spec
            .into_iter()
            .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
            .filter_map(|c| c.image.as_deref())
            .map(normalized_image_name)
            .collect();
        let total = snapshot.nodes().len().max(1) as f64;
        let spread = images
            .iter()
            .map(|i| snapshot.nodes_with_image(i) as f64 / total)
            .collect();
        state.write("ImageLocality", State { images, spread });
    }

    fn score(&self, _pod: &PodInfo, node: &NodeInfo, state: &CycleState) -> i64 {
        let Some(s) = state.read::<State>("ImageLocality") else {
            return 0;
        };
        let sum: i64 = s
            .images
            .iter()
            .zip(&s.spread)
            .filter_map(|(image, spread)| {
                node.images
                    .get(image)
                    .map(|size| (*size as f64 * spread) as i64)
            })
            .sum();
        let max = MAX_CONTAINER_THRESHOLD * s.images.len().max(1) as i64;
        let clamped = sum.clamp(MIN_THRESHOLD, max);
        MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node_json, pod, scores, snapshot};
    use serde_json::json;

    #[test]
    fn table() {
        let with = |images: &[(&str, i64)]| {
            let list: Vec<_> = images
                .iter()
                .map(|(n, size)| json!({"names": [n], "sizeBytes": size}))
                .collect();
            json!({"status": {"images": list}})
        };
        let s = snapshot(
            vec![
                node_json("none", json!({})),
                node_json("big", with(&[("app:1", 1000 * MB)])),
                node_json("small", with(&[("app:2", 10 * MB)])),
                node_json("latest", with(&[("busybox:latest", 600 * MB)])),
            ],
            vec![],
        );
        let p = |image: &str| pod(json!({"containers": [{"name": "c", "image": image}]}));
        // app:1 is on 1 of 4 nodes: 1000MB × 0.25 = 250MB → (250-23)/(1000-23) × 100 = 23
        assert_eq!(scores(&ImageLocality, &p("app:1"), &s), [0, 23, 0, 0]);
        // below the 23MB threshold: nothing
        assert_eq!(scores(&ImageLocality, &p("app:2"), &s), [0, 0, 0, 0]);
        // an untagged image is :latest
        assert_eq!(scores(&ImageLocality, &p("busybox"), &s), [0, 0, 0, 12]);
    }
}
