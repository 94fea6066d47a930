//! The vfs storage driver plugin (full copies, any filesystem)
