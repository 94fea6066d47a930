//! berth-monitor: the tiny per-container supervisor that owns stdio, writes logs and records the exit

fn main() {}
