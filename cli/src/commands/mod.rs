//! The CLI's command groups.

pub mod build;
pub mod containers;
mod containers_cp;
mod containers_io;
mod containers_list;
mod containers_run;
mod containers_update;
pub mod create;
mod create_health;
pub mod images;
pub mod network;
pub mod prune;
pub mod registry;
pub mod state;
pub mod system;
pub mod volume;
mod winch;

use anyhow::Result;
use berth_api::Client;

/// `docker <object> inspect`: fetches `path(name)` for each name and prints the objects found
/// as one JSON array (or through `--format`); a missing one is reported on stderr and makes
/// the exit code 1, as Docker's.
pub fn inspect_each(
    c: &mut Client,
    names: &[String],
    format: Option<&str>,
    path: impl Fn(&str) -> String,
) -> Result<i32> {
    let mut out = Vec::new();
    let mut code = 0;
    for n in names {
        match c.get(&path(n)) {
            Ok(v) => out.push(v),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    match format {
        Some(f) => crate::output::format(f, &out),
        None => images::pretty(&serde_json::Value::Array(out)),
    }
    Ok(code)
}
