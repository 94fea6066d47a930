//! The CLI's command groups.

pub mod build;
pub mod containers;
pub mod create;
pub mod images;
pub mod network;
pub mod registry;
pub mod state;
pub mod system;
pub mod volume;
