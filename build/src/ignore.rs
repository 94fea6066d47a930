//! `.dockerignore`: Docker's pattern semantics (as its `patternmatcher` behaves), used by the
//! CLI to leave files out of the context it sends and by the daemon to drop the Dockerfile and
//! `.dockerignore` from the context when they are excluded.
//!
//! Lines: `#` comments and blank lines skipped, white space trimmed, `!` marks an exception,
//! each pattern cleaned as a path (`a//b/./c/` → `a/b/c`) and a leading `/` dropped. A
//! pattern is matched against the whole slash-separated path relative to the context: `*`
//! any run of characters but `/`, `?` one such character, `[a-z]` / `[^a]` a class, `\`
//! escapes the next character, `**` any number of folders (`**/x`, `a/**/b`; at the end,
//! everything). A path is excluded when the last pattern matching it or one of its parent
//! folders is not an exception.

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// `!` alone.
    #[error("illegal exclusion pattern: \"!\"")]
    EmptyExclusion,
    /// An unterminated `[` class.
    #[error("syntax error in pattern {0:?}")]
    BadPattern(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run without `/`.
    Star,
    /// `?`: one character but `/`.
    One,
    /// `[...]`: (negated, ranges).
    Class(bool, Vec<(char, char)>),
    /// `**` inside a pattern: `(.*/)?`.
    Dirs,
    /// `**` at the end: anything.
    All,
}

#[derive(Debug, Clone)]
struct Pattern {
    exclusion: bool,
    text: String,
    toks: Vec<Tok>,
}

/// The patterns of a `.dockerignore`, in order.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// `path` cleaned as Go's `filepath.Clean` does (slashes only).
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

fn compile(pattern: &str) -> Result<Vec<Tok>, IgnoreError> {
    let chars: Vec<char> = pattern.chars().collect();
    let bad = || IgnoreError::BadPattern(pattern.to_string());
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                toks.push(if i >= chars.len() {
                    Tok::All
                } else {
                    Tok::Dirs
                });
            }
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::One),
            '\\' => match chars.get(i) {
                Some(&n) => {
                    toks.push(Tok::Lit(n));
                    i += 1;
                }
                None => return Err(bad()),
            },
            '[' => {
                let neg = matches!(chars.get(i), Some('^') | Some('!'));
                if neg {
                    i += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let Some(&a) = chars.get(i) else {
                        return Err(bad());
                    };
                    if a == ']' && !first {
                        i += 1;
                        break;
                    }
                    first = false;
                    let a = if a == '\\' {
                        i += 1;
                        *chars.get(i).ok_or_else(bad)?
                    } else {
                        a
                    };
                    i += 1;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&b| b != ']') {
                        ranges.push((a, chars[i + 1]));
                        i += 2;
                    } else {
                        ranges.push((a, a));
                    }
                }
                toks.push(Tok::Class(neg, ranges));
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(toks)
}

/// Whether `toks` match all of `s`, as the regular expression Docker builds. Memoised on
/// (token, position): a context's `.dockerignore` and file names are both hostile, and plain
/// backtracking over patterns like `*a*a*a*a*b` takes exponential time.
fn matches(toks: &[Tok], s: &[char]) -> bool {
    let mut memo = vec![None; (toks.len() + 1) * (s.len() + 1)];
    match_at(toks, s, 0, 0, &mut memo)
}

fn match_at(toks: &[Tok], s: &[char], i: usize, j: usize, memo: &mut [Option<bool>]) -> bool {
    let key = i * (s.len() + 1) + j;
    if let Some(done) = memo[key] {
        return done;
    }
    let one = |ok: bool, memo: &mut [Option<bool>]| ok && match_at(toks, s, i + 1, j + 1, memo);
    let found = match toks.get(i) {
        None => j == s.len(),
        Some(Tok::Lit(c)) => one(s.get(j) == Some(c), memo),
        Some(Tok::One) => one(s.get(j).is_some_and(|&c| c != '/'), memo),
        Some(Tok::Class(neg, ranges)) => one(
            s.get(j)
                .is_some_and(|&c| ranges.iter().any(|&(a, b)| a <= c && c <= b) != *neg),
            memo,
        ),
        Some(Tok::Star) => {
            let mut found = false;
            for k in j..=s.len() {
                if match_at(toks, s, i + 1, k, memo) {
                    found = true;
                    break;
                }
                if s.get(k) == Some(&'/') {
                    break;
                }
            }
            found
        }
        // (.*/)? : nothing, or anything ending with a `/`.
        Some(Tok::Dirs) => {
            match_at(toks, s, i + 1, j, memo)
                || (j..s.len()).any(|k| s[k] == '/' && match_at(toks, s, i + 1, k + 1, memo))
        }
        Some(Tok::All) => true,
    };
    memo[key] = Some(found);
    found
}

impl Ignore {
    /// The patterns of a `.dockerignore` file's text.
    pub fn parse(text: &str) -> Result<Ignore, IgnoreError> {
        let mut ig = Ignore::default();
        for line in text.trim_start_matches('\u{feff}').lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            ig.push(line)?;
        }
        Ok(ig)
    }

    /// Adds one pattern (`!` for an exception) after the others.
    pub fn push(&mut self, pattern: &str) -> Result<(), IgnoreError> {
        let (exclusion, p) = match pattern.trim().strip_prefix('!') {
            Some(p) => (true, p.trim()),
            None => (false, pattern.trim()),
        };
        if exclusion && p.is_empty() {
            return Err(IgnoreError::EmptyExclusion);
        }
        let mut text = clean(p);
        if text.len() > 1 {
            text = text.trim_start_matches('/').to_string();
        }
        let toks = compile(&text)?;
        self.patterns.push(Pattern {
            exclusion,
            text,
            toks,
        });
        Ok(())
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded: the last pattern
    /// matching it or one of its parent folders decides.
    pub fn excluded(&self, path: &str) -> bool {
        let file = clean(path);
        let file: Vec<char> = file.chars().collect();
        let parents: Vec<usize> = file
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == '/')
            .map(|(i, _)| i)
            .collect();
        let mut excluded = false;
        for p in &self.patterns {
            // An exception only matters once excluded, an exclusion only until then.
            if p.exclusion != excluded {
                continue;
            }
            let hit =
                matches(&p.toks, &file) || parents.iter().any(|&i| matches(&p.toks, &file[..i]));
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Whether an excluded folder `dir` must still be walked: an exception pattern names
    /// something under it (Docker's walk skips it otherwise).
    pub fn walk_excluded_dir(&self, dir: &str) -> bool {
        let dir = format!("{}/", clean(dir));
        self.patterns
            .iter()
            .any(|p| p.exclusion && format!("{}/", p.text).starts_with(&dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> Ignore {
        Ignore::parse(text).expect("patterns")
    }

    #[test]
    fn patterns_match_as_dockers_patternmatcher() {
        let i = ig("# a comment\n\n  *.log  \n/build/\n!build/keep.txt\ndocs/**/*.md\n**/tmp\n");
        for (path, want) in [
            ("a.log", true),
            ("sub/a.log", false),
            ("build", true),
            ("build/out.o", true),
            ("build/keep.txt", false),
            ("docs/a.md", true),
            ("docs/x/y/a.md", true),
            ("docs/a.txt", false),
            ("tmp", true),
            ("a/b/tmp/c", true),
            ("# a comment", false),
            ("src/main.rs", false),
        ] {
            assert_eq!(i.excluded(path), want, "{path}");
        }
        assert!(i.walk_excluded_dir("build"));
        assert!(!i.walk_excluded_dir("tmp"));
        // `**` at the end takes everything; `?` and classes stay within one name.
        let i = ig("a/**\nf?o\n[xy]z\n[^0-9]n\n\\*lit\n");
        assert!(i.excluded("a/b/c") && i.excluded("a/b"));
        assert!(i.excluded("foo") && !i.excluded("f/o"));
        assert!(i.excluded("xz") && !i.excluded("wz"));
        assert!(i.excluded("an") && !i.excluded("1n"));
        assert!(i.excluded("*lit") && !i.excluded("alit"));
        // The last matching pattern wins; an exception does not revive a file of an excluded
        // folder excluded again later.
        let i = ig("*\n!keep\nkeep/drop\n");
        assert!(!i.excluded("keep/a") && i.excluded("keep/drop") && i.excluded("other"));
        assert!(Ignore::parse("!\n").is_err());
        assert!(Ignore::parse("[ab\n").is_err());
        assert_eq!(clean("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(clean("./"), ".");
    }

    #[test]
    fn a_hostile_pattern_does_not_backtrack_for_ever() {
        let i = ig("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b\n");
        let name = "a".repeat(200);
        // Plain backtracking would not finish this in a lifetime.
        assert!(!i.excluded(&name));
    }
}
