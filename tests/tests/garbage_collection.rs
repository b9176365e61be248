//! Deletion through the real API server and controller manager, driven by
//! the real kubectl: each propagation policy leaves exactly what Kubernetes
//! leaves, a deleted namespace is emptied and goes away, and every namespace
//! gets its `default` ServiceAccount.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use skiff_tests::{TestCluster, eventually, fake_node};

fn deployment(name: &str, namespace: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: "nginx:1.27"}}]}}
"#
    )
}

async fn count(cluster: &TestCluster, app: &str) -> (usize, usize) {
    let client = cluster.client().await;
    let lp = ListParams::default().labels(&format!("app={app}"));
    let rss = Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .list(&lp)
        .await
        .unwrap();
    let pods = Api::<Pod>::namespaced(client, "default")
        .list(&lp)
        .await
        .unwrap();
    (rss.items.len(), pods.items.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagation_policies() {
    let cluster = TestCluster::start().await;
    let client = cluster.client().await;
    let node = fake_node(client.clone(), "default", Duration::from_millis(20));
    for app in ["bg", "fg", "keep"] {
        cluster
            .kubectl_stdin(&["apply", "-f", "-"], Some(&deployment(app, "default")))
            .ok();
    }
    for app in ["bg", "fg", "keep"] {
        eventually(
            &format!("{app}: 1 ReplicaSet, 2 pods"),
            Duration::from_secs(30),
            || async { (count(&cluster, app).await == (1, 2)).then_some(()) },
        )
        .await;
    }

    // Background (kubectl's default): the Deployment goes at once, then the rest.
    cluster
        .kubectl_async(&["delete", "deployment", "bg"])
        .await
        .ok();
    eventually(
        "bg's ReplicaSet and pods collected",
        Duration::from_secs(30),
        || async { (count(&cluster, "bg").await == (0, 0)).then_some(()) },
    )
    .await;

    // Foreground: kubectl waits for the Deployment, which goes only after its
    // ReplicaSet, which goes only after its pods.
    let out = cluster
        .kubectl_async(&[
            "delete",
            "deployment",
            "fg",
            "--cascade=foreground",
            "--timeout=60s",
        ])
        .await
        .ok();
    assert_eq!(out.trim(), "deployment.apps \"fg\" deleted");
    assert_eq!(
        count(&cluster, "fg").await,
        (0, 0),
        "nothing left when the owner is gone"
    );

    // Orphan: the ReplicaSet and its pods stay, without the Deployment's reference.
    cluster
        .kubectl_async(&[
            "delete",
            "deployment",
            "keep",
            "--cascade=orphan",
            "--timeout=60s",
        ])
        .await
        .ok();
    assert!(
        cluster
            .kubectl_async(&["get", "deployment", "keep"])
            .await
            .code
            != 0
    );
    tokio::time::sleep(Duration::from_secs(2)).await; // give a wrong collector time to act
    let rss = Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels("app=keep"))
        .await
        .unwrap()
        .items;
    assert_eq!(rss.len(), 1);
    assert!(
        rss[0].owner_references().is_empty(),
        "{:?}",
        rss[0].owner_references()
    );
    let pods = Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels("app=keep"))
        .await
        .unwrap()
        .items;
    assert_eq!(pods.len(), 2);
    assert!(
        pods.iter()
            .all(|p| p.owner_references()[0].name == rss[0].name_any())
    );

    node.abort();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_lifecycle() {
    let cluster = TestCluster::start().await;
    let client = cluster.client().await;
    cluster
        .kubectl_async(&["create", "namespace", "lab"])
        .await
        .ok();
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "lab");
    eventually(
        "lab's default ServiceAccount",
        Duration::from_secs(20),
        || async { sas.get_opt("default").await.unwrap().map(|_| ()) },
    )
    .await;
    // Deleted, it comes back.
    cluster
        .kubectl_async(&["delete", "serviceaccount", "default", "-n", "lab"])
        .await
        .ok();
    eventually(
        "default ServiceAccount recreated",
        Duration::from_secs(20),
        || async { sas.get_opt("default").await.unwrap().map(|_| ()) },
    )
    .await;
    // And the existing namespaces have one too.
    let default_sa = Api::<ServiceAccount>::namespaced(client.clone(), "default");
    eventually("default/default", Duration::from_secs(20), || async {
        default_sa.get_opt("default").await.unwrap().map(|_| ())
    })
    .await;

    cluster
        .kubectl_stdin(&["apply", "-f", "-"], Some(&deployment("web", "lab")))
        .ok();
    cluster
        .kubectl_async(&[
            "create",
            "configmap",
            "settings",
            "-n",
            "lab",
            "--from-literal=a=b",
        ])
        .await
        .ok();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "lab");
    eventually("2 pods in lab", Duration::from_secs(20), || async {
        (pods.list(&ListParams::default()).await.unwrap().items.len() == 2).then_some(())
    })
    .await;

    let out = cluster
        .kubectl_async(&["delete", "namespace", "lab", "--timeout=60s"])
        .await
        .ok();
    assert_eq!(out.trim(), "namespace \"lab\" deleted");
    let gone = cluster.kubectl_async(&["get", "namespace", "lab"]).await;
    assert_ne!(gone.code, 0);
    assert!(
        gone.stderr.contains("namespaces \"lab\" not found"),
        "{}",
        gone.stderr
    );
    cluster.stop().await;
}
