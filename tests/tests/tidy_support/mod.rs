//! The source-tree reader behind `tidy.rs`: finds the workspace's `.rs` and `Cargo.toml` files
//! (skipping build output and hidden folders), splits Rust source into per-line code and
//! comment text (string and char literals blanked, so a word inside a literal or a comment is
//! never taken for code), and reads the dependency names of a `Cargo.toml`.

use std::path::{Path, PathBuf};

/// The workspace root: the parent of this crate's manifest folder.
pub fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

/// Every file under `root` whose name satisfies `want`, skipping `target` folders (the
/// workspace's and the out-of-tree example plugins'), hidden folders and symlinks, sorted.
pub fn files(root: &Path, want: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    stack.push(e.path());
                }
            } else if ft.is_file() && want(&name) {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// `path` relative to `root`, for messages.
pub fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// One source line: its code (literals blanked to `""` / `' '`) and its comment text.
#[derive(Debug, Default, Clone)]
pub struct Line {
    pub code: String,
    pub comment: String,
}

impl Line {
    /// Nothing but whitespace in the code part (a comment line, a blank line).
    pub fn no_code(&self) -> bool {
        self.code.trim().is_empty()
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits Rust source into lines of code and comment. Handles line and (nested) block
/// comments, strings with escapes, raw strings (`r#"…"#`, `br"…"`), byte strings, char
/// literals and lifetimes. Good enough for our own tree; not a full Rust lexer.
pub fn lex(src: &str) -> Vec<Line> {
    let cs: Vec<char> = src.chars().collect();
    let mut lines = vec![Line::default()];
    let mut i = 0;
    let push = |lines: &mut Vec<Line>, c: char, comment: bool| {
        if c == '\n' {
            lines.push(Line::default());
            return;
        }
        let l = lines.last_mut().expect("lines is never empty");
        if comment {
            l.comment.push(c);
        } else {
            l.code.push(c);
        }
    };
    // Pushes only the line breaks of a literal's body (its text is blanked).
    let newlines = |lines: &mut Vec<Line>, body: &[char]| {
        for &c in body {
            if c == '\n' {
                lines.push(Line::default());
            }
        }
    };
    while i < cs.len() {
        let c = cs[i];
        let next = cs.get(i + 1).copied();
        let prev_ident = i > 0 && is_ident(cs[i - 1]);
        if c == '/' && next == Some('/') {
            while i < cs.len() && cs[i] != '\n' {
                push(&mut lines, cs[i], true);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < cs.len() {
                if cs[i] == '/' && cs.get(i + 1) == Some(&'*') {
                    depth += 1;
                    push(&mut lines, '/', true);
                    push(&mut lines, '*', true);
                    i += 2;
                } else if cs[i] == '*' && cs.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    push(&mut lines, '*', true);
                    push(&mut lines, '/', true);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    push(&mut lines, cs[i], true);
                    i += 1;
                }
            }
        } else if !prev_ident
            && (c == 'r' || (c == 'b' && next == Some('r')))
            && raw_start(&cs, i).is_some()
        {
            let (hashes, body_start) = raw_start(&cs, i).unwrap_or((0, i));
            let mut j = body_start;
            let end = loop {
                if j >= cs.len() {
                    break cs.len();
                }
                if cs[j] == '"' && (0..hashes).all(|k| cs.get(j + 1 + k) == Some(&'#')) {
                    break j;
                }
                j += 1;
            };
            lines
                .last_mut()
                .expect("lines is never empty")
                .code
                .push_str("\"\"");
            newlines(&mut lines, &cs[body_start..end]);
            i = (end + 1 + hashes).min(cs.len());
        } else if c == '"' {
            let mut j = i + 1;
            while j < cs.len() && cs[j] != '"' {
                j += if cs[j] == '\\' { 2 } else { 1 };
            }
            lines
                .last_mut()
                .expect("lines is never empty")
                .code
                .push_str("\"\"");
            newlines(&mut lines, &cs[i + 1..j.min(cs.len())]);
            i = j + 1;
        } else if c == '\'' && !prev_ident {
            // A char literal ('a', '\n', '\u{1F600}', '\'') or a lifetime ('a, 'static).
            let end = if next == Some('\\') {
                let mut j = i + 2;
                while j < cs.len() && cs[j] != '\'' && cs[j] != '\n' {
                    j += if cs[j] == '\\' { 2 } else { 1 };
                }
                Some(j)
            } else if cs.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(j) => {
                    lines
                        .last_mut()
                        .expect("lines is never empty")
                        .code
                        .push_str("' '");
                    i = j + 1;
                }
                None => {
                    push(&mut lines, c, false);
                    i += 1;
                }
            }
        } else {
            push(&mut lines, c, false);
            i += 1;
        }
    }
    if src.ends_with('\n') {
        lines.pop();
    }
    lines
}

/// At a raw string's `r` (or `br`): the number of `#`s and where its body starts.
fn raw_start(cs: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = if cs[i] == 'b' { i + 2 } else { i + 1 };
    let mut hashes = 0;
    while cs.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (cs.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

/// Whether `word` occurs in `text` as an identifier start (no identifier character before
/// it). With `whole`, no identifier character may follow either.
pub fn has_word(text: &str, word: &str, whole: bool) -> bool {
    word_positions(text, word, whole).next().is_some()
}

/// Byte offsets of `word` in `text` as in [`has_word`].
pub fn word_positions<'a>(
    text: &'a str,
    word: &'a str,
    whole: bool,
) -> impl Iterator<Item = usize> + 'a {
    text.match_indices(word).filter_map(move |(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let ok_before = !before.is_some_and(is_ident);
        let ok_after = !whole || !after.is_some_and(is_ident);
        (ok_before && ok_after).then_some(at)
    })
}

/// A dependency named in a `Cargo.toml`: its line and the name (or `package =` it renames).
#[derive(Debug)]
pub struct Dep {
    pub line: usize,
    pub name: String,
}

/// The dependencies of every `[*dependencies]` table of a manifest (`[dependencies]`,
/// `[dev-dependencies]`, `[build-dependencies]`, `[target.….dependencies]`, and the
/// `[dependencies.NAME]` form). `[workspace.dependencies]` only declares versions and is
/// skipped.
pub fn deps(toml: &str) -> Vec<Dep> {
    let mut out = Vec::new();
    let mut in_table = false;
    for (n, raw) in toml.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if let Some(h) = line.strip_prefix('[') {
            let h = h.trim_end_matches(']').trim();
            in_table = false;
            if h.starts_with("workspace.") {
                continue;
            }
            if let Some((table, name)) = h.rsplit_once('.') {
                if table.ends_with("dependencies") {
                    out.push(Dep {
                        line: n + 1,
                        name: name.trim().to_string(),
                    });
                    continue;
                }
            }
            in_table = h.ends_with("dependencies");
            continue;
        }
        if in_table {
            if let Some((key, _)) = line.split_once('=') {
                let key = key.trim().split('.').next().unwrap_or("").trim();
                if !key.is_empty() {
                    out.push(Dep {
                        line: n + 1,
                        name: key.to_string(),
                    });
                }
            }
        }
        if let Some(p) = line.split("package").nth(1) {
            if let Some(v) = p.trim_start().strip_prefix('=') {
                let v = v.trim().trim_matches(|c| c == '"' || c == ',' || c == '}');
                let v = v.split('"').next().unwrap_or("");
                if !v.is_empty() {
                    out.push(Dep {
                        line: n + 1,
                        name: v.to_string(),
                    });
                }
            }
        }
    }
    out
}
