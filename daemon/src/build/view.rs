//! An image's filesystem mounted for the builder (through a throw-away layer, removed on
//! drop) and held as a [`Root`]: the source tree of `COPY --from`, and the base image whose
//! symlinks a `COPY` destination is resolved through. Everything read from it goes through
//! the root, so the image's own links (`/x -> /`, `/y -> ../../..`) stay inside it.

use super::BuildError;
use crate::state::Ctx;
use berth_confine::Root;
use berth_image::Image;
use std::path::PathBuf;

/// An image's filesystem, mounted on a throw-away layer, open as a [`Root`].
pub(crate) struct ImageView {
    ctx: Ctx,
    layer: String,
    dir: PathBuf,
    mounted: bool,
    /// The mounted tree (closed before the unmount on drop).
    root: Option<Root>,
}

impl ImageView {
    /// Mounts `img` (a new layer on top of its layers) and opens it as a root.
    pub(crate) fn open(ctx: &Ctx, img: &Image) -> Result<ImageView, BuildError> {
        let layer = format!(
            "build-{}",
            (0..8)
                .map(|_| format!("{:02x}", rand::random::<u8>()))
                .collect::<String>()
        );
        let parent = img.top_chain().map(|c| berth_image::storage_id(&c));
        ctx.storage
            .create(
                &layer,
                parent.as_deref(),
                &berth_core::storage::CreateOpts {
                    rw: true,
                    ..Default::default()
                },
            )
            .map_err(|e| BuildError::msg(e.to_string()))?;
        // From here on, drop undoes what was done.
        let mut view = ImageView {
            ctx: ctx.clone(),
            dir: ctx.images.tmp_dir().join(&layer),
            layer,
            mounted: false,
            root: None,
        };
        std::fs::create_dir_all(&view.dir)
            .map_err(|e| BuildError::msg(format!("mounting stage image: {e}")))?;
        let mounts = ctx
            .storage
            .mounts(&view.layer)
            .map_err(|e| BuildError::msg(e.to_string()))?;
        berth_core::mount::mount_all(&mounts, &view.dir)
            .map_err(|e| BuildError::msg(format!("mounting stage image: {e}")))?;
        view.mounted = true;
        view.root = Some(
            Root::open(&view.dir)
                .map_err(|e| BuildError::msg(format!("mounting stage image: {e}")))?,
        );
        Ok(view)
    }

    /// The image's `/`.
    pub(crate) fn root(&self) -> Result<&Root, BuildError> {
        self.root
            .as_ref()
            .ok_or_else(|| BuildError::msg("stage image is not mounted"))
    }
}

impl Drop for ImageView {
    fn drop(&mut self) {
        self.root = None;
        if self.mounted {
            let _ = berth_core::mount::unmount(&self.dir);
        }
        let _ = std::fs::remove_dir(&self.dir);
        let _ = self.ctx.storage.remove(&self.layer);
    }
}
