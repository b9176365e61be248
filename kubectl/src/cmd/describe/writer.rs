//! kubectl's describe layout: a prefix writer (two spaces per level) whose
//! text goes through Go's `text/tabwriter` as `describe` configures it
//! (minwidth 0, padding 2, space padding, no flags), plus the small
//! printers every describer shares (labels, annotations, tolerations,
//! taints, selectors, times).

use serde_json::{Map, Value};

/// Collects describe text; [`Writer::finish`] aligns its tab-separated cells.
#[derive(Debug, Default)]
pub struct Writer {
    buf: String,
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    /// `text` after `level` two-space indents (kubectl's `Write`).
    pub fn write(&mut self, level: usize, text: impl AsRef<str>) {
        for _ in 0..level {
            self.buf.push_str("  ");
        }
        self.buf.push_str(text.as_ref());
    }

    /// `text` and a newline, no indent (kubectl's `WriteLine`).
    pub fn line(&mut self, text: impl AsRef<str>) {
        self.buf.push_str(text.as_ref());
        self.buf.push('\n');
    }

    /// The aligned text.
    pub fn finish(self) -> String {
        align(&self.buf)
    }
}

/// Go's `text/tabwriter` with minwidth 0, padding 2 and space padding:
/// a cell is tab-terminated text; consecutive lines that have a cell in a
/// column form a block whose cells are padded to the widest plus two. The
/// last cell of a line is not part of a column.
pub fn align(text: &str) -> String {
    let mut lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    // A trailing newline leaves an empty last line that is not printed.
    let terminated = text.ends_with('\n');
    if terminated {
        lines.pop();
    }
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut widths = Vec::new();
    format(&lines, &mut widths, 0, lines.len(), &mut out);
    if !terminated && out.ends_with('\n') {
        out.pop();
    }
    out
}

fn cell_width(cell: &str) -> usize {
    cell.chars().count()
}

fn format(
    lines: &[Vec<&str>],
    widths: &mut Vec<usize>,
    line0: usize,
    line1: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut start = line0;
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, widths, start, this, out);
        start = this;
        let mut width = 0;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(cell_width(lines[this][column]) + 2);
            this += 1;
        }
        widths.push(width);
        format(lines, widths, start, this, out);
        widths.pop();
        start = this;
    }
    write_lines(lines, widths, start, line1, out);
}

fn write_lines(lines: &[Vec<&str>], widths: &[usize], from: usize, to: usize, out: &mut String) {
    for line in &lines[from..to] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(w) = widths.get(j) {
                let pad = w.saturating_sub(cell_width(cell));
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
}

/// The string at `v`, or "".
pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// Go's `%v` of a JSON scalar (`<nil>` for null).
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// An integer field (0 when absent), as Go prints an `int32`.
pub fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// `"s"` or `<none>` when empty.
pub fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

/// An RFC 3339 time as Go's `time.RFC1123Z` in the local zone
/// (`Mon, 02 Jan 2006 15:04:05 -0700`); Go's zero time when absent.
pub fn rfc1123z(ts: &Value) -> String {
    let zero = "Mon, 01 Jan 0001 00:00:00 +0000".to_string();
    let Some(t) = ts.as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return zero;
    };
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

fn sorted_keys(map: Option<&Map<String, Value>>) -> Vec<(&str, String)> {
    let mut keys: Vec<(&str, String)> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), plain(v)))
        .collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    keys
}

/// `Title:\tk=v` on the first line, `\tk=v` on the next (sorted), or
/// `<none>`; `indent` precedes the title and each continuation.
pub fn labels(w: &mut Writer, indent: &str, title: &str, labels: &Value) {
    w.write(0, format!("{indent}{title}:\t"));
    let keys = sorted_keys(labels.as_object());
    if keys.is_empty() {
        w.line("<none>");
        return;
    }
    for (i, (k, v)) in keys.iter().enumerate() {
        if i != 0 {
            w.write(0, format!("{indent}\t"));
        }
        w.write(0, format!("{k}={v}\n"));
    }
}

const MAX_ANNOTATION_LEN: usize = 140;

/// kubectl's annotations: sorted, without last-applied-configuration;
/// long or multi-line values on their own indented lines.
pub fn annotations(w: &mut Writer, title: &str, annotations: &Value) {
    w.write(0, format!("{title}:\t"));
    let keys: Vec<(&str, String)> = sorted_keys(annotations.as_object())
        .into_iter()
        .filter(|(k, _)| *k != "kubectl.kubernetes.io/last-applied-configuration")
        .collect();
    if keys.is_empty() {
        w.line("<none>");
        return;
    }
    for (i, (k, v)) in keys.iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        let v = v.strip_suffix('\n').unwrap_or(v);
        if v.len() + k.len() + 2 > MAX_ANNOTATION_LEN || v.contains('\n') {
            w.write(0, format!("{k}:\n"));
            for part in v.split('\n') {
                w.write(
                    0,
                    format!("\t  {}\n", shorten(part, MAX_ANNOTATION_LEN - 2)),
                );
            }
        } else {
            w.write(0, format!("{k}: {v}\n"));
        }
    }
}

/// The first `max` bytes and `...` (at a char boundary at or below `max`).
fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// `Tolerations:\tkey=value:Effect op=Exists for Ns`, sorted by key.
pub fn tolerations(w: &mut Writer, indent: &str, title: &str, tolerations: &Value) {
    w.write(0, format!("{indent}{title}:\t"));
    let mut list: Vec<&Value> = tolerations.as_array().into_iter().flatten().collect();
    if list.is_empty() {
        w.line("<none>");
        return;
    }
    list.sort_by(|a, b| s(&a["key"]).cmp(s(&b["key"])));
    for (i, t) in list.iter().enumerate() {
        if i != 0 {
            w.write(0, format!("{indent}\t"));
        }
        let (key, value, effect) = (s(&t["key"]), s(&t["value"]), s(&t["effect"]));
        let mut text = key.to_string();
        if !value.is_empty() {
            text.push_str(&format!("={value}"));
        }
        if !effect.is_empty() {
            text.push_str(&format!(":{effect}"));
        }
        if s(&t["operator"]) == "Exists" && value.is_empty() {
            if !key.is_empty() || !effect.is_empty() {
                text.push_str(" op=Exists");
            } else {
                text.push_str("op=Exists");
            }
        }
        if let Some(secs) = t["tolerationSeconds"].as_i64() {
            text.push_str(&format!(" for {secs}s"));
        }
        w.write(0, format!("{text}\n"));
    }
}

/// `Taints:\tkey=value:Effect`, sorted by effect then key.
pub fn taints(w: &mut Writer, title: &str, taints: &Value) {
    w.write(0, format!("{title}:\t"));
    let mut list: Vec<&Value> = taints.as_array().into_iter().flatten().collect();
    if list.is_empty() {
        w.line("<none>");
        return;
    }
    let key = |t: &Value| format!("{},{}", s(&t["effect"]), s(&t["key"]));
    list.sort_by_key(|a| key(a));
    for (i, t) in list.iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        w.write(0, format!("{}\n", taint_string(t)));
    }
}

/// `key=value:Effect` (`key:Effect` without a value), as `Taint.ToString`.
pub fn taint_string(t: &Value) -> String {
    let (key, value, effect) = (s(&t["key"]), s(&t["value"]), s(&t["effect"]));
    match (value.is_empty(), effect.is_empty()) {
        (true, true) => key.to_string(),
        (true, false) => format!("{key}:{effect}"),
        (false, true) => format!("{key}={value}:"),
        (false, false) => format!("{key}={value}:{effect}"),
    }
}

/// `a=b,c=d` (sorted) or `<none>`, as `labels.FormatLabels`.
pub fn format_labels(map: &Value) -> String {
    let pairs: Vec<String> = sorted_keys(map.as_object())
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// A LabelSelector as a selector string (`app=web,tier in (a,b)`),
/// requirements sorted by key; "" when it selects everything.
pub fn selector_string(sel: &Value) -> String {
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel["matchLabels"].as_object().into_iter().flatten() {
        reqs.push((k.clone(), format!("{k}={}", plain(v))));
    }
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = s(&e["key"]);
        let mut values: Vec<String> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(plain)
            .collect();
        values.sort();
        values.dedup();
        let text = match s(&e["operator"]) {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other} ({})", values.join(",")),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.FormatLabelSelector`: `<none>` for a missing or empty selector.
pub fn format_selector(sel: &Value) -> String {
    if sel.is_null() {
        return "<none>".into();
    }
    let text = selector_string(sel);
    if text.is_empty() {
        "<none>".into()
    } else {
        text
    }
}

/// The owner reference with `controller: true`, if any.
pub fn controller_of(obj: &Value) -> Option<&Value> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"].as_bool() == Some(true))
}

/// `Kind/name` of the controller, for `Controlled By:`.
pub fn controlled_by(w: &mut Writer, obj: &Value) {
    if let Some(r) = controller_of(obj) {
        w.write(
            0,
            format!("Controlled By:\t{}/{}\n", s(&r["kind"]), s(&r["name"])),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_align_per_block_with_two_spaces() {
        let text = "Name:\tweb\nNamespace:\tdefault\nLabels:\tapp=web\n\ttier=x\n\nType:\tOpaque\n";
        assert_eq!(
            align(text),
            "Name:       web\nNamespace:  default\nLabels:     app=web\n            tier=x\n\nType:  Opaque\n"
        );
    }

    #[test]
    fn nested_columns_align_inside_their_block() {
        let text = "Events:\n  Type\tReason\tAge\n  ----\t------\t---\n  Normal\tScaled\t5s\n";
        assert_eq!(
            align(text),
            "Events:\n  Type    Reason  Age\n  ----    ------  ---\n  Normal  Scaled  5s\n"
        );
        // An unterminated last line is kept as it is.
        assert_eq!(align("a\tb"), "a  b");
    }

    #[test]
    fn labels_and_annotations_read_like_kubectl() {
        let mut w = Writer::new();
        labels(&mut w, "", "Labels", &json!({"b": "2", "a": "1"}));
        labels(&mut w, "", "Selector", &Value::Null);
        annotations(
            &mut w,
            "Annotations",
            &json!({"kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "hi"}),
        );
        assert_eq!(
            w.finish(),
            "Labels:       a=1\n              b=2\nSelector:     <none>\nAnnotations:  note: hi\n"
        );
        let mut w = Writer::new();
        annotations(&mut w, "Annotations", &json!({"long": "x\ny"}));
        assert_eq!(
            w.finish(),
            "Annotations:  long:\n                x\n                y\n"
        );
    }

    #[test]
    fn tolerations_and_taints() {
        let mut w = Writer::new();
        tolerations(
            &mut w,
            "",
            "Tolerations",
            &json!([
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"operator": "Exists"},
                {"key": "a", "value": "b", "effect": "NoSchedule"}
            ]),
        );
        taints(
            &mut w,
            "Taints",
            &json!([{"key": "k", "effect": "NoSchedule"}]),
        );
        assert_eq!(
            w.finish(),
            "Tolerations:  op=Exists\n              a=b:NoSchedule\n              node.kubernetes.io/unreachable:NoExecute op=Exists for 300s\nTaints:       k:NoSchedule\n"
        );
    }

    #[test]
    fn selectors_format_as_strings() {
        let sel = json!({"matchLabels": {"b": "2", "a": "1"},
                         "matchExpressions": [{"key": "c", "operator": "In", "values": ["y", "x"]},
                                              {"key": "d", "operator": "DoesNotExist"}]});
        assert_eq!(selector_string(&sel), "a=1,b=2,c in (x,y),!d");
        assert_eq!(format_selector(&json!({})), "<none>");
        assert_eq!(format_labels(&json!({})), "<none>");
        assert_eq!(format_labels(&json!({"x": "1", "a": "2"})), "a=2,x=1");
    }

    #[test]
    fn odd_times_are_go_zero_times() {
        assert_eq!(rfc1123z(&Value::Null), "Mon, 01 Jan 0001 00:00:00 +0000");
        assert_eq!(rfc1123z(&json!("nope")), "Mon, 01 Jan 0001 00:00:00 +0000");
        assert!(rfc1123z(&json!("2024-01-02T03:04:05Z")).contains(" Jan 2024 "));
    }
}
