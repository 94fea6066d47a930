//! The CRI's image calls on the daemon's image store and pull service: the same images, tags
//! and events the Docker API has. Names go out fully qualified (`docker.io/library/busybox:1`)
//! as the CRI expects; any name the Docker API accepts resolves coming in.

use super::{blocking, cri_error, Engine};
use crate::images::pull::{resolve, Pull};
use berth_core::reference::Reference;
use berth_core::registry::Credentials;
use berth_cri::backend::{FsUsage, ImageBackend, ImageRecord, RegistryAuth};
use berth_cri::{CriError, CriResult};
use berth_image::{Image, ImageError};

/// A Docker-familiar name (`busybox:1`, `busybox@sha256:…`) fully qualified.
fn qualified(name: &str) -> String {
    Reference::parse(name)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| name.to_string())
}

fn record(img: &Image) -> ImageRecord {
    ImageRecord {
        id: img.id.clone(),
        repo_tags: img.repo_tags.iter().map(|t| qualified(t)).collect(),
        repo_digests: img.repo_digests.iter().map(|d| qualified(d)).collect(),
        size: img.size,
        user: img
            .config
            .pointer("/config/User")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string(),
        config_json: img.config.to_string(),
    }
}

fn image_error(e: ImageError) -> CriError {
    match e {
        ImageError::NotFound(m) => CriError::NotFound(format!("no such image: {m}")),
        ImageError::Conflict(m) => CriError::FailedPrecondition(m),
        ImageError::Reference(_) | ImageError::Invalid(_) | ImageError::Digest { .. } => {
            CriError::InvalidArgument(e.to_string())
        }
        other => CriError::Internal(other.to_string()),
    }
}

impl ImageBackend for Engine {
    async fn list_images(&self) -> CriResult<Vec<ImageRecord>> {
        let ctx = self.ctx.clone();
        blocking(move || Ok(ctx.images.list().iter().map(record).collect())).await
    }

    async fn image(&self, reference: &str) -> CriResult<Option<ImageRecord>> {
        let (ctx, name) = (self.ctx.clone(), reference.to_string());
        blocking(move || match ctx.images.resolve(&name) {
            Ok(img) => Ok(Some(record(&img))),
            Err(ImageError::NotFound(_)) => Ok(None),
            Err(e) => Err(image_error(e)),
        })
        .await
    }

    async fn pull_image(&self, reference: &str, auth: RegistryAuth) -> CriResult<String> {
        let r = Reference::parse(reference)
            .map_err(|e| CriError::InvalidArgument(format!("{reference}: {e}")))?;
        if !auth.registry_token.is_empty() {
            return Err(CriError::Unimplemented("PullImage with a registry token"));
        }
        let creds = Credentials {
            username: auth.username,
            password: auth.password,
            identity_token: auth.identity_token,
        };
        let ctx = self.ctx.clone();
        blocking(move || {
            let sources = crate::images::mirrors::sources(&ctx.config, &r);
            let m = resolve(&*ctx.registry, &r, &sources, None, &creds).map_err(cri_error)?;
            // The CRI has no progress stream: the messages are dropped.
            let p = Pull::new(ctx, creds, Box::new(|_| {}));
            p.run(&r, m).map_err(CriError::Internal)
        })
        .await
    }

    async fn remove_image(&self, reference: &str) -> CriResult<()> {
        let (ctx, name) = (self.ctx.clone(), reference.to_string());
        blocking(move || {
            // By ID or by any of its names, the image goes with every tag (as containerd's
            // and CRI-O's); a container still using it refuses the removal.
            let img = match ctx.images.resolve(&name) {
                Ok(img) => img,
                Err(ImageError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(image_error(e)),
            };
            if let Some(c) = ctx.containers.using_image(&img.id).first() {
                return Err(CriError::FailedPrecondition(format!(
                    "image {} is in use by container {c}",
                    img.id
                )));
            }
            match crate::images::remove::remove(&ctx, &img.id, true, true) {
                Ok(_) | Err(ImageError::NotFound(_)) => Ok(()),
                Err(e) => Err(image_error(e)),
            }
        })
        .await
    }

    async fn image_fs(&self) -> CriResult<Vec<FsUsage>> {
        let ctx = self.ctx.clone();
        blocking(move || {
            let (used, images) = ctx.images.disk_usage();
            let layers: std::collections::BTreeSet<String> =
                images.iter().flat_map(|(i, _)| i.chain_ids()).collect();
            Ok(vec![FsUsage {
                mountpoint: storage_dir(&ctx),
                used_bytes: used,
                // Not counted yet: one per layer stands in.
                inodes_used: layers.len() as u64,
            }])
        })
        .await
    }
}

/// The storage driver's folder (the data root when it has none of its own): where images'
/// and containers' layers live, as `ImageFsInfo` and the writable layers' stats name it.
pub(super) fn storage_dir(ctx: &crate::state::Ctx) -> String {
    let dir = ctx.config.data_root.join(ctx.storage.name());
    let dir = if dir.is_dir() {
        dir
    } else {
        ctx.config.data_root.clone()
    };
    dir.display().to_string()
}
