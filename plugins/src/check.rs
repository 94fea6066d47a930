//! Opening one library file and checking, before any of its driver code runs, that it is a
//! berth plugin built against our interface: a shared object, exporting the root module
//! symbol, for the berth root module, whose abi_stable version, layout and `abi_version` match.

use crate::abi::PluginModRef;
use crate::error::one_line;
use crate::{PluginError, ABI_VERSION};
use abi_stable::library::{lib_header_from_path, LibHeader, LibraryError, RootModule};
use std::path::Path;

/// Opens `real` (leaked: libraries are never unloaded) and returns its root module; errors
/// name `path`, the library as configured or found (`real` is where it resolves to).
pub(crate) fn open(driver: &str, path: &Path, real: &Path) -> Result<PluginModRef, PluginError> {
    let not_plugin = |reason: String| PluginError::NotAPlugin {
        driver: driver.into(),
        path: path.into(),
        reason: one_line(&reason),
    };
    let incompatible = |found: u32, detail: String| PluginError::IncompatibleVersion {
        driver: driver.into(),
        path: path.into(),
        found,
        expected: ABI_VERSION,
        detail,
    };
    let header: &'static LibHeader = lib_header_from_path(real).map_err(|e| match e {
        LibraryError::OpenError { err, .. } => {
            not_plugin(format!("it cannot be loaded as a shared library: {err}"))
        }
        LibraryError::GetSymbolError { .. } => {
            not_plugin("it exports no berth plugin root module".into())
        }
        other => incompatible(0, format!(": {}", first_line(&other.to_string()))),
    })?;
    let consts = header.root_mod_consts();
    if consts.name().as_str() != PluginModRef::NAME {
        return Err(not_plugin(format!(
            "its root module is {:?}, not a berth plugin",
            consts.name().as_str()
        )));
    }
    let module = header
        .init_root_module::<PluginModRef>()
        .map_err(|e| match e {
            LibraryError::IncompatibleVersionNumber { actual_version, .. } => {
                incompatible(actual_version.major, String::new())
            }
            LibraryError::AbiInstability(err) => incompatible(
                0,
                format!(
                    ": its module layout differs: {}",
                    first_line(&err.to_string())
                ),
            ),
            other => not_plugin(format!(
                "its root module failed to load: {}",
                first_line(&other.to_string())
            )),
        })?;
    let found = module.abi_version();
    if found != ABI_VERSION {
        return Err(incompatible(found, String::new()));
    }
    Ok(module)
}

/// The first non-empty line of a (possibly multi-line) error text.
fn first_line(text: &str) -> String {
    one_line(
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("unknown error"),
    )
}
