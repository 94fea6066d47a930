//! The escape cases with the user-space `O_PATH` walk (kernels without openat2).

mod cases;

#[test]
fn writes_stay_inside() {
    berth_confine::resolve::force_walk(true);
    cases::writes_stay_inside();
}

#[test]
fn reads_are_bounded() {
    berth_confine::resolve::force_walk(true);
    cases::reads_are_bounded();
}

#[test]
fn copies_stay_inside() {
    berth_confine::resolve::force_walk(true);
    cases::copies_stay_inside();
}

#[test]
fn races_stay_inside() {
    berth_confine::resolve::force_walk(true);
    cases::races_stay_inside();
}

#[test]
fn plain_operations() {
    berth_confine::resolve::force_walk(true);
    cases::plain_operations();
}
