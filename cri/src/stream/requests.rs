//! The CRI's `Exec`, `Attach` and `PortForward` calls: each request is checked as kubelet's
//! streaming server and containerd check it (a command; at least one stream; no stderr with a
//! TTY; a running container or a ready pod), parked, and answered with its streaming URL.

use super::backend::{ExecSpec, StreamOpts};
use super::{StreamRequest, Streaming};
use crate::backend::{ContainerBackend, ContainerState, PodBackend};
use crate::error::{CriError, CriResult};
use k8s_cri::v1 as cri;

/// The streaming server, or the refusal when berthd runs without one.
fn server(s: Option<&Streaming>) -> CriResult<&Streaming> {
    s.ok_or(CriError::Unimplemented("streaming (no streaming server)"))
}

/// Checks a request's streams as kubelet does.
fn opts(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> CriResult<StreamOpts> {
    if tty && stderr {
        return Err(CriError::InvalidArgument(
            "tty and stderr cannot both be true".into(),
        ));
    }
    if !stdin && !stdout && !stderr {
        return Err(CriError::InvalidArgument(
            "one of stdin, stdout, or stderr must be set".into(),
        ));
    }
    Ok(StreamOpts {
        stdin,
        stdout,
        stderr,
        tty,
    })
}

/// The full ID of the running container `id` names.
async fn running(b: &impl ContainerBackend, id: &str) -> CriResult<String> {
    let c = b
        .container(id)
        .await?
        .ok_or_else(|| CriError::NotFound(format!("container {id:?} not found")))?;
    if c.state != ContainerState::Running {
        return Err(CriError::FailedPrecondition(format!(
            "container {} is not running",
            c.id
        )));
    }
    Ok(c.id)
}

/// `Exec`.
pub async fn exec(
    s: Option<&Streaming>,
    b: &impl ContainerBackend,
    r: cri::ExecRequest,
) -> CriResult<cri::ExecResponse> {
    let s = server(s)?;
    if r.cmd.is_empty() {
        return Err(CriError::InvalidArgument("cmd is empty".into()));
    }
    let opts = opts(r.stdin, r.stdout, r.stderr, r.tty)?;
    let container_id = running(b, &r.container_id).await?;
    let url = s.url(StreamRequest::Exec(ExecSpec {
        container_id,
        cmd: r.cmd,
        opts,
    }))?;
    Ok(cri::ExecResponse { url })
}

/// `Attach`.
pub async fn attach(
    s: Option<&Streaming>,
    b: &impl ContainerBackend,
    r: cri::AttachRequest,
) -> CriResult<cri::AttachResponse> {
    let s = server(s)?;
    let opts = opts(r.stdin, r.stdout, r.stderr, r.tty)?;
    let container_id = running(b, &r.container_id).await?;
    let url = s.url(StreamRequest::Attach { container_id, opts })?;
    Ok(cri::AttachResponse { url })
}

/// `PortForward`.
pub async fn port_forward(
    s: Option<&Streaming>,
    b: &impl PodBackend,
    r: cri::PortForwardRequest,
) -> CriResult<cri::PortForwardResponse> {
    let s = server(s)?;
    let pod = b.pod(&r.pod_sandbox_id).await?.ok_or_else(|| {
        CriError::NotFound(format!("pod sandbox {:?} not found", r.pod_sandbox_id))
    })?;
    if !pod.ready {
        return Err(CriError::FailedPrecondition(format!(
            "pod sandbox {} is not ready",
            pod.id
        )));
    }
    if r.port.len() > super::portforward_ws::MAX_PORTS {
        return Err(CriError::InvalidArgument(format!(
            "at most {} ports can be forwarded at once",
            super::portforward_ws::MAX_PORTS
        )));
    }
    let url = s.url(StreamRequest::PortForward {
        pod_id: pod.id,
        ports: r.port,
    })?;
    Ok(cri::PortForwardResponse { url })
}
