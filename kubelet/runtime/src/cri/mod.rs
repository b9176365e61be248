//! The CRI served on a unix socket: [`images`] (the ImageService over the
//! image store) and [`runtime`] (the RuntimeService: sandboxes and
//! containers), [`userns`] (user namespaces asked for through the CRI).

pub mod images;
pub mod runtime;
pub mod userns;

use std::future::Future;
use std::path::Path;

/// Why the CRI socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("CRI server: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Serves `images` (and `runtime`, when given) on the unix socket `socket`
/// (replacing a stale socket file, mode 0600: only root talks to the
/// runtime) until `shutdown`.
pub async fn serve(
    socket: &Path,
    images: images::Images,
    runtime: Option<runtime::RuntimeSvc>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    use std::os::unix::fs::PermissionsExt;
    let listen_err = |source| ServeError::Listen {
        path: socket.to_path_buf(),
        source,
    };
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(listen_err)?;
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(listen_err(e)),
    }
    // Bound under a temporary name, made 0600, then renamed into place: the
    // socket never exists at its path with the mode bind(2) gave it (0755
    // under the usual umask), so nobody else can connect in between — and
    // whoever waits for the path sees it only once it is ready.
    let staged = socket.with_extension(format!("sock.{}", std::process::id()));
    let _ = std::fs::remove_file(&staged);
    let listener = tokio::net::UnixListener::bind(&staged).map_err(listen_err)?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&staged, socket))
        .map_err(|e| {
            let _ = std::fs::remove_file(&staged);
            listen_err(e)
        })?;
    tracing::info!(socket = %socket.display(), "serving the CRI");
    let incoming = futures::stream::unfold(listener, |l| async move {
        let accepted = l.accept().await.map(|(stream, _)| stream);
        Some((accepted, l))
    });
    tonic::transport::Server::builder()
        .add_service(skiff_proto::cri::image_service_server::ImageServiceServer::new(images))
        .add_optional_service(
            runtime.map(skiff_proto::cri::runtime_service_server::RuntimeServiceServer::new),
        )
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    let _ = std::fs::remove_file(socket);
    Ok(())
}

/// Status codes for image errors: a missing image is NotFound (crictl and the
/// kubelet tell it apart), a bad name InvalidArgument, the rest Unavailable
/// (a registry or disk problem the caller may retry).
pub fn status_of(err: crate::image::ImageError) -> tonic::Status {
    use crate::image::ImageError as E;
    match &err {
        E::ImageNotFound(_) => tonic::Status::not_found(err.to_string()),
        E::Reference(_) | E::Digest(_) => tonic::Status::invalid_argument(err.to_string()),
        _ => tonic::Status::unavailable(err.to_string()),
    }
}
