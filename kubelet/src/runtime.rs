//! The kubelet's only way to its container runtime: the CRI calls it makes, as
//! a trait. [`CriClient`] speaks them over the runtime's unix socket (the
//! embedded runtime serves it in the kubelet process; crictl can use the same
//! socket); [`fake::FakeRuntime`] records them for tests of the pod logic.

use std::future::Future;
use std::path::Path;

use skiff_proto::cri;
use skiff_proto::cri::image_service_client::ImageServiceClient;
use skiff_proto::cri::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container runtime: {}", .0.message())]
    Call(#[from] tonic::Status),
}

impl RuntimeError {
    /// Whether the runtime said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RuntimeError::Call(s) if s.code() == tonic::Code::NotFound)
    }
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

/// The CRI calls the kubelet makes. Sandboxes and containers carry the pod's
/// labels (`io.kubernetes.pod.uid`, …), so the kubelet can find them again
/// after a restart without state of its own.
pub trait Runtime: Send + Sync + 'static {
    fn status(&self) -> impl Future<Output = Result<cri::RuntimeStatus>> + Send;
    fn run_pod_sandbox(
        &self,
        config: cri::PodSandboxConfig,
    ) -> impl Future<Output = Result<String>> + Send;
    fn stop_pod_sandbox(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn remove_pod_sandbox(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn pod_sandbox_status(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<cri::PodSandboxStatus>> + Send;
    /// Sandboxes whose labels include all of `labels`.
    fn list_pod_sandboxes(
        &self,
        labels: &[(&str, &str)],
    ) -> impl Future<Output = Result<Vec<cri::PodSandbox>>> + Send;
    fn create_container(
        &self,
        sandbox_id: &str,
        config: cri::ContainerConfig,
        sandbox_config: cri::PodSandboxConfig,
    ) -> impl Future<Output = Result<String>> + Send;
    fn start_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// SIGTERM, SIGKILL after `timeout_seconds`.
    fn stop_container(
        &self,
        id: &str,
        timeout_seconds: i64,
    ) -> impl Future<Output = Result<()>> + Send;
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn list_containers(
        &self,
        sandbox_id: &str,
    ) -> impl Future<Output = Result<Vec<cri::Container>>> + Send;
    fn container_status(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<cri::ContainerStatus>> + Send;
    /// Every image the runtime holds.
    fn list_images(&self) -> impl Future<Output = Result<Vec<cri::Image>>> + Send;
    /// The image's id when present.
    fn image_status(&self, image: &str) -> impl Future<Output = Result<Option<cri::Image>>> + Send;
    /// Removes an image (by id or name); removing one that is gone succeeds.
    fn remove_image(&self, image: &str) -> impl Future<Output = Result<()>> + Send;
    /// Pulls and answers the image's reference (its id).
    fn pull_image(
        &self,
        image: &str,
        auth: Option<cri::AuthConfig>,
    ) -> impl Future<Output = Result<String>> + Send;
    /// Tells the runtime the node's pod CIDR (new sandboxes' addresses).
    fn update_runtime_config(&self, pod_cidr: &str) -> impl Future<Output = Result<()>> + Send;
    /// Runs `cmd` in the running container `id` (exec probes); gives up
    /// after `timeout_seconds` (0: no limit).
    fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout_seconds: i64,
    ) -> impl Future<Output = Result<cri::ExecSyncResponse>> + Send;
    /// Prepares a streaming exec (`kubectl exec`) and returns the URL of
    /// the runtime's streaming server that runs it.
    fn exec(&self, request: cri::ExecRequest) -> impl Future<Output = Result<String>> + Send;
    /// Prepares a streaming attach (`kubectl attach`, `kubectl run -i`) and
    /// returns the URL of the runtime's streaming server that serves it.
    fn attach(&self, request: cri::AttachRequest) -> impl Future<Output = Result<String>> + Send;
}

/// The CRI over a unix socket.
#[derive(Clone)]
pub struct CriClient {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

impl CriClient {
    /// Connects to the runtime's socket (lazily: the first call dials).
    pub fn connect_lazy(socket: &Path) -> CriClient {
        let channel = cri::unix_channel(socket);
        CriClient {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        }
    }
}

impl CriClient {
    /// The whole `ContainerStatus` answer; with `verbose` (`crictl
    /// inspect`) also the runtime's extra information, as JSON by key.
    pub async fn container_status_response(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<cri::ContainerStatusResponse> {
        let r = self
            .runtime
            .clone()
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose,
            })
            .await?;
        Ok(r.into_inner())
    }

    /// The whole `PodSandboxStatus` answer (`verbose`: `crictl inspectp`).
    pub async fn pod_sandbox_status_response(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<cri::PodSandboxStatusResponse> {
        let r = self
            .runtime
            .clone()
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose,
            })
            .await?;
        Ok(r.into_inner())
    }

    /// The whole `ImageStatus` answer (`verbose`: `crictl inspecti`).
    pub async fn image_status_response(
        &self,
        image: &str,
        verbose: bool,
    ) -> Result<cri::ImageStatusResponse> {
        let r = self
            .images
            .clone()
            .image_status(cri::ImageStatusRequest {
                image: Some(cri::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                verbose,
            })
            .await?;
        Ok(r.into_inner())
    }
}

fn labels_of(labels: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Runtime for CriClient {
    async fn exec(&self, request: cri::ExecRequest) -> Result<String> {
        Ok(self.runtime.clone().exec(request).await?.into_inner().url)
    }

    async fn attach(&self, request: cri::AttachRequest) -> Result<String> {
        Ok(self.runtime.clone().attach(request).await?.into_inner().url)
    }

    async fn update_runtime_config(&self, pod_cidr: &str) -> Result<()> {
        self.runtime
            .clone()
            .update_runtime_config(cri::UpdateRuntimeConfigRequest {
                runtime_config: Some(cri::RuntimeConfig {
                    network_config: Some(cri::NetworkConfig {
                        pod_cidr: pod_cidr.into(),
                    }),
                }),
            })
            .await?;
        Ok(())
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: &[String],
        timeout_seconds: i64,
    ) -> Result<cri::ExecSyncResponse> {
        let r = self
            .runtime
            .clone()
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.into(),
                cmd: cmd.to_vec(),
                timeout: timeout_seconds,
            })
            .await?;
        Ok(r.into_inner())
    }

    async fn status(&self) -> Result<cri::RuntimeStatus> {
        let r = self
            .runtime
            .clone()
            .status(cri::StatusRequest { verbose: false })
            .await?;
        Ok(r.into_inner().status.unwrap_or_default())
    }

    async fn run_pod_sandbox(&self, config: cri::PodSandboxConfig) -> Result<String> {
        let r = self
            .runtime
            .clone()
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await?;
        Ok(r.into_inner().pod_sandbox_id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        self.runtime
            .clone()
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await?;
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        self.runtime
            .clone()
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await?;
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<cri::PodSandboxStatus> {
        let r = self.pod_sandbox_status_response(id, false).await?;
        Ok(r.status.unwrap_or_default())
    }

    async fn list_pod_sandboxes(&self, labels: &[(&str, &str)]) -> Result<Vec<cri::PodSandbox>> {
        let r = self
            .runtime
            .clone()
            .list_pod_sandbox(cri::ListPodSandboxRequest {
                filter: Some(cri::PodSandboxFilter {
                    label_selector: labels_of(labels),
                    ..Default::default()
                }),
            })
            .await?;
        Ok(r.into_inner().items)
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: cri::ContainerConfig,
        sandbox_config: cri::PodSandboxConfig,
    ) -> Result<String> {
        let r = self
            .runtime
            .clone()
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.into(),
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            })
            .await?;
        Ok(r.into_inner().container_id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.runtime
            .clone()
            .start_container(cri::StartContainerRequest {
                container_id: id.into(),
            })
            .await?;
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout_seconds: i64) -> Result<()> {
        self.runtime
            .clone()
            .stop_container(cri::StopContainerRequest {
                container_id: id.into(),
                timeout: timeout_seconds,
            })
            .await?;
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.runtime
            .clone()
            .remove_container(cri::RemoveContainerRequest {
                container_id: id.into(),
            })
            .await?;
        Ok(())
    }

    async fn list_containers(&self, sandbox_id: &str) -> Result<Vec<cri::Container>> {
        let r = self
            .runtime
            .clone()
            .list_containers(cri::ListContainersRequest {
                filter: Some(cri::ContainerFilter {
                    pod_sandbox_id: sandbox_id.into(),
                    ..Default::default()
                }),
            })
            .await?;
        Ok(r.into_inner().containers)
    }

    async fn container_status(&self, id: &str) -> Result<cri::ContainerStatus> {
        let r = self.container_status_response(id, false).await?;
        Ok(r.status.unwrap_or_default())
    }

    async fn list_images(&self) -> Result<Vec<cri::Image>> {
        let r = self
            .images
            .clone()
            .list_images(cri::ListImagesRequest { filter: None })
            .await?;
        Ok(r.into_inner().images)
    }

    async fn image_status(&self, image: &str) -> Result<Option<cri::Image>> {
        Ok(self.image_status_response(image, false).await?.image)
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        self.images
            .clone()
            .remove_image(cri::RemoveImageRequest {
                image: Some(cri::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
            })
            .await?;
        Ok(())
    }

    async fn pull_image(&self, image: &str, auth: Option<cri::AuthConfig>) -> Result<String> {
        let r = self
            .images
            .clone()
            .pull_image(cri::PullImageRequest {
                image: Some(cri::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                auth,
                sandbox_config: None,
            })
            .await?;
        Ok(r.into_inner().image_ref)
    }
}

pub mod fake;
