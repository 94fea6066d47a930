//! The house rules, checked on the source tree (ARCHITECTURE.md "Invariants"; no daemon and no
//! root needed): the daemon's domain names no HTTP type, only `plugins` names `abi_stable`,
//! `core` knows no tokio/hyper/libloading, every `.rs` file opens with a `//!` doc and stays
//! within 700 lines, and every `unsafe` says why it is sound. Each breach is reported as
//! `file:line: what`, all of them at once.

mod tidy_support;

use std::path::{Path, PathBuf};
use tidy_support::{deps, files, has_word, lex, rel, root, word_positions, Line};

/// The most lines a source file may have.
const MAX_LINES: usize = 700;

/// Daemon modules that may know HTTP: the handlers, the server, the binary's edge that wires
/// the two to the services, and the TCP listeners' TLS settings. Everything else under
/// `daemon/src` is the domain.
const HTTP_SIDE: &[&str] = &["api/", "server/", "main.rs", "tlsconf.rs"];

/// Words that mean HTTP in daemon code (`crate::{server, api}` groups are checked apart).
const HTTP_WORDS: &[&str] = &["hyper", "http::", "ApiError", "crate::server", "crate::api"];

/// Breaches known and being removed, each entry `(path, word)` (none left since the verbs
/// moved out of `api/`; kept so a temporary allowance has one place). An
/// entry that no longer matches is reported on stderr, to be dropped (not an error, so
/// parallel work merges in any order).
const KNOWN_HTTP: &[(&str, &str)] = &[];

struct Src {
    path: PathBuf,
    rel: String,
    text: String,
    lines: Vec<Line>,
}

fn sources(root: &Path) -> Vec<Src> {
    files(root, &|n| n.ends_with(".rs"))
        .into_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(&path).ok()?;
            let lines = lex(&text);
            Some(Src {
                rel: rel(root, &path),
                path,
                text,
                lines,
            })
        })
        .collect()
}

fn report(what: &str, breaches: Vec<String>) {
    assert!(
        breaches.is_empty(),
        "{what}: {} breach(es)\n{}",
        breaches.len(),
        breaches.join("\n")
    );
}

#[test]
fn every_file_opens_with_a_module_doc() {
    let root = root();
    let mut bad = Vec::new();
    for s in sources(&root) {
        if !s.text.lines().next().is_some_and(|l| l.starts_with("//!")) {
            bad.push(format!(
                "{}:1: does not open with a `//!` doc saying what it is for",
                s.rel
            ));
        }
    }
    report("module docs", bad);
}

#[test]
fn no_file_over_700_lines() {
    let root = root();
    let mut bad = Vec::new();
    for s in sources(&root) {
        let n = s.text.lines().count();
        if n > MAX_LINES {
            bad.push(format!(
                "{}:{}: {n} lines (at most {MAX_LINES}): split it",
                s.rel,
                MAX_LINES + 1
            ));
        }
    }
    report("file length", bad);
}

/// Whether `code` names the HTTP side through a `crate::{…}` group (`crate::{api, state}`).
fn http_group(code: &str) -> bool {
    word_positions(code, "crate::{", false).any(|at| {
        let inner = &code[at + "crate::{".len()..];
        let inner = inner.split('}').next().unwrap_or("");
        inner
            .split(',')
            .map(|item| item.trim().split("::").next().unwrap_or("").trim())
            .any(|head| head == "api" || head == "server")
    })
}

#[test]
fn the_daemon_domain_knows_no_http() {
    let root = root();
    let daemon = root.join("daemon/src");
    let mut bad = Vec::new();
    let mut seen_known = vec![false; KNOWN_HTTP.len()];
    for s in sources(&root) {
        let Ok(inside) = s.path.strip_prefix(&daemon) else {
            continue;
        };
        let inside = inside.to_string_lossy();
        if HTTP_SIDE.iter().any(|h| inside.starts_with(h)) {
            continue;
        }
        for (n, l) in s.lines.iter().enumerate() {
            let mut words: Vec<&str> = HTTP_WORDS
                .iter()
                .copied()
                .filter(|w| has_word(&l.code, w, false))
                .collect();
            if http_group(&l.code) {
                words.push("crate::{api|server}");
            }
            for w in words {
                if let Some(k) = KNOWN_HTTP.iter().position(|&(p, kw)| p == s.rel && kw == w) {
                    seen_known[k] = true;
                    continue;
                }
                bad.push(format!(
                    "{}:{}: names `{w}` in the daemon's domain (only api/ and server/ know HTTP)",
                    s.rel,
                    n + 1
                ));
            }
        }
    }
    for (k, seen) in seen_known.iter().enumerate() {
        if !seen {
            let (p, w) = KNOWN_HTTP[k];
            bad.push(format!(
                "{p}: no longer names `{w}`: drop it from KNOWN_HTTP in tests/tests/tidy.rs"
            ));
        }
    }
    report("HTTP in the domain", bad);
}

#[test]
fn only_plugins_names_abi_stable() {
    let root = root();
    let plugins = root.join("plugins/src");
    let mut bad = Vec::new();
    for s in sources(&root) {
        if s.path.starts_with(&plugins) {
            continue;
        }
        for (n, l) in s.lines.iter().enumerate() {
            if has_word(&l.code, "abi_stable", true) {
                bad.push(format!(
                    "{}:{}: names `abi_stable` (only berth-plugins knows the ABI; use its re-exports)",
                    s.rel,
                    n + 1
                ));
            }
        }
    }
    for m in files(&root, &|n| n == "Cargo.toml") {
        if m == root.join("plugins/Cargo.toml") {
            continue;
        }
        let text = std::fs::read_to_string(&m).unwrap_or_default();
        for d in deps(&text) {
            if d.name == "abi_stable" || d.name.starts_with("abi_stable") {
                bad.push(format!(
                    "{}:{}: depends on `{}`",
                    rel(&root, &m),
                    d.line,
                    d.name
                ));
            }
        }
    }
    report("abi_stable outside plugins", bad);
}

#[test]
fn core_knows_no_tokio_hyper_or_libloading() {
    const BANNED: &[&str] = &["tokio", "hyper", "libloading"];
    let root = root();
    let core = root.join("core");
    let mut bad = Vec::new();
    let manifest = core.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap_or_default();
    assert!(!text.is_empty(), "cannot read {}", manifest.display());
    for d in deps(&text) {
        if BANNED.iter().any(|b| d.name.starts_with(b)) {
            bad.push(format!(
                "core/Cargo.toml:{}: depends on `{}`",
                d.line, d.name
            ));
        }
    }
    for s in sources(&root) {
        if !s.path.starts_with(&core) {
            continue;
        }
        for (n, l) in s.lines.iter().enumerate() {
            for b in BANNED {
                if has_word(&l.code, b, false) {
                    bad.push(format!("{}:{}: names `{b}` in core", s.rel, n + 1));
                }
            }
        }
    }
    report("core's dependencies", bad);
}

/// What an `unsafe` keyword at `at` in `code` introduces, or `None` when it needs no
/// justification (a function-pointer type such as `unsafe extern "C" fn(i32)`).
fn unsafe_kind(code: &str, at: usize) -> Option<&'static str> {
    let rest = code[at + "unsafe".len()..].trim_start();
    let rest = rest
        .strip_prefix("extern")
        .map(|r| r.trim_start())
        .unwrap_or(rest);
    let rest = rest
        .strip_prefix("\"\"")
        .map(|r| r.trim_start())
        .unwrap_or(rest);
    if rest.starts_with("impl") {
        Some("impl")
    } else if rest.starts_with("trait") {
        Some("trait")
    } else if let Some(f) = rest.strip_prefix("fn") {
        // `fn name(` is a declaration, `fn(` a type.
        let f = f.trim_start();
        f.chars()
            .next()
            .filter(|c| c.is_alphabetic() || *c == '_')
            .map(|_| "fn")
    } else if rest.starts_with('(') {
        None // an attribute such as `#[unsafe(no_mangle)]`
    } else {
        Some("block")
    }
}

/// Whether a code line ends a statement or an item, so the comment above the next one belongs
/// to that next one.
fn ends_statement(code: &str) -> bool {
    let t = code.trim_end();
    t.is_empty() || t.ends_with(';') || t.ends_with('{') || t.ends_with('}') || t.ends_with(',')
}

/// The comments that document line `n`: the comment on the line itself, and the comments and
/// attributes just above the statement line `n` belongs to (up to 12 lines up when `n`
/// continues a statement that began above).
fn comments_for(lines: &[Line], n: usize) -> String {
    let mut text = lines[n].comment.clone();
    let mut i = n;
    // Up to the start of the statement.
    let mut hops = 0;
    while i > 0 && hops < 12 && !lines[i - 1].no_code() && !ends_statement(&lines[i - 1].code) {
        i -= 1;
        hops += 1;
        text.push('\n');
        text.push_str(&lines[i].comment);
    }
    // Then the comment and attribute lines above it.
    while i > 0 {
        let l = &lines[i - 1];
        let attr = l.code.trim_start().starts_with("#[");
        let comment_only = l.no_code() && !l.comment.is_empty();
        if !comment_only && !attr {
            break;
        }
        text.push('\n');
        text.push_str(&l.comment);
        i -= 1;
    }
    text
}

#[test]
fn every_unsafe_says_why_it_is_sound() {
    let root = root();
    let mut bad = Vec::new();
    for s in sources(&root) {
        for (n, l) in s.lines.iter().enumerate() {
            for at in word_positions(&l.code, "unsafe", true) {
                let Some(kind) = unsafe_kind(&l.code, at) else {
                    continue;
                };
                let doc = comments_for(&s.lines, n);
                let ok = doc.contains("SAFETY:")
                    || (matches!(kind, "fn" | "trait") && doc.contains("# Safety"));
                if !ok {
                    let want = match kind {
                        "fn" | "trait" => "a `# Safety` doc section (or a `// SAFETY:` comment)",
                        _ => "a `// SAFETY:` comment just above",
                    };
                    bad.push(format!(
                        "{}:{}: `unsafe` {kind} without {want}",
                        s.rel,
                        n + 1
                    ));
                }
            }
        }
    }
    report("unsafe without SAFETY", bad);
}

#[test]
fn the_lexer_sees_code_only() {
    let src = "let a = \"unsafe { hyper }\"; // unsafe\nlet b = r#\"abi_stable\"#; let c = '\\'';\nfn f<'a>(x: &'a str) {}\n/* unsafe\n */ unsafe { g() }\n";
    let lines = lex(src);
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(!has_word(&lines[0].code, "unsafe", true), "{:?}", lines[0]);
    assert!(has_word(&lines[0].comment, "unsafe", true));
    assert!(
        !has_word(&lines[1].code, "abi_stable", true),
        "{:?}",
        lines[1]
    );
    assert!(lines[2].code.contains("<'a>"), "{:?}", lines[2]);
    assert!(has_word(&lines[4].code, "unsafe", true), "{:?}", lines[4]);
    assert_eq!(unsafe_kind("type F = unsafe extern \"\" fn(i32);", 9), None);
    assert_eq!(unsafe_kind("pub unsafe fn go() {", 4), Some("fn"));
    assert_eq!(unsafe_kind("unsafe impl Send for X {}", 0), Some("impl"));
    let t = "[dependencies]\ntokio = \"1\"\nx = { package = \"abi_stable\" }\n[dev-dependencies.hyper]\n";
    let names: Vec<String> = deps(t).into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["tokio", "x", "abi_stable", "hyper"]);
}
