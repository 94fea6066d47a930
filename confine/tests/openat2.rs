//! The escape cases with the kernel's `openat2(RESOLVE_IN_ROOT)` resolution.

mod cases;

#[test]
fn writes_stay_inside() {
    cases::writes_stay_inside();
}

#[test]
fn reads_are_bounded() {
    cases::reads_are_bounded();
}

#[test]
fn copies_stay_inside() {
    cases::copies_stay_inside();
}

#[test]
fn races_stay_inside() {
    cases::races_stay_inside();
}

#[test]
fn plain_operations() {
    cases::plain_operations();
}
