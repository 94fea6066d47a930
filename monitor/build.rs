//! Links berth-monitor as a position-dependent executable (`-no-pie`): with no load-time
//! relocations its read-only data (vtables, string tables: ~260 kB) stays clean file pages,
//! which the monitor drops once the container runs, instead of ~260 kB of private relocated
//! copies in every container's monitor for as long as the container lives. Its code is
//! position-independent as ever; only its load address is fixed.

fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
