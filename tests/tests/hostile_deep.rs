//! Issue #15: a container that nests folders as deep as the kernel lets it (2,047 levels
//! through `cd`) must not take berthd down when its filesystem is walked: `docker diff`,
//! `docker export`, `docker commit` and the seeding of a volume from the image walk with a heap stack, not the thread's (a recursive
//! walk overflowed berthd's stack and aborted it).

use berth_tests::TestDaemon;

#[test]
fn diff_export_and_commit_of_a_very_deep_tree_leave_berthd_up() {
    let d = TestDaemon::start();
    d.import_busybox();
    let made = d.docker(&[
        "run",
        "--network",
        "none",
        "--name",
        "deep",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 3000 ]; do mkdir d 2>/dev/null; cd d 2>/dev/null || break; \
         i=$((i+1)); done; echo $i",
    ]);
    let depth: usize = made.ok().trim().parse().expect("depth");
    assert!(depth > 1500, "the container nested only {depth} folders");
    let diff = d.docker(&["diff", "deep"]);
    assert!(diff.ok().lines().count() >= depth, "diff lists every level");
    let out = d.dir().join("deep.tar");
    d.docker(&["export", "-o", &out.display().to_string(), "deep"])
        .ok();
    d.docker(&["commit", "deep", "deep:1"]).ok();
    d.docker(&["version"]).ok();
    // A named volume over the deep folder is seeded from the image by a copy that walks the
    // whole tree (`Root::copy_in`), and replacing it removes one (`Root::remove_all`): both
    // walk with a heap stack. Near the kernel's depth the copy may stop with "File name too
    // long" (the volume path is longer than PATH_MAX); either way berthd stays up.
    let seeded = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "deepvol:/d",
        "deep:1",
        "true",
    ]);
    if !seeded.success() {
        assert!(
            seeded.stderr.contains("too long"),
            "the seeding failed for another reason: {}",
            seeded.stderr
        );
    }
    d.docker(&["version"]).ok();
    d.docker(&["volume", "rm", "deepvol"]).ok();
}
