//! berthd: the daemon serving the Docker Engine API

fn main() {}
