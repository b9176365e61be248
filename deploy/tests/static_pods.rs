//! Static pods on a `skiff up` cluster, as root: a Pod file dropped in
//! `<data dir>/manifests` runs on the node with the real runtime and
//! answers on its IP; `kubectl get pods` shows its mirror `<name>-<node>`;
//! `kubectl delete` on the mirror does not stop it (the same container
//! keeps answering, the mirror comes back); removing the file stops it and
//! its mirror goes; `skiff reset` leaves nothing behind.

use std::path::Path;

mod common;
use common::{Cluster, eventually, http_get, leftovers, ok};

/// `<phase> <podIP> <uid>` of the pod, when it is Running with an IP.
fn running(c: &Cluster, pod: &str) -> Option<(String, String)> {
    let out = c.kubectl(
        &[
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.status.phase} {.status.podIP} {.metadata.uid}",
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let f: Vec<&str> = text.split(' ').collect();
    (f.len() == 3 && f[0] == "Running" && !f[1].is_empty())
        .then(|| (f[1].to_string(), f[2].to_string()))
}

#[test]
#[ignore = "needs root: runs a whole cluster with containers, a bridge and nftables"]
fn a_file_in_the_manifests_dir_runs_as_a_static_pod_with_a_mirror() {
    let bin = Path::new(env!("CARGO_BIN_EXE_skiff"))
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(
        bin.join("skiff-kubelet").exists(),
        "build the workspace first (scripts/test.sh does)"
    );
    let tmp = tempfile::Builder::new()
        .prefix("skiff-static-")
        .tempdir()
        .unwrap();
    let id = std::process::id() % 200;
    let c = Cluster::new(tmp.path(), "sps", format!("10.248.{id}.0/24"), &[]);
    let out = ok(&c.skiff(&["up"]), "skiff up");
    assert!(out.contains("is Ready"), "{out}");
    let manifests = c.data.join("manifests");
    assert!(manifests.is_dir(), "skiff up's kubelet makes {manifests:?}");
    let node = ok(
        &c.kubectl(
            &["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"],
            None,
        ),
        "the node",
    );
    let mirror = format!("web-{node}");

    let file = manifests.join("web.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - {name: httpd, image: skiff/httpd:latest, imagePullPolicy: Never}\n",
    )
    .unwrap();
    let (ip, uid) = eventually("the static pod's mirror, Running", 90, || {
        running(&c, &mirror)
    });
    let page = eventually("the static pod to answer", 30, || http_get(&ip));
    assert!(page.contains("Hello from Skiff"), "{page}");
    let annotation = ok(
        &c.kubectl(
            &[
                "get",
                "pod",
                &mirror,
                "-o",
                "jsonpath={.metadata.annotations.kubernetes\\.io/config\\.source}",
            ],
            None,
        ),
        "its annotations",
    );
    assert_eq!(annotation, "file");

    // The mirror deleted: made again; the pod itself ran on (same IP).
    ok(
        &c.kubectl(&["delete", "pod", &mirror, "--wait=false"], None),
        "kubectl delete the mirror",
    );
    let (ip_again, _) = eventually("the mirror made again", 30, || {
        running(&c, &mirror).filter(|(_, u)| *u != uid)
    });
    assert_eq!(ip_again, ip, "the same pod");
    assert!(http_get(&ip).is_some_and(|p| p.contains("Hello from Skiff")));

    // The file removed: the pod stops, the mirror goes.
    std::fs::remove_file(&file).unwrap();
    eventually("the mirror gone", 60, || {
        let out = c.kubectl(&["get", "pods", "-o", "name"], None);
        let names = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && !names.contains(&mirror)).then_some(())
    });
    eventually("the pod to stop answering", 30, || {
        http_get(&ip).is_none().then_some(())
    });

    ok(&c.skiff(&["reset"]), "skiff reset");
    let left = leftovers(&c);
    assert!(left.is_empty(), "left behind: {left:?}");
}
