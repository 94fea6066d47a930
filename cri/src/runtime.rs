//! The CRI `RuntimeService` over a [`RuntimeBackend`] and a [`PodBackend`]: `Version`,
//! `Status` (RuntimeReady, NetworkReady) and `RuntimeConfig` (the cgroup driver) are answered
//! here, pod sandboxes through [`crate::pods`], stats and resources through [`crate::stats`];
//! the calls berth does not serve yet answer `Unimplemented` with their name.

use crate::backend::{CgroupDriver, Condition, ContainerBackend, PodBackend, RuntimeBackend};
use crate::backend_stats::ResourceBackend;
use crate::error::CriError;
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_server::RuntimeService;
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The runtime API version berth speaks.
pub const RUNTIME_API_VERSION: &str = "v1";
/// The name `Version` reports.
pub const RUNTIME_NAME: &str = "berth";

/// The runtime service; clones share the backend.
pub struct Runtime<B> {
    backend: Arc<B>,
    streaming: Option<Arc<crate::stream::Streaming>>,
    samples: crate::stats::Samples,
}

impl<B> Runtime<B> {
    /// The service over `backend` (no streaming server: `Exec`, `Attach` and `PortForward`
    /// answer `Unimplemented`).
    pub fn new(backend: Arc<B>) -> Self {
        Runtime {
            backend,
            streaming: None,
            samples: Default::default(),
        }
    }

    /// The service handing out URLs of `streaming`.
    pub fn with_streaming(mut self, streaming: Option<Arc<crate::stream::Streaming>>) -> Self {
        self.streaming = streaming;
        self
    }
}

/// A `Status` condition.
fn condition(kind: &str, c: Condition) -> cri::RuntimeCondition {
    cri::RuntimeCondition {
        r#type: kind.to_string(),
        status: c.ready,
        reason: c.reason,
        message: c.message,
    }
}

/// The stream `GetContainerEvents` answers with.
type EventStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send>>;

#[tonic::async_trait]
impl<B: RuntimeBackend + PodBackend + ContainerBackend + ResourceBackend> RuntimeService
    for Runtime<B>
{
    async fn version(
        &self,
        _req: Request<cri::VersionRequest>,
    ) -> Result<Response<cri::VersionResponse>, Status> {
        Ok(Response::new(cri::VersionResponse {
            // The version of the kubelet runtime API (CRI's own field, "0.1.0" by convention).
            version: "0.1.0".into(),
            runtime_name: RUNTIME_NAME.into(),
            runtime_version: self.backend.engine_version(),
            runtime_api_version: RUNTIME_API_VERSION.into(),
        }))
    }

    async fn status(
        &self,
        req: Request<cri::StatusRequest>,
    ) -> Result<Response<cri::StatusResponse>, Status> {
        let h = self.backend.health().await;
        let info = if req.into_inner().verbose {
            h.info.into_iter().collect()
        } else {
            Default::default()
        };
        Ok(Response::new(cri::StatusResponse {
            status: Some(cri::RuntimeStatus {
                conditions: vec![
                    condition("RuntimeReady", h.runtime),
                    condition("NetworkReady", h.network),
                ],
            }),
            info,
            ..Default::default()
        }))
    }

    async fn runtime_config(
        &self,
        _req: Request<cri::RuntimeConfigRequest>,
    ) -> Result<Response<cri::RuntimeConfigResponse>, Status> {
        let driver = match self.backend.cgroup_driver() {
            CgroupDriver::Cgroupfs => cri::CgroupDriver::Cgroupfs,
            CgroupDriver::Systemd => cri::CgroupDriver::Systemd,
        };
        Ok(Response::new(cri::RuntimeConfigResponse {
            linux: Some(cri::LinuxRuntimeConfiguration {
                cgroup_driver: driver as i32,
            }),
        }))
    }

    type GetContainerEventsStream = EventStream;

    async fn get_container_events(
        &self,
        _req: Request<cri::GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        Err(CriError::Unimplemented("GetContainerEvents").into())
    }

    async fn run_pod_sandbox(
        &self,
        req: Request<cri::RunPodSandboxRequest>,
    ) -> Result<Response<cri::RunPodSandboxResponse>, Status> {
        let config = req
            .into_inner()
            .config
            .ok_or_else(|| CriError::InvalidArgument("RunPodSandbox without a config".into()))?;
        let pod_sandbox_id = self.backend.run_pod(crate::pods::spec(config)?).await?;
        Ok(Response::new(cri::RunPodSandboxResponse { pod_sandbox_id }))
    }
    async fn stop_pod_sandbox(
        &self,
        req: Request<cri::StopPodSandboxRequest>,
    ) -> Result<Response<cri::StopPodSandboxResponse>, Status> {
        self.backend
            .stop_pod(&req.into_inner().pod_sandbox_id)
            .await?;
        Ok(Response::new(cri::StopPodSandboxResponse {}))
    }
    async fn remove_pod_sandbox(
        &self,
        req: Request<cri::RemovePodSandboxRequest>,
    ) -> Result<Response<cri::RemovePodSandboxResponse>, Status> {
        self.backend
            .remove_pod(&req.into_inner().pod_sandbox_id)
            .await?;
        Ok(Response::new(cri::RemovePodSandboxResponse {}))
    }
    async fn pod_sandbox_status(
        &self,
        req: Request<cri::PodSandboxStatusRequest>,
    ) -> Result<Response<cri::PodSandboxStatusResponse>, Status> {
        let r = crate::pods::pod_status(&*self.backend, req.into_inner()).await?;
        Ok(Response::new(r))
    }
    async fn list_pod_sandbox(
        &self,
        req: Request<cri::ListPodSandboxRequest>,
    ) -> Result<Response<cri::ListPodSandboxResponse>, Status> {
        let items = crate::pods::list(&*self.backend, req.into_inner().filter).await?;
        Ok(Response::new(cri::ListPodSandboxResponse { items }))
    }
    async fn create_container(
        &self,
        req: Request<cri::CreateContainerRequest>,
    ) -> Result<Response<cri::CreateContainerResponse>, Status> {
        let spec = crate::containers::spec(req.into_inner())?;
        let container_id = self.backend.create_container(spec).await?;
        Ok(Response::new(cri::CreateContainerResponse { container_id }))
    }
    async fn start_container(
        &self,
        req: Request<cri::StartContainerRequest>,
    ) -> Result<Response<cri::StartContainerResponse>, Status> {
        self.backend
            .start_container(&req.into_inner().container_id)
            .await?;
        Ok(Response::new(cri::StartContainerResponse {}))
    }
    async fn stop_container(
        &self,
        req: Request<cri::StopContainerRequest>,
    ) -> Result<Response<cri::StopContainerResponse>, Status> {
        let r = req.into_inner();
        self.backend
            .stop_container(&r.container_id, r.timeout)
            .await?;
        Ok(Response::new(cri::StopContainerResponse {}))
    }
    async fn remove_container(
        &self,
        req: Request<cri::RemoveContainerRequest>,
    ) -> Result<Response<cri::RemoveContainerResponse>, Status> {
        self.backend
            .remove_container(&req.into_inner().container_id)
            .await?;
        Ok(Response::new(cri::RemoveContainerResponse {}))
    }
    async fn list_containers(
        &self,
        req: Request<cri::ListContainersRequest>,
    ) -> Result<Response<cri::ListContainersResponse>, Status> {
        let containers = crate::containers::list(&*self.backend, req.into_inner().filter).await?;
        Ok(Response::new(cri::ListContainersResponse { containers }))
    }
    async fn container_status(
        &self,
        req: Request<cri::ContainerStatusRequest>,
    ) -> Result<Response<cri::ContainerStatusResponse>, Status> {
        let r = crate::containers::container_status(&*self.backend, req.into_inner()).await?;
        Ok(Response::new(r))
    }
    async fn update_container_resources(
        &self,
        req: Request<cri::UpdateContainerResourcesRequest>,
    ) -> Result<Response<cri::UpdateContainerResourcesResponse>, Status> {
        let r = req.into_inner();
        let res = crate::stats::resources(r.linux.as_ref())?;
        self.backend.update_resources(&r.container_id, res).await?;
        Ok(Response::new(cri::UpdateContainerResourcesResponse {}))
    }
    async fn reopen_container_log(
        &self,
        req: Request<cri::ReopenContainerLogRequest>,
    ) -> Result<Response<cri::ReopenContainerLogResponse>, Status> {
        self.backend
            .reopen_log(&req.into_inner().container_id)
            .await?;
        Ok(Response::new(cri::ReopenContainerLogResponse {}))
    }
    async fn exec_sync(
        &self,
        req: Request<cri::ExecSyncRequest>,
    ) -> Result<Response<cri::ExecSyncResponse>, Status> {
        let r = req.into_inner();
        let out = self
            .backend
            .exec_sync(&r.container_id, r.cmd, r.timeout)
            .await?;
        Ok(Response::new(cri::ExecSyncResponse {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
        }))
    }
    async fn exec(
        &self,
        req: Request<cri::ExecRequest>,
    ) -> Result<Response<cri::ExecResponse>, Status> {
        let s = self.streaming.as_deref();
        let r = crate::stream::requests::exec(s, &*self.backend, req.into_inner()).await?;
        Ok(Response::new(r))
    }
    async fn attach(
        &self,
        req: Request<cri::AttachRequest>,
    ) -> Result<Response<cri::AttachResponse>, Status> {
        let s = self.streaming.as_deref();
        let r = crate::stream::requests::attach(s, &*self.backend, req.into_inner()).await?;
        Ok(Response::new(r))
    }
    async fn port_forward(
        &self,
        req: Request<cri::PortForwardRequest>,
    ) -> Result<Response<cri::PortForwardResponse>, Status> {
        let s = self.streaming.as_deref();
        let r = crate::stream::requests::port_forward(s, &*self.backend, req.into_inner()).await?;
        Ok(Response::new(r))
    }
    async fn container_stats(
        &self,
        req: Request<cri::ContainerStatsRequest>,
    ) -> Result<Response<cri::ContainerStatsResponse>, Status> {
        let id = req.into_inner().container_id;
        let stats = crate::stats::container(&*self.backend, &self.samples, &id).await?;
        Ok(Response::new(cri::ContainerStatsResponse {
            stats: Some(stats),
        }))
    }
    async fn list_container_stats(
        &self,
        req: Request<cri::ListContainerStatsRequest>,
    ) -> Result<Response<cri::ListContainerStatsResponse>, Status> {
        let f = req.into_inner().filter;
        let stats = crate::stats::list_containers(&*self.backend, &self.samples, f).await?;
        Ok(Response::new(cri::ListContainerStatsResponse { stats }))
    }
    async fn pod_sandbox_stats(
        &self,
        req: Request<cri::PodSandboxStatsRequest>,
    ) -> Result<Response<cri::PodSandboxStatsResponse>, Status> {
        let id = req.into_inner().pod_sandbox_id;
        let stats = crate::stats::pod(&*self.backend, &self.samples, &id).await?;
        Ok(Response::new(cri::PodSandboxStatsResponse {
            stats: Some(stats),
        }))
    }
    async fn list_pod_sandbox_stats(
        &self,
        req: Request<cri::ListPodSandboxStatsRequest>,
    ) -> Result<Response<cri::ListPodSandboxStatsResponse>, Status> {
        let f = req.into_inner().filter;
        let stats = crate::stats::list_pods(&*self.backend, &self.samples, f).await?;
        Ok(Response::new(cri::ListPodSandboxStatsResponse { stats }))
    }
    async fn update_runtime_config(
        &self,
        _req: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<cri::UpdateRuntimeConfigResponse>, Status> {
        Err(CriError::Unimplemented("UpdateRuntimeConfig").into())
    }
    async fn checkpoint_container(
        &self,
        _req: Request<cri::CheckpointContainerRequest>,
    ) -> Result<Response<cri::CheckpointContainerResponse>, Status> {
        Err(CriError::Unimplemented("CheckpointContainer").into())
    }
    async fn list_metric_descriptors(
        &self,
        _req: Request<cri::ListMetricDescriptorsRequest>,
    ) -> Result<Response<cri::ListMetricDescriptorsResponse>, Status> {
        Err(CriError::Unimplemented("ListMetricDescriptors").into())
    }
    async fn list_pod_sandbox_metrics(
        &self,
        _req: Request<cri::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<cri::ListPodSandboxMetricsResponse>, Status> {
        Err(CriError::Unimplemented("ListPodSandboxMetrics").into())
    }
}
