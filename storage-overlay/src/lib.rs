//! The overlay2 storage driver plugin
