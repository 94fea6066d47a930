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
mod images;
mod info;
mod networks;
mod pull;
mod pull_layers;
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

/// A signal by name (`SIGTERM`, `TERM`, `kill`) or number.
pub fn signal_number(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    Some(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "WINCH" => libc::SIGWINCH,
        "ALRM" => libc::SIGALRM,
        "PIPE" => libc::SIGPIPE,
        _ => return None,
    })
}
