//! berth's integration tests: real daemons, real kernels, real clients
