//! Layers a build step lays out itself (`COPY`/`ADD`, a `WORKDIR` that does not exist yet):
//! a private staging folder, the base image's folders along the way mirrored in it (their
//! mode and owner, so a `COPY` into `/tmp/x` leaves `/tmp` 1777, as Docker's), and its diff
//! applied on top of the stage's image.

use super::view::ImageView;
use super::{copy, BuildError, Stage};
use crate::state::Ctx;
use berth_confine::{FileKind, Root};
use std::path::{Path, PathBuf};

/// A fresh private folder under the image store's temporary folder, removed when dropped.
pub(crate) struct Staging(PathBuf);

impl Staging {
    /// Creates one.
    pub(crate) fn new(ctx: &Ctx) -> Result<Staging, BuildError> {
        let path = ctx.images.tmp_dir().join(format!(
            "stage-{}",
            (0..8)
                .map(|_| format!("{:02x}", rand::random::<u8>()))
                .collect::<String>()
        ));
        std::fs::create_dir(&path).map_err(|e| BuildError::msg(format!("staging: {e}")))?;
        Ok(Staging(path))
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// Its root, for confined writes.
    pub(crate) fn root(&self) -> Result<Root, BuildError> {
        Root::open(&self.0).map_err(|e| BuildError::msg(format!("staging: {e}")))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates in `staged` each folder along `rel` (itself included) that exists in `base`, with
/// the mode and owner it has there; stops at the first that does not.
pub(crate) fn mirror_folders(
    base: Option<&Root>,
    staged: &Root,
    rel: &Path,
) -> Result<(), BuildError> {
    let Some(base) = base else {
        return Ok(());
    };
    let fail = |e: berth_confine::ConfineError| BuildError::msg(format!("COPY failed: {e}"));
    let mut cur = PathBuf::new();
    for part in rel.components() {
        cur.push(part);
        let Some(st) = base.lstat(&cur).map_err(fail)? else {
            return Ok(());
        };
        if st.kind != FileKind::Dir {
            return Ok(());
        }
        if staged.lstat(&cur).map_err(fail)?.is_none() {
            staged.mkdir(&cur, 0o700).map_err(fail)?;
        }
        staged.chown(&cur, st.uid, st.gid).map_err(fail)?;
        staged.chmod(&cur, st.mode).map_err(fail)?;
    }
    Ok(())
}

/// Applies the tree in `staging` as a new layer on the stage's image and records the image
/// (history `created_by`).
pub(crate) fn commit_tree(
    ctx: &Ctx,
    st: &mut Stage,
    staging: &Path,
    created_by: &str,
) -> Result<(), BuildError> {
    let (r, mut w) = std::io::pipe().map_err(|e| BuildError::msg(e.to_string()))?;
    let st_dir = staging.to_path_buf();
    let producer = std::thread::Builder::new()
        .name("berth-build-diff".into())
        .stack_size(super::BUILD_STACK)
        .spawn(move || {
            let res = berth_archive::write_diff_between(&st_dir, None, &mut w);
            drop(w);
            res
        })
        .map_err(|e| BuildError::msg(format!("committing the layer: {e}")))?;
    let parent_chain = st.image.as_ref().and_then(|i| i.top_chain());
    let mut reader = std::io::BufReader::new(r);
    let chain = ctx
        .images
        .apply_unknown_layer(parent_chain.as_deref(), &mut reader)
        .map_err(|e| BuildError::msg(e.to_string()))?;
    let _ = producer.join();
    let rec = ctx
        .images
        .layer(&chain)
        .ok_or_else(|| BuildError::msg("the new layer vanished"))?;
    super::steps::store_image(ctx, st, created_by, Some(&rec.diff_id))
}

/// `WORKDIR`: Docker's builder creates the folder (root's, 0755, parents too) when the image
/// lacks it, as a layer. True when it did (the stage moved to the new image).
pub(crate) fn workdir(ctx: &Ctx, st: &mut Stage, created_by: &str) -> Result<bool, BuildError> {
    let Some(img) = st.image.clone() else {
        return Ok(false);
    };
    let wd = st
        .cfg
        .get("WorkingDir")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("/")
        .to_string();
    let view = ImageView::open(ctx, &img)?;
    let base = view.root()?;
    let (rel, kind) = base
        .scoped_path(copy::clean_dest(&wd))
        .map_err(|e| BuildError::msg(format!("WORKDIR {wd}: {e}")))?;
    if kind.is_some() || rel.as_os_str().is_empty() {
        return Ok(false);
    }
    let staging = Staging::new(ctx)?;
    let staged = staging.root()?;
    mirror_folders(Some(base), &staged, &rel)?;
    staged
        .mkdir_all(&rel, 0o755)
        .map_err(|e| BuildError::msg(format!("WORKDIR {wd}: {e}")))?;
    drop(view);
    commit_tree(ctx, st, staging.path(), created_by)?;
    Ok(true)
}
