//! `config view|get-contexts|current-context|use-context|set-context`.
//! Works on the raw kubeconfig documents (so a rewrite keeps every field),
//! merged as client-go merges `$KUBECONFIG`: the first file wins.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::error::{Result, usage};
use crate::kubeconfig::{ConfigFlags, files};
use crate::print::{tabwriter, yaml};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Display merged kubeconfig settings.
    View {
        #[arg(long)]
        raw: bool,
        #[arg(long)]
        minify: bool,
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
    /// Describe one or many contexts.
    GetContexts {
        names: Vec<String>,
        #[arg(short = 'o', long)]
        output: Option<String>,
        #[arg(long)]
        no_headers: bool,
    },
    /// Display the current-context.
    CurrentContext,
    /// Set the current-context in a kubeconfig file.
    UseContext { name: String },
    /// Set a context entry in kubeconfig.
    SetContext {
        name: Option<String>,
        #[arg(long)]
        current: bool,
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
}

fn read(path: &PathBuf) -> Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(serde_saphyr::from_str(&text).map_err(|e| {
            usage(format!(
                "error loading config file \"{}\": {e}",
                path.display()
            ))
        })?)),
        Err(_) => Ok(None),
    }
}

fn write(path: &PathBuf, value: &Value) -> Result<()> {
    std::fs::write(path, yaml::render(value))
        .map_err(|e| usage(format!("writing {}: {e}", path.display())))
}

/// The merged document (first file wins each named entry).
pub fn merged(docs: &[Value]) -> Value {
    let mut out = json!({"apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [], "contexts": [], "users": []});
    let mut current = None;
    for doc in docs {
        if current.is_none() {
            current = doc["current-context"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string);
        }
        for key in ["clusters", "contexts", "users"] {
            for item in doc[key].as_array().cloned().unwrap_or_default() {
                let list = out[key].as_array_mut().unwrap();
                if !list.iter().any(|i| i["name"] == item["name"]) {
                    list.push(item);
                }
            }
        }
    }
    out["current-context"] = json!(current.unwrap_or_default());
    for key in ["clusters", "contexts", "users"] {
        out[key]
            .as_array_mut()
            .unwrap()
            .sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    }
    out
}

fn redact(value: &mut Value) {
    for (list, field) in [("clusters", "cluster"), ("users", "user")] {
        for item in value[list].as_array_mut().into_iter().flatten() {
            if let Some(map) = item[field].as_object_mut() {
                for (k, v) in map.iter_mut() {
                    if k.ends_with("-data") {
                        *v = json!("DATA+OMITTED");
                    } else if k == "token" || k == "password" {
                        *v = json!("REDACTED");
                    }
                }
            }
        }
    }
}

pub fn run(flags: &ConfigFlags, args: Args) -> Result<()> {
    let paths = files(flags);
    let docs: Vec<(PathBuf, Value)> = paths
        .iter()
        .filter_map(|p| read(p).transpose().map(|d| d.map(|d| (p.clone(), d))))
        .collect::<Result<_>>()?;
    let values: Vec<Value> = docs.iter().map(|(_, d)| d.clone()).collect();
    let mut config = merged(&values);
    if let Some(ctx) = &flags.context {
        config["current-context"] = json!(ctx);
    }
    let current = config["current-context"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match args.command {
        Sub::View {
            raw,
            minify,
            output,
        } => {
            if minify {
                let ctx = config["contexts"]
                    .as_array()
                    .and_then(|l| l.iter().find(|c| c["name"] == current.as_str()).cloned())
                    .ok_or_else(|| usage("current-context must exist in order to minify"))?;
                let keep = |key: &str, name: &Value| {
                    json!(
                        config[key]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter(|i| i["name"] == *name)
                            .cloned()
                            .collect::<Vec<_>>()
                    )
                };
                let clusters = keep("clusters", &ctx["context"]["cluster"]);
                let users = keep("users", &ctx["context"]["user"]);
                config["clusters"] = clusters;
                config["users"] = users;
                config["contexts"] = json!([ctx]);
            }
            if !raw {
                redact(&mut config);
            }
            match output.as_deref() {
                Some("json") => print!("{}", crate::print::json::render(&config)),
                _ => print!("{}", yaml::render(&config)),
            }
            Ok(())
        }
        Sub::CurrentContext => {
            if current.is_empty() {
                return Err(usage("current-context is not set"));
            }
            println!("{current}");
            Ok(())
        }
        Sub::GetContexts {
            names,
            output,
            no_headers,
        } => {
            let contexts = config["contexts"].as_array().cloned().unwrap_or_default();
            for n in &names {
                if !contexts.iter().any(|c| c["name"] == n.as_str()) {
                    return Err(usage(format!("context {n} not found")));
                }
            }
            let shown: Vec<&Value> = contexts
                .iter()
                .filter(|c| names.is_empty() || names.iter().any(|n| c["name"] == n.as_str()))
                .collect();
            if output.as_deref() == Some("name") {
                for c in shown {
                    println!("{}", c["name"].as_str().unwrap_or_default());
                }
                return Ok(());
            }
            let mut rows = Vec::new();
            if !no_headers {
                rows.push(
                    ["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"]
                        .map(String::from)
                        .to_vec(),
                );
            }
            for c in shown {
                let name = c["name"].as_str().unwrap_or_default();
                let field = |f: &str| c["context"][f].as_str().unwrap_or_default().to_string();
                rows.push(vec![
                    if name == current {
                        "*".into()
                    } else {
                        String::new()
                    },
                    name.to_string(),
                    field("cluster"),
                    field("user"),
                    field("namespace"),
                ]);
            }
            print!("{}", tabwriter::render(&rows));
            Ok(())
        }
        Sub::UseContext { name } => {
            if !config["contexts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["name"] == name.as_str())
            {
                return Err(usage(format!(
                    "no context exists with the name: \"{name}\""
                )));
            }
            // client-go writes current-context to the first file.
            let (path, mut doc) = docs
                .first()
                .cloned()
                .ok_or_else(|| usage("no kubeconfig file to modify"))?;
            doc["current-context"] = json!(name);
            write(&path, &doc)?;
            println!("Switched to context \"{name}\".");
            Ok(())
        }
        Sub::SetContext {
            name,
            current: use_current,
            cluster,
            user,
        } => {
            // `--namespace` here is the global `-n/--namespace` flag.
            let ns = flags.namespace.clone();
            let name = match (name, use_current) {
                (Some(n), false) => n,
                (None, true) => {
                    if current.is_empty() {
                        return Err(usage("no current context is set"));
                    }
                    current.clone()
                }
                (Some(_), true) => {
                    return Err(usage(
                        "you cannot specify both a context name and --current",
                    ));
                }
                (None, false) => {
                    return Err(usage(
                        "you must specify a non-empty context name or --current",
                    ));
                }
            };
            // The file that defines the context, else the first.
            let idx = docs.iter().position(|(_, d)| {
                d["contexts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["name"] == name.as_str())
            });
            let exists = idx.is_some();
            let (path, mut doc) = docs
                .get(idx.unwrap_or(0))
                .cloned()
                .ok_or_else(|| usage("no kubeconfig file to modify"))?;
            if !doc["contexts"].is_array() {
                doc["contexts"] = json!([]);
            }
            let list = doc["contexts"].as_array_mut().unwrap();
            if !exists {
                list.push(json!({"name": name, "context": {}}));
            }
            let entry = list
                .iter_mut()
                .find(|c| c["name"] == name.as_str())
                .unwrap();
            for (key, v) in [("namespace", ns), ("cluster", cluster), ("user", user)] {
                if let Some(v) = v {
                    entry["context"][key] = json!(v);
                }
            }
            write(&path, &doc)?;
            if exists {
                println!("Context \"{name}\" modified.");
            } else {
                println!("Context \"{name}\" created.");
            }
            Ok(())
        }
    }
}
