//! The Docker Engine API, one file per area; `routes` builds the table.

mod build;
pub mod containers;
mod containers_archive;
mod containers_filter;
mod containers_io;
mod containers_list;
mod containers_paths;
mod containers_stats;
mod distribution;
mod events;
mod exec;
mod filters;
mod images;
mod info;
mod networks;
mod pull;
mod system;
mod volumes;

use crate::server::router::Router;

/// Every route berthd serves.
pub fn routes() -> Router {
    let mut r = Router::default();
    system::register(&mut r);
    images::register(&mut r);
    distribution::register(&mut r);
    containers::register(&mut r);
    exec::register(&mut r);
    volumes::register(&mut r);
    networks::register(&mut r);
    build::register(&mut r);
    r
}

pub use crate::containers::signal::signal_number;
