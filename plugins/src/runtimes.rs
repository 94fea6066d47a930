//! Opening an isolation runtime by name in the process that drives it (a container's
//! monitor). berthd decides which library and driver a runtime name stands for and passes a
//! [`RuntimeChoice`]; [`open_runtime`] then opens it — from the library, or, when the library
//! is a plugin linked into the calling program ([`Linked`]: same plugin name, version and
//! driver), through the linked constructor, which is the very function the library exports.
//! Either way the caller gets an `Arc<dyn Runtime>`; only the cost differs (no `dlopen`, no
//! second copy of std and of the runtime's code in a process that must stay small).

use crate::error::one_line;
use crate::export::RuntimeCtor;
use crate::{Loader, PluginError};
pub use berth_core::runtime::RuntimeChoice;
use berth_core::Runtime;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A runtime plugin linked into the calling program.
#[derive(Debug, Clone, Copy)]
pub struct Linked {
    /// The plugin name its library reports.
    pub plugin: &'static str,
    /// The plugin version its library reports.
    pub version: &'static str,
    /// The driver name.
    pub driver: &'static str,
    /// The constructor the library exports for that driver.
    pub open: RuntimeCtor,
}

impl Linked {
    /// Whether this is the build `c` names (plugin, version and driver).
    pub fn serves(&self, c: &RuntimeChoice) -> bool {
        self.plugin == c.plugin && self.version == c.version && self.driver == c.driver
    }
}

/// Opens the runtime `choice` names: through `linked` when one of them is that plugin, else
/// from its library (checked and loaded as berthd loads plugins).
pub fn open_runtime(
    choice: &RuntimeChoice,
    linked: &[Linked],
) -> Result<Arc<dyn Runtime>, PluginError> {
    if let Some(l) = linked.iter().find(|l| l.serves(choice)) {
        return (l.open)(&choice.config)
            .map(Arc::from)
            .map_err(|e| PluginError::Init {
                driver: choice.driver.clone(),
                path: choice.library.clone(),
                reason: one_line(&e.to_string()),
            });
    }
    let explicit = BTreeMap::from([(choice.driver.clone(), choice.library.clone())]);
    let mut loader = Loader::new(explicit, Vec::new());
    loader
        .runtime(&choice.driver, &choice.config)
        .map(|(rt, _)| rt)
}
