//! Why a plugin could not be loaded; each message is one line naming driver, library, reason.

use crate::trust::Distrust;
use std::path::PathBuf;

/// A plugin loading failure.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The configured library file does not exist.
    #[error("plugin {driver:?}: library {} does not exist", path.display())]
    Missing {
        /// Driver name.
        driver: String,
        /// Library path.
        path: PathBuf,
    },
    /// The file is not a shared library or has no berth entry point.
    #[error("plugin {driver:?}: {} is not a berth plugin: {reason}", path.display())]
    NotAPlugin {
        /// Driver name.
        driver: String,
        /// Library path.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// Built against another interface version.
    #[error("plugin {driver:?}: {} was built against {}", path.display(), interface(*found, *expected, detail))]
    IncompatibleVersion {
        /// Driver name.
        driver: String,
        /// Library path.
        path: PathBuf,
        /// Its version (0 when unknown: only abi_stable's checks failed).
        found: u32,
        /// Ours.
        expected: u32,
        /// Extra detail from abi_stable's checks (empty, or starting with ": ").
        detail: String,
    },
    /// No library provides the driver.
    #[error("plugin {driver:?}: no {kind} driver of that name in {searched}")]
    NoSuchDriver {
        /// Driver name.
        driver: String,
        /// Driver kind.
        kind: String,
        /// Where we looked.
        searched: String,
    },
    /// The library, its folder or its search folder could be written by someone else than
    /// root (or is not root's): it is not opened.
    #[error("plugin library {} refused: {reason}", path.display())]
    Untrusted {
        /// The library or search folder.
        path: PathBuf,
        /// What is wrong.
        reason: Distrust,
    },
    /// Two libraries of the search folders claim the same driver name.
    #[error("plugin {driver:?}: claimed by two libraries, {} and {}; remove one or name the library in plugins.drivers", first.display(), second.display())]
    Duplicate {
        /// Driver name.
        driver: String,
        /// The library found first.
        first: PathBuf,
        /// The other one.
        second: PathBuf,
    },
    /// The driver's constructor failed.
    #[error("plugin {driver:?}: {} failed to initialise: {reason}", path.display())]
    Init {
        /// Driver name.
        driver: String,
        /// Library path.
        path: PathBuf,
        /// The driver's error.
        reason: String,
    },
}

fn interface(found: u32, expected: u32, detail: &str) -> String {
    if found == 0 {
        format!("an incompatible plugin interface (expected version {expected}){detail}")
    } else {
        format!("plugin interface version {found}, expected {expected}{detail}")
    }
}

/// `text` on one line (error texts from libraries and plugins may span several).
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
