//! SPDY/3.1 as kubelet's streaming clients speak it (moby/spdystream): frames, zlib-compressed
//! header blocks, and a server-side connection that hands each client-opened stream to the
//! protocol on top.

pub mod conn;
pub mod frame;
pub mod headers;
