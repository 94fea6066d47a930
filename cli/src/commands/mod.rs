//! The CLI's command groups.

pub mod containers;
pub mod images;
pub mod registry;
pub mod system;
