//! berth: the command-line client speaking the Docker Engine API

fn main() {}
