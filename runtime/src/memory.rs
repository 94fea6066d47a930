//! Giving memory back once a long-lived process (a container's monitor, berthd) has started,
//! or has gone idle after a burst of work.
//!
//! Start-up and request handling touch code and data that an idle process does not need (spec
//! parsing, the runtime's create path, plugin loading, restore, the API handlers), and all of
//! it stays in the resident set of a process that then sleeps in `poll`/`epoll_wait` for as
//! long as its container or the daemon lives.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

/// pagemap: the page is present in RAM.
const PM_PRESENT: u64 = 1 << 63;
/// pagemap: the page is a file page (or shared anonymous), not a private copy.
const PM_FILE: u64 = 1 << 61;
/// Stack kept below the releasing frame, for the calls it still makes.
const STACK_MARGIN: usize = 16 * 1024;
/// The ranges to drop, kept from one call to the next: freeing them after the drop would run
/// (and fault back in) the allocator's code.
static RANGES: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
/// Pages whose pagemap entries are read at once.
const PM_CHUNK: usize = 512;

/// One read-only file mapping from `/proc/self/smaps`.
struct Mapping {
    start: usize,
    end: usize,
    /// It holds private (copied-on-write, e.g. relocated) pages.
    has_private: bool,
}

/// The read-only file mappings of this process (code, constants, relocation-free data), and
/// the main thread's stack.
fn read_only_file_mappings() -> (Vec<Mapping>, Option<(usize, usize)>) {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut out = Vec::new();
    let mut stack = None;
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            let perms = f.next().unwrap_or("");
            // address perms offset dev inode path: file-backed when the path is absolute.
            let path = f.nth(3).unwrap_or("");
            let range = usize::from_str_radix(a, 16)
                .ok()
                .zip(usize::from_str_radix(b, 16).ok());
            if path == "[stack]" {
                stack = range;
            }
            current = range.filter(|_| path.starts_with('/') && !perms.contains('w'));
            continue;
        }
        if first == "Anonymous:" {
            if let Some((start, end)) = current.take() {
                let has_private = f.next() != Some("0");
                out.push(Mapping {
                    start,
                    end,
                    has_private,
                });
            }
        }
    }
    (out, stack)
}

/// The runs of present file pages in `[start, end)` (a mapping that also holds private
/// pages, e.g. RELRO data of which only some pages were relocated), per `/proc/self/pagemap`.
fn file_page_runs(pagemap: &File, start: usize, end: usize, page: usize) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut buf = vec![0u8; PM_CHUNK * 8];
    let mut addr = start;
    while addr < end {
        let pages = ((end - addr) / page).min(PM_CHUNK);
        let want = &mut buf[..pages * 8];
        if pagemap
            .read_exact_at(want, (addr / page * 8) as u64)
            .is_err()
        {
            // Unreadable: leave the rest of the mapping alone.
            return runs;
        }
        for (i, e) in want.chunks_exact(8).enumerate() {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(e);
            let entry = u64::from_ne_bytes(raw);
            if entry & (PM_PRESENT | PM_FILE) != PM_PRESENT | PM_FILE {
                continue;
            }
            let a = addr + i * page;
            match runs.last_mut() {
                Some((_, e)) if *e == a => *e = a + page,
                _ => runs.push((a, a + page)),
            }
        }
        addr += pages * page;
    }
    runs
}

/// Returns free heap to the kernel and drops the page-table entries of the file pages of
/// read-only file mappings (the executable's code, shared libraries' code and constants).
/// Private pages (relocated RELRO data, copied on write) are never dropped, so MADV_DONTNEED
/// cannot change what any mapping reads: the pages stay in the page cache and what is used
/// later is faulted back in from it. All ranges are found first and dropped together at the
/// end, so the code that runs after the drop (and faults back in) is as little as possible.
///
/// The caller's process must not unmap read-only file mappings while this runs (berth maps
/// no files itself and never unloads a library): a range unmapped and reused in between
/// would be dropped too.
pub fn release_startup_pages() {
    // SAFETY: sysconf with a valid name.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
        .ok()
        .filter(|p| *p > 0)
        .unwrap_or(4096);
    let (maps, stack) = read_only_file_mappings();
    let pagemap = File::open("/proc/self/pagemap").ok();
    let mut ranges = RANGES.lock().unwrap_or_else(|e| e.into_inner());
    ranges.clear();
    for m in &maps {
        if !m.has_private {
            ranges.push((m.start, m.end));
        } else if let Some(pm) = &pagemap {
            ranges.extend(file_page_runs(pm, m.start, m.end, page));
        }
    }
    drop(pagemap);
    drop(maps);
    // After the scan's own allocations were freed.
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    // The main thread's stack below this frame (less a margin for the calls still to come)
    // holds nothing live: start-up's deep frames (spec parsing, the runtime's create).
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    if let Some((low, _)) = stack.filter(|(l, h)| (*l..*h).contains(&sp)) {
        let top = sp.saturating_sub(STACK_MARGIN) & !(page - 1);
        if top > low {
            ranges.push((low, top));
        }
    }
    for (a, b) in ranges.iter() {
        // SAFETY: advice on file pages of a read-only file mapping (no private copies among
        // them): dropping them cannot change what the mapping reads; or on the part of this
        // thread's stack below every live frame, which reads as zeroes when used again.
        unsafe { libc::madvise(*a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
    }
}
