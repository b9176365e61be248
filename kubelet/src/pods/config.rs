//! The CRI configs of a pod's sandbox and containers, built from the pod:
//! labels that find them again, hostname and DNS, the environment (values,
//! the downward API, ConfigMap and Secret keys, `$(VAR)` expansion in command
//! and args), resources as cgroup settings, and the security context.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};
use skiff_proto::cri;

use super::observed::{CONTAINER_NAME, POD_NAME, POD_NAMESPACE, POD_UID};
use crate::node::quantity::{parse_bytes, parse_cpu};

pub use super::dns::DnsSettings;

fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let m = &pod.metadata;
    let mut labels: HashMap<String, String> =
        m.labels.clone().unwrap_or_default().into_iter().collect();
    labels.insert(POD_NAME.into(), m.name.clone().unwrap_or_default());
    labels.insert(
        POD_NAMESPACE.into(),
        m.namespace.clone().unwrap_or_default(),
    );
    labels.insert(POD_UID.into(), m.uid.clone().unwrap_or_default());
    labels
}

/// Where the pod's container logs go: `<log-root>/<ns>_<name>_<uid>`, as
/// upstream lays out /var/log/pods.
/// The pod's cgroup, relative to each hierarchy's root: `skiff/<qos>/pod<uid>`
/// (the eviction manager reads the pod's usage there).
pub fn pod_cgroup(pod: &Pod) -> String {
    format!(
        "skiff/{}/pod{}",
        super::status::qos_class(pod).to_lowercase(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

pub fn log_directory(log_root: &str, pod: &Pod) -> String {
    let m = &pod.metadata;
    format!(
        "{log_root}/{}_{}_{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default()
    )
}

/// Instance `attempt` of container `name`'s log, relative to the pod's
/// [`log_directory`].
pub fn log_path(name: &str, attempt: u32) -> String {
    format!("{name}/{attempt}.log")
}

/// The sandbox of `pod`, attempt `attempt`.
pub fn sandbox(
    pod: &Pod,
    attempt: u32,
    log_root: &str,
    dns: &DnsSettings,
) -> cri::PodSandboxConfig {
    let m = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let (name, namespace, uid) = (
        m.name.clone().unwrap_or_default(),
        m.namespace.clone().unwrap_or_default(),
        m.uid.clone().unwrap_or_default(),
    );
    let host_network = spec.host_network.unwrap_or(false);
    // hostname: spec.hostname, else the pod's name, cut to a DNS label;
    // none for a host-network pod, whose hostname is the node's (upstream).
    let mut hostname = if host_network {
        String::new()
    } else {
        spec.hostname.clone().unwrap_or_else(|| name.clone())
    };
    hostname.truncate(63);
    let dns_config = Some(super::dns::pod_dns(pod, dns, dns.node_resolver().as_ref()));
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| cri::PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => cri::Protocol::Udp,
                Some("SCTP") => cri::Protocol::Sctp,
                _ => cri::Protocol::Tcp,
            } as i32,
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let mode = |node: bool| {
        if node {
            cri::NamespaceMode::Node
        } else {
            cri::NamespaceMode::Pod
        }
    };
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.clone(),
            uid: uid.clone(),
            namespace: namespace.clone(),
            attempt,
        }),
        hostname,
        log_directory: log_directory(log_root, pod),
        dns_config,
        port_mappings,
        labels: pod_labels(pod),
        annotations: m
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: pod_cgroup(pod),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: mode(host_network) as i32,
                    pid: if spec.host_pid.unwrap_or(false) {
                        cri::NamespaceMode::Node
                    } else if spec.share_process_namespace.unwrap_or(false) {
                        cri::NamespaceMode::Pod
                    } else {
                        cri::NamespaceMode::Container
                    } as i32,
                    ipc: mode(spec.host_ipc.unwrap_or(false)) as i32,
                    target_id: String::new(),
                    // Set by the worker for `hostUsers: false` (pods/userns.rs).
                    userns_options: None,
                }),
                ..Default::default()
            }),
            sysctls: Default::default(),
        }),
    }
}

/// Values referenced by `env` and `envFrom`, fetched by the worker: per
/// ConfigMap or Secret name, its data (Secrets already decoded).
#[derive(Debug, Clone, Default)]
pub struct EnvSources {
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
}

impl EnvSources {
    /// The environment's view of what the worker fetched: ConfigMap `data`,
    /// Secret `data` decoded as text (and any `stringData`).
    pub fn from_sources(s: &super::sources::Sources) -> EnvSources {
        EnvSources {
            config_maps: s
                .config_maps
                .iter()
                .map(|(name, cm)| (name.clone(), cm.data.clone().unwrap_or_default()))
                .collect(),
            secrets: s
                .secrets
                .iter()
                .map(|(name, secret)| {
                    let mut data: BTreeMap<String, String> = secret
                        .data
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                        .collect();
                    data.extend(secret.string_data.clone().unwrap_or_default());
                    (name.clone(), data)
                })
                .collect(),
        }
    }
}

/// The names of the ConfigMaps and Secrets a container's environment reads.
pub fn env_references(c: &Container) -> (Vec<String>, Vec<String>) {
    let (mut cms, mut secrets) = (Vec::new(), Vec::new());
    for e in c.env.iter().flatten() {
        if let Some(from) = &e.value_from {
            if let Some(r) = &from.config_map_key_ref {
                cms.push(r.name.clone());
            }
            if let Some(r) = &from.secret_key_ref {
                secrets.push(r.name.clone());
            }
        }
    }
    for f in c.env_from.iter().flatten() {
        if let Some(r) = &f.config_map_ref {
            cms.push(r.name.clone());
        }
        if let Some(r) = &f.secret_ref {
            secrets.push(r.name.clone());
        }
    }
    (cms, secrets)
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    MissingKey {
        kind: &'static str,
        namespace: String,
        name: String,
        key: String,
    },
    #[error("{kind} {namespace}/{name} not found")]
    MissingObject {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    #[error("unsupported fieldRef {0}")]
    FieldRef(String),
}

/// A `fieldRef`'s value (the environment's and the downward API volume's).
pub(crate) fn field(
    pod: &Pod,
    path: &str,
    host_ip: &str,
    pod_ip: &str,
) -> Result<String, ConfigError> {
    let m = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let map_key = |prefix: &str, map: &Option<BTreeMap<String, String>>| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix("['").and_then(|r| r.strip_suffix("']")))
            .map(|k| {
                map.as_ref()
                    .and_then(|m| m.get(k))
                    .cloned()
                    .unwrap_or_default()
            })
    };
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.node_name.unwrap_or_default(),
        "spec.serviceAccountName" => spec.service_account_name.unwrap_or_default(),
        "status.hostIP" => host_ip.into(),
        "status.podIP" => pod_ip.into(),
        _ => match map_key("metadata.labels", &m.labels)
            .or_else(|| map_key("metadata.annotations", &m.annotations))
        {
            Some(v) => v,
            None => return Err(ConfigError::FieldRef(path.into())),
        },
    })
}

/// Expands `$(VAR)` with `env` as Kubernetes does: `$$` escapes, unknown
/// references stay as written.
pub fn expand(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The container's environment, in order: `envFrom` first, then `env`
/// (later ones win, and may refer to earlier ones with `$(VAR)`).
pub fn environment(
    pod: &Pod,
    c: &Container,
    sources: &EnvSources,
    host_ip: &str,
    pod_ip: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut set = |env: &mut BTreeMap<String, String>, k: String, v: String| {
        if !order.contains(&k) {
            order.push(k.clone());
        }
        env.insert(k, v);
    };
    let lookup = |kind: &'static str,
                  map: &BTreeMap<String, BTreeMap<String, String>>,
                  name: &str,
                  key: Option<&str>,
                  optional: bool|
     -> Result<Option<String>, ConfigError> {
        let Some(data) = map.get(name) else {
            return if optional {
                Ok(None)
            } else {
                Err(ConfigError::MissingObject {
                    kind,
                    namespace: namespace.clone(),
                    name: name.into(),
                })
            };
        };
        match key.map(|k| (k, data.get(k))) {
            Some((_, Some(v))) => Ok(Some(v.clone())),
            Some((k, None)) if !optional => Err(ConfigError::MissingKey {
                kind,
                namespace: namespace.clone(),
                name: name.into(),
                key: k.into(),
            }),
            _ => Ok(None),
        }
    };
    for f in c.env_from.iter().flatten() {
        let prefix = f.prefix.clone().unwrap_or_default();
        let (kind, map, name, optional) = match (&f.config_map_ref, &f.secret_ref) {
            (Some(r), _) => (
                "configmap",
                &sources.config_maps,
                r.name.clone(),
                r.optional.unwrap_or(false),
            ),
            (None, Some(r)) => (
                "secret",
                &sources.secrets,
                r.name.clone(),
                r.optional.unwrap_or(false),
            ),
            (None, None) => continue,
        };
        match map.get(&name) {
            Some(data) => {
                for (k, v) in data {
                    set(&mut env, format!("{prefix}{k}"), v.clone());
                }
            }
            None if optional => {}
            None => {
                return Err(ConfigError::MissingObject {
                    kind,
                    namespace: namespace.clone(),
                    name,
                });
            }
        }
    }
    for EnvVar {
        name,
        value,
        value_from,
    } in c.env.iter().flatten()
    {
        let v = match (value, value_from) {
            (Some(v), _) => Some(expand(v, &env)),
            (None, Some(from)) => {
                if let Some(r) = &from.config_map_key_ref {
                    lookup(
                        "configmap",
                        &sources.config_maps,
                        &r.name,
                        Some(&r.key),
                        r.optional.unwrap_or(false),
                    )?
                } else if let Some(r) = &from.secret_key_ref {
                    lookup(
                        "secret",
                        &sources.secrets,
                        &r.name,
                        Some(&r.key),
                        r.optional.unwrap_or(false),
                    )?
                } else if let Some(r) = &from.field_ref {
                    Some(field(pod, &r.field_path, host_ip, pod_ip)?)
                } else {
                    from.resource_field_ref
                        .as_ref()
                        .map(|r| resource_value(c, &r.resource, r.divisor.as_ref()))
                }
            }
            (None, None) => Some(String::new()),
        };
        if let Some(v) = v {
            set(&mut env, name.clone(), v);
        }
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let v = env[&k].clone();
            (k, v)
        })
        .collect())
}

/// `limits.cpu`, `limits.memory`, the requests, in units of `divisor`
/// rounded up (default 1: whole cores, bytes), as the downward API gives
/// them.
pub(crate) fn resource_value(
    c: &Container,
    resource: &str,
    divisor: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
) -> String {
    let r = c.resources.clone().unwrap_or_default();
    let (map, name) = match resource.split_once('.') {
        Some(("limits", n)) => (r.limits.unwrap_or_default(), n),
        Some(("requests", n)) => (r.requests.unwrap_or_default(), n),
        _ => return String::new(),
    };
    let divisor = divisor.map(|d| d.0.as_str()).filter(|d| !d.is_empty());
    match (name, map.get(name)) {
        ("cpu", Some(q)) => {
            let per = divisor.map_or(Ok(1000), parse_cpu).unwrap_or(1000).max(1);
            parse_cpu(&q.0)
                .map(|m| m.div_ceil(per).to_string())
                .unwrap_or_default()
        }
        ("memory" | "ephemeral-storage", Some(q)) => {
            let per = divisor.map_or(Ok(1), parse_bytes).unwrap_or(1).max(1);
            parse_bytes(&q.0)
                .map(|b| b.div_ceil(per).to_string())
                .unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// The CRI config of container `c` of `pod`, restart `attempt`.
pub fn container(
    pod: &Pod,
    c: &Container,
    attempt: u32,
    env: Vec<(String, String)>,
) -> cri::ContainerConfig {
    let vars: BTreeMap<String, String> = env.iter().cloned().collect();
    let expand_all =
        |v: &Option<Vec<String>>| v.iter().flatten().map(|s| expand(s, &vars)).collect();
    let r = c.resources.clone().unwrap_or_default();
    let limits = r.limits.unwrap_or_default();
    let requests = r.requests.unwrap_or_default();
    let milli = |q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>| {
        q.and_then(|q| parse_cpu(&q.0).ok())
    };
    let cpu_limit = milli(limits.get("cpu"));
    let cpu_request = milli(requests.get("cpu")).or(cpu_limit);
    let memory = limits.get("memory").and_then(|q| parse_bytes(&q.0).ok());
    // Kubernetes' conversions: shares = request × 1024 / 1000 (at least 2);
    // quota = limit × period / 1000 with a 100 ms period.
    let resources = cri::LinuxContainerResources {
        cpu_shares: cpu_request.map_or(2, |m| (m * 1024 / 1000).max(2) as i64),
        cpu_period: cpu_limit.map_or(0, |_| 100_000),
        cpu_quota: cpu_limit.map_or(0, |m| (m * 100_000 / 1000).max(1000) as i64),
        memory_limit_in_bytes: memory.unwrap_or(0) as i64,
        ..Default::default()
    };
    let sc = c.security_context.clone().unwrap_or_default();
    let psc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let caps = sc.capabilities.clone().unwrap_or_default();
    let mut labels = pod_labels(pod);
    labels.retain(|k, _| k.starts_with("io.kubernetes."));
    labels.insert(CONTAINER_NAME.into(), c.name.clone());
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: c.name.clone(),
            attempt,
        }),
        image: Some(cri::ImageSpec {
            image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: expand_all(&c.command),
        args: expand_all(&c.args),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: env
            .into_iter()
            .map(|(key, value)| cri::KeyValue { key, value })
            .collect(),
        labels,
        annotations: HashMap::from([(
            "io.kubernetes.container.terminationMessagePath".to_string(),
            super::termination::container_path(c),
        )]),
        log_path: log_path(&c.name, attempt),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(resources),
            security_context: Some(cri::LinuxContainerSecurityContext {
                capabilities: Some(cri::Capability {
                    add_capabilities: caps.add.unwrap_or_default(),
                    drop_capabilities: caps.drop.unwrap_or_default(),
                    add_ambient_capabilities: vec![],
                }),
                privileged: sc.privileged.unwrap_or(false),
                run_as_user: sc
                    .run_as_user
                    .or(psc.run_as_user)
                    .map(|value| cri::Int64Value { value }),
                run_as_group: sc
                    .run_as_group
                    .or(psc.run_as_group)
                    .map(|value| cri::Int64Value { value }),
                readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
                supplemental_groups: psc.supplemental_groups.unwrap_or_default(),
                no_new_privs: sc.allow_privilege_escalation == Some(false),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1",
                         "labels": {"app": "web"}, "annotations": {"team": "blue"}},
            "spec": {"nodeName": "n1", "containers": [{
                "name": "app", "image": "skiff/httpd",
                "command": ["sh", "-c"], "args": ["echo $(GREETING) $(NOPE) $$(HOME) from $(POD)"],
                "env": [
                    {"name": "GREETING", "value": "hello"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
                    {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                    {"name": "FULL", "value": "$(GREETING)-$(COLOR)"}
                ],
                "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "cfg"}}],
                "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "250m"}},
                "securityContext": {"runAsUser": 1000, "allowPrivilegeEscalation": false,
                                    "capabilities": {"drop": ["NET_RAW"]}}
            }]}
        }))
        .unwrap()
    }

    fn sources() -> EnvSources {
        EnvSources {
            config_maps: BTreeMap::from([(
                "cfg".to_string(),
                BTreeMap::from([("color".to_string(), "blue".to_string())]),
            )]),
            secrets: BTreeMap::from([(
                "s".to_string(),
                BTreeMap::from([("token".to_string(), "t0k3n".to_string())]),
            )]),
        }
    }

    #[test]
    fn environment_and_expansion() {
        let p = pod();
        let c = &p.spec.as_ref().unwrap().containers[0];
        let env = environment(&p, c, &sources(), "192.168.56.11", "10.244.1.5").unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            env[0],
            ("CFG_color".to_string(), "blue".to_string()),
            "envFrom first"
        );
        assert_eq!(get("POD"), Some("web-1"));
        assert_eq!(get("APP"), Some("web"));
        assert_eq!(get("IP"), Some("10.244.1.5"));
        assert_eq!(get("COLOR"), Some("blue"));
        assert_eq!(get("TOKEN"), Some("t0k3n"));
        assert_eq!(get("CPU"), Some("1"), "limits.cpu rounds up to whole cores");
        assert_eq!(get("FULL"), Some("hello-blue"));

        let config = container(&p, c, 2, env);
        assert_eq!(config.args, ["echo hello $(NOPE) $(HOME) from web-1"]);
        assert_eq!(config.log_path, "app/2.log");
        assert_eq!(config.metadata.as_ref().unwrap().attempt, 2);
        assert_eq!(config.labels[CONTAINER_NAME], "app");
        assert_eq!(config.labels[POD_UID], "u1");
        let linux = config.linux.unwrap();
        let r = linux.resources.unwrap();
        assert_eq!(
            (r.cpu_shares, r.cpu_quota, r.cpu_period),
            (256, 50_000, 100_000)
        );
        assert_eq!(r.memory_limit_in_bytes, 64 << 20);
        let sc = linux.security_context.unwrap();
        assert_eq!(sc.run_as_user, Some(cri::Int64Value { value: 1000 }));
        assert!(sc.no_new_privs);
        assert_eq!(sc.capabilities.unwrap().drop_capabilities, ["NET_RAW"]);
    }

    #[test]
    fn the_containers_stdio_reaches_the_runtime() {
        // kubectl run -i makes `stdin` and `stdinOnce`, -t adds `tty`: the
        // runtime's shim keeps stdin (and the terminal) for attach.
        let mut p = pod();
        let first = |p: &Pod| p.spec.as_ref().unwrap().containers[0].clone();
        let config = container(&p, &first(&p), 0, vec![]);
        assert!(!config.stdin && !config.stdin_once && !config.tty);
        let c = &mut p.spec.as_mut().unwrap().containers[0];
        (c.stdin, c.stdin_once, c.tty) = (Some(true), Some(true), Some(true));
        let config = container(&p, &first(&p), 0, vec![]);
        assert!(config.stdin && config.stdin_once && config.tty);
    }

    #[test]
    fn missing_references_are_errors_unless_optional() {
        let p = pod();
        let c = &p.spec.as_ref().unwrap().containers[0];
        let err = environment(&p, c, &EnvSources::default(), "h", "").unwrap_err();
        assert_eq!(
            err,
            ConfigError::MissingObject {
                kind: "configmap",
                namespace: "shop".into(),
                name: "cfg".into()
            }
        );
        assert_eq!(err.to_string(), "configmap shop/cfg not found");
    }

    #[test]
    fn sandbox_config() {
        let s = sandbox(
            &pod(),
            1,
            "/var/log/pods",
            &DnsSettings {
                servers: vec!["10.96.0.10".into()],
                domain: "cluster.local".into(),
                resolv_conf: None,
            },
        );
        assert_eq!(s.hostname, "web-1");
        assert_eq!(s.log_directory, "/var/log/pods/shop_web-1_u1");
        assert_eq!(s.metadata.unwrap().attempt, 1);
        assert_eq!(s.labels[POD_UID], "u1");
        assert_eq!(s.labels["app"], "web");
        let dns = s.dns_config.unwrap();
        assert_eq!(
            dns.searches,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local"
            ]
        );
        assert_eq!(dns.options, ["ndots:5"]);
        let ns = s
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(ns.pid, cri::NamespaceMode::Container as i32);
        assert_eq!(ns.network, cri::NamespaceMode::Pod as i32);
    }

    #[test]
    fn a_host_network_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        let resolv = dir.path().join("resolv.conf");
        std::fs::write(&resolv, "nameserver 192.0.2.53\nsearch lab.example\n").unwrap();
        let dns = DnsSettings {
            servers: vec!["10.96.0.10".into()],
            domain: "cluster.local".into(),
            resolv_conf: Some(resolv),
        };
        let mut p = pod();
        p.spec.as_mut().unwrap().host_network = Some(true);
        let s = sandbox(&p, 0, "/var/log/pods", &dns);
        assert_eq!(s.hostname, "", "the node's hostname: none sent");
        let ns = s
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(ns.network, cri::NamespaceMode::Node as i32);
        // ClusterFirst on the node's network: the node's resolver.
        let d = s.dns_config.unwrap();
        assert_eq!(
            (d.servers, d.searches),
            (
                vec!["192.0.2.53".to_string()],
                vec!["lab.example".to_string()]
            )
        );
        p.spec.as_mut().unwrap().dns_policy = Some("ClusterFirstWithHostNet".into());
        let d = sandbox(&p, 0, "/var/log/pods", &dns).dns_config.unwrap();
        assert_eq!(d.servers, ["10.96.0.10"]);
        assert_eq!(d.searches[0], "shop.svc.cluster.local");
    }

    #[test]
    fn expansion_rules() {
        let env = BTreeMap::from([("A".to_string(), "x".to_string())]);
        for (input, want) in [
            ("$(A)", "x"),
            ("$$(A)", "$(A)"),
            ("$(B)", "$(B)"),
            ("$A", "$A"),
            ("a$", "a$"),
            ("$(A", "$(A"),
        ] {
            assert_eq!(expand(input, &env), want, "{input}");
        }
    }
}
