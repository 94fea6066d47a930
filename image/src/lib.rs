//! The image store: content-addressed blobs, image metadata, docker-archive and OCI layout load/save
