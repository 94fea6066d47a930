//! cargo xtask: build chores, test images and benchmarks

fn main() {}
