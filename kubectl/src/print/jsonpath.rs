//! kubectl's JSONPath templates (`-o jsonpath=…`, `custom-columns`,
//! `--sort-by`): `{.a.b}`, `[n]`, `[*]`, `[?(@.f=="v")]`, `{range …}{end}`,
//! `{"\n"}` literals and plain text; missing keys print nothing (kubectl's
//! default `--allow-missing-template-keys=true`).

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Field(String),
    Index(i64),
    All,
    /// `[?(@.path == "value")]` (also `!=`).
    Filter(Vec<Step>, bool, String),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Path(Vec<Step>),
    Range(Vec<Step>, Vec<Node>),
}

/// A template that failed to parse, with kubectl's wording.
#[derive(Debug, thiserror::Error)]
#[error("error parsing jsonpath {template}, {reason}")]
pub struct ParseError {
    template: String,
    reason: String,
}

/// Parses a path such as `.items[*].metadata.name` (a leading `@`/`$` is allowed).
pub fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let chars: Vec<char> = path.trim().chars().collect();
    let mut i = 0;
    if matches!(chars.first(), Some('@' | '$')) {
        i = 1;
    }
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let mut name = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    name.push(chars[i]);
                    i += 1;
                }
                if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                let end = find_close(&chars, i).ok_or("unclosed [")?;
                let inner: String = chars[i + 1..end].iter().collect();
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::All);
                } else if let Some(filter) =
                    inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')'))
                {
                    let (lhs, neg, rhs) = if let Some((l, r)) = filter.split_once("!=") {
                        (l, true, r)
                    } else if let Some((l, r)) = filter.split_once("==") {
                        (l, false, r)
                    } else {
                        return Err(format!("unsupported filter {filter}"));
                    };
                    let rhs = rhs.trim().trim_matches(['"', '\'']).to_string();
                    steps.push(Step::Filter(parse_path(lhs.trim())?, neg, rhs));
                } else if let Some(name) =
                    inner.strip_prefix('\'').and_then(|n| n.strip_suffix('\''))
                {
                    steps.push(Step::Field(name.to_string()));
                } else {
                    let n: i64 = inner
                        .parse()
                        .map_err(|_| format!("invalid array index {inner}"))?;
                    steps.push(Step::Index(n));
                }
                i = end + 1;
            }
            c if c.is_whitespace() => i += 1,
            c => {
                return Err(format!(
                    "unrecognized character in action: U+{:04X} '{c}'",
                    c as u32
                ));
            }
        }
    }
    Ok(steps)
}

fn find_close(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, &c) in chars.iter().enumerate().skip(open) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Every value `steps` reaches from `root`.
pub fn eval<'a>(steps: &[Step], root: &'a Value) -> Vec<&'a Value> {
    let mut cur = vec![root];
    for step in steps {
        let mut next = Vec::new();
        for v in cur {
            match step {
                Step::Field(name) => {
                    if let Some(x) = v.get(name) {
                        next.push(x);
                    }
                }
                Step::Index(n) => {
                    if let Value::Array(items) = v {
                        let idx = if *n < 0 { items.len() as i64 + n } else { *n };
                        if let Some(x) = usize::try_from(idx).ok().and_then(|i| items.get(i)) {
                            next.push(x);
                        }
                    }
                }
                Step::All => match v {
                    Value::Array(items) => next.extend(items.iter()),
                    Value::Object(map) => next.extend(map.values()),
                    _ => {}
                },
                Step::Filter(path, neg, want) => {
                    if let Value::Array(items) = v {
                        for item in items {
                            let hit = eval(path, item).iter().any(|x| text(x) == *want);
                            if hit != *neg {
                                next.push(item);
                            }
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

/// How kubectl prints one value: strings raw, everything else as JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// A parsed `-o jsonpath=` template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(template: &str) -> Result<Template, ParseError> {
        let err = |reason: String| ParseError {
            template: template.to_string(),
            reason,
        };
        let mut flat: Vec<(bool, String)> = Vec::new(); // (is_action, text)
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                flat.push((false, rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| err("unclosed action".into()))?;
            flat.push((true, after[..close].to_string()));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            flat.push((false, rest.to_string()));
        }
        let mut stack: Vec<(Vec<Step>, Vec<Node>)> = vec![(vec![], vec![])];
        for (action, body) in flat {
            let node = if !action {
                Node::Text(body)
            } else {
                let body = body.trim();
                if let Some(path) = body.strip_prefix("range ") {
                    stack.push((parse_path(path).map_err(err)?, vec![]));
                    continue;
                } else if body == "end" {
                    if stack.len() < 2 {
                        return Err(err("not in range, nothing to end".into()));
                    }
                    let (path, nodes) = stack.pop().unwrap();
                    Node::Range(path, nodes)
                } else if body.starts_with('"') && body.ends_with('"') && body.len() >= 2 {
                    let lit: String = serde_json::from_str(body)
                        .map_err(|e| err(format!("invalid string {body}: {e}")))?;
                    Node::Text(lit)
                } else {
                    Node::Path(parse_path(body).map_err(err)?)
                }
            };
            stack.last_mut().unwrap().1.push(node);
        }
        if stack.len() != 1 {
            return Err(err("unclosed range".into()));
        }
        Ok(Template {
            nodes: stack.pop().unwrap().1,
        })
    }

    pub fn render(&self, root: &Value) -> String {
        let mut out = String::new();
        render_nodes(&self.nodes, root, &mut out);
        out
    }
}

fn render_nodes(nodes: &[Node], cur: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Path(steps) => {
                let values: Vec<String> = eval(steps, cur).into_iter().map(text).collect();
                out.push_str(&values.join(" "));
            }
            Node::Range(steps, body) => {
                for v in eval(steps, cur) {
                    render_nodes(body, v, out);
                }
            }
        }
    }
}

/// kubectl's `RelaxedJSONPathExpression`: `.a.b`, `a.b` and `{.a.b}` all mean `{.a.b}`.
pub fn relaxed(expr: &str) -> String {
    let inner = expr.trim().trim_start_matches('{').trim_end_matches('}');
    if inner.starts_with('.') || inner.starts_with('@') || inner.starts_with('$') {
        inner.to_string()
    } else {
        format!(".{inner}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_render_like_kubectl() {
        let list = json!({"items": [
            {"metadata": {"name": "a", "labels": {"app.kubernetes.io/name": "x"}},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            {"metadata": {"name": "b"}, "status": {}},
        ]});
        for (template, want) in [
            ("{.items[*].metadata.name}", "a b"),
            ("{range .items[*]}{.metadata.name}{\"\\n\"}{end}", "a\nb\n"),
            (
                "{.items[0].metadata.labels.app\\.kubernetes\\.io/name}",
                "x",
            ),
            ("{.items[-1].metadata.name}", "b"),
            (
                "{.items[0].status.conditions[?(@.type==\"Ready\")].status}",
                "True",
            ),
            ("name={.items[1].metadata.name}", "name=b"),
            ("{.items[1].metadata.missing}", ""),
            ("{.items[1].status}", "{}"),
        ] {
            assert_eq!(
                Template::parse(template).unwrap().render(&list),
                want,
                "{template}"
            );
        }
    }
}
