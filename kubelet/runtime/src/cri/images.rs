//! The CRI ImageService over [`ImageStore`]: what `crictl images`, `crictl
//! pull` and the kubelet's image handling call. Store calls are blocking
//! (file IO, hashing), so they run on the blocking pool.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use skiff_proto::cri;
use tonic::{Request, Response, Status};

use super::status_of;
use crate::image::auth::{Credentials, Login};
use crate::image::pull::{PullOptions, pull};
use crate::image::reference::Reference;
use crate::image::store::{Image, ImageStore};

/// Where pulls may go and with which credentials.
#[derive(Debug, Clone, Default)]
pub struct PullSettings {
    /// Registries reached over plain HTTP (`127.0.0.1:5000`).
    pub insecure_registries: HashSet<String>,
    /// A docker `config.json` of per-registry credentials, read at every pull.
    pub credentials_file: Option<PathBuf>,
}

pub struct Images {
    store: Arc<ImageStore>,
    settings: PullSettings,
}

impl Images {
    pub fn new(store: Arc<ImageStore>, settings: PullSettings) -> Images {
        Images { store, settings }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ImageStore) -> Result<T, crate::image::ImageError> + Send + 'static,
    ) -> Result<T, Status> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Status::internal(format!("image store task: {e}")))?
            .map_err(status_of)
    }
}

/// The CRI form of an image: the user as uid when numeric, else as a name.
pub fn cri_image(image: &Image) -> cri::Image {
    let user = image.config.user.clone().unwrap_or_default();
    let user = user.split(':').next().unwrap_or_default().to_string();
    let (uid, username) = match user.parse::<i64>() {
        Ok(n) => (Some(cri::Int64Value { value: n }), String::new()),
        Err(_) => (None, user),
    };
    cri::Image {
        id: image.id.to_string(),
        repo_tags: image.names.clone(),
        repo_digests: image.repo_digests.clone(),
        size: image.size,
        uid,
        username,
        spec: Some(cri::ImageSpec {
            image: image.id.to_string(),
            ..Default::default()
        }),
        pinned: false,
    }
}

fn image_of(spec: Option<cri::ImageSpec>) -> Result<String, Status> {
    match spec.map(|s| s.image) {
        Some(i) if !i.is_empty() => Ok(i),
        _ => Err(Status::invalid_argument("no image given")),
    }
}

/// The credentials of a pull: the configured file, and the request's own
/// (from the pod's imagePullSecrets) for the image's registry.
fn credentials(
    settings: &PullSettings,
    image: &str,
    auth: Option<&cri::AuthConfig>,
) -> Result<Credentials, Status> {
    let mut creds = match &settings.credentials_file {
        Some(path) if path.exists() => Credentials::load(path).map_err(status_of)?,
        _ => Credentials::default(),
    };
    if let Some(a) = auth {
        let (username, password) = if !a.username.is_empty() {
            (a.username.clone(), a.password.clone())
        } else if !a.auth.is_empty() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(&a.auth)
                .map_err(|_| Status::invalid_argument("auth: not base64"))?;
            let text = String::from_utf8_lossy(&decoded).into_owned();
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| Status::invalid_argument("auth: expected base64(user:password)"))?;
            (u.to_string(), p.to_string())
        } else {
            return Ok(creds);
        };
        let reference =
            Reference::parse(image).map_err(|e| Status::invalid_argument(e.to_string()))?;
        creds.insert(reference.domain(), Login { username, password });
    }
    Ok(creds)
}

/// Bytes and inodes under `dir` (the image filesystem's use).
fn usage(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut inodes) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            inodes += 1;
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                bytes += meta.len();
            }
        }
    }
    (bytes, inodes)
}

#[tonic::async_trait]
impl cri::image_service_server::ImageService for Images {
    async fn list_images(
        &self,
        request: Request<cri::ListImagesRequest>,
    ) -> Result<Response<cri::ListImagesResponse>, Status> {
        let filter = request
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|s| s.image)
            .filter(|s| !s.is_empty());
        let images = match filter {
            Some(r) => self
                .blocking(move |s| s.get(&r))
                .await?
                .into_iter()
                .collect(),
            None => self.blocking(|s| Ok(s.list())).await?,
        };
        Ok(Response::new(cri::ListImagesResponse {
            images: images.iter().map(cri_image).collect(),
        }))
    }

    async fn image_status(
        &self,
        request: Request<cri::ImageStatusRequest>,
    ) -> Result<Response<cri::ImageStatusResponse>, Status> {
        let r = image_of(request.into_inner().image)?;
        let image = self.blocking(move |s| s.get(&r)).await?;
        Ok(Response::new(cri::ImageStatusResponse {
            image: image.as_ref().map(cri_image),
            info: Default::default(),
        }))
    }

    async fn pull_image(
        &self,
        request: Request<cri::PullImageRequest>,
    ) -> Result<Response<cri::PullImageResponse>, Status> {
        let request = request.into_inner();
        let image = image_of(request.image)?;
        let opts = PullOptions {
            insecure_registries: self.settings.insecure_registries.clone(),
            credentials: credentials(&self.settings, &image, request.auth.as_ref())?,
            ..Default::default()
        };
        tracing::info!(%image, "pulling");
        let pulled = pull(&self.store, &image, &opts).await.map_err(status_of)?;
        tracing::info!(%image, id = %pulled.id, "pulled");
        Ok(Response::new(cri::PullImageResponse {
            image_ref: pulled.id.to_string(),
        }))
    }

    async fn remove_image(
        &self,
        request: Request<cri::RemoveImageRequest>,
    ) -> Result<Response<cri::RemoveImageResponse>, Status> {
        let r = image_of(request.into_inner().image)?;
        match self.blocking(move |s| s.remove(&r)).await {
            // Idempotent, as the CRI asks: removing what is gone succeeds.
            Ok(_) => {
                // The disk is freed only when the layers and blobs no other
                // image needs go too (not those a running container has
                // mounted, even of this image).
                let pruned = self
                    .blocking(|s| {
                        let mountinfo =
                            std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
                        let in_use = crate::image::InUse {
                            layers: crate::image::gc::layers_mounted(&mountinfo, s.layers().dir()),
                            ..Default::default()
                        };
                        s.prune_unused(&in_use)
                    })
                    .await;
                match pruned {
                    Ok(report) => tracing::info!(
                        layers = report.layers.len(),
                        blobs = report.blobs.len(),
                        bytes = report.freed_bytes,
                        "image removed; unused layers and blobs pruned"
                    ),
                    Err(e) => tracing::warn!(error = %e, "image removed; pruning failed"),
                }
                Ok(Response::new(cri::RemoveImageResponse {}))
            }
            Err(s) if s.code() == tonic::Code::NotFound => {
                Ok(Response::new(cri::RemoveImageResponse {}))
            }
            Err(s) => Err(s),
        }
    }

    async fn image_fs_info(
        &self,
        _request: Request<cri::ImageFsInfoRequest>,
    ) -> Result<Response<cri::ImageFsInfoResponse>, Status> {
        let root = self.store.root().to_path_buf();
        let (bytes, inodes) = tokio::task::spawn_blocking({
            let root = root.clone();
            move || usage(&root)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(cri::ImageFsInfoResponse {
            image_filesystems: vec![cri::FilesystemUsage {
                timestamp: jiff::Timestamp::now().as_nanosecond() as i64,
                fs_id: Some(cri::FilesystemIdentifier {
                    mountpoint: root.display().to_string(),
                }),
                used_bytes: Some(cri::UInt64Value { value: bytes }),
                inodes_used: Some(cri::UInt64Value { value: inodes }),
            }],
            container_filesystems: vec![],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_credentials_from_the_request() {
        let settings = PullSettings::default();
        let auth = cri::AuthConfig {
            auth: base64::engine::general_purpose::STANDARD.encode("alice:s3cret"),
            ..Default::default()
        };
        let creds = credentials(&settings, "127.0.0.1:5000/team/app:1", Some(&auth)).unwrap();
        let login = creds.get("127.0.0.1:5000").unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("alice", "s3cret")
        );
        let plain = cri::AuthConfig {
            username: "bob".into(),
            password: "pw".into(),
            ..Default::default()
        };
        let creds = credentials(&settings, "busybox", Some(&plain)).unwrap();
        assert_eq!(creds.get("docker.io").unwrap().username, "bob");
        let bad = cri::AuthConfig {
            auth: "%%%".into(),
            ..Default::default()
        };
        assert_eq!(
            credentials(&settings, "busybox", Some(&bad))
                .unwrap_err()
                .code(),
            tonic::Code::InvalidArgument
        );
    }
}
