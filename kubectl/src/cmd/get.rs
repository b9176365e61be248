//! `get`: server-side tables (the server chooses the columns, as for
//! kubectl), or the objects as yaml, json, name, jsonpath or custom columns.

use serde_json::{Value, json};

use super::targets::{Target, parse};
use crate::error::{CtlError, Result, usage};
use crate::print::{custom_columns::Columns, json as pjson, jsonpath, tabwriter, yaml};
use crate::session::{Session, with_query};

pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TYPE[,TYPE…] [NAME…] or TYPE/NAME…
    #[arg(add = clap_complete::ArgValueCompleter::new(crate::cmd::completion::resources))]
    pub resources: Vec<String>,
    /// Output format: wide|yaml|json|name|jsonpath=…|custom-columns=…
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Selector (label query) to filter on.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Selector (field query) to filter on.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// List the requested objects across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Show all labels as the last column.
    #[arg(long)]
    pub show_labels: bool,
    /// Sort list types using this JSONPath expression.
    #[arg(long)]
    pub sort_by: Option<String>,
    /// After listing, watch for changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch for changes without listing first.
    #[arg(long)]
    pub watch_only: bool,
    /// With -w: under each event's row, the fields that changed since the
    /// previous version of that object (skiffctl's own, for learning).
    #[arg(long)]
    pub diff: bool,
    /// Don't print headers.
    #[arg(long)]
    pub no_headers: bool,
}

/// The output format asked for.
#[derive(Debug, Clone)]
pub enum Format {
    Table { wide: bool },
    Yaml,
    Json,
    Name,
    JsonPath(jsonpath::Template),
    Columns(Columns),
}

pub fn parse_format(output: Option<&str>) -> Result<Format> {
    Ok(match output {
        None | Some("") => Format::Table { wide: false },
        Some("wide") => Format::Table { wide: true },
        Some("yaml") => Format::Yaml,
        Some("json") => Format::Json,
        Some("name") => Format::Name,
        Some(o) if o.starts_with("jsonpath=") => Format::JsonPath(
            jsonpath::Template::parse(&o["jsonpath=".len()..]).map_err(|e| usage(e.to_string()))?,
        ),
        Some(o) if o.starts_with("custom-columns=") => {
            Format::Columns(Columns::parse(&o["custom-columns=".len()..]).map_err(usage)?)
        }
        Some(o) => {
            return Err(usage(format!(
                "unable to match a printer suitable for the output format \"{o}\", allowed formats are: custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,template,templatefile,wide,yaml"
            )));
        }
    })
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    let format = parse_format(args.output.as_deref())?;
    let (targets, slash) = parse(session, &args.resources)?;
    let mut errors: Vec<CtlError> = Vec::new();
    if args.diff && !(args.watch || args.watch_only) {
        return Err(usage("--diff only goes with -w or --watch-only"));
    }
    if args.watch || args.watch_only {
        if targets.len() != 1 {
            return Err(usage("you may only specify a single resource type"));
        }
        return watch(session, &args, &targets[0], &format).await;
    }
    // Objects (or table rows) per target.
    let single = targets.len() == 1 && targets[0].names.len() == 1;
    match &format {
        Format::Table { wide } => {
            let mut tables = Vec::new();
            for t in &targets {
                tables.push((t, fetch_table(session, &args, t, &mut errors).await?));
            }
            let kinds_found = tables.iter().filter(|(_, t)| !rows(t).is_empty()).count();
            let with_kind = slash && targets.len() > 1 || kinds_found > 1;
            let mut first = true;
            for (t, table) in &tables {
                if rows(table).is_empty() {
                    continue;
                }
                if !first {
                    println!();
                }
                first = false;
                print!(
                    "{}",
                    render_table(table, t, &args, *wide, with_kind, args.no_headers)
                );
            }
            if first && errors.is_empty() {
                eprintln!("{}", no_resources(session, &args, &targets));
            }
        }
        _ => {
            let mut objects = Vec::new();
            for t in &targets {
                objects.extend(fetch_objects(session, &args, t, &mut errors).await?);
            }
            if let Some(sort) = &args.sort_by {
                sort_values(&mut objects, sort, |o| o)?;
            }
            print_objects(
                &format,
                &objects,
                single && errors.is_empty(),
                &args,
                session,
                &targets,
            )?;
        }
    }
    finish(errors)
}

fn finish(errors: Vec<CtlError>) -> Result<()> {
    let n = errors.len();
    for (i, e) in errors.into_iter().enumerate() {
        if i + 1 == n {
            return Err(e);
        }
        eprintln!("{e}");
    }
    Ok(())
}

fn no_resources(session: &Session, args: &Args, targets: &[Target]) -> String {
    if args.all_namespaces || targets.iter().all(|t| !t.resource.namespaced) {
        "No resources found".to_string()
    } else {
        format!("No resources found in {} namespace.", session.namespace())
    }
}

fn rows(table: &Value) -> &[Value] {
    table["rows"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

async fn fetch_table(
    session: &Session,
    args: &Args,
    t: &Target,
    errors: &mut Vec<CtlError>,
) -> Result<Value> {
    let include = if args.sort_by.is_some() {
        "Object"
    } else {
        "Metadata"
    };
    let base = t
        .resource
        .path(session.ns_for(&t.resource, args.all_namespaces));
    if t.names.is_empty() {
        let uri = with_query(
            &base,
            &[
                ("labelSelector", args.selector.as_deref()),
                ("fieldSelector", args.field_selector.as_deref()),
                ("includeObject", Some(include)),
                ("limit", Some("500")),
            ],
        );
        let mut table = session
            .send(http::Method::GET, &uri, TABLE_ACCEPT, None, vec![])
            .await?;
        if let Some(sort) = &args.sort_by
            && let Some(rows) = table["rows"].as_array_mut()
        {
            sort_values(rows, sort, |r| &r["object"])?;
        }
        return Ok(table);
    }
    let mut merged: Option<Value> = None;
    for name in &t.names {
        let uri = with_query(
            &format!("{base}/{name}"),
            &[("includeObject", Some(include))],
        );
        match session
            .send(http::Method::GET, &uri, TABLE_ACCEPT, None, vec![])
            .await
        {
            Ok(table) => match &mut merged {
                None => merged = Some(table),
                Some(m) => {
                    let new_rows = table["rows"].as_array().cloned().unwrap_or_default();
                    if let Some(r) = m["rows"].as_array_mut() {
                        r.extend(new_rows);
                    }
                }
            },
            Err(e @ CtlError::Server(_)) => errors.push(e),
            Err(e) => return Err(e),
        }
    }
    Ok(merged.unwrap_or_else(|| json!({"rows": []})))
}

fn cell_text(cell: &Value) -> String {
    match cell {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n
            .as_i64()
            .map(|i| i.to_string())
            .unwrap_or_else(|| n.to_string()),
        other => other.to_string(),
    }
}

/// `app=web,tier=db` sorted, or `<none>`.
pub fn labels_text(labels: &Value) -> String {
    match labels.as_object() {
        Some(map) if !map.is_empty() => {
            let mut pairs: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            pairs.sort();
            pairs.join(",")
        }
        _ => "<none>".into(),
    }
}

/// Lines of a server-side Table as kubectl prints them.
pub fn render_table(
    table: &Value,
    t: &Target,
    args: &Args,
    wide: bool,
    with_kind: bool,
    no_headers: bool,
) -> String {
    let columns = table["columnDefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let shown: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| wide || c["priority"].as_i64().unwrap_or(0) == 0)
        .map(|(i, _)| i)
        .collect();
    let mut lines = Vec::new();
    if !no_headers {
        let mut header = Vec::new();
        if args.all_namespaces && t.resource.namespaced {
            header.push("NAMESPACE".to_string());
        }
        header.extend(shown.iter().map(|&i| {
            columns[i]["name"]
                .as_str()
                .unwrap_or_default()
                .to_uppercase()
        }));
        if args.show_labels {
            header.push("LABELS".into());
        }
        lines.push(header);
    }
    for row in rows(table) {
        let meta = &row["object"]["metadata"];
        let mut line = Vec::new();
        if args.all_namespaces && t.resource.namespaced {
            line.push(meta["namespace"].as_str().unwrap_or_default().to_string());
        }
        let cells = row["cells"].as_array().cloned().unwrap_or_default();
        for (n, &i) in shown.iter().enumerate() {
            let mut text = cells.get(i).map(cell_text).unwrap_or_default();
            if n == 0 && with_kind {
                text = format!("{}/{text}", t.resource.kind_group());
            }
            line.push(text);
        }
        if args.show_labels {
            line.push(labels_text(&meta["labels"]));
        }
        lines.push(line);
    }
    tabwriter::render(&lines)
}

async fn fetch_objects(
    session: &Session,
    args: &Args,
    t: &Target,
    errors: &mut Vec<CtlError>,
) -> Result<Vec<Value>> {
    let base = t
        .resource
        .path(session.ns_for(&t.resource, args.all_namespaces));
    let fill = |mut o: Value| {
        strip_managed_fields(&mut o);
        o["apiVersion"] = json!(t.resource.api_version());
        o["kind"] = json!(t.resource.kind);
        o
    };
    if t.names.is_empty() {
        let uri = with_query(
            &base,
            &[
                ("labelSelector", args.selector.as_deref()),
                ("fieldSelector", args.field_selector.as_deref()),
                ("limit", Some("500")),
            ],
        );
        let list = session.get_json(&uri).await?;
        return Ok(list["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(fill)
            .collect());
    }
    let mut out = Vec::new();
    for name in &t.names {
        match session.get_json(&format!("{base}/{name}")).await {
            Ok(mut o) => {
                strip_managed_fields(&mut o);
                out.push(o)
            }
            Err(e @ CtlError::Server(_)) => errors.push(e),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// kubectl's `-o name`: `deployment.apps/web`.
pub fn name_of(session: &Session, object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let prefix = session
        .catalog
        .by_kind(api_version, kind)
        .map(|r| r.kind_group())
        .unwrap_or_else(|| kind.to_lowercase());
    format!(
        "{prefix}/{}",
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

fn print_objects(
    format: &Format,
    objects: &[Value],
    single: bool,
    args: &Args,
    session: &Session,
    targets: &[Target],
) -> Result<()> {
    let document = if single && objects.len() == 1 {
        objects[0].clone()
    } else {
        json!({"apiVersion": "v1", "items": objects, "kind": "List", "metadata": {"resourceVersion": ""}})
    };
    match format {
        Format::Yaml => print!("{}", yaml::render(&document)),
        Format::Json => print!("{}", pjson::render(&document)),
        Format::JsonPath(t) => print!("{}", t.render(&document)),
        Format::Name => {
            if objects.is_empty() {
                eprintln!("{}", no_resources(session, args, targets));
            }
            for o in objects {
                println!("{}", name_of(session, o));
            }
        }
        Format::Columns(cols) => {
            if objects.is_empty() {
                eprintln!("{}", no_resources(session, args, targets));
                return Ok(());
            }
            let mut lines = Vec::new();
            if !args.no_headers {
                lines.push(cols.header());
            }
            lines.extend(objects.iter().map(|o| cols.row(o)));
            print!("{}", tabwriter::render(&lines));
        }
        Format::Table { .. } => unreachable!("tables are printed from the server's Table"),
    }
    Ok(())
}

/// Sorts by a JSONPath value: numbers numerically, the rest as text;
/// missing values first.
pub fn sort_values<T>(items: &mut [T], expr: &str, object: impl Fn(&T) -> &Value) -> Result<()> {
    let steps = jsonpath::parse_path(&jsonpath::relaxed(expr)).map_err(usage)?;
    items.sort_by(|a, b| {
        let va = jsonpath::eval(&steps, object(a))
            .first()
            .map(|v| (*v).clone());
        let vb = jsonpath::eval(&steps, object(b))
            .first()
            .map(|v| (*v).clone());
        match (va, vb) {
            (Some(Value::Number(x)), Some(Value::Number(y))) => x
                .as_f64()
                .partial_cmp(&y.as_f64())
                .unwrap_or(std::cmp::Ordering::Equal),
            (x, y) => x
                .map(|v| jsonpath::text(&v))
                .cmp(&y.map(|v| jsonpath::text(&v))),
        }
    });
    Ok(())
}

/// `-w`: the list (unless `--watch-only`), then one line per event.
async fn watch(session: &Session, args: &Args, t: &Target, format: &Format) -> Result<()> {
    use futures::{AsyncBufReadExt, TryStreamExt};
    let Format::Table { wide } = format else {
        return Err(usage("skiffctl get -w prints tables only"));
    };
    let base = t
        .resource
        .path(session.ns_for(&t.resource, args.all_namespaces));
    let mut errors = Vec::new();
    let table = fetch_table(session, args, t, &mut errors).await?;
    finish(errors)?;
    let rv = table["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut header_printed = false;
    if !args.watch_only {
        if rows(&table).is_empty() {
            eprintln!("{}", no_resources(session, args, std::slice::from_ref(t)));
        } else {
            print!(
                "{}",
                render_table(&table, t, args, *wide, false, args.no_headers)
            );
            header_printed = true;
        }
    }
    let field = t.names.first().map(|n| format!("metadata.name={n}"));
    let uri = with_query(
        &base,
        &[
            ("labelSelector", args.selector.as_deref()),
            (
                "fieldSelector",
                field.as_deref().or(args.field_selector.as_deref()),
            ),
            ("resourceVersion", (!args.watch_only).then_some(rv.as_str())),
            ("watch", Some("true")),
            ("includeObject", args.diff.then_some("Object")),
        ],
    );
    // --diff: the versions seen so far, by uid (the listed ones first).
    let mut seen: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    if args.diff && !args.watch_only {
        let list = session
            .get_json(&with_query(
                &base,
                &[
                    ("labelSelector", args.selector.as_deref()),
                    (
                        "fieldSelector",
                        field.as_deref().or(args.field_selector.as_deref()),
                    ),
                ],
            ))
            .await?;
        for o in list["items"].as_array().into_iter().flatten() {
            if let Some(uid) = o["metadata"]["uid"].as_str() {
                seen.insert(uid.to_string(), o.clone());
            }
        }
    }
    let stream = session.stream(&uri, Some(TABLE_ACCEPT)).await?;
    let mut lines = stream.lines();
    use std::io::Write;
    while let Some(line) = lines.try_next().await.map_err(|e| usage(e.to_string()))? {
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if event["type"] == "ERROR" {
            return Err(usage(
                event["object"]["message"]
                    .as_str()
                    .unwrap_or("watch error")
                    .to_string(),
            ));
        }
        let object = &event["object"];
        let out = render_table(
            object,
            t,
            args,
            *wide,
            false,
            header_printed || args.no_headers,
        );
        header_printed = true;
        print!("{out}");
        if args.diff {
            print!("{}", diff_lines(&event, &mut seen));
        }
        let _ = std::io::stdout().flush();
    }
    Ok(())
}

/// The `--diff` lines under an event's row: what changed since the last
/// version seen of the object, `(created)` or `(deleted)`.
fn diff_lines(event: &Value, seen: &mut std::collections::HashMap<String, Value>) -> String {
    use crate::print::field_diff;
    let Some(object) = event["object"]["rows"][0]["object"].as_object() else {
        return String::new();
    };
    let object = Value::Object(object.clone());
    let uid = object["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if event["type"] == "DELETED" {
        seen.remove(&uid);
        return "    (deleted)\n".into();
    }
    let out = match seen.get(&uid) {
        None => "    (created)\n".to_string(),
        Some(old) => {
            use crate::print::colour::{Colour, enabled, paint};
            let on = enabled();
            field_diff::diff(old, &object)
                .iter()
                .map(|c| {
                    let colour = match c {
                        field_diff::Change::Added(..) => Colour::Green,
                        field_diff::Change::Removed(..) => Colour::Red,
                        field_diff::Change::Changed(..) => Colour::Yellow,
                    };
                    format!("    {}\n", paint(&c.to_string(), colour, on))
                })
                .collect()
        }
    };
    seen.insert(uid, object);
    out
}

/// kubectl hides `metadata.managedFields` unless `--show-managed-fields`.
fn strip_managed_fields(o: &mut Value) {
    if let Some(meta) = o["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
}
