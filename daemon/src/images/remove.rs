//! Removing images (`docker rmi`, the CRI's `RemoveImage`, image prune): the store's removal
//! with Docker's rules (what containers use, what they run), the init layers it orphans, and
//! the `untag`/`delete` events dockerd publishes.

use crate::containers::initlayer::InitLayers;
use crate::state::Ctx;
use berth_image::{DeleteItem, ImageError, ImageUsage};
use std::collections::BTreeMap;

/// What the containers area tells the image store.
pub struct Usage(pub Ctx);

impl ImageUsage for Usage {
    fn containers_using(&self, image_id: &str) -> Vec<String> {
        self.0.containers.using_image(image_id)
    }
    fn is_running(&self, id: &str) -> bool {
        self.0.containers.get(id).is_ok_and(|c| c.running())
    }
}

/// Removes the image `name` names as `docker rmi` does (`force`: untag and remove even when
/// several tags or stopped containers hold it; `prune`: untagged parents go too), deletes the
/// init layers that orphans and publishes the events. Blocking.
pub fn remove(
    ctx: &Ctx,
    name: &str,
    force: bool,
    prune: bool,
) -> Result<Vec<DeleteItem>, ImageError> {
    let before: Vec<String> = ctx.images.ids();
    let img = ctx.images.resolve(name)?;
    let list = ctx.images.remove(name, force, prune, &Usage(ctx.clone()))?;
    InitLayers::of(ctx).remove_orphans(ctx.storage.as_ref());
    removal_events_labelled(ctx, &img.id, &img.labels(), &list, &before);
    Ok(list)
}

/// An image event's attributes as dockerd's: the image's labels, then `name`.
pub fn image_attrs(labels: BTreeMap<String, String>, name: &str) -> BTreeMap<String, String> {
    let mut a = labels;
    a.insert("name".into(), name.into());
    a
}

/// Publishes `untag`/`delete` events for what a removal did (images only, not layers).
pub fn removal_events(ctx: &Ctx, id: &str, list: &[DeleteItem], deleted_ids: &[String]) {
    removal_events_labelled(ctx, id, &BTreeMap::new(), list, deleted_ids);
}

/// [`removal_events`] of an image with `labels`. As dockerd's, an `untag` event names the
/// image ID (actor and `name`), not the tag, and carries the image's labels: that of `id`,
/// or (a prune, `id` empty) of the image deleted next in `list`, whose tags come first.
fn removal_events_labelled(
    ctx: &Ctx,
    id: &str,
    labels: &BTreeMap<String, String>,
    list: &[DeleteItem],
    deleted_ids: &[String],
) {
    for (i, d) in list.iter().enumerate() {
        match d {
            DeleteItem::Untagged(_) => {
                let image = Some(id).filter(|s| !s.is_empty()).or_else(|| {
                    list[i..].iter().find_map(|x| match x {
                        DeleteItem::Deleted(x) if deleted_ids.contains(x) => Some(x.as_str()),
                        _ => None,
                    })
                });
                if let Some(image) = image {
                    let a = image_attrs(labels.clone(), image);
                    ctx.events.publish("image", "untag", image, a);
                }
            }
            DeleteItem::Deleted(x) if deleted_ids.contains(x) => {
                ctx.events.publish(
                    "image",
                    "delete",
                    x,
                    BTreeMap::from([("name".to_string(), x.clone())]),
                );
            }
            DeleteItem::Deleted(_) => {}
        }
    }
}
