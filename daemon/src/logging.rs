//! Structured logs to stderr (tracing), with the level reloadable on SIGHUP.

use anyhow::Result;
use tracing_subscriber::{filter::LevelFilter, fmt, prelude::*, reload};

/// Handle to change the level.
pub type Reload = reload::Handle<LevelFilter, tracing_subscriber::Registry>;

fn level(name: &str) -> LevelFilter {
    match name {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "warn" => LevelFilter::WARN,
        "error" | "fatal" | "panic" => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    }
}

/// Installs the subscriber.
pub fn init(name: &str) -> Result<Reload> {
    let (filter, handle) = reload::Layer::new(level(name));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr),
        )
        .try_init()?;
    Ok(handle)
}

/// Re-reads `log-level`/`debug` from the config file and applies it.
pub fn reload(handle: &Reload, file: Option<&std::path::Path>) {
    let Some(file) = file else { return };
    match crate::config::read_file(file, true) {
        Ok(Some(cfg)) => {
            let name = cfg.log_level.unwrap_or_else(|| {
                if cfg.debug.unwrap_or(false) {
                    "debug".into()
                } else {
                    "info".into()
                }
            });
            let _ = handle.modify(|f| *f = level(&name));
            tracing::info!("log level set to {name}");
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("reloading configuration: {e:#}"),
    }
}
