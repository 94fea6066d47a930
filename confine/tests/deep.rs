//! Trees nested thousands of folders deep (as an image or a container can make them) are
//! copied and removed without growing the calling thread's stack: both walks run here on a
//! thread with a 128 KiB stack, which a recursive walk of 2,000 levels overflows (deeper, a path names more than PATH_MAX bytes and the copy stops with ENAMETOOLONG).

use berth_confine::{CopyOptions, Root};

const DEPTH: usize = 2000;

fn nest(root: &Root, top: &str) -> Root {
    root.mkdir(top, 0o755).expect("mkdir top");
    let mut r = root.sub(top).expect("sub top");
    for _ in 0..DEPTH {
        r.mkdir("d", 0o755).expect("mkdir");
        r = r.sub("d").expect("sub");
    }
    r
}

fn depth(root: &Root, top: &str) -> usize {
    let mut r = root.sub(top).expect("sub top");
    let mut n = 0;
    while let Ok(s) = r.sub("d") {
        r = s;
        n += 1;
    }
    n
}

#[test]
fn deep_trees_copy_and_remove_on_a_small_stack() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(tmp.path().join("src")).expect("src");
    std::fs::create_dir(tmp.path().join("dst")).expect("dst");
    let src = Root::open(tmp.path().join("src")).expect("src root");
    let dst = Root::open(tmp.path().join("dst")).expect("dst root");
    let bottom = nest(&src, "top");
    bottom
        .create_new("leaf", 0o644)
        .expect("leaf")
        .sync_all()
        .expect("sync");
    let worker = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            dst.copy_in("copy", &src, "top", &CopyOptions::default())
                .expect("copy_in");
            let copied = depth(&dst, "copy");
            dst.remove_all("copy").expect("remove_all copy");
            src.remove_all("top").expect("remove_all top");
            (copied, dst.lstat("copy").expect("lstat").is_none())
        })
        .expect("spawn");
    let (copied, gone) = worker.join().expect("the walks kept to their stack");
    assert_eq!(copied, DEPTH, "every level copied");
    assert!(gone, "the copy is removed");
    assert_eq!(
        std::fs::read_dir(tmp.path().join("src"))
            .expect("ls")
            .count(),
        0,
        "the source is removed"
    );
}
