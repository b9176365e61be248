//! The bodies here are written field by field the way Go's generated
//! marshallers (and so kubectl) write them: every non-pointer field goes on
//! the wire, even when empty. The expected JSON is what the same kubectl
//! command prints with `--dry-run=client -o json`.

use proptest::prelude::*;
use serde_json::json;

use super::*;

/// A protobuf message, written by hand.
#[derive(Debug, Default, Clone)]
struct Pb(Vec<u8>);

impl Pb {
    fn new() -> Self {
        Self::default()
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field << 3 | u32::from(wire_type)));
    }

    /// int32, int64 and bool (negative numbers take ten bytes, as in Go).
    fn int(mut self, field: u32, v: i64) -> Self {
        self.key(field, 0);
        self.varint(v as u64);
        self
    }

    fn bool(self, field: u32, v: bool) -> Self {
        self.int(field, i64::from(v))
    }

    fn bytes(mut self, field: u32, v: &[u8]) -> Self {
        self.key(field, 2);
        self.varint(v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    fn str(self, field: u32, v: &str) -> Self {
        self.bytes(field, v.as_bytes())
    }

    fn msg(self, field: u32, v: Pb) -> Self {
        self.bytes(field, &v.0)
    }

    fn map_str(self, field: u32, k: &str, v: &str) -> Self {
        self.msg(field, Pb::new().str(1, k).str(2, v))
    }

    fn map_bytes(self, field: u32, k: &str, v: &[u8]) -> Self {
        self.msg(field, Pb::new().str(1, k).bytes(2, v))
    }

    fn map_msg(self, field: u32, k: &str, v: Pb) -> Self {
        self.msg(field, Pb::new().str(1, k).msg(2, v))
    }
}

/// The whole body: magic, then runtime.Unknown (all four fields are
/// non-pointer in Go, so all four are written).
fn body(api_version: &str, kind: &str, object: Pb) -> Vec<u8> {
    let unknown = Pb::new()
        .msg(1, Pb::new().str(1, api_version).str(2, kind))
        .msg(2, object)
        .str(3, "")
        .str(4, "");
    [MAGIC.as_slice(), &unknown.0].concat()
}

/// meta/v1 ObjectMeta with its always-written fields; creationTimestamp is
/// the zero time (an empty message).
fn meta(name: &str, labels: &[(&str, &str)]) -> Pb {
    meta_at(name, labels, Pb::new())
}

fn meta_at(name: &str, labels: &[(&str, &str)], created: Pb) -> Pb {
    let mut m = Pb::new()
        .str(1, name)
        .str(2, "")
        .str(3, "")
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .int(7, 0)
        .msg(8, created);
    for (k, v) in labels {
        m = m.map_str(11, k, v);
    }
    m
}

/// core/v1 Container with name, image and its always-written fields; `extra`
/// writes the fields between image (2) and resources (8), `resources` is
/// field 8.
fn container(name: &str, image: &str, extra: impl FnOnce(Pb) -> Pb, resources: Pb) -> Pb {
    extra(Pb::new().str(1, name).str(2, image))
        .str(5, "")
        .msg(8, resources)
        .str(13, "")
        .str(14, "")
        .bool(16, false)
        .bool(17, false)
        .bool(18, false)
        .str(20, "")
}

/// core/v1 PodSpec with the given containers and its always-written fields.
fn pod_spec(containers: Vec<Pb>, restart_policy: &str) -> Pb {
    pod_spec_with(Vec::new(), containers, restart_policy)
}

fn pod_spec_with(volumes: Vec<Pb>, containers: Vec<Pb>, restart_policy: &str) -> Pb {
    let mut spec = Pb::new();
    for v in volumes {
        spec = spec.msg(1, v);
    }
    for c in containers {
        spec = spec.msg(2, c);
    }
    spec.str(3, restart_policy)
        .str(6, "")
        .str(8, "")
        .str(9, "")
        .str(10, "")
        .bool(11, false)
        .bool(12, false)
        .bool(13, false)
        .str(16, "")
        .str(17, "")
        .str(19, "")
        .str(24, "")
}

fn int_or_string_int(v: i64) -> Pb {
    Pb::new().int(1, 0).int(2, v).str(3, "")
}

fn int_or_string_str(v: &str) -> Pb {
    Pb::new().int(1, 1).int(2, 0).str(3, v)
}

/// apps/v1 Deployment as `kubectl create deployment` builds it.
fn deployment(replicas: i64, created: Pb, container: Pb) -> Pb {
    let labels = [("app", "web")];
    let spec = Pb::new()
        .int(1, replicas)
        .msg(2, Pb::new().map_str(1, "app", "web"))
        .msg(
            3,
            Pb::new()
                .msg(1, meta("", &labels))
                .msg(2, pod_spec(vec![container], "")),
        )
        .msg(4, Pb::new().str(1, ""))
        .int(5, 0)
        .bool(7, false);
    let status = Pb::new()
        .int(1, 0)
        .int(2, 0)
        .int(3, 0)
        .int(4, 0)
        .int(5, 0)
        .int(7, 0);
    Pb::new()
        .msg(1, meta_at("web", &labels, created))
        .msg(2, spec)
        .msg(3, status)
}

fn nginx() -> Pb {
    // ContainerPort: name, hostPort, containerPort, protocol, hostIP.
    let port = Pb::new()
        .str(1, "")
        .int(2, 0)
        .int(3, 80)
        .str(4, "")
        .str(5, "");
    container("nginx", "nginx:1.27", |c| c.msg(6, port), Pb::new())
}

fn decoded(body: &[u8]) -> Json {
    match decode(body) {
        Ok(object) => object.object,
        Err(e) => panic!("decode failed: {e}"),
    }
}

fn error(body: &[u8]) -> String {
    match decode(body) {
        Ok(object) => panic!("decoded {}, expected an error", object.object),
        Err(e) => e.to_string(),
    }
}

#[test]
fn descriptors_load_and_every_kind_resolves() {
    let registry = REGISTRY.as_ref().expect("descriptors load");
    assert_eq!(registry.kinds.len(), KINDS.len());
    assert!(
        registry
            .inline
            .contains("k8s.io.api.core.v1.Volume.volumeSource")
    );
    assert!(registry.inline.contains("k8s.io.api.core.v1.Probe.handler"));
    assert_eq!(supported_kinds().count(), KINDS.len());
}

#[test]
fn create_deployment() {
    // kubectl create deployment web --image=nginx:1.27 --replicas=2 --port=80
    let object = decode(&body(
        "apps/v1",
        "Deployment",
        deployment(2, Pb::new(), nginx()),
    ))
    .expect("decodes");
    assert_eq!(object.api_version, "apps/v1");
    assert_eq!(object.kind, "Deployment");
    assert_eq!(
        object.object,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80}],
                        "resources": {}
                    }]}
                },
                "strategy": {}
            },
            "status": {}
        })
    );
}

#[test]
fn zero_replicas_are_kept() {
    // A pointer in Go: --replicas=0 must not turn into "default to 1".
    let object = decoded(&body(
        "apps/v1",
        "Deployment",
        deployment(0, Pb::new(), nginx()),
    ));
    assert_eq!(object["spec"]["replicas"], json!(0));
}

#[test]
fn time_and_quantities() {
    let created = Pb::new().int(1, 1_767_323_045).int(2, 0);
    let resources = Pb::new()
        .map_msg(1, "cpu", Pb::new().str(1, "500m"))
        .map_msg(1, "memory", Pb::new().str(1, "128Mi"))
        .map_msg(2, "cpu", Pb::new().str(1, "250m"));
    let c = container("app", "busybox", |c| c, resources);
    let object = decoded(&body("apps/v1", "Deployment", deployment(1, created, c)));
    assert_eq!(
        object["metadata"]["creationTimestamp"],
        json!("2026-01-02T03:04:05Z")
    );
    assert_eq!(
        object["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}})
    );
}

#[test]
fn create_namespace() {
    // kubectl create namespace demo
    let ns = Pb::new()
        .msg(1, meta("demo", &[]))
        .msg(2, Pb::new())
        .msg(3, Pb::new().str(1, ""));
    assert_eq!(
        decoded(&body("v1", "Namespace", ns)),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "demo", "creationTimestamp": null},
            "spec": {},
            "status": {}
        })
    );
}

#[test]
fn create_configmap() {
    // kubectl create configmap c --from-literal=a=b
    let cm = Pb::new().msg(1, meta("c", &[])).map_str(2, "a", "b");
    assert_eq!(
        decoded(&body("v1", "ConfigMap", cm)),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "creationTimestamp": null},
            "data": {"a": "b"}
        })
    );
}

#[test]
fn configmap_binary_data_is_base64() {
    // kubectl create configmap c --from-file=blob (not valid UTF-8)
    let cm = Pb::new()
        .msg(1, meta("c", &[]))
        .map_bytes(3, "blob", &[0xff, 0x00, 0x01]);
    assert_eq!(
        decoded(&body("v1", "ConfigMap", cm))["binaryData"],
        json!({"blob": "/wAB"})
    );
}

#[test]
fn create_secret_generic() {
    // kubectl create secret generic s --from-literal=password=x
    let secret = Pb::new()
        .msg(1, meta("s", &[]))
        .map_bytes(2, "password", b"x")
        .str(3, "");
    assert_eq!(
        decoded(&body("v1", "Secret", secret)),
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "creationTimestamp": null},
            "data": {"password": "eA=="}
        })
    );
}

#[test]
fn secret_type_and_string_data() {
    let secret = Pb::new()
        .msg(1, meta("tls", &[]))
        .map_bytes(2, "tls.crt", b"cert")
        .str(3, "kubernetes.io/tls")
        .map_str(4, "note", "plain")
        .bool(5, true);
    let object = decoded(&body("v1", "Secret", secret));
    assert_eq!(object["type"], json!("kubernetes.io/tls"));
    assert_eq!(object["data"], json!({"tls.crt": "Y2VydA=="}));
    assert_eq!(object["stringData"], json!({"note": "plain"}));
    assert_eq!(object["immutable"], json!(true));
}

#[test]
fn create_service_nodeport() {
    // kubectl create service nodeport web --tcp=80:8080
    let port = Pb::new()
        .str(1, "80-8080")
        .str(2, "TCP")
        .int(3, 80)
        .msg(4, int_or_string_int(8080))
        .int(5, 0);
    let spec = Pb::new()
        .msg(1, port)
        .map_str(2, "app", "web")
        .str(3, "")
        .str(4, "NodePort")
        .str(7, "")
        .str(8, "")
        .str(10, "")
        .str(11, "")
        .int(12, 0)
        .bool(13, false);
    let service = Pb::new()
        .msg(1, meta("web", &[("app", "web")]))
        .msg(2, spec)
        .msg(3, Pb::new().msg(1, Pb::new()));
    assert_eq!(
        decoded(&body("v1", "Service", service)),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {
                "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                "selector": {"app": "web"},
                "type": "NodePort"
            },
            "status": {"loadBalancer": {}}
        })
    );
}

#[test]
fn create_job() {
    // kubectl create job j --image=busybox -- echo hi
    let c = container("j", "busybox", |c| c.str(3, "echo").str(3, "hi"), Pb::new());
    let spec = Pb::new().msg(
        6,
        Pb::new()
            .msg(1, meta("", &[]))
            .msg(2, pod_spec(vec![c], "Never")),
    );
    let status = Pb::new().int(4, 0).int(5, 0).int(6, 0).str(7, "");
    let job = Pb::new().msg(1, meta("j", &[])).msg(2, spec).msg(3, status);
    assert_eq!(
        decoded(&body("batch/v1", "Job", job)),
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j", "creationTimestamp": null},
            "spec": {"template": {
                "metadata": {"creationTimestamp": null},
                "spec": {
                    "containers": [{
                        "name": "j",
                        "image": "busybox",
                        "command": ["echo", "hi"],
                        "resources": {}
                    }],
                    "restartPolicy": "Never"
                }
            }},
            "status": {}
        })
    );
}

#[test]
fn auth_can_i() {
    // kubectl auth can-i create deployments.apps -n default
    let attributes = Pb::new()
        .str(1, "default")
        .str(2, "create")
        .str(3, "apps")
        .str(4, "")
        .str(5, "deployments")
        .str(6, "")
        .str(7, "");
    let review = Pb::new()
        .msg(1, meta("", &[]))
        .msg(2, Pb::new().msg(1, attributes))
        .msg(
            3,
            Pb::new()
                .bool(1, false)
                .str(2, "")
                .str(3, "")
                .bool(4, false),
        );
    assert_eq!(
        decoded(&body(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            review
        )),
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "metadata": {"creationTimestamp": null},
            "spec": {"resourceAttributes": {
                "namespace": "default",
                "verb": "create",
                "group": "apps",
                "resource": "deployments"
            }},
            "status": {"allowed": false}
        })
    );
}

#[test]
fn autoscale_v1() {
    // kubectl autoscale deployment web --min=2 --max=5 --cpu-percent=80
    let target = Pb::new()
        .str(1, "Deployment")
        .str(2, "web")
        .str(3, "apps/v1");
    let spec = Pb::new().msg(1, target).int(2, 2).int(3, 5).int(4, 80);
    let hpa = Pb::new()
        .msg(1, meta("web", &[]))
        .msg(2, spec)
        .msg(3, Pb::new().int(3, 0).int(4, 0));
    assert_eq!(
        decoded(&body("autoscaling/v1", "HorizontalPodAutoscaler", hpa)),
        json!({
            "apiVersion": "autoscaling/v1",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "creationTimestamp": null},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                "minReplicas": 2,
                "maxReplicas": 5,
                "targetCPUUtilizationPercentage": 80
            },
            "status": {"currentReplicas": 0, "desiredReplicas": 0}
        })
    );
}

#[test]
fn embedded_structs_are_inlined() {
    // Volume's VolumeSource, Probe's ProbeHandler and the LocalObjectReference
    // of key selectors have no name of their own in the JSON.
    let empty_dir = Pb::new().str(1, "").msg(2, Pb::new().str(1, "64Mi"));
    let config_map = Pb::new().msg(1, Pb::new().str(1, "settings")).int(3, 0o644);
    let volumes = vec![
        Pb::new()
            .str(1, "scratch")
            .msg(2, Pb::new().msg(2, empty_dir)),
        Pb::new()
            .str(1, "conf")
            .msg(2, Pb::new().msg(19, config_map)),
    ];
    let secret_ref = Pb::new().msg(1, Pb::new().str(1, "db")).str(2, "password");
    let env = Pb::new()
        .str(1, "PASSWORD")
        .str(2, "")
        .msg(3, Pb::new().msg(4, secret_ref));
    let http_get = Pb::new()
        .str(1, "/healthz")
        .msg(2, int_or_string_str("http"))
        .str(3, "")
        .str(4, "");
    let probe = Pb::new()
        .msg(1, Pb::new().msg(2, http_get))
        .int(2, 5)
        .int(3, 0)
        .int(4, 10)
        .int(5, 0)
        .int(6, 0);
    let c = container("app", "app:1", |c| c.msg(7, env), Pb::new());
    // livenessProbe (10) comes after resources (8) in field order; appending
    // it last is still valid protobuf.
    let c = c.msg(10, probe);
    let d = Pb::new().msg(1, meta("web", &[])).msg(
        2,
        Pb::new().msg(
            3,
            Pb::new()
                .msg(1, meta("", &[]))
                .msg(2, pod_spec_with(volumes, vec![c], "Always")),
        ),
    );
    let object = decoded(&body("apps/v1", "Deployment", d));
    let pod = &object["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"],
        json!([
            {"name": "scratch", "emptyDir": {"sizeLimit": "64Mi"}},
            {"name": "conf", "configMap": {"name": "settings", "defaultMode": 420}}
        ])
    );
    assert_eq!(
        pod["containers"][0]["env"],
        json!([{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}])
    );
    assert_eq!(
        pod["containers"][0]["livenessProbe"],
        json!({"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 5, "periodSeconds": 10})
    );
    assert_eq!(pod["restartPolicy"], json!("Always"));
}

#[test]
fn json_names_and_list_wrappers() {
    // BoundObjectReference's uID is "uid" in JSON.
    let bound = Pb::new()
        .str(1, "Pod")
        .str(2, "v1")
        .str(3, "p")
        .str(4, "1234");
    let spec = Pb::new().str(1, "api").msg(3, bound).int(4, 3600);
    let token = Pb::new()
        .msg(1, meta("default", &[]))
        .msg(2, spec)
        .msg(3, Pb::new().str(1, "").msg(2, Pb::new()));
    let object = decoded(&body("authentication.k8s.io/v1", "TokenRequest", token));
    assert_eq!(
        object["spec"],
        json!({
            "audiences": ["api"],
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "1234"},
            "expirationSeconds": 3600
        })
    );
    assert_eq!(
        object["status"],
        json!({"token": "", "expirationTimestamp": null})
    );

    // ExtraValue is a bare list in JSON.
    let user = Pb::new()
        .str(1, "alice")
        .map_msg(4, "scopes", Pb::new().str(1, "a").str(1, "b"));
    let review = Pb::new()
        .msg(1, meta("", &[]))
        .msg(2, Pb::new().msg(1, user));
    let object = decoded(&body(
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        review,
    ));
    assert_eq!(
        object["status"],
        json!({"userInfo": {"username": "alice", "extra": {"scopes": ["a", "b"]}}})
    );
}

#[test]
fn raw_extension_embeds_json_and_protobuf() {
    let revision = |data: Pb| Pb::new().msg(1, meta("web-1", &[])).msg(2, data).int(3, 1);
    let json_data = Pb::new().bytes(1, br#"{"spec":{"replicas":3}}"#);
    let object = decoded(&body("apps/v1", "ControllerRevision", revision(json_data)));
    assert_eq!(object["data"], json!({"spec": {"replicas": 3}}));
    assert_eq!(object["revision"], json!(1));

    let inner = body("v1", "ConfigMap", Pb::new().msg(1, meta("c", &[])));
    let object = decoded(&body(
        "apps/v1",
        "ControllerRevision",
        revision(Pb::new().bytes(1, &inner)),
    ));
    assert_eq!(
        object["data"],
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "creationTimestamp": null}})
    );

    let object = decoded(&body("apps/v1", "ControllerRevision", revision(Pb::new())));
    assert_eq!(object["data"], Json::Null);

    let bad = revision(Pb::new().bytes(1, b"not json"));
    assert!(
        error(&body("apps/v1", "ControllerRevision", bad)).contains("neither protobuf nor JSON")
    );
}

#[test]
fn protobuf_raw_extensions_cannot_nest_forever() {
    let mut inner = body("v1", "ConfigMap", Pb::new().msg(1, meta("c", &[])));
    for _ in 0..=MAX_EMBEDDED_DEPTH {
        let revision = Pb::new()
            .msg(1, meta("r", &[]))
            .msg(2, Pb::new().bytes(1, &inner));
        inner = body("apps/v1", "ControllerRevision", revision);
    }
    assert!(error(&inner).contains("nest too deeply"));
}

#[test]
fn bad_magic() {
    assert_eq!(
        error(b"{\"apiVersion\":\"v1\"}"),
        "the body is not in Kubernetes' protobuf encoding: it does not start with the bytes \"k8s\\0\""
    );
    assert!(matches!(decode(b""), Err(DecodeError::NotProtobuf)));
    assert!(matches!(decode(b"k8s"), Err(DecodeError::NotProtobuf)));
}

#[test]
fn truncated_bodies_are_errors() {
    let full = body("apps/v1", "Deployment", deployment(2, Pb::new(), nginx()));
    let whole = decoded(&full);
    // Protobuf has no end marker: a body cut right after `raw` or after the
    // empty contentEncoding is a body that leaves out those optional fields.
    let raw_end = full.len() - 4;
    for len in 0..full.len() {
        match decode(&full[..len]) {
            Ok(object) => assert!(
                (len == raw_end || len == raw_end + 2) && object.object == whole,
                "a body cut at {len} bytes decoded"
            ),
            Err(e) => assert!(
                len != raw_end && len != raw_end + 2,
                "a body cut at {len} bytes failed: {e}"
            ),
        }
    }
    let no_object = [
        MAGIC.as_slice(),
        &Pb::new().msg(1, Pb::new().str(1, "v1").str(2, "Secret")).0,
    ]
    .concat();
    assert!(matches!(
        decode(&no_object),
        Err(DecodeError::MissingObject)
    ));
    // Cut inside the object: the envelope is whole, the Deployment is not.
    let object = deployment(2, Pb::new(), nginx());
    let cut = Pb(object.0[..object.0.len() - 3].to_vec());
    assert!(
        error(&body("apps/v1", "Deployment", cut))
            .starts_with("the k8s.io.api.apps.v1.Deployment in the protobuf body is malformed")
    );
}

#[test]
fn unknown_kind() {
    let pod = Pb::new().msg(1, meta("p", &[]));
    assert_eq!(
        error(&body("v1", "Pod", pod.clone())),
        "Pod in v1 is not supported in protobuf requests yet; send JSON"
    );
    assert!(matches!(
        decode(&body("apps/v1beta1", "Deployment", pod)),
        Err(DecodeError::UnknownKind { .. })
    ));
    let no_type = [MAGIC.as_slice(), &Pb::new().bytes(2, b"").0].concat();
    assert!(matches!(decode(&no_type), Err(DecodeError::MissingType)));
}

#[test]
fn unknown_field_numbers_are_named() {
    // Field 99 of a Container: not in Kubernetes at all.
    let c = container("nginx", "nginx", |c| c, Pb::new()).str(99, "x");
    assert_eq!(
        error(&body("apps/v1", "Deployment", deployment(1, Pb::new(), c))),
        "field 99 of k8s.io.api.core.v1.Container (at spec.template.spec.containers[0]) \
         is not supported in protobuf requests yet; send JSON"
    );
    // Field 3 of a VolumeSource (gcePersistentDisk): Kubernetes has it, the
    // subset leaves it out.
    let volume = Pb::new().str(1, "disk").msg(2, Pb::new().msg(3, Pb::new()));
    let d = Pb::new().msg(1, meta("web", &[])).msg(
        2,
        Pb::new().msg(3, Pb::new().msg(2, pod_spec_with(vec![volume], vec![], ""))),
    );
    assert_eq!(
        error(&body("apps/v1", "Deployment", d)),
        "field 3 of k8s.io.api.core.v1.VolumeSource (at spec.template.spec.volumes[0]) \
         is not supported in protobuf requests yet; send JSON"
    );
    // At the top level, and in the envelope.
    let cm = Pb::new().msg(1, meta("c", &[])).int(7, 1);
    assert_eq!(
        error(&body("v1", "ConfigMap", cm)),
        "field 7 of k8s.io.api.core.v1.ConfigMap is not supported in protobuf requests yet; send JSON"
    );
    let mut envelope = body("v1", "ConfigMap", Pb::new());
    envelope.extend(Pb::new().int(9, 1).0);
    assert!(error(&envelope).starts_with("field 9 of k8s.io.apimachinery.pkg.runtime.Unknown"));
}

#[test]
fn envelope_checks() {
    let unknown = |encoding: &str, content_type: &str| {
        let u = Pb::new()
            .msg(1, Pb::new().str(1, "v1").str(2, "ConfigMap"))
            .msg(2, Pb::new())
            .str(3, encoding)
            .str(4, content_type);
        [MAGIC.as_slice(), &u.0].concat()
    };
    assert!(decode(&unknown("", MEDIA_TYPE)).is_ok());
    assert!(matches!(
        decode(&unknown("gzip", "")),
        Err(DecodeError::ContentEncoding(_))
    ));
    assert!(matches!(
        decode(&unknown("", "application/json")),
        Err(DecodeError::ContentType(_))
    ));
    // Wrong wire type for typeMeta.
    let bad = [MAGIC.as_slice(), &Pb::new().int(1, 5).0].concat();
    assert!(matches!(decode(&bad), Err(DecodeError::Envelope(_))));
}

#[test]
fn invalid_values() {
    let port = Pb::new()
        .str(1, "")
        .str(2, "TCP")
        .int(3, 80)
        .msg(4, Pb::new().int(1, 7));
    let service = Pb::new()
        .msg(1, meta("web", &[]))
        .msg(2, Pb::new().msg(1, port));
    assert_eq!(
        error(&body("v1", "Service", service)),
        "invalid k8s.io.apimachinery.pkg.util.intstr.IntOrString (at spec.ports[0].targetPort) \
         in the protobuf body: type 7 is neither 0 (int) nor 1 (string)"
    );
    let far_future = Pb::new().int(1, i64::MAX);
    let ns = Pb::new().msg(1, meta_at("x", &[], far_future));
    assert!(error(&body("v1", "Namespace", ns)).contains("out of range"));
    let invalid_utf8 = Pb::new().msg(1, Pb::new().bytes(1, &[0xff, 0xfe]));
    assert!(matches!(
        decode(&body("v1", "Namespace", invalid_utf8)),
        Err(DecodeError::Malformed { .. })
    ));
}

fn time_message(name: &str, seconds: Option<i64>, nanos: Option<i32>) -> DynamicMessage {
    let registry = REGISTRY.as_ref().expect("descriptors load");
    let desc = registry
        .unknown
        .parent_pool()
        .get_message_by_name(name)
        .expect("time message");
    let mut m = DynamicMessage::new(desc);
    if let Some(s) = seconds {
        m.set_field_by_name("seconds", Value::I64(s));
    }
    if let Some(n) = nanos {
        m.set_field_by_name("nanos", Value::I32(n));
    }
    m
}

#[test]
fn times() {
    let t = |s, n| time(&time_message(TIME, s, n), false).map_err(|e| e.to_string());
    assert_eq!(t(None, None), Ok(Json::Null));
    assert_eq!(t(Some(0), None), Ok(json!("1970-01-01T00:00:00Z")));
    assert_eq!(t(None, Some(0)), Ok(json!("1970-01-01T00:00:00Z")));
    // Time keeps whole seconds only.
    assert_eq!(
        t(Some(1_767_323_045), Some(999)),
        Ok(json!("2026-01-02T03:04:05Z"))
    );
    assert_eq!(
        t(Some(-62_135_596_800), None),
        Ok(json!("0001-01-01T00:00:00Z"))
    );
    assert!(t(Some(-62_135_596_801 - 366 * 86_400), None).is_err());
    assert!(t(Some(i64::MIN), None).is_err());

    let mt = |s, n| time(&time_message(MICRO_TIME, s, n), true).map_err(|e| e.to_string());
    assert_eq!(mt(None, None), Ok(Json::Null));
    assert_eq!(
        mt(Some(1_767_323_045), Some(123_456_789)),
        Ok(json!("2026-01-02T03:04:05.123456Z"))
    );
    assert_eq!(
        mt(Some(0), Some(0)),
        Ok(json!("1970-01-01T00:00:00.000000Z"))
    );
    // Out-of-range nanos carry into the seconds, as Go's time.Unix does.
    assert_eq!(
        mt(Some(10), Some(-1_000)),
        Ok(json!("1970-01-01T00:00:09.999999Z"))
    );
    assert_eq!(
        mt(Some(0), Some(2_000_001_000)),
        Ok(json!("1970-01-01T00:00:02.000001Z"))
    );
    assert!(mt(Some(i64::MAX), Some(1_000_000_000)).is_err());
}

#[test]
fn durations_are_written_like_go() {
    for (nanos, text) in [
        (0, "0s"),
        (1, "1ns"),
        (1_100, "1.1µs"),
        (2_200_000, "2.2ms"),
        (999_999_999, "999.999999ms"),
        (1_000_000_000, "1s"),
        (1_500_000_000, "1.5s"),
        (300_000_000_000, "5m0s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_000_000_000, "1h2m3s"),
        (-123_000_000_000, "-2m3s"),
        (61_001_000_000, "1m1.001s"),
        (i64::MAX, "2562047h47m16.854775807s"),
        (i64::MIN, "-2562047h47m16.854775808s"),
    ] {
        assert_eq!(go_duration(nanos), text, "{nanos}ns");
    }
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn never_panics_after_the_magic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&[MAGIC.as_slice(), &bytes].concat());
    }

    #[test]
    fn never_panics_on_arbitrary_objects(
        kind in 0..KINDS.len(),
        raw in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let (api_version, kind, _) = KINDS[kind];
        let _ = decode(&body(api_version, kind, Pb(raw)));
    }

    #[test]
    fn never_panics_on_damaged_bodies(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut damaged = body("apps/v1", "Deployment", deployment(2, Pb::new(), nginx()));
        for (at, byte) in flips {
            let len = damaged.len();
            damaged[at % len] = byte;
        }
        damaged.truncate(cut % (damaged.len() + 1));
        let _ = decode(&damaged);
    }
}
