//! Wire types, one module per API area. Areas add their own `pub mod <area>;` line here.

pub mod archive;
pub mod container;
pub mod container_state;
pub mod events;
pub mod health;
pub mod image;
pub mod network;
pub mod system;
pub mod volume;
