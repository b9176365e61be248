//! `explain TYPE[.FIELD…] [--recursive] [--api-version G/V]`: the
//! documentation of a type or field from the server's OpenAPI v3 document,
//! laid out as kubectl 1.32's plaintext explain template lays it out
//! (GROUP/KIND/VERSION, FIELD with its type, DESCRIPTION wrapped at 80
//! columns, FIELDS with their types, `-required-` and enums).
//!
//! The functions below follow the template's parts one to one:
//! [`output`] (walks the field path), [`field_list`] and [`field_detail`],
//! [`description`], [`type_guess`], [`enum_text`], and [`wrap`] (the
//! word wrapping kubectl uses: breaks only at spaces, keeps newlines, lets a
//! word longer than the line stand alone).

use std::collections::HashSet;

use serde_json::Value;

use crate::error::{CtlError, Result, usage};
use crate::session::Session;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TYPE or TYPE.FIELD.FIELD…
    pub target: String,
    /// Print the fields of fields, without descriptions.
    #[arg(long)]
    pub recursive: bool,
    /// Use this group/version of the type.
    #[arg(long)]
    pub api_version: Option<String>,
}

/// Wraps `s` at `limit` characters: only at white space, existing newlines
/// kept, the spaces at a break dropped, an over-long word left whole on its
/// own line.
pub fn wrap(s: &str, limit: usize) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / limit.max(1));
    let (mut line, mut word, mut space) = (0usize, String::new(), String::new());
    let (mut word_len, mut space_len) = (0usize, 0usize);
    for c in s.chars() {
        if c == '\n' {
            if word.is_empty() {
                if line + space_len <= limit {
                    out.push_str(&space);
                }
            } else {
                out.push_str(&space);
                out.push_str(&word);
            }
            space.clear();
            word.clear();
            (space_len, word_len) = (0, 0);
            out.push('\n');
            line = 0;
        } else if c.is_whitespace() && c != '\u{a0}' {
            if space.is_empty() || !word.is_empty() {
                line += space_len + word_len;
                out.push_str(&space);
                out.push_str(&word);
                space.clear();
                word.clear();
                (space_len, word_len) = (0, 0);
            }
            space.push(c);
            space_len += 1;
        } else {
            word.push(c);
            word_len += 1;
            if line + word_len + space_len > limit && word_len < limit {
                out.push('\n');
                line = 0;
                space.clear();
                space_len = 0;
            }
        }
    }
    if word.is_empty() {
        if line + space_len <= limit {
            out.push_str(&space);
        }
    } else {
        out.push_str(&space);
        out.push_str(&word);
    }
    out
}

/// Every line of `s` after `amount` spaces (empty lines too).
fn indent(amount: usize, s: &str) -> String {
    let pad = " ".repeat(amount);
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

/// The schema a `#/components/schemas/…` reference points at.
fn resolve<'a>(reference: &Value, doc: &'a Value) -> Option<&'a Value> {
    let fragment = reference.as_str()?.strip_prefix('#')?;
    let mut cur = doc;
    for part in fragment.split('/').filter(|p| !p.is_empty()) {
        let key = part.replace("~1", "/").replace("~0", "~");
        cur = cur.get(&key)?;
    }
    cur.is_object().then_some(cur)
}

fn resolved<'a>(schema: &'a Value, doc: &'a Value) -> &'a Value {
    resolve(&schema["$ref"], doc).unwrap_or(schema)
}

/// `additionalProperties` when it is a schema (not `true`/`false`).
fn map_values(schema: &Value) -> Option<&Value> {
    schema.get("additionalProperties").filter(|v| v.is_object())
}

/// A short type: `string`, `integer`, `Object`, `[]Container`,
/// `map[string]string`, `IntOrString`…
pub fn type_guess(schema: &Value, doc: &Value) -> String {
    if let Some(items) = schema.get("items") {
        return format!("[]{}", type_guess(items, doc));
    }
    if let Some(values) = map_values(schema) {
        return format!("map[string]{}", type_guess(values, doc));
    }
    if let Some([only]) = schema["allOf"].as_array().map(Vec::as_slice)
        && schema.get("properties").is_none()
    {
        return type_guess(only, doc);
    }
    if let Some(reference) = schema["$ref"].as_str() {
        let target = resolve(&schema["$ref"], doc);
        let ty = target.and_then(|t| t["type"].as_str()).unwrap_or_default();
        if ty.is_empty() || ty == "object" {
            let name = reference.rsplit('/').next().unwrap_or_default();
            let short = name.rsplit('.').next().unwrap_or_default();
            return if short.is_empty() {
                "Object".into()
            } else {
                short.into()
            };
        }
        return ty.into();
    }
    match schema["type"].as_str() {
        Some("object") | None | Some("") => "Object".into(),
        Some(t) => t.into(),
    }
}

/// The enum part after a field: `ENUM:` and one value per line in the
/// long view; `enum: a, b, c, d, ....` on its own line in a field list.
pub fn enum_text(schema: &Value, long: bool, limit: Option<usize>, indent_amount: usize) -> String {
    let Some(values) = schema["enum"].as_array().filter(|e| !e.is_empty()) else {
        return String::new();
    };
    let mut out = if long {
        "ENUM:".to_string()
    } else {
        format!("\n{}enum: ", " ".repeat(indent_amount))
    };
    for (i, v) in values.iter().enumerate() {
        if limit.is_some_and(|l| i >= l) {
            out.push_str(", ....");
            break;
        }
        if long {
            out.push_str("\n    ");
        } else if i > 0 {
            out.push_str(", ");
        }
        match v {
            Value::String(s) if s.is_empty() => out.push_str("\"\""),
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

/// The descriptions of a schema and of what it is made of.
pub fn description(schema: &Value, doc: &Value) -> String {
    let s = resolved(schema, doc);
    let mut out = String::new();
    if let Some(d) = s["description"].as_str().filter(|d| !d.is_empty()) {
        out.push_str(d);
        out.push('\n');
    }
    for part in s["allOf"].as_array().into_iter().flatten() {
        out.push_str(&description(part, doc));
    }
    if let Some(items) = s.get("items") {
        out.push_str(&description(items, doc));
    }
    if let Some(values) = map_values(s) {
        out.push_str(&description(values, doc));
    }
    out
}

/// `EXTERNAL DOCS:` at `head`, its description (wrapped at `width`) and
/// URL at `body` spaces.
fn external_docs(schema: &Value, head: usize, body: usize, width: usize) -> String {
    let Some(docs) = schema.get("externalDocs") else {
        return String::new();
    };
    let mut out = format!("{}\n", indent(head, "EXTERNAL DOCS:"));
    if let Some(d) = docs["description"].as_str().filter(|d| !d.is_empty()) {
        out.push_str(&indent(body, &wrap(d, width)));
        out.push('\n');
    }
    if let Some(u) = docs["url"].as_str().filter(|u| !u.is_empty()) {
        out.push_str(&indent(body, &format!("URL: {u}")));
        out.push('\n');
    }
    out
}

/// One field of `schema`: `name<TAB><type>[ -required-]` and, unless
/// `short`, its description.
pub fn field_detail(name: &str, schema: &Value, short: bool, level: usize, doc: &Value) -> String {
    let amount = level * 2;
    let field = &schema["properties"][name];
    let mut out = format!("{}\t<{}>", indent(amount, name), type_guess(field, doc));
    let required = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r == name);
    if required {
        out.push_str(" -required-");
    }
    out.push_str(&enum_text(field, false, Some(4), amount));
    out.push('\n');
    if !short {
        let text = field["description"]
            .as_str()
            .filter(|d| !d.is_empty())
            .unwrap_or("<no description>");
        out.push_str(&indent(
            amount + 2,
            &wrap(text, 78usize.saturating_sub(amount)),
        ));
        out.push('\n');
        if field.get("externalDocs").is_some() {
            out.push('\n');
            out.push_str(&external_docs(
                field,
                amount + 2,
                amount + 4,
                76usize.saturating_sub(amount),
            ));
        }
        out.push('\n');
    }
    out
}

/// The fields of a schema (and, with `recursive`, of their fields).
pub fn field_list(
    schema: &Value,
    level: usize,
    history: &HashSet<String>,
    recursive: bool,
    doc: &Value,
) -> String {
    let reference = schema["$ref"].as_str().unwrap_or_default();
    if !reference.is_empty() && history.contains(reference) {
        return String::new();
    }
    let mut next = history.clone();
    next.insert(reference.to_string());
    let s = resolved(schema, doc);
    let mut out = String::new();
    if let Some(props) = s["properties"].as_object() {
        let mut names: Vec<&String> = props.keys().collect();
        names.sort();
        for name in names {
            out.push_str(&field_detail(name, s, recursive, level, doc));
            if recursive {
                out.push_str(&field_list(&props[name], level + 1, &next, recursive, doc));
            }
        }
    }
    for part in s["allOf"].as_array().into_iter().flatten() {
        out.push_str(&field_list(part, level, &next, recursive, doc));
    }
    if let Some(items) = s.get("items") {
        out.push_str(&field_list(items, level, &next, recursive, doc));
    }
    if let Some(values) = map_values(s) {
        out.push_str(&field_list(values, level, &next, recursive, doc));
    }
    out
}

/// Follows `path` from `schema`, then prints what is there; empty when the
/// path leads nowhere.
pub fn output(
    schema: &Value,
    history: &HashSet<String>,
    path: &[String],
    recursive: bool,
    doc: &Value,
) -> String {
    let reference = schema["$ref"].as_str().unwrap_or_default();
    let mut next = history.clone();
    next.insert(reference.to_string());
    let s = resolved(schema, doc);
    let Some((first, rest)) = path.split_first() else {
        let mut out = String::from("DESCRIPTION:\n");
        let text = description(s, doc);
        let text = if text.is_empty() {
            "<empty>".to_string()
        } else {
            text
        };
        out.push_str(&indent(4, &wrap(&text, 76)));
        out.push('\n');
        let docs = external_docs(s, 0, 4, 76);
        if !docs.is_empty() {
            out.push('\n');
            out.push_str(&docs);
        }
        let fields = field_list(s, 1, &HashSet::new(), recursive, doc);
        if !fields.is_empty() {
            out.push_str("FIELDS:\n");
            out.push_str(&fields);
        }
        return out;
    };
    if !reference.is_empty() && history.contains(reference) {
        return String::new();
    }
    if let Some(sub) = s["properties"].get(first.as_str()) {
        let mut out = String::new();
        if rest.is_empty() {
            out.push_str(&format!("FIELD: {first} <{}>\n", type_guess(sub, doc)));
            out.push_str(&enum_text(sub, true, None, 0));
            out.push_str("\n\n");
        }
        out.push_str(&output(sub, &HashSet::new(), rest, recursive, doc));
        return out;
    }
    if let Some(items) = s.get("items") {
        return output(items, &next, path, recursive, doc);
    }
    if let Some(values) = map_values(s) {
        return output(values, &next, path, recursive, doc);
    }
    for part in s["allOf"].as_array().into_iter().flatten() {
        let found = output(part, &next, path, recursive, doc);
        if !found.is_empty() {
            return found;
        }
    }
    String::new()
}

/// The group-version-kind the document's paths give the resource.
fn gvk_of(doc: &Value, group: &str, version: &str, plural: &str) -> Option<Value> {
    let prefix = if group.is_empty() {
        "/api".to_string()
    } else {
        format!("/apis/{group}")
    };
    let paths = [
        format!("{prefix}/{version}/{plural}"),
        format!("{prefix}/{version}/{plural}/{{name}}"),
        format!("{prefix}/{version}/namespaces/{{namespace}}/{plural}"),
        format!("{prefix}/{version}/namespaces/{{namespace}}/{plural}/{{name}}"),
    ];
    for p in &paths {
        let Some(element) = doc["paths"].get(p) else {
            continue;
        };
        for method in ["get", "post", "put", "patch", "delete"] {
            if let Some(gvk) = element
                .get(method)
                .and_then(|m| m.get("x-kubernetes-group-version-kind"))
            {
                return Some(gvk.clone());
            }
        }
    }
    None
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let mut parts = args.target.split('.');
    let typed = parts.next().unwrap_or_default();
    let path: Vec<String> = parts.map(str::to_string).collect();
    // kubectl's explain words an unknown type without the "error: ".
    let r = session.catalog.find(typed).ok_or_else(|| {
        CtlError::Raw(format!(
            "the server doesn't have a resource type \"{typed}\""
        ))
    })?;
    let (group, version) = match &args.api_version {
        Some(gv) => match gv.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), gv.clone()),
        },
        None => (r.group.clone(), r.version.clone()),
    };
    let index = session.get_json("/openapi/v3").await?;
    let key = if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    };
    let url = index["paths"][&key]["serverRelativeURL"]
        .as_str()
        .ok_or_else(|| {
            usage(format!(
                "couldn't find resource for \"{}\"",
                r.plural_group()
            ))
        })?
        .to_string();
    let doc = session.get_json(&url).await?;
    let gvk = gvk_of(&doc, &group, &version, &r.plural).ok_or_else(|| {
        usage(format!(
            "GVR ({}/{version}, Resource={}) not found in OpenAPI schema",
            group, r.plural
        ))
    })?;
    let mut out = String::new();
    if let Some(g) = gvk["group"].as_str().filter(|g| !g.is_empty()) {
        out.push_str(&format!("GROUP:      {g}\n"));
    }
    out.push_str(&format!(
        "KIND:       {}\n",
        gvk["kind"].as_str().unwrap_or_default()
    ));
    out.push_str(&format!(
        "VERSION:    {}\n\n",
        gvk["version"].as_str().unwrap_or_default()
    ));
    let schema = doc["components"]["schemas"]
        .as_object()
        .and_then(|schemas| {
            let mut names: Vec<&String> = schemas.keys().collect();
            names.sort();
            names.into_iter().map(|n| &schemas[n]).find(|s| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|list| list.contains(&gvk))
            })
        })
        .ok_or_else(|| usage(format!("GVK {gvk} not found in OpenAPI schema")))?;
    let body = output(schema, &HashSet::new(), &path, args.recursive, &doc);
    if body.is_empty() {
        // The header is out before kubectl's template gives up.
        print!("{out}");
        let last = path.last().cloned().unwrap_or_default();
        return Err(usage(format!("field \"{last}\" does not exist")));
    }
    out.push_str(&body);
    println!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrapping_breaks_at_spaces_keeps_newlines_and_long_words() {
        assert_eq!(wrap("aaa bbb ccc", 7), "aaa bbb\nccc");
        assert_eq!(wrap("one\n\ntwo", 80), "one\n\ntwo");
        let url = "https://example.com/a/very/long/path/that/is/longer/than/the/limit";
        assert_eq!(
            wrap(&format!("See {url} now"), 20),
            format!("See\n{url}\nnow")
        );
        assert_eq!(wrap("two  spaces", 80), "two  spaces");
    }

    #[test]
    fn types_are_guessed_as_kubectl_guesses_them() {
        let doc = json!({"components": {"schemas": {
            "io.k8s.api.core.v1.Container": {"type": "object"},
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
        }}});
        let cases = [
            (json!({"type": "string"}), "string"),
            (json!({"type": "object"}), "Object"),
            (json!({}), "Object"),
            (
                json!({"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}]}}),
                "[]Container",
            ),
            (
                json!({"type": "object", "additionalProperties": {"type": "string"}}),
                "map[string]string",
            ),
            (
                json!({"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}]}),
                "string",
            ),
            (
                json!({"$ref": "#/components/schemas/missing.Thing"}),
                "Thing",
            ),
        ];
        for (schema, want) in cases {
            assert_eq!(type_guess(&schema, &doc), want, "{schema}");
        }
    }

    #[test]
    fn enums_in_the_two_views() {
        let s = json!({"enum": ["", "A", "B", "C", "D", "E"]});
        assert_eq!(
            enum_text(&s, false, Some(4), 2),
            "\n  enum: \"\", A, B, C, ...."
        );
        assert_eq!(
            enum_text(&json!({"enum": ["X", "Y"]}), true, None, 0),
            "ENUM:\n    X\n    Y"
        );
    }
}
