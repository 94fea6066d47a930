//! The CRI `ImageService` over an [`ImageBackend`]: list, status (with `verbose` info), pull
//! (with the request's registry credentials), idempotent removal and the image filesystem's
//! usage.

use crate::backend::{ImageBackend, ImageRecord, RegistryAuth};
use crate::error::CriError;
use base64::Engine as _;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_server::ImageService;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The image service; clones share the backend.
pub struct Images<B> {
    backend: Arc<B>,
}

impl<B> Images<B> {
    /// The service over `backend`.
    pub fn new(backend: Arc<B>) -> Self {
        Images { backend }
    }
}

/// The image reference a request names, refusing an empty one.
fn reference(spec: Option<&cri::ImageSpec>) -> Result<&str, CriError> {
    spec.map(|s| s.image.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| CriError::InvalidArgument("no image was named".into()))
}

/// The uid or user name an image runs as (`User` of its config, group dropped): a number is a
/// uid, anything else a name; no user leaves both unset.
pub fn image_user(user: &str) -> (Option<i64>, String) {
    let name = user.split(':').next().unwrap_or("");
    if name.is_empty() {
        return (None, String::new());
    }
    match name.parse::<i64>() {
        Ok(uid) => (Some(uid), String::new()),
        Err(_) => (None, name.to_string()),
    }
}

/// An image in the CRI's terms.
fn to_cri(r: &ImageRecord) -> cri::Image {
    let (uid, username) = image_user(&r.user);
    cri::Image {
        id: r.id.clone(),
        repo_tags: r.repo_tags.clone(),
        repo_digests: r.repo_digests.clone(),
        size: r.size,
        uid: uid.map(|value| cri::Int64Value { value }),
        username,
        spec: Some(cri::ImageSpec {
            image: r.id.clone(),
            ..Default::default()
        }),
        pinned: false,
    }
}

/// The verbose `info` of `ImageStatus`: one key, `info`, holding the ID, tags and the image
/// config as JSON (what `crictl inspecti` prints).
fn verbose_info(r: &ImageRecord) -> HashMap<String, String> {
    let config: serde_json::Value =
        serde_json::from_str(&r.config_json).unwrap_or(serde_json::Value::Null);
    let doc = serde_json::json!({
        "id": r.id,
        "repoTags": r.repo_tags,
        "repoDigests": r.repo_digests,
        "size": r.size,
        "imageSpec": config,
    });
    HashMap::from([("info".to_string(), doc.to_string())])
}

/// The credentials of a pull: `auth` (base64 `user:password`) fills in what the separate
/// fields leave empty.
pub fn registry_auth(a: Option<cri::AuthConfig>) -> Result<RegistryAuth, CriError> {
    let Some(a) = a else {
        return Ok(RegistryAuth::default());
    };
    let mut out = RegistryAuth {
        username: a.username,
        password: a.password,
        identity_token: a.identity_token,
        registry_token: a.registry_token,
    };
    if !a.auth.is_empty() && out.username.is_empty() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.auth.trim())
            .map_err(|e| CriError::InvalidArgument(format!("invalid auth: {e}")))?;
        let text = String::from_utf8(raw)
            .map_err(|_| CriError::InvalidArgument("invalid auth: not UTF-8".into()))?;
        let (user, pass) = text.split_once(':').ok_or_else(|| {
            CriError::InvalidArgument("invalid auth: expected base64 of user:password".into())
        })?;
        out.username = user.to_string();
        out.password = pass.to_string();
    }
    Ok(out)
}

#[tonic::async_trait]
impl<B: ImageBackend> ImageService for Images<B> {
    async fn list_images(
        &self,
        req: Request<cri::ListImagesRequest>,
    ) -> Result<Response<cri::ListImagesResponse>, Status> {
        let wanted = req
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|s| s.image)
            .filter(|s| !s.is_empty());
        let images = match wanted {
            Some(r) => self.backend.image(&r).await?.into_iter().collect(),
            None => self.backend.list_images().await?,
        };
        Ok(Response::new(cri::ListImagesResponse {
            images: images.iter().map(to_cri).collect(),
        }))
    }

    async fn image_status(
        &self,
        req: Request<cri::ImageStatusRequest>,
    ) -> Result<Response<cri::ImageStatusResponse>, Status> {
        let req = req.into_inner();
        let name = reference(req.image.as_ref())?;
        // A missing image is an empty answer, not an error (kubelet pulls on it).
        let Some(img) = self.backend.image(name).await? else {
            return Ok(Response::new(cri::ImageStatusResponse::default()));
        };
        Ok(Response::new(cri::ImageStatusResponse {
            image: Some(to_cri(&img)),
            info: if req.verbose {
                verbose_info(&img)
            } else {
                HashMap::new()
            },
        }))
    }

    async fn pull_image(
        &self,
        req: Request<cri::PullImageRequest>,
    ) -> Result<Response<cri::PullImageResponse>, Status> {
        let req = req.into_inner();
        let name = reference(req.image.as_ref())?.to_string();
        let auth = registry_auth(req.auth)?;
        let image_ref = self.backend.pull_image(&name, auth).await?;
        Ok(Response::new(cri::PullImageResponse { image_ref }))
    }

    async fn remove_image(
        &self,
        req: Request<cri::RemoveImageRequest>,
    ) -> Result<Response<cri::RemoveImageResponse>, Status> {
        let req = req.into_inner();
        self.backend
            .remove_image(reference(req.image.as_ref())?)
            .await?;
        Ok(Response::new(cri::RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _req: Request<cri::ImageFsInfoRequest>,
    ) -> Result<Response<cri::ImageFsInfoResponse>, Status> {
        let timestamp = crate::now_nanos();
        let image_filesystems = self
            .backend
            .image_fs()
            .await?
            .into_iter()
            .map(|u| cri::FilesystemUsage {
                timestamp,
                fs_id: Some(cri::FilesystemIdentifier {
                    mountpoint: u.mountpoint,
                }),
                used_bytes: Some(cri::UInt64Value {
                    value: u.used_bytes,
                }),
                inodes_used: Some(cri::UInt64Value {
                    value: u.inodes_used,
                }),
            })
            .collect();
        Ok(Response::new(cri::ImageFsInfoResponse {
            image_filesystems,
            container_filesystems: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_user_is_a_uid_or_a_name() {
        assert_eq!(image_user(""), (None, String::new()));
        assert_eq!(image_user("1000"), (Some(1000), String::new()));
        assert_eq!(image_user("1000:50"), (Some(1000), String::new()));
        assert_eq!(image_user("nobody:grp"), (None, "nobody".to_string()));
    }

    #[test]
    fn auth_field_fills_user_and_password() {
        let a = cri::AuthConfig {
            auth: base64::engine::general_purpose::STANDARD.encode("u:p:w"),
            ..Default::default()
        };
        let r = registry_auth(Some(a)).expect("auth");
        assert_eq!((r.username.as_str(), r.password.as_str()), ("u", "p:w"));
        let bad = cri::AuthConfig {
            auth: "!!".into(),
            ..Default::default()
        };
        assert!(registry_auth(Some(bad)).is_err());
        assert_eq!(registry_auth(None).expect("none"), RegistryAuth::default());
    }
}
