//! User namespaces for pods with `spec.hostUsers: false` (KEP-127): each
//! such pod gets its own block of 65536 host IDs, and its sandbox and
//! containers are asked (CRI `NamespaceOption.userns_options`, mode POD)
//! to map IDs 0..65535 inside onto that block.
//!
//! As upstream's kubelet: block `k` is host IDs `65536·k .. 65536·k +
//! 65535`, and block 0 (the host's own users, 0..65535) is never given.
//! Worked example: the first pod gets block 1, so root inside (0) is host
//! 65536 and uid 1000 inside is host 66536; the second pod gets block 2
//! (host 131072..196607). 2^32 / 65536 = 65536 blocks, minus block 0: at
//! most 65535 such pods per node.
//!
//! The block is written to `<root-dir>/pods/<uid>/userns` (upstream's file
//! name) when the pod first needs it, and read back from there: a
//! restarted kubelet gives a running pod the same block, and never gives
//! another pod a block a pod directory still holds. The block is free
//! again when the pod's directory is removed (the pod is gone).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;
use skiff_proto::cri;

/// Host IDs per pod.
pub const BLOCK: u32 = 65536;
/// The file in a pod's directory that holds its block.
pub const FILE: &str = "userns";

/// Allocation reads every pod's file then writes one: one at a time.
static ALLOCATING: Mutex<()> = Mutex::new(());

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("user namespace of pod {uid}: {source}")]
    Io { uid: String, source: std::io::Error },
    #[error("no free block of {BLOCK} host IDs for pod {0}'s user namespace")]
    Exhausted(String),
}

/// Whether the pod asks for a user namespace.
pub fn wanted(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.host_users) == Some(false)
}

/// The lowest block (≥ 1) not in `used`.
pub fn pick_free(used: &BTreeSet<u32>) -> Option<u32> {
    (1..=u32::MAX / BLOCK).find(|k| !used.contains(k))
}

/// The first host ID of block `k` (block 3 → 196608).
pub fn host_base(block: u32) -> u32 {
    block * BLOCK
}

fn parse(text: &str) -> Option<u32> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|k| (1..=u32::MAX / BLOCK).contains(k))
}

/// The blocks the pod directories under `pods_dir` hold.
pub fn used_blocks(pods_dir: &Path) -> BTreeSet<u32> {
    std::fs::read_dir(pods_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join(FILE)).ok())
        .filter_map(|t| parse(&t))
        .collect()
}

/// The pod's block: `None` without `hostUsers: false`; else the one its
/// directory holds, or the lowest free one, written there first.
pub fn block(pods_dir: &Path, pod: &Pod) -> Result<Option<u32>, UsernsError> {
    if !wanted(pod) {
        return Ok(None);
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let io = |source| UsernsError::Io {
        uid: uid.clone(),
        source,
    };
    let file = pods_dir.join(&uid).join(FILE);
    let _one = ALLOCATING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(k) = std::fs::read_to_string(&file).ok().and_then(|t| parse(&t)) {
        return Ok(Some(k));
    }
    let k = pick_free(&used_blocks(pods_dir)).ok_or_else(|| UsernsError::Exhausted(uid.clone()))?;
    std::fs::create_dir_all(pods_dir.join(&uid)).map_err(io)?;
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, format!("{k}\n"))
        .and_then(|()| std::fs::rename(&tmp, &file))
        .map_err(io)?;
    Ok(Some(k))
}

/// CRI's user namespace option for block `k`: mode POD, 0..65535 inside
/// onto the block, for uids and gids alike.
pub fn option(block: u32) -> cri::UserNamespace {
    let map = || {
        vec![cri::IdMapping {
            host_id: host_base(block),
            container_id: 0,
            length: BLOCK,
        }]
    };
    cri::UserNamespace {
        mode: cri::NamespaceMode::Pod as i32,
        uids: map(),
        gids: map(),
    }
}

/// Asks for the user namespace in a sandbox's config.
pub fn set_sandbox(config: &mut cri::PodSandboxConfig, block: Option<u32>) {
    let Some(k) = block else { return };
    let linux = config.linux.get_or_insert_with(Default::default);
    let sc = linux.security_context.get_or_insert_with(Default::default);
    let ns = sc.namespace_options.get_or_insert_with(Default::default);
    ns.userns_options = Some(option(k));
}

/// Asks for it in a container's config (as upstream, the container's
/// namespace options repeat the pod's).
pub fn set_container(config: &mut cri::ContainerConfig, block: Option<u32>) {
    let Some(k) = block else { return };
    let linux = config.linux.get_or_insert_with(Default::default);
    let sc = linux.security_context.get_or_insert_with(Default::default);
    let ns = sc.namespace_options.get_or_insert_with(Default::default);
    ns.userns_options = Some(option(k));
}

/// Gives a host path the pod writes to (an emptyDir, its termination
/// message file) to the pod's root: host root's files are "nobody"'s
/// inside, and root inside has no rights over them.
pub fn give_to_pod(path: &Path, block: u32) -> std::io::Result<()> {
    let id = host_base(block);
    std::os::unix::fs::chown(path, Some(id), Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn pod(uid: &str, host_users: Option<bool>) -> Pod {
        let mut p = Pod::default();
        p.metadata.uid = Some(uid.into());
        p.spec = Some(PodSpec {
            host_users,
            ..Default::default()
        });
        p
    }

    #[test]
    fn blocks_skip_the_hosts_and_fill_holes() {
        assert_eq!(pick_free(&BTreeSet::new()), Some(1));
        assert_eq!(pick_free(&[1, 2, 4].into()), Some(3));
        // Block 1 is host 65536..131071; block 2 starts at 131072.
        assert_eq!(host_base(1), 65536);
        assert_eq!(host_base(2), 131072);
        // The last whole block: 65535 · 65536 = 4294901760, + 65535 = u32::MAX.
        assert_eq!(u32::MAX / BLOCK, 65535);
        assert_eq!(host_base(65535) + (BLOCK - 1), u32::MAX);
        let all: BTreeSet<u32> = (1..=65535).collect();
        assert_eq!(pick_free(&all), None);
        assert_eq!(parse("0"), None, "block 0 is the host's");
        assert_eq!(parse("65536"), None);
        assert_eq!(parse("7\n"), Some(7));
    }

    #[test]
    fn a_pod_keeps_its_block_across_restarts_and_others_get_distinct_ones() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(block(d.path(), &pod("host", None)).unwrap(), None);
        assert_eq!(block(d.path(), &pod("host", Some(true))).unwrap(), None);
        assert!(!d.path().join("host").exists(), "nothing written for them");
        let a = block(d.path(), &pod("a", Some(false))).unwrap();
        let b = block(d.path(), &pod("b", Some(false))).unwrap();
        assert_eq!((a, b), (Some(1), Some(2)));
        // Asked again (a restarted kubelet reads the files): the same.
        assert_eq!(block(d.path(), &pod("a", Some(false))).unwrap(), Some(1));
        assert_eq!(
            std::fs::read_to_string(d.path().join("b/userns")).unwrap(),
            "2\n"
        );
        // a's directory removed (pod gone): its block is free again, b's not.
        std::fs::remove_dir_all(d.path().join("a")).unwrap();
        assert_eq!(block(d.path(), &pod("c", Some(false))).unwrap(), Some(1));
        assert_eq!(block(d.path(), &pod("e", Some(false))).unwrap(), Some(3));
    }

    #[test]
    fn the_cri_configs_ask_for_mode_pod_with_the_block() {
        let mut sandbox = cri::PodSandboxConfig::default();
        set_sandbox(&mut sandbox, Some(2));
        let u = sandbox
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap()
            .userns_options
            .unwrap();
        assert_eq!(u.mode, cri::NamespaceMode::Pod as i32);
        let want = vec![cri::IdMapping {
            host_id: 131072,
            container_id: 0,
            length: 65536,
        }];
        assert_eq!((u.uids, u.gids), (want.clone(), want));
        let mut container = cri::ContainerConfig::default();
        set_container(&mut container, None);
        assert!(container.linux.is_none(), "no hostUsers: false, no change");
        set_container(&mut container, Some(1));
        let u = container.linux.unwrap().security_context.unwrap();
        assert_eq!(
            u.namespace_options.unwrap().userns_options.unwrap().uids[0].host_id,
            65536
        );
    }
}
