//! `describe node`: roles, labels, taints, lease, conditions, addresses,
//! capacity, system info, the non-terminated pods on it with their
//! requests and limits, and the totals.

use serde_json::{Map, Value};

use super::events::{self, Reference};
use super::writer::{self, Writer, plain, rfc1123z, s};
use crate::error::CtlError;
use crate::session::{Session, query_escape};

pub async fn describe(session: &Session, node: &Value, show_events: bool) -> String {
    let name = s(&node["metadata"]["name"]);
    let selector = format!("spec.nodeName={name},status.phase!=Succeeded,status.phase!=Failed");
    let pods = match session
        .get_json(&format!(
            "/api/v1/pods?fieldSelector={}",
            query_escape(&selector)
        ))
        .await
    {
        Ok(list) => Some(list),
        // A server without those field selectors: filter here.
        Err(_) => session.get_json("/api/v1/pods").await.ok(),
    }
    .map(|list| {
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                s(&p["spec"]["nodeName"]) == name
                    && !matches!(s(&p["status"]["phase"]), "Succeeded" | "Failed")
            })
            .cloned()
            .collect::<Vec<_>>()
    });
    let lease = session
        .get_json(&format!(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
        ))
        .await
        .map_err(|e| match e {
            CtlError::Server(status) => status.message,
            other => other.to_string(),
        });
    let events = if show_events {
        // Controllers name the node's UID, kubelets its name.
        let r = Reference::to(node);
        let mut found = events::search(session, &r).await;
        let by_name = Reference {
            uid: Some(name.to_string()),
            ..r
        };
        found.extend(events::search(session, &by_name).await);
        Some(found)
    } else {
        None
    };
    render(
        node,
        pods.as_deref(),
        lease,
        events.as_deref(),
        jiff::Timestamp::now(),
    )
}

/// The node's roles from `node-role.kubernetes.io/<role>` and
/// `kubernetes.io/role` labels, sorted.
pub fn roles(node: &Value) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    for (k, v) in node["metadata"]["labels"].as_object().into_iter().flatten() {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.push(role.to_string());
            }
        } else if k == "kubernetes.io/role" && !s(v).is_empty() {
            roles.push(s(v).to_string());
        }
    }
    roles.sort();
    roles.dedup();
    roles
}

/// A resource quantity: milli-units and whether it was written in
/// binary (`Ki`, `Mi`…) units.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Quantity {
    pub milli: i128,
    pub binary: bool,
}

impl Quantity {
    /// Parses `100m`, `2`, `1.5`, `128Mi`, `1G`, `1e3`; None when odd.
    pub fn parse(text: &str) -> Option<Quantity> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(text.len());
        let (num, suffix) = text.split_at(split);
        let (mult_num, mult_den, binary): (i128, i128, bool) = match suffix {
            "" => (1000, 1, false),
            "n" => (1, 1_000_000, false),
            "u" => (1, 1000, false),
            "m" => (1, 1, false),
            "k" => (1_000_000, 1, false),
            "M" => (1_000_000_000, 1, false),
            "G" => (1_000_000_000_000, 1, false),
            "T" => (1_000_000_000_000_000, 1, false),
            "P" => (1_000_000_000_000_000_000, 1, false),
            "E" => (1_000_000_000_000_000_000_000, 1, false),
            "Ki" => (1000 << 10, 1, true),
            "Mi" => (1000 << 20, 1, true),
            "Gi" => (1000 << 30, 1, true),
            "Ti" => (1000 << 40, 1, true),
            "Pi" => (1000 << 50, 1, true),
            "Ei" => (1000 << 60, 1, true),
            e if e.starts_with(['e', 'E']) => {
                let exp: u32 = e[1..].parse().ok()?;
                (1000 * 10i128.checked_pow(exp)?, 1, false)
            }
            _ => return None,
        };
        let (neg, num) = match num.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, num.strip_prefix('+').unwrap_or(num)),
        };
        let (int_part, frac) = num.split_once('.').unwrap_or((num, ""));
        if int_part.is_empty() && frac.is_empty() {
            return None;
        }
        let digits = format!("{int_part}{frac}");
        let value: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        let scale = 10i128.checked_pow(frac.len() as u32)?;
        // Rounded up, as Go rounds quantities to milli-units.
        let n = value.checked_mul(mult_num)?;
        let d = scale.checked_mul(mult_den)?;
        let milli = (n + d - 1) / d;
        Some(Quantity {
            milli: if neg { -milli } else { milli },
            binary,
        })
    }

    /// Whole units, rounded up (Go's `Value()`).
    pub fn value(&self) -> i128 {
        (self.milli + 999).div_euclid(1000)
    }

    /// Go's canonical text: `100m`, `2`, `1k`, `128Mi`, `1500`.
    pub fn text(&self) -> String {
        if self.milli == 0 {
            return "0".into();
        }
        if self.milli % 1000 != 0 {
            return format!("{}m", self.milli);
        }
        let v = self.milli / 1000;
        if self.binary && v.abs() >= 1024 {
            let suffixes = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
            let (mut n, mut i) = (v, 0);
            while i + 1 < suffixes.len() && n % 1024 == 0 {
                n /= 1024;
                i += 1;
            }
            return format!("{n}{}", suffixes[i]);
        }
        let suffixes = ["", "k", "M", "G", "T", "P", "E"];
        let (mut n, mut i) = (v, 0);
        while i + 1 < suffixes.len() && n % 1000 == 0 {
            n /= 1000;
            i += 1;
        }
        format!("{n}{}", suffixes[i])
    }

    fn add(&mut self, other: Quantity) {
        if self.milli == 0 && !self.binary {
            self.binary = other.binary;
        }
        self.milli += other.milli;
    }
}

fn quantity(v: &Value) -> Quantity {
    match v {
        Value::String(t) => Quantity::parse(t).unwrap_or_default(),
        Value::Number(n) => Quantity::parse(&n.to_string()).unwrap_or_default(),
        _ => Quantity::default(),
    }
}

type Totals = std::collections::BTreeMap<String, Quantity>;

/// A pod's requests and limits as the scheduler counts them: the sum of
/// its containers, at least each init container's, plus its overhead.
pub fn pod_requests_and_limits(pod: &Value) -> (Totals, Totals) {
    let spec = &pod["spec"];
    let mut out = (Totals::new(), Totals::new());
    for (field, totals) in [("requests", &mut out.0), ("limits", &mut out.1)] {
        for c in spec["containers"].as_array().into_iter().flatten() {
            for (name, q) in c["resources"][field].as_object().into_iter().flatten() {
                totals.entry(name.clone()).or_default().add(quantity(q));
            }
        }
        for c in spec["initContainers"].as_array().into_iter().flatten() {
            for (name, q) in c["resources"][field].as_object().into_iter().flatten() {
                let q = quantity(q);
                let e = totals.entry(name.clone()).or_default();
                if q.milli > e.milli {
                    *e = q;
                }
            }
        }
        for (name, q) in spec["overhead"].as_object().into_iter().flatten() {
            if let Some(e) = totals.get_mut(name) {
                e.add(quantity(q));
            } else if field == "requests" {
                totals.insert(name.clone(), quantity(q));
            }
        }
    }
    out
}

/// Go's `int64(a / b * 100)` on amd64 (a zero divisor gives i64::MIN).
fn percent(num: i128, den: i128) -> i64 {
    if den == 0 {
        return i64::MIN;
    }
    let f = num as f64 / den as f64 * 100.0;
    if f.is_finite() { f as i64 } else { i64::MIN }
}

fn percent_or_zero(num: i128, den: i128) -> i64 {
    if den == 0 { 0 } else { percent(num, den) }
}

pub fn render(
    node: &Value,
    pods: Option<&[Value]>,
    lease: Result<Value, String>,
    events: Option<&[Value]>,
    now: jiff::Timestamp,
) -> String {
    let (md, spec, status) = (&node["metadata"], &node["spec"], &node["status"]);
    let mut w = Writer::new();
    w.write(0, format!("Name:\t{}\n", s(&md["name"])));
    let roles = roles(node);
    w.write(
        0,
        format!("Roles:\t{}\n", writer::or_none(&roles.join(","))),
    );
    writer::labels(&mut w, "", "Labels", &md["labels"]);
    writer::annotations(&mut w, "Annotations", &md["annotations"]);
    w.write(
        0,
        format!(
            "CreationTimestamp:\t{}\n",
            rfc1123z(&md["creationTimestamp"])
        ),
    );
    writer::taints(&mut w, "Taints", &spec["taints"]);
    w.write(
        0,
        format!(
            "Unschedulable:\t{}\n",
            spec["unschedulable"].as_bool() == Some(true)
        ),
    );
    match lease {
        Ok(lease) => {
            let spec = &lease["spec"];
            let or_unset = |v: &Value, time: bool| match v {
                Value::Null => "<unset>".to_string(),
                v if time => rfc1123z(v),
                v => plain(v),
            };
            w.write(0, "Lease:\n");
            w.write(
                1,
                format!(
                    "HolderIdentity:\t{}\n",
                    or_unset(&spec["holderIdentity"], false)
                ),
            );
            w.write(
                1,
                format!("AcquireTime:\t{}\n", or_unset(&spec["acquireTime"], true)),
            );
            w.write(
                1,
                format!("RenewTime:\t{}\n", or_unset(&spec["renewTime"], true)),
            );
        }
        Err(e) => w.write(0, format!("Lease:\tFailed to get lease: {e}\n")),
    }
    let conditions: Vec<&Value> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if !conditions.is_empty() {
        w.write(
            0,
            "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n",
        );
        w.write(
            1,
            "----\t------\t-----------------\t------------------\t------\t-------\n",
        );
        for c in conditions {
            w.write(
                1,
                format!(
                    "{} \t{} \t{} \t{} \t{} \t{}\n",
                    s(&c["type"]),
                    s(&c["status"]),
                    rfc1123z(&c["lastHeartbeatTime"]),
                    rfc1123z(&c["lastTransitionTime"]),
                    s(&c["reason"]),
                    s(&c["message"])
                ),
            );
        }
    }
    w.write(0, "Addresses:\n");
    for a in status["addresses"].as_array().into_iter().flatten() {
        w.write(1, format!("{}:\t{}\n", s(&a["type"]), s(&a["address"])));
    }
    let list = |w: &mut Writer, title: &str, map: Option<&Map<String, Value>>| {
        let Some(map) = map.filter(|m| !m.is_empty()) else {
            return;
        };
        w.write(0, format!("{title}:\n"));
        let mut names: Vec<&String> = map.keys().collect();
        names.sort();
        for n in names {
            w.write(0, format!("  {n}:\t{}\n", quantity(&map[n]).text()));
        }
    };
    list(&mut w, "Capacity", status["capacity"].as_object());
    list(&mut w, "Allocatable", status["allocatable"].as_object());
    let info = &status["nodeInfo"];
    w.write(0, "System Info:\n");
    for (title, field) in [
        ("Machine ID", "machineID"),
        ("System UUID", "systemUUID"),
        ("Boot ID", "bootID"),
        ("Kernel Version", "kernelVersion"),
        ("OS Image", "osImage"),
        ("Operating System", "operatingSystem"),
        ("Architecture", "architecture"),
        ("Container Runtime Version", "containerRuntimeVersion"),
        ("Kubelet Version", "kubeletVersion"),
        ("Kube-Proxy Version", "kubeProxyVersion"),
    ] {
        w.write(0, format!("  {title}:\t{}\n", s(&info[field])));
    }
    if !s(&spec["podCIDR"]).is_empty() {
        w.write(0, format!("PodCIDR:\t{}\n", s(&spec["podCIDR"])));
    }
    let cidrs: Vec<&str> = spec["podCIDRs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    if !cidrs.is_empty() {
        w.write(0, format!("PodCIDRs:\t{}\n", cidrs.join(",")));
    }
    if !s(&spec["providerID"]).is_empty() {
        w.write(0, format!("ProviderID:\t{}\n", s(&spec["providerID"])));
    }
    match pods {
        Some(pods) => node_resources(&mut w, node, pods, now),
        None => w.write(0, "Pods:\tnot authorized\n"),
    }
    if let Some(events) = events {
        events::describe(&mut w, events);
    }
    w.finish()
}

fn node_resources(w: &mut Writer, node: &Value, pods: &[Value], now: jiff::Timestamp) {
    w.write(
        0,
        format!("Non-terminated Pods:\t({} in total)\n", pods.len()),
    );
    w.write(
        1,
        "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n",
    );
    w.write(
        1,
        "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n",
    );
    let status = &node["status"];
    let allocatable = if status["allocatable"]
        .as_object()
        .is_some_and(|m| !m.is_empty())
    {
        &status["allocatable"]
    } else {
        &status["capacity"]
    };
    let alloc = |name: &str| quantity(&allocatable[name]);
    let (cpu, mem) = (alloc("cpu").milli, alloc("memory").value());
    let mut reqs = Totals::new();
    let mut limits = Totals::new();
    for pod in pods {
        let (req, lim) = pod_requests_and_limits(pod);
        let get = |t: &Totals, n: &str| t.get(n).copied().unwrap_or_default();
        let (cr, cl, mr, ml) = (
            get(&req, "cpu"),
            get(&lim, "cpu"),
            get(&req, "memory"),
            get(&lim, "memory"),
        );
        w.write(
            1,
            format!(
                "{}\t{}\t\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{}\n",
                s(&pod["metadata"]["namespace"]),
                s(&pod["metadata"]["name"]),
                cr.text(),
                percent(cr.milli, cpu),
                cl.text(),
                percent(cl.milli, cpu),
                mr.text(),
                percent(mr.value(), mem),
                ml.text(),
                percent(ml.value(), mem),
                events::since(&pod["metadata"]["creationTimestamp"], now)
            ),
        );
        for (n, q) in req {
            reqs.entry(n).or_default().add(q);
        }
        for (n, q) in lim {
            limits.entry(n).or_default().add(q);
        }
    }
    w.write(
        0,
        "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n",
    );
    w.write(1, "Resource\tRequests\tLimits\n");
    w.write(1, "--------\t--------\t------\n");
    let get = |t: &Totals, n: &str| t.get(n).copied().unwrap_or_default();
    for (name, milli) in [
        ("cpu", true),
        ("memory", false),
        ("ephemeral-storage", false),
    ] {
        let (r, l) = (get(&reqs, name), get(&limits, name));
        let a = alloc(name);
        let (rv, lv, av) = if milli {
            (r.milli, l.milli, a.milli)
        } else {
            (r.value(), l.value(), a.value())
        };
        w.write(
            1,
            format!(
                "{name}\t{} ({}%)\t{} ({}%)\n",
                r.text(),
                percent_or_zero(rv, av),
                l.text(),
                percent_or_zero(lv, av)
            ),
        );
    }
    let mut huge: Vec<&String> = Vec::new();
    let mut extended: Vec<&String> = Vec::new();
    for name in allocatable
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        if name.starts_with("hugepages-") {
            huge.push(name);
        } else if !matches!(
            name.as_str(),
            "cpu" | "memory" | "ephemeral-storage" | "pods"
        ) {
            extended.push(name);
        }
    }
    huge.sort();
    extended.sort();
    for name in huge {
        let (r, l, a) = (get(&reqs, name), get(&limits, name), alloc(name));
        w.write(
            1,
            format!(
                "{name}\t{} ({}%)\t{} ({}%)\n",
                r.text(),
                percent_or_zero(r.value(), a.value()),
                l.text(),
                percent_or_zero(l.value(), a.value())
            ),
        );
    }
    for name in extended {
        w.write(
            1,
            format!(
                "{name}\t{}\t{}\n",
                get(&reqs, name).text(),
                get(&limits, name).text()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_parse_and_print_canonically() {
        let q = |t: &str| Quantity::parse(t).unwrap();
        assert_eq!(q("100m").text(), "100m");
        assert_eq!(q("0.5").text(), "500m");
        assert_eq!(q("2").text(), "2");
        assert_eq!(q("1000").text(), "1k");
        assert_eq!(q("128Mi").text(), "128Mi");
        assert_eq!(q("1024Ki").text(), "1Mi");
        assert_eq!(q("1G").text(), "1G");
        assert_eq!(q("1e3").text(), "1k");
        assert_eq!(q("128Mi").value(), 128 << 20);
        assert!(Quantity::parse("lots").is_none());
        assert!(Quantity::parse("").is_none());
        let mut sum = q("100m");
        sum.add(q("900m"));
        assert_eq!(sum.text(), "1");
    }

    #[test]
    fn roles_come_from_labels() {
        let node = json!({"metadata": {"labels": {"node-role.kubernetes.io/control-plane": "",
                                                   "kubernetes.io/role": "worker", "x": "y"}}});
        assert_eq!(roles(&node), ["control-plane", "worker"]);
    }

    #[test]
    fn pod_totals_take_init_containers_and_overhead() {
        let pod = json!({"spec": {
            "containers": [{"resources": {"requests": {"cpu": "100m"}}}, {"resources": {"requests": {"cpu": "200m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "500m"}}}],
            "overhead": {"cpu": "10m"}}});
        let (req, lim) = pod_requests_and_limits(&pod);
        assert_eq!(req["cpu"].text(), "510m");
        assert!(lim.is_empty());
        assert_eq!(percent(1, 0), i64::MIN);
        assert_eq!(percent_or_zero(1, 0), 0);
        assert_eq!(percent(250, 1000), 25);
    }
}
