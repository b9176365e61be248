//! `apply -f`: always server-side apply (`kubectl apply --server-side`),
//! field manager `skiffctl` unless `--field-manager` says otherwise.

use serde_json::json;

use crate::error::{CtlError, Result, usage};
use crate::manifest::{Manifest, read_all};
use crate::session::{Session, with_query};

/// What `apply` and `diff` share: the files and how the apply is made.
#[derive(Debug, clap::Args)]
pub struct Source {
    /// Files, directories or `-` for stdin.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
    /// Process the directories of -f recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Name of the manager used to track field ownership.
    #[arg(long, default_value = "skiffctl")]
    pub field_manager: String,
    /// Take ownership of fields other managers own.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Accepted for kubectl compatibility: skiffctl always applies server-side.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub server_side: Option<String>,
}

impl Source {
    /// The manifests of the files, in order.
    pub fn manifests(&self) -> Result<Vec<Manifest>> {
        read_all(&self.files, self.recursive)
    }

    /// The server-side apply PATCH URI of `path`, a dry run or not.
    pub fn apply_uri(&self, path: &str, dry_run: bool) -> String {
        with_query(
            path,
            &[
                ("fieldManager", Some(&self.field_manager)),
                ("force", self.force_conflicts.then_some("true")),
                ("dryRun", dry_run.then_some("All")),
            ],
        )
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub source: Source,
    /// none|server|client
    #[arg(long, num_args = 0..=1, default_missing_value = "client", default_value = "none")]
    pub dry_run: String,
    /// Output format: name (or the default lines).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Delete what this field manager applied before, matches `-l`, and is
    /// no longer in the files (in the namespaces applied to).
    #[arg(long)]
    pub prune: bool,
    /// Selector (label query) for --prune.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

/// The types `--prune` looks at (kubectl's default allowlist).
const PRUNE_TYPES: &[&str] = &[
    "configmaps",
    "endpoints",
    "namespaces",
    "persistentvolumeclaims",
    "persistentvolumes",
    "pods",
    "replicationcontrollers",
    "secrets",
    "services",
    "jobs.batch",
    "cronjobs.batch",
    "ingresses.networking.k8s.io",
    "daemonsets.apps",
    "deployments.apps",
    "replicasets.apps",
    "statefulsets.apps",
];

/// Whether `manager` server-side applied `object` (it owns fields through
/// an Apply operation): what `--prune` may delete.
pub fn applied_by(object: &serde_json::Value, manager: &str) -> bool {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["manager"] == manager && m["operation"] == "Apply")
}

pub async fn run(session: &Session, args: Args) -> Result<()> {
    if !["none", "server", "client"].contains(&args.dry_run.as_str()) {
        return Err(usage(format!(
            "Invalid dry-run value ({}). Must be \"none\", \"server\", or \"client\".",
            args.dry_run
        )));
    }
    if args.prune && args.selector.is_none() {
        return Err(usage(
            "all resources selected for prune without explicitly passing --all. To prune all resources, pass the --all flag. If you did not mean to prune all resources, specify a label selector",
        ));
    }
    let manifests = args.source.manifests()?;
    if manifests.is_empty() {
        return Err(usage("no objects passed to apply"));
    }
    let mut errors = Vec::new();
    // (plural.group, namespace, name) of everything in the files.
    let mut applied = std::collections::HashSet::new();
    for m in &manifests {
        if let Ok((r, ns, name)) = locate(session, m) {
            applied.insert((r.plural_group(), ns, name));
        }
        match apply_one(session, &args, m).await {
            Ok(line) => println!("{line}"),
            Err(e) => errors.push(e),
        }
    }
    if args.prune && errors.is_empty() {
        prune(session, &args, &applied).await?;
    }
    let n = errors.len();
    for (i, e) in errors.into_iter().enumerate() {
        if i + 1 == n {
            return Err(e);
        }
        eprintln!("{e}");
    }
    Ok(())
}

/// Where a manifest goes: its resource, namespace and name.
pub fn locate<'a>(
    session: &'a Session,
    m: &Manifest,
) -> Result<(&'a crate::discovery::Resource, Option<String>, String)> {
    let o = &m.object;
    let api_version = o["apiVersion"].as_str().unwrap_or_default();
    let kind = o["kind"].as_str().unwrap_or_default();
    let name = o["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let own_ns = o["metadata"]["namespace"].as_str().map(str::to_string);
    let resource = session.catalog.by_kind(api_version, kind).ok_or_else(|| {
        CtlError::Raw(format!(
            "error: resource mapping not found for name: \"{name}\" namespace: \"{}\" from \"{}\": no matches for kind \"{kind}\" in version \"{api_version}\"\nensure CRDs are installed first",
            own_ns.clone().unwrap_or_default(),
            m.source
        ))
    })?;
    let ns = if resource.namespaced {
        if let Some(own) = &own_ns
            && session.explicit_namespace
            && own != session.namespace()
        {
            return Err(usage(format!(
                "the namespace from the provided object \"{own}\" does not match the namespace \"{}\". You must pass '--namespace={own}' to perform this operation.",
                session.namespace()
            )));
        }
        Some(own_ns.unwrap_or_else(|| session.namespace().to_string()))
    } else {
        None
    };
    Ok((resource, ns, name))
}

/// `--prune`: deletes what this manager applied earlier, matches the
/// selector and is not in `applied`, in the namespaces applied to (and
/// cluster-scoped types).
async fn prune(
    session: &Session,
    args: &Args,
    applied: &std::collections::HashSet<(String, Option<String>, String)>,
) -> Result<()> {
    let namespaces: std::collections::BTreeSet<String> =
        applied.iter().filter_map(|(_, ns, _)| ns.clone()).collect();
    let suffix = match args.dry_run.as_str() {
        "client" => " (dry run)",
        "server" => " (server dry run)",
        _ => "",
    };
    for typed in PRUNE_TYPES {
        let Some(r) = session.catalog.find(typed) else {
            continue;
        };
        let scopes: Vec<Option<String>> = if r.namespaced {
            namespaces.iter().cloned().map(Some).collect()
        } else {
            vec![None]
        };
        for ns in scopes {
            let list = session
                .get_json(&with_query(
                    &r.path(ns.as_deref()),
                    &[("labelSelector", args.selector.as_deref())],
                ))
                .await?;
            for o in list["items"].as_array().into_iter().flatten() {
                let name = o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if applied.contains(&(r.plural_group(), ns.clone(), name.clone()))
                    || !applied_by(o, &args.source.field_manager)
                {
                    continue;
                }
                if args.dry_run != "client" {
                    let uri = with_query(
                        &format!("{}/{name}", r.path(ns.as_deref())),
                        &[("dryRun", (args.dry_run == "server").then_some("All"))],
                    );
                    match session
                        .delete(&uri, &json!({"propagationPolicy": "Background"}))
                        .await
                    {
                        Ok(_) => {}
                        Err(CtlError::Server(s)) if s.code == 404 => continue,
                        Err(e) => return Err(e),
                    }
                }
                println!("{}/{name} pruned{suffix}", r.kind_group());
            }
        }
    }
    Ok(())
}

async fn apply_one(session: &Session, args: &Args, m: &Manifest) -> Result<String> {
    let (resource, ns, name) = locate(session, m)?;
    let mut body = m.object.clone();
    if let Some(ns) = &ns {
        body["metadata"]["namespace"] = json!(ns);
    }
    let label = format!("{}/{name}", resource.kind_group());
    let line = |suffix: &str| {
        if args.output.as_deref() == Some("name") {
            label.clone()
        } else {
            format!("{label} serverside-applied{suffix}")
        }
    };
    if args.dry_run == "client" {
        return Ok(line(" (dry run)"));
    }
    let uri = args.source.apply_uri(
        &format!("{}/{name}", resource.path(ns.as_deref())),
        args.dry_run == "server",
    );
    session
        .patch(&uri, "application/apply-patch+yaml", &body)
        .await?;
    Ok(line(if args.dry_run == "server" {
        " (server dry run)"
    } else {
        ""
    }))
}
