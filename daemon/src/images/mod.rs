//! Image services every front end shares (the Docker API's handlers and the CRI): pulling
//! through the registry plugin into the image store, and removing images with Docker's rules
//! and events. No HTTP type here; errors are [`crate::error::ServiceError`]s or texts.

pub mod mirrors;
pub mod pull;
mod pull_layers;
pub mod remove;
