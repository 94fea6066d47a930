//! The CLI's command groups.

pub mod build;
pub mod containers;
pub mod images;
pub mod registry;
pub mod system;
