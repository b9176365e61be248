//! What exists from the start: the `default`, `kube-system`, `kube-public`
//! and `kube-node-lease` namespaces, and the `kubernetes` Service (the
//! first address of the service range) with endpoints pointing at this
//! API server, so pods reach the API at `kubernetes.default.svc`.

use std::net::IpAddr;

use serde_json::json;

use crate::error::ApiResult;
use crate::handlers::{Api, internal};
use crate::registry;

pub const NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

pub async fn bootstrap(api: &Api, advertise: IpAddr, port: u16) -> ApiResult<()> {
    let find = |group, plural| registry::find(group, "v1", plural).expect("a built-in resource");
    for name in NAMESPACES {
        internal::ensure(
            api,
            find("", "namespaces"),
            "",
            json!({"metadata": {"name": name}}),
        )
        .await?;
    }
    let labels = json!({"component": "apiserver", "provider": "kubernetes"});
    let service = json!({
        "metadata": {"name": "kubernetes", "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": api.admission.api_service_ip().to_string(),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            "sessionAffinity": "None",
        },
    });
    internal::ensure(api, find("", "services"), "default", service).await?;
    let endpoints = json!({
        "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": advertise.to_string()}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    });
    internal::upsert(api, find("", "endpoints"), "default", endpoints).await?;
    let slice = json!({
        "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "skiff-apiserver"}},
        "addressType": if advertise.is_ipv4() { "IPv4" } else { "IPv6" },
        "endpoints": [{"addresses": [advertise.to_string()], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    internal::upsert(
        api,
        find("discovery.k8s.io", "endpointslices"),
        "default",
        slice,
    )
    .await?;
    Ok(())
}
