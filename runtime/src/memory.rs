//! Giving memory back once a long-lived process (a container's monitor, berthd) has started.
//!
//! Start-up touches code and data it never needs again (spec parsing, the runtime's create
//! path, plugin loading, restore), and all of it stays in the resident set of a process that
//! then sleeps in `poll`/`epoll_wait` for as long as its container or the daemon lives.

/// Returns free heap to the kernel and drops the page-table entries of read-only file
/// mappings (the executable's code, shared libraries' code and constants). Only mappings
/// without private (anonymous, e.g. relocated RELRO) pages are touched, so MADV_DONTNEED
/// cannot change what they read: the pages stay in the page cache and what is used later is
/// faulted back in from it.
pub fn release_startup_pages() {
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            let perms = f.next().unwrap_or("");
            // address perms offset dev inode path: file-backed when the path is absolute.
            let file = f.nth(3).is_some_and(|p| p.starts_with('/'));
            current = match (
                file && !perms.contains('w'),
                usize::from_str_radix(a, 16),
                usize::from_str_radix(b, 16),
            ) {
                (true, Ok(a), Ok(b)) => Some((a, b)),
                _ => None,
            };
            continue;
        }
        if first == "Anonymous:" {
            if let (Some((a, b)), Some("0")) = (current.take(), f.next()) {
                // SAFETY: advice on a read-only file mapping without private pages: dropping
                // its pages cannot change what it reads.
                unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
            }
        }
    }
}
