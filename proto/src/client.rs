//! The API client every Skiff program builds the same way: from
//! `--kubeconfig` when given, else as kubectl and client-go look for one
//! (`$KUBECONFIG`, `~/.kube/config`, the in-cluster service account).

use std::path::{Path, PathBuf};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("no kubeconfig given and none found: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("cannot build the API client: {0}")]
    Client(#[from] kube::Error),
}

/// A client for the cluster `kubeconfig` names (its current context), or the
/// one found the usual way when it is `None`.
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, ClientError> {
    Ok(Client::try_from(config(kubeconfig).await?)?)
}

/// The client settings [`connect`] uses (server, CA, credentials), for
/// callers that need more than the client, e.g. the cluster's CA.
pub async fn config(kubeconfig: Option<&Path>) -> Result<kube::Config, ClientError> {
    Ok(match kubeconfig {
        Some(path) => {
            let err = |source| ClientError::Kubeconfig {
                path: path.to_path_buf(),
                source,
            };
            let kubeconfig = Kubeconfig::read_from(path).map_err(err)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(err)?
        }
        None => kube::Config::infer().await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_kubeconfig_names_the_file() {
        let Err(err) = connect(Some(Path::new("/nonexistent/skiff.kubeconfig"))).await else {
            panic!("a client from a kubeconfig that does not exist");
        };
        let message = err.to_string();
        assert!(
            message.starts_with("cannot read kubeconfig /nonexistent/skiff.kubeconfig: "),
            "{message}"
        );
    }
}
