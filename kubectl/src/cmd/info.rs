//! `version`, `cluster-info` and `api-resources`: what the server is, where
//! it runs, and which types it serves.

use serde_json::{Value, json};

use crate::discovery::Resource;
use crate::error::{Result, usage};
use crate::kubeconfig::ConfigFlags;
use crate::session::{Session, with_query};

#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Only the client version (no server needed).
    #[arg(long)]
    pub client: bool,
    /// One of 'yaml' or 'json'.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

/// skiffctl's own version, in the shape of the server's `/version`.
fn client_version() -> Value {
    json!({"gitVersion": concat!("v", env!("CARGO_PKG_VERSION")), "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH)})
}

pub async fn version(flags: &ConfigFlags, args: VersionArgs) -> Result<()> {
    let server = if args.client {
        None
    } else {
        let session = Session::open(flags).await?;
        Some(session.get_json("/version").await?)
    };
    let mut all = json!({"clientVersion": client_version()});
    if let Some(s) = &server {
        all["serverVersion"] = s.clone();
    }
    match args.output.as_deref() {
        None => {
            println!(
                "Client Version: {}",
                all["clientVersion"]["gitVersion"]
                    .as_str()
                    .unwrap_or_default()
            );
            if let Some(s) = &server {
                println!(
                    "Server Version: {}",
                    s["gitVersion"].as_str().unwrap_or_default()
                );
            }
        }
        Some("json") => println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default()),
        Some("yaml") => print!(
            "{}",
            serde_saphyr::to_string(&all).map_err(|e| usage(e.to_string()))?
        ),
        Some(other) => {
            return Err(usage(format!(
                "--output must be 'yaml' or 'json', not \"{other}\""
            )));
        }
    }
    Ok(())
}

/// `NAME is running at LINK`, in kubectl's colours on a terminal.
fn running_at(name: &str, link: &str, colour: bool) -> String {
    use crate::print::colour::{Colour, paint};
    format!(
        "{} is running at {}",
        paint(name, Colour::Green, colour),
        paint(link, Colour::Yellow, colour)
    )
}

/// The proxy link of a cluster Service, as kubectl builds it.
pub fn service_link(server: &str, svc: &Value) -> String {
    let name = svc["metadata"]["name"].as_str().unwrap_or_default();
    let port = &svc["spec"]["ports"][0];
    let mut id = name.to_string();
    if let Some(p) = port["name"].as_str().filter(|p| !p.is_empty()) {
        if port["port"] == 443 || p == "https" {
            id = format!("https:{name}:{p}");
        } else {
            id = format!("{name}:{p}");
        }
    }
    format!("{server}/api/v1/namespaces/kube-system/services/{id}/proxy")
}

pub async fn cluster_info(session: &Session) -> Result<()> {
    let colour = crate::print::colour::enabled();
    let server = session.conn.url.clone();
    println!(
        "{}",
        running_at("Kubernetes control plane", &server, colour)
    );
    let services = session
        .get_json(&with_query(
            "/api/v1/namespaces/kube-system/services",
            &[("labelSelector", Some("kubernetes.io/cluster-service=true"))],
        ))
        .await?;
    for svc in services["items"].as_array().into_iter().flatten() {
        let labels = &svc["metadata"]["labels"];
        let name = labels["kubernetes.io/name"]
            .as_str()
            .or(svc["metadata"]["name"].as_str())
            .unwrap_or_default();
        println!("{}", running_at(name, &service_link(&server, svc), colour));
    }
    println!("\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.");
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct ApiResourcesArgs {
    /// Only namespaced (true) or cluster-scoped (false) types.
    #[arg(long)]
    pub namespaced: Option<bool>,
    /// 'name' for plural.group only, 'wide' adds VERBS and CATEGORIES.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Without headers.
    #[arg(long)]
    pub no_headers: bool,
}

/// The `api-resources` table (or names), by API group (core first), then
/// by name, as kubectl prints them.
pub fn api_resources_table(resources: &[Resource], args: &ApiResourcesArgs) -> Result<String> {
    let mut rows: Vec<&Resource> = resources
        .iter()
        .filter(|r| args.namespaced.is_none_or(|n| n == r.namespaced))
        .collect();
    rows.sort_by(|a, b| (&a.group, &a.plural).cmp(&(&b.group, &b.plural)));
    match args.output.as_deref() {
        Some("name") => Ok(rows
            .iter()
            .map(|r| format!("{}\n", r.plural_group()))
            .collect()),
        None | Some("wide") => {
            let wide = args.output.is_some();
            let mut table: Vec<Vec<String>> = Vec::new();
            if !args.no_headers {
                let mut h: Vec<String> = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
                    .map(String::from)
                    .to_vec();
                if wide {
                    h.push("VERBS".into());
                }
                table.push(h);
            }
            for r in rows {
                let mut row = vec![
                    r.plural.clone(),
                    r.short_names.join(","),
                    r.api_version(),
                    r.namespaced.to_string(),
                    r.kind.clone(),
                ];
                if wide {
                    row.push(format!("[{}]", r.verbs.join(" ")));
                }
                table.push(row);
            }
            Ok(crate::print::tabwriter::render(&table))
        }
        Some(other) => Err(usage(format!(
            "--output {other} is not available, use 'name' or 'wide'"
        ))),
    }
}

pub async fn api_resources(session: &Session, args: ApiResourcesArgs) -> Result<()> {
    print!(
        "{}",
        api_resources_table(&session.catalog.resources, &args)?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_links_as_kubectl_builds_them() {
        let dns = json!({"metadata": {"name": "kube-dns"}, "spec": {"ports": [{"name": "dns", "port": 53}]}});
        assert_eq!(
            service_link("https://127.0.0.1:6443", &dns),
            "https://127.0.0.1:6443/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy"
        );
        let plain = json!({"metadata": {"name": "m"}, "spec": {"ports": [{"port": 80}]}});
        assert!(service_link("s", &plain).ends_with("/services/m/proxy"));
        assert_eq!(
            running_at("X", "L", true),
            "\u{1b}[0;32mX\u{1b}[0m is running at \u{1b}[0;33mL\u{1b}[0m"
        );
    }
}
