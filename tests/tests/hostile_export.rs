//! Issue #15, `docker export`, `docker diff` and `docker commit` of a hostile container that
//! keeps swapping a folder for a symlink to a host canary while its filesystem is walked:
//! the walks go through descriptors, so no host file is ever read into the archive, the
//! change list or the committed layer, and berthd keeps answering.

use berth_tests::hostile::{contains, run_attacker, unique, Canary};
use berth_tests::TestDaemon;

#[test]
fn export_diff_and_commit_of_a_swapping_container_read_no_host_file() {
    let d = TestDaemon::start();
    d.import_busybox();
    let marker = unique("host-only");
    // Named and filled with the marker: a walk that followed the symlink would list or
    // archive it.
    let canary = Canary::holding("export", &marker, &marker);
    let c = canary.path();
    // /w is, in turn, a folder holding files and a symlink to the host canary's path.
    // Four such folders swap at once, so that each walk meets several.
    let one = |w: &str| {
        format!(
            "while :; do rm -rf {w}.d; mkdir {w}.d; echo in-ctr > {w}.d/secret; rm -f {w}; \
             mv -T {w}.d {w}; ln -sfn {c} {w}.l; rm -rf {w}; mv -T {w}.l {w}; done"
        )
    };
    let script = format!(
        "({}) & ({}) & ({}) & {}",
        one("/w1"),
        one("/w2"),
        one("/w3"),
        one("/w4")
    );
    run_attacker(&d, "swapper", &script);
    let out = d.dir().join("export.tar");
    let o = out.display().to_string();
    for _ in 0..15 {
        let e = d.docker(&["export", "-o", &o, "swapper"]);
        if e.success() {
            let bytes = std::fs::read(&out).expect("export");
            assert!(
                !contains(&bytes, marker.as_bytes()),
                "the export read the host canary"
            );
        }
        let diff = d.docker(&["diff", "swapper"]);
        assert!(!diff.stdout.contains("host-only"), "{}", diff.stdout);
    }
    // `docker diff` walks only the container's own changes: fast, so many rounds.
    let mut listed = 0;
    for _ in 0..1500 {
        let (status, _, body) = d.request("GET", "/containers/swapper/changes", None);
        if status == 200 {
            listed += 1;
            assert!(
                !body.contains("host-only"),
                "docker diff listed the host canary: {body}"
            );
        }
    }
    assert!(listed > 0, "no diff answered");
    for i in 0..5 {
        let tag = format!("swapped:{i}");
        if d.docker(&["commit", "swapper", &tag]).success() {
            let saved = d.dir().join("saved.tar");
            d.docker(&["save", "-o", &saved.display().to_string(), &tag])
                .ok();
            let bytes = std::fs::read(&saved).expect("save");
            assert!(
                !contains(&bytes, marker.as_bytes()),
                "the commit read the host canary"
            );
            d.docker(&["rmi", "-f", &tag]).ok();
        }
    }
    canary.assert_untouched();
    d.docker(&["version"]).ok();
    d.docker(&["rm", "-f", "swapper"]).ok();
}
