//! Serving the CRI on a unix socket: a stale socket file is replaced, the socket is made
//! `0660` (root's, as dockerd's and containerd's), and the server ends when the shutdown
//! future completes.

use crate::authority::FixAuthority;
use crate::backend::{ContainerBackend, ImageBackend, PodBackend, RuntimeBackend};
use crate::error::CriError;
use crate::image::Images;
use crate::runtime::Runtime;
use k8s_cri::v1::image_service_server::ImageServiceServer;
use k8s_cri::v1::runtime_service_server::RuntimeServiceServer;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::StreamExt;
use tonic::service::interceptor::InterceptedService;

/// Largest message accepted or sent (kubelet's own limit is 16 MiB).
const MAX_MESSAGE: usize = 16 << 20;

/// Binds `path` (its folder made if missing) for serving; the bound listener is returned so a
/// caller learns of a bad path before it reports itself started.
pub fn bind(path: &Path) -> Result<UnixListener, CriError> {
    let err = |source| CriError::Socket {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        _ => {}
    }
    let l = UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    Ok(l)
}

/// Serves both CRI services over `backend` on `listener` until `shutdown` completes; `Exec`,
/// `Attach` and `PortForward` answer URLs of `streaming` (none: `Unimplemented`).
pub async fn serve<B>(
    listener: UnixListener,
    backend: Arc<B>,
    streaming: Option<Arc<crate::stream::Streaming>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), CriError>
where
    B: ImageBackend + RuntimeBackend + PodBackend + ContainerBackend + crate::ResourceBackend,
{
    // Each request is announced to the backend first.
    let seen = |b: Arc<B>| {
        move |r: tonic::Request<()>| {
            b.on_request();
            Ok(r)
        }
    };
    let images = InterceptedService::new(
        ImageServiceServer::new(Images::new(backend.clone()))
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
        seen(backend.clone()),
    );
    let runtime = InterceptedService::new(
        RuntimeServiceServer::new(Runtime::new(backend.clone()).with_streaming(streaming))
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
        seen(backend),
    );
    tonic::transport::Server::builder()
        .add_service(runtime)
        .add_service(images)
        .serve_with_incoming_shutdown(
            UnixListenerStream::new(listener).map(|c| c.map(FixAuthority::new)),
            shutdown,
        )
        .await?;
    Ok(())
}
