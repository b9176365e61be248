//! `describe pod`, and the pod template, container, volume and QoS
//! printers the workload describers share.

use serde_json::Value;

use super::events::{self, Reference};
use super::writer::{self, Writer, int, or_none, plain, rfc1123z, s};
use crate::session::Session;

pub async fn describe(session: &Session, pod: &Value, show_events: bool) -> String {
    let events = if show_events {
        // kubectl leaves the kind out of a pod's reference; a mirror pod's
        // Events name the static pod's UID.
        let mut r = Reference::to(pod);
        r.kind = None;
        if let Some(uid) = pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].as_str() {
            r.uid = Some(uid.to_string());
        }
        Some(events::search(session, &r).await)
    } else {
        None
    };
    render(pod, events.as_deref())
}

pub fn render(pod: &Value, events: Option<&[Value]>) -> String {
    let (md, spec, status) = (&pod["metadata"], &pod["spec"], &pod["status"]);
    let mut w = Writer::new();
    w.write(0, format!("Name:\t{}\n", s(&md["name"])));
    w.write(0, format!("Namespace:\t{}\n", s(&md["namespace"])));
    if let Some(p) = spec["priority"].as_i64() {
        w.write(0, format!("Priority:\t{p}\n"));
    }
    if !s(&spec["priorityClassName"]).is_empty() {
        w.write(
            0,
            format!("Priority Class Name:\t{}\n", s(&spec["priorityClassName"])),
        );
    }
    if !s(&spec["runtimeClassName"]).is_empty() {
        w.write(
            0,
            format!("Runtime Class Name:\t{}\n", s(&spec["runtimeClassName"])),
        );
    }
    if !s(&spec["serviceAccountName"]).is_empty() {
        w.write(
            0,
            format!("Service Account:\t{}\n", s(&spec["serviceAccountName"])),
        );
    }
    if s(&spec["nodeName"]).is_empty() {
        w.write(0, "Node:\t<none>\n");
    } else {
        w.write(
            0,
            format!("Node:\t{}/{}\n", s(&spec["nodeName"]), s(&status["hostIP"])),
        );
    }
    if !status["startTime"].is_null() {
        w.write(
            0,
            format!("Start Time:\t{}\n", rfc1123z(&status["startTime"])),
        );
    }
    writer::labels(&mut w, "", "Labels", &md["labels"]);
    writer::annotations(&mut w, "Annotations", &md["annotations"]);
    let phase = s(&status["phase"]);
    if !md["deletionTimestamp"].is_null() && phase != "Failed" && phase != "Succeeded" {
        w.write(
            0,
            format!(
                "Status:\tTerminating (lasts {})\n",
                events::since(&md["deletionTimestamp"], jiff::Timestamp::now())
            ),
        );
        w.write(
            0,
            format!(
                "Termination Grace Period:\t{}s\n",
                int(&md["deletionGracePeriodSeconds"])
            ),
        );
    } else {
        w.write(0, format!("Status:\t{phase}\n"));
    }
    if !s(&status["reason"]).is_empty() {
        w.write(0, format!("Reason:\t{}\n", s(&status["reason"])));
    }
    if !s(&status["message"]).is_empty() {
        w.write(0, format!("Message:\t{}\n", s(&status["message"])));
    }
    let seccomp = &spec["securityContext"]["seccompProfile"];
    if seccomp.is_object() {
        w.write(0, format!("SeccompProfile:\t{}\n", s(&seccomp["type"])));
        if s(&seccomp["type"]) == "Localhost" {
            w.write(
                0,
                format!("LocalhostProfile:\t{}\n", s(&seccomp["localhostProfile"])),
            );
        }
    }
    w.write(0, format!("IP:\t{}\n", s(&status["podIP"])));
    match status["podIPs"].as_array().filter(|a| !a.is_empty()) {
        None => w.write(0, "IPs:\t<none>\n"),
        Some(ips) => {
            w.write(0, "IPs:\n");
            for ip in ips {
                w.write(1, format!("IP:\t{}\n", s(&ip["ip"])));
            }
        }
    }
    writer::controlled_by(&mut w, pod);
    if !s(&status["nominatedNodeName"]).is_empty() {
        w.write(
            0,
            format!("NominatedNodeName:\t{}\n", s(&status["nominatedNodeName"])),
        );
    }
    if spec["resources"].is_object() {
        w.write(0, "Resources:\n");
        resources(&mut w, &spec["resources"], 1);
    }
    let resolve = |e: &Value| resolve_field(pod, e);
    if non_empty(&spec["initContainers"]) {
        containers(
            &mut w,
            "Init Containers",
            &spec["initContainers"],
            Some(&status["initContainerStatuses"]),
            Some(&resolve),
            "",
        );
    }
    containers(
        &mut w,
        "Containers",
        &spec["containers"],
        Some(&status["containerStatuses"]),
        Some(&resolve),
        "",
    );
    if non_empty(&spec["ephemeralContainers"]) {
        containers(
            &mut w,
            "Ephemeral Containers",
            &spec["ephemeralContainers"],
            Some(&status["ephemeralContainerStatuses"]),
            Some(&resolve),
            "",
        );
    }
    let conditions: Vec<&Value> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if non_empty(&spec["readinessGates"]) {
        w.write(0, "Readiness Gates:\n  Type\tStatus\n");
        for g in spec["readinessGates"].as_array().into_iter().flatten() {
            let t = s(&g["conditionType"]);
            let st = conditions
                .iter()
                .find(|c| s(&c["type"]) == t)
                .map(|c| plain(&c["status"]))
                .unwrap_or_else(|| "<none>".into());
            w.write(1, format!("{t} \t{st} \n"));
        }
    }
    if !conditions.is_empty() {
        w.write(0, "Conditions:\n  Type\tStatus\n");
        for c in &conditions {
            w.write(1, format!("{} \t{} \n", s(&c["type"]), s(&c["status"])));
        }
    }
    volumes(&mut w, &spec["volumes"], "");
    w.write(0, format!("QoS Class:\t{}\n", qos_class(pod)));
    writer::labels(&mut w, "", "Node-Selectors", &spec["nodeSelector"]);
    writer::tolerations(&mut w, "", "Tolerations", &spec["tolerations"]);
    spread_constraints(&mut w, &spec["topologySpreadConstraints"], "");
    if let Some(events) = events {
        events::describe(&mut w, events);
    }
    w.finish()
}

fn non_empty(v: &Value) -> bool {
    v.as_array().is_some_and(|a| !a.is_empty())
}

/// `Pod Template:` of a workload.
pub fn template(w: &mut Writer, template: &Value) {
    w.write(0, "Pod Template:\n");
    if template.is_null() {
        w.write(1, "<unset>");
        return;
    }
    let (md, spec) = (&template["metadata"], &template["spec"]);
    writer::labels(w, "", "  Labels", &md["labels"]);
    if md["annotations"].as_object().is_some_and(|a| !a.is_empty()) {
        writer::annotations(w, "  Annotations", &md["annotations"]);
    }
    if !s(&spec["serviceAccountName"]).is_empty() {
        w.write(
            1,
            format!("Service Account:\t{}\n", s(&spec["serviceAccountName"])),
        );
    }
    if non_empty(&spec["initContainers"]) {
        containers(
            w,
            "Init Containers",
            &spec["initContainers"],
            None,
            None,
            "  ",
        );
    }
    containers(w, "Containers", &spec["containers"], None, None, "  ");
    volumes(w, &spec["volumes"], "  ");
    spread_constraints(w, &spec["topologySpreadConstraints"], "  ");
    if !s(&spec["priorityClassName"]).is_empty() {
        w.write(
            1,
            format!("Priority Class Name:\t{}\n", s(&spec["priorityClassName"])),
        );
    }
    writer::labels(w, "", "  Node-Selectors", &spec["nodeSelector"]);
    writer::tolerations(w, "", "  Tolerations", &spec["tolerations"]);
}

type Resolver<'a> = &'a dyn Fn(&Value) -> String;

fn containers(
    w: &mut Writer,
    label: &str,
    list: &Value,
    statuses: Option<&Value>,
    resolve: Option<Resolver>,
    space: &str,
) {
    let list: Vec<&Value> = list.as_array().into_iter().flatten().collect();
    let none = if list.is_empty() { " <none>" } else { "" };
    w.write(0, format!("{space}{label}:{none}\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in list {
        let name = s(&c["name"]);
        let status = statuses
            .and_then(|st| st.as_array())
            .and_then(|st| st.iter().find(|x| s(&x["name"]) == name));
        w.write(1, format!("{name_indent}{name}:\n"));
        if let Some(st) = status {
            w.write(2, format!("Container ID:\t{}\n", s(&st["containerID"])));
        }
        w.write(2, format!("Image:\t{}\n", s(&c["image"])));
        if let Some(st) = status {
            w.write(2, format!("Image ID:\t{}\n", s(&st["imageID"])));
        }
        let ports: Vec<&Value> = c["ports"].as_array().into_iter().flatten().collect();
        let join = |field: &str| {
            ports
                .iter()
                .map(|p| format!("{}/{}", int(&p[field]), s(&p["protocol"])))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (port, host) = (join("containerPort"), join("hostPort"));
        if port.contains(',') {
            w.write(2, format!("Ports:\t{port}\n"));
        } else {
            w.write(2, format!("Port:\t{}\n", or_none(&port)));
        }
        if host.contains(',') {
            w.write(2, format!("Host Ports:\t{host}\n"));
        } else {
            w.write(2, format!("Host Port:\t{}\n", or_none(&host)));
        }
        let seccomp = &c["securityContext"]["seccompProfile"];
        if seccomp.is_object() {
            w.write(2, format!("SeccompProfile:\t{}\n", s(&seccomp["type"])));
            if s(&seccomp["type"]) == "Localhost" {
                w.write(
                    3,
                    format!("LocalhostProfile:\t{}\n", s(&seccomp["localhostProfile"])),
                );
            }
        }
        for (field, title) in [("command", "Command"), ("args", "Args")] {
            if non_empty(&c[field]) {
                w.write(2, format!("{title}:\n"));
                for arg in c[field].as_array().into_iter().flatten() {
                    for part in s(arg).split('\n') {
                        w.write(3, format!("{part}\n"));
                    }
                }
            }
        }
        if let Some(st) = status {
            state(w, "State", &st["state"]);
            if st["lastState"]["terminated"].is_object() {
                state(w, "Last State", &st["lastState"]);
            }
            let ready = if st["ready"].as_bool() == Some(true) {
                "True"
            } else {
                "False"
            };
            w.write(2, format!("Ready:\t{ready}\n"));
            w.write(2, format!("Restart Count:\t{}\n", int(&st["restartCount"])));
        }
        resources(w, &c["resources"], 2);
        for (field, title) in [
            ("livenessProbe", "Liveness"),
            ("readinessProbe", "Readiness"),
            ("startupProbe", "Startup"),
        ] {
            if c[field].is_object() {
                w.write(2, format!("{title}:\t{}\n", probe(&c[field])));
            }
        }
        if non_empty(&c["envFrom"]) {
            w.write(2, "Environment Variables from:\n");
            for e in c["envFrom"].as_array().into_iter().flatten() {
                let (from, r) = if e["configMapRef"].is_object() {
                    ("ConfigMap", &e["configMapRef"])
                } else if e["secretRef"].is_object() {
                    ("Secret", &e["secretRef"])
                } else {
                    ("", &Value::Null)
                };
                let optional = r["optional"].as_bool() == Some(true);
                let prefix = s(&e["prefix"]);
                if prefix.is_empty() {
                    w.write(
                        3,
                        format!("{}\t{from}\tOptional: {optional}\n", s(&r["name"])),
                    );
                } else {
                    w.write(
                        3,
                        format!(
                            "{}\t{from} with prefix '{prefix}'\tOptional: {optional}\n",
                            s(&r["name"])
                        ),
                    );
                }
            }
        }
        env(w, c, resolve);
        let mut mounts: Vec<&Value> = c["volumeMounts"].as_array().into_iter().flatten().collect();
        let none = if mounts.is_empty() { "\t<none>" } else { "" };
        w.write(2, format!("Mounts:{none}\n"));
        mounts.sort_by(|a, b| s(&a["mountPath"]).cmp(s(&b["mountPath"])));
        for m in mounts {
            let mut flags = vec![if m["readOnly"].as_bool() == Some(true) {
                "ro".to_string()
            } else {
                "rw".to_string()
            }];
            if !s(&m["subPath"]).is_empty() {
                flags.push(format!("path={:?}", s(&m["subPath"])));
            }
            w.write(
                3,
                format!(
                    "{} from {} ({})\n",
                    s(&m["mountPath"]),
                    s(&m["name"]),
                    flags.join(",")
                ),
            );
        }
        let mut devices: Vec<&Value> = c["volumeDevices"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        if !devices.is_empty() {
            w.write(2, format!("Devices:{none}\n"));
            devices.sort_by(|a, b| s(&a["devicePath"]).cmp(s(&b["devicePath"])));
            for d in devices {
                w.write(
                    3,
                    format!("{} from {}\n", s(&d["devicePath"]), s(&d["name"])),
                );
            }
        }
    }
}

fn env(w: &mut Writer, c: &Value, resolve: Option<Resolver>) {
    let list: Vec<&Value> = c["env"].as_array().into_iter().flatten().collect();
    let none = if list.is_empty() { "\t<none>" } else { "" };
    w.write(2, format!("Environment:{none}\n"));
    for e in list {
        let name = s(&e["name"]);
        let from = &e["valueFrom"];
        if !from.is_object() {
            for (i, part) in s(&e["value"]).split('\n').enumerate() {
                if i == 0 {
                    w.write(3, format!("{name}:\t{part}\n"));
                } else {
                    w.write(3, format!("\t{part}\n"));
                }
            }
            continue;
        }
        if from["fieldRef"].is_object() {
            let value = resolve.map(|r| r(e)).unwrap_or_default();
            w.write(
                3,
                format!(
                    "{name}:\t{value} ({}:{})\n",
                    s(&from["fieldRef"]["apiVersion"]),
                    s(&from["fieldRef"]["fieldPath"])
                ),
            );
        } else if from["resourceFieldRef"].is_object() {
            let resource = s(&from["resourceFieldRef"]["resource"]);
            let value = container_resource(c, resource);
            let value = if value == "0" && (resource == "limits.cpu" || resource == "limits.memory")
            {
                "node allocatable".to_string()
            } else {
                value
            };
            w.write(3, format!("{name}:\t{value} ({resource})\n"));
        } else if from["secretKeyRef"].is_object() {
            let r = &from["secretKeyRef"];
            w.write(
                3,
                format!(
                    "{name}:\t<set to the key '{}' in secret '{}'>\tOptional: {}\n",
                    s(&r["key"]),
                    s(&r["name"]),
                    r["optional"].as_bool() == Some(true)
                ),
            );
        } else if from["configMapKeyRef"].is_object() {
            let r = &from["configMapKeyRef"];
            w.write(
                3,
                format!(
                    "{name}:\t<set to the key '{}' of config map '{}'>\tOptional: {}\n",
                    s(&r["key"]),
                    s(&r["name"]),
                    r["optional"].as_bool() == Some(true)
                ),
            );
        }
    }
}

/// The value a `resourceFieldRef` reads (`limits.cpu` …), as given in
/// the container ("0" when unset, which kubectl shows as node allocatable).
fn container_resource(c: &Value, resource: &str) -> String {
    let Some((kind, name)) = resource.split_once('.') else {
        return String::new();
    };
    match c["resources"][kind][name].as_str() {
        Some(v) => v.to_string(),
        None => "0".into(),
    }
}

/// What a `fieldRef` reads from the pod.
fn resolve_field(pod: &Value, e: &Value) -> String {
    let path = s(&e["valueFrom"]["fieldRef"]["fieldPath"]);
    let md = &pod["metadata"];
    let map_key = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix("']"))
            .map(str::to_string)
    };
    if let Some(k) = map_key("metadata.labels['") {
        return s(&md["labels"][k.as_str()]).to_string();
    }
    if let Some(k) = map_key("metadata.annotations['") {
        return s(&md["annotations"][k.as_str()]).to_string();
    }
    match path {
        "metadata.name" => s(&md["name"]).into(),
        "metadata.namespace" => s(&md["namespace"]).into(),
        "metadata.uid" => s(&md["uid"]).into(),
        "spec.nodeName" => s(&pod["spec"]["nodeName"]).into(),
        "spec.serviceAccountName" => s(&pod["spec"]["serviceAccountName"]).into(),
        "status.hostIP" => s(&pod["status"]["hostIP"]).into(),
        "status.podIP" => s(&pod["status"]["podIP"]).into(),
        "status.podIPs" => pod["status"]["podIPs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| s(&i["ip"]).to_string())
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

fn state(w: &mut Writer, title: &str, st: &Value) {
    if st["running"].is_object() {
        w.write(2, format!("{title}:\tRunning\n"));
        w.write(
            3,
            format!("Started:\t{}\n", rfc1123z(&st["running"]["startedAt"])),
        );
    } else if st["waiting"].is_object() {
        w.write(2, format!("{title}:\tWaiting\n"));
        if !s(&st["waiting"]["reason"]).is_empty() {
            w.write(3, format!("Reason:\t{}\n", s(&st["waiting"]["reason"])));
        }
    } else if st["terminated"].is_object() {
        let t = &st["terminated"];
        w.write(2, format!("{title}:\tTerminated\n"));
        if !s(&t["reason"]).is_empty() {
            w.write(3, format!("Reason:\t{}\n", s(&t["reason"])));
        }
        if !s(&t["message"]).is_empty() {
            w.write(3, format!("Message:\t{}\n", s(&t["message"])));
        }
        w.write(3, format!("Exit Code:\t{}\n", int(&t["exitCode"])));
        if int(&t["signal"]) > 0 {
            w.write(3, format!("Signal:\t{}\n", int(&t["signal"])));
        }
        w.write(3, format!("Started:\t{}\n", rfc1123z(&t["startedAt"])));
        w.write(3, format!("Finished:\t{}\n", rfc1123z(&t["finishedAt"])));
    } else {
        w.write(2, format!("{title}:\tWaiting\n"));
    }
}

/// `Limits:` / `Requests:` with sorted resource names.
pub fn resources(w: &mut Writer, r: &Value, level: usize) {
    for (field, title) in [("limits", "Limits"), ("requests", "Requests")] {
        let Some(map) = r[field].as_object().filter(|m| !m.is_empty()) else {
            continue;
        };
        w.write(level, format!("{title}:\n"));
        let mut names: Vec<&String> = map.keys().collect();
        names.sort();
        for n in names {
            w.write(level + 1, format!("{n}:\t{}\n", plain(&map[n])));
        }
    }
}

/// `http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3`.
pub fn probe(p: &Value) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        int(&p["initialDelaySeconds"]),
        int(&p["timeoutSeconds"]),
        int(&p["periodSeconds"]),
        int(&p["successThreshold"]),
        int(&p["failureThreshold"])
    );
    if p["exec"].is_object() {
        let cmd: Vec<String> = p["exec"]["command"]
            .as_array()
            .into_iter()
            .flatten()
            .map(plain)
            .collect();
        return format!("exec [{}] {attrs}", cmd.join(" "));
    }
    if p["httpGet"].is_object() {
        let h = &p["httpGet"];
        let port = plain_port(&h["port"]);
        let host = if port.is_empty() {
            s(&h["host"]).to_string()
        } else if s(&h["host"]).contains(':') {
            format!("[{}]:{port}", s(&h["host"]))
        } else {
            format!("{}:{port}", s(&h["host"]))
        };
        let scheme = s(&h["scheme"]).to_lowercase();
        let mut url = String::new();
        if !scheme.is_empty() {
            url.push_str(&scheme);
            url.push(':');
        }
        if !host.is_empty() {
            url.push_str("//");
            url.push_str(&host);
        }
        let path = s(&h["path"]);
        if !path.is_empty() && !path.starts_with('/') && !host.is_empty() {
            url.push('/');
        }
        url.push_str(path);
        return format!("http-get {url} {attrs}");
    }
    if p["tcpSocket"].is_object() {
        let t = &p["tcpSocket"];
        return format!(
            "tcp-socket {}:{} {attrs}",
            s(&t["host"]),
            plain_port(&t["port"])
        );
    }
    if p["grpc"].is_object() {
        return format!(
            "grpc <pod>:{} {} {attrs}",
            int(&p["grpc"]["port"]),
            s(&p["grpc"]["service"])
        );
    }
    format!("unknown {attrs}")
}

fn plain_port(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => plain(other),
    }
}

/// `Volumes:` with each volume's source as kubectl words it; sources
/// skiffctl does not spell out print `<unknown>`.
pub fn volumes(w: &mut Writer, volumes: &Value, space: &str) {
    let list: Vec<&Value> = volumes.as_array().into_iter().flatten().collect();
    if list.is_empty() {
        w.write(0, format!("{space}Volumes:\t<none>\n"));
        return;
    }
    w.write(0, format!("{space}Volumes:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for v in list {
        w.write(1, format!("{name_indent}{}:\n", s(&v["name"])));
        let optional = |x: &Value| x["optional"].as_bool() == Some(true);
        if let Some(h) = v.get("hostPath").filter(|x| x.is_object()) {
            w.write(
                2,
                format!(
                    "Type:\tHostPath (bare host directory volume)\n    Path:\t{}\n    HostPathType:\t{}\n",
                    s(&h["path"]),
                    h.get("type").map(plain).unwrap_or_else(|| "<none>".into())
                ),
            );
        } else if let Some(e) = v.get("emptyDir").filter(|x| x.is_object()) {
            let limit = e["sizeLimit"]
                .as_str()
                .filter(|l| !l.is_empty() && !l.starts_with('0') && !l.starts_with('-'))
                .unwrap_or("<unset>");
            w.write(
                2,
                format!(
                    "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t{}\n    SizeLimit:\t{limit}\n",
                    s(&e["medium"])
                ),
            );
        } else if let Some(x) = v.get("secret").filter(|x| x.is_object()) {
            w.write(
                2,
                format!(
                    "Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t{}\n    Optional:\t{}\n",
                    s(&x["secretName"]),
                    optional(x)
                ),
            );
        } else if let Some(x) = v.get("configMap").filter(|x| x.is_object()) {
            w.write(
                2,
                format!(
                    "Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t{}\n    Optional:\t{}\n",
                    s(&x["name"]),
                    optional(x)
                ),
            );
        } else if let Some(x) = v.get("persistentVolumeClaim").filter(|x| x.is_object()) {
            w.write(
                2,
                format!(
                    "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n    ClaimName:\t{}\n    ReadOnly:\t{}\n",
                    s(&x["claimName"]),
                    x["readOnly"].as_bool() == Some(true)
                ),
            );
        } else if let Some(x) = v.get("downwardAPI").filter(|x| x.is_object()) {
            w.write(
                2,
                "Type:\tDownwardAPI (a volume populated by information about the pod)\n    Items:\n",
            );
            for item in x["items"].as_array().into_iter().flatten() {
                if item["fieldRef"].is_object() {
                    w.write(
                        3,
                        format!(
                            "{} -> {}\n",
                            s(&item["fieldRef"]["fieldPath"]),
                            s(&item["path"])
                        ),
                    );
                }
                if item["resourceFieldRef"].is_object() {
                    w.write(
                        3,
                        format!(
                            "{} -> {}\n",
                            s(&item["resourceFieldRef"]["resource"]),
                            s(&item["path"])
                        ),
                    );
                }
            }
        } else if let Some(x) = v.get("projected").filter(|x| x.is_object()) {
            w.write(
                2,
                "Type:\tProjected (a volume that contains injected data from multiple sources)\n",
            );
            for src in x["sources"].as_array().into_iter().flatten() {
                // kubectl prints the optional flags as Go pointers: `<nil>`
                // when unset (the value when set).
                if src["secret"].is_object() {
                    w.write(
                        2,
                        format!(
                            "SecretName:\t{}\n    SecretOptionalName:\t{}\n",
                            s(&src["secret"]["name"]),
                            plain(&src["secret"]["optional"])
                        ),
                    );
                } else if src["downwardAPI"].is_object() {
                    w.write(2, "DownwardAPI:\ttrue\n");
                } else if src["configMap"].is_object() {
                    w.write(
                        2,
                        format!(
                            "ConfigMapName:\t{}\n    ConfigMapOptional:\t{}\n",
                            s(&src["configMap"]["name"]),
                            plain(&src["configMap"]["optional"])
                        ),
                    );
                } else if src["serviceAccountToken"].is_object() {
                    w.write(
                        2,
                        format!(
                            "TokenExpirationSeconds:\t{}\n",
                            int(&src["serviceAccountToken"]["expirationSeconds"])
                        ),
                    );
                }
            }
        } else if let Some(x) = v.get("nfs").filter(|x| x.is_object()) {
            w.write(
                2,
                format!(
                    "Type:\tNFS (an NFS mount that lasts the lifetime of a pod)\n    Server:\t{}\n    Path:\t{}\n    ReadOnly:\t{}\n",
                    s(&x["server"]),
                    s(&x["path"]),
                    x["readOnly"].as_bool() == Some(true)
                ),
            );
        } else {
            w.write(1, "<unknown>\n");
        }
    }
}

fn spread_constraints(w: &mut Writer, list: &Value, space: &str) {
    let mut list: Vec<&Value> = list.as_array().into_iter().flatten().collect();
    if list.is_empty() {
        return;
    }
    list.sort_by(|a, b| s(&a["topologyKey"]).cmp(s(&b["topologyKey"])));
    w.write(0, format!("{space}Topology Spread Constraints:\t"));
    for (i, t) in list.iter().enumerate() {
        if i != 0 {
            w.write(0, format!("{space}\t"));
        }
        let mut text = format!(
            "{}:{} when max skew {} is exceeded",
            s(&t["topologyKey"]),
            s(&t["whenUnsatisfiable"]),
            int(&t["maxSkew"])
        );
        if t["labelSelector"].is_object() {
            text.push_str(&format!(
                " for selector {}",
                writer::format_selector(&t["labelSelector"])
            ));
        }
        w.write(0, format!("{text}\n"));
    }
}

/// The pod's QoS class: its status's, else computed as the kubelet does
/// (no requests or limits: BestEffort; every container with cpu and
/// memory limits equal to its requests: Guaranteed; else Burstable).
pub fn qos_class(pod: &Value) -> String {
    if let Some(q) = pod["status"]["qosClass"].as_str().filter(|q| !q.is_empty()) {
        return q.to_string();
    }
    let spec = &pod["spec"];
    let all: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|f| spec[*f].as_array().into_iter().flatten())
        .collect();
    let compute = ["cpu", "memory"];
    let nonzero = |v: &Value| v.as_str().is_some_and(|q| !is_zero(q));
    let mut any = false;
    let mut guaranteed = true;
    for c in &all {
        let (req, lim) = (&c["resources"]["requests"], &c["resources"]["limits"]);
        for r in compute {
            if nonzero(&req[r]) || nonzero(&lim[r]) {
                any = true;
            }
            if !nonzero(&lim[r]) {
                guaranteed = false;
            }
            if nonzero(&req[r]) && req[r] != lim[r] {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort".into()
    } else if guaranteed {
        "Guaranteed".into()
    } else {
        "Burstable".into()
    }
}

fn is_zero(q: &str) -> bool {
    q.trim_start_matches(['+', '-'])
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .all(|c| c == '0' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn probes_read_like_kubectl() {
        let p = json!({"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                       "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3});
        assert_eq!(
            probe(&p),
            "http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3"
        );
        let p = json!({"exec": {"command": ["cat", "/tmp/ok"]}});
        assert_eq!(
            probe(&p),
            "exec [cat /tmp/ok] delay=0s timeout=0s period=0s #success=0 #failure=0"
        );
        let p = json!({"tcpSocket": {"port": "http"}});
        assert!(probe(&p).starts_with("tcp-socket :http "));
    }

    #[test]
    fn qos_classes() {
        let pod = |res: Value| json!({"spec": {"containers": [{"name": "a", "resources": res}]}});
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&pod(json!({"requests": {"cpu": "100m"}}))),
            "Burstable"
        );
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
            "Guaranteed"
        );
        let mut given = pod(json!({}));
        given["status"]["qosClass"] = json!("Burstable");
        assert_eq!(qos_class(&given), "Burstable");
    }

    #[test]
    fn a_pending_pod_without_status_renders() {
        let pod = json!({"metadata": {"name": "p", "namespace": "default"},
                         "spec": {"containers": [{"name": "app", "image": "nginx",
                                                  "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}});
        let out = render(&pod, Some(&[]));
        assert_eq!(
            out,
            "Name:         p\nNamespace:    default\nNode:         <none>\nLabels:       <none>\nAnnotations:  <none>\nStatus:       \nIP:           \nIPs:          <none>\nContainers:\n  app:\n    Image:        nginx\n    Port:         80/TCP\n    Host Port:    0/TCP\n    Environment:  <none>\n    Mounts:       <none>\nVolumes:          <none>\nQoS Class:        BestEffort\nNode-Selectors:   <none>\nTolerations:      <none>\nEvents:           <none>\n"
        );
    }
}
