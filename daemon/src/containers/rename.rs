//! Renaming a container (`docker rename`).

use super::{exit, lock, names, Container};
use crate::error::{ServiceError, ServiceResult};
use crate::state::Ctx;
use std::sync::Arc;

/// Gives `c` the name `new` (with or without its leading slash), if valid and free.
pub async fn rename(ctx: &Ctx, c: &Arc<Container>, new: &str) -> ServiceResult<()> {
    let new = new.trim_start_matches('/').to_string();
    if !names::valid(&new) {
        return Err(ServiceError::bad_request(format!(
            "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    let _op = lock::op(c).await?;
    let old = format!("/{}", c.name());
    ctx.containers.rename(c, &new)?;
    ctx.containers.save(c)?;
    super::links::renamed(ctx, c, &old[1..], &new);
    let mut a = exit::attrs(c);
    a.insert("oldName".into(), old);
    ctx.events.publish("container", "rename", &c.id, a);
    Ok(())
}
