//! Where the kubeconfig comes from (as kubectl: `--kubeconfig`, else every
//! file of `$KUBECONFIG` merged, else `~/.kube/config`), which context and
//! namespace apply, and the kube-rs client built from them.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{CtlError, Result, usage};

/// The global flags that choose the cluster.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigFlags {
    /// Path to the kubeconfig file to use for CLI requests.
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// If present, the namespace scope for this CLI request.
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
}

/// The files to read, in merge order (the first file wins a conflict).
pub fn files(flags: &ConfigFlags) -> Vec<PathBuf> {
    if let Some(path) = &flags.kubeconfig {
        return vec![path.clone()];
    }
    if let Some(value) = std::env::var_os("KUBECONFIG")
        && !value.is_empty()
    {
        return std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    vec![home.join(".kube").join("config")]
}

/// The merged kubeconfig. Missing `$KUBECONFIG` entries are skipped as
/// client-go does; a missing `--kubeconfig` file is an error.
pub fn load(flags: &ConfigFlags) -> Result<Kubeconfig> {
    let mut merged: Option<Kubeconfig> = None;
    for path in files(flags) {
        if !path.exists() && flags.kubeconfig.is_none() {
            continue;
        }
        let next = Kubeconfig::read_from(&path).map_err(|e| match e {
            kube::config::KubeconfigError::ReadConfig(..) => usage(format!(
                "stat {}: no such file or directory",
                path.display()
            )),
            other => usage(format!(
                "error loading config file \"{}\": {other}",
                path.display()
            )),
        })?;
        merged = Some(match merged {
            None => next,
            Some(m) => m.merge(next).map_err(|e| usage(e.to_string()))?,
        });
    }
    Ok(merged.unwrap_or_default())
}

/// A client, its default namespace and the `host:port` of its server.
#[derive(Clone)]
pub struct Connection {
    pub client: kube::Client,
    pub namespace: String,
    /// `127.0.0.1:6443`, as kubectl names the server in errors.
    pub server: String,
    /// The cluster URL as configured (`https://127.0.0.1:6443`).
    pub url: String,
}

/// The name of the context in use: `--context`, else `current-context`.
pub fn context_name(flags: &ConfigFlags, kc: &Kubeconfig) -> Option<String> {
    flags.context.clone().or_else(|| kc.current_context.clone())
}

pub async fn connect(flags: &ConfigFlags) -> Result<Connection> {
    let kc = load(flags)?;
    let context = context_name(flags, &kc);
    if kc.clusters.is_empty() {
        // kubectl's fallback: no config means localhost:8080.
        return Err(CtlError::Refused("localhost:8080".into()));
    }
    let ctx_ns = context.as_ref().and_then(|name| {
        kc.contexts
            .iter()
            .find(|c| &c.name == name)
            .and_then(|c| c.context.as_ref())
            .and_then(|c| c.namespace.clone())
    });
    if let Some(name) = &context
        && !kc.contexts.iter().any(|c| &c.name == name)
    {
        return Err(usage(format!(
            "context was not found for specified context: {name}"
        )));
    }
    let options = KubeConfigOptions {
        context: context.clone(),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .map_err(|e| usage(e.to_string()))?;
    let url = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let server = host_port(&url);
    let client = kube::Client::try_from(config).map_err(|e| usage(e.to_string()))?;
    let namespace = flags
        .namespace
        .clone()
        .or(ctx_ns)
        .unwrap_or_else(|| "default".into());
    Ok(Connection {
        client,
        namespace,
        server,
        url,
    })
}

/// `https://127.0.0.1:6443/` → `127.0.0.1:6443` (what kubectl names in
/// its connection-refused message).
pub fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split('/').next().unwrap_or(rest).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_drops_scheme_and_path() {
        assert_eq!(host_port("https://127.0.0.1:6443/"), "127.0.0.1:6443");
        assert_eq!(host_port("http://h:1"), "h:1");
    }

    #[test]
    fn kubeconfig_env_lists_several_files_in_order() {
        let flags = ConfigFlags {
            kubeconfig: Some("/a".into()),
            ..Default::default()
        };
        assert_eq!(files(&flags), vec![PathBuf::from("/a")]);
    }
}
