//! Docker's variable substitution for Dockerfile words.
//!
//! Supports `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//! `${VAR:?msg}`, the escape character (`\$` is a literal `$`), single quotes (no expansion)
//! and double quotes (expansion); quotes are removed, as Docker's word processing does.

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${` without `}`.
    #[error("missing '}}' in {0:?}")]
    Unterminated(String),
    /// An unsupported modifier in `${VAR<mod>word}`.
    #[error("unsupported modifier ({0}) in substitution")]
    Modifier(String),
    /// `${VAR:?message}` with VAR unset.
    #[error("{0}: {1}")]
    Required(String, String),
    /// An unterminated quote.
    #[error("unexpected end of statement while looking for matching {}", if *.0 == '"' { "double-quote" } else { "single-quote" })]
    Quote(char),
}

/// Expands one word (quotes removed).
pub fn expand(
    word: &str,
    env: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ExpandError> {
    let words = lex(word, env, escape, false)?;
    Ok(words.concat())
}

/// Expands and splits on unquoted white space (for `ENV a=1 b=2`, `EXPOSE`, `VOLUME`).
pub fn expand_words(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    lex(text, env, escape, true)
}

fn lex(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    escape: char,
    split: bool,
) -> Result<Vec<String>, ExpandError> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if split && c.is_whitespace() {
            if in_word {
                words.push(std::mem::take(&mut cur));
                in_word = false;
            }
            i += 1;
            continue;
        }
        in_word = true;
        if c == escape {
            if let Some(&n) = chars.get(i + 1) {
                cur.push(n);
                i += 2;
            } else {
                cur.push(c);
                i += 1;
            }
            continue;
        }
        match c {
            '\'' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == '\'')
                    .ok_or(ExpandError::Quote('\''))?;
                cur.extend(&chars[i + 1..i + 1 + end]);
                i += end + 2;
            }
            '"' => {
                i += 1;
                loop {
                    let Some(&d) = chars.get(i) else {
                        return Err(ExpandError::Quote('"'));
                    };
                    if d == '"' {
                        i += 1;
                        break;
                    }
                    if d == escape {
                        match chars.get(i + 1) {
                            Some(&n) if n == '"' || n == '$' || n == escape => {
                                cur.push(n);
                                i += 2;
                                continue;
                            }
                            _ => {}
                        }
                    }
                    if d == '$' {
                        i = variable(&chars, i, env, escape, &mut cur)?;
                        continue;
                    }
                    cur.push(d);
                    i += 1;
                }
            }
            '$' => i = variable(&chars, i, env, escape, &mut cur)?,
            _ => {
                cur.push(c);
                i += 1;
            }
        }
    }
    if in_word || !split {
        words.push(cur);
    }
    Ok(words)
}

/// Expands the variable starting at `chars[i] == '$'`; returns the index after it.
fn variable(
    chars: &[char],
    i: usize,
    env: &dyn Fn(&str) -> Option<String>,
    escape: char,
    out: &mut String,
) -> Result<usize, ExpandError> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match chars.get(i + 1) {
        Some('{') => {
            let start = i + 2;
            let mut depth = 1;
            let mut j = start;
            while j < chars.len() {
                match chars[j] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            if j >= chars.len() {
                return Err(ExpandError::Unterminated(chars[i..].iter().collect()));
            }
            let inner: String = chars[start..j].iter().collect();
            let name_len = inner.chars().take_while(|&c| is_name(c)).count();
            let name = &inner[..name_len];
            let rest = &inner[name_len..];
            let val = env(name);
            let sub = |w: &str| expand(w, env, escape);
            let text = if rest.is_empty() {
                val.unwrap_or_default()
            } else if let Some(w) = rest.strip_prefix(":-") {
                match val {
                    Some(v) if !v.is_empty() => v,
                    _ => sub(w)?,
                }
            } else if let Some(w) = rest.strip_prefix(":+") {
                match val {
                    Some(v) if !v.is_empty() => sub(w)?,
                    _ => String::new(),
                }
            } else if let Some(w) = rest.strip_prefix(":?") {
                match val {
                    Some(v) if !v.is_empty() => v,
                    _ => return Err(ExpandError::Required(name.to_string(), sub(w)?)),
                }
            } else if let Some(w) = rest.strip_prefix('-') {
                match val {
                    Some(v) => v,
                    None => sub(w)?,
                }
            } else if let Some(w) = rest.strip_prefix('+') {
                match val {
                    Some(_) => sub(w)?,
                    None => String::new(),
                }
            } else {
                return Err(ExpandError::Modifier(rest.chars().take(2).collect()));
            };
            out.push_str(&text);
            Ok(j + 1)
        }
        Some(&c) if is_name(c) => {
            let mut j = i + 1;
            while j < chars.len() && is_name(chars[j]) {
                j += 1;
            }
            let name: String = chars[i + 1..j].iter().collect();
            out.push_str(&env(&name).unwrap_or_default());
            Ok(j)
        }
        _ => {
            out.push('$');
            Ok(i + 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("one".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_like_docker() {
        let e = |s: &str| expand(s, &env, '\\').expect("expand");
        assert_eq!(e("$A"), "one");
        assert_eq!(e("${A}x"), "onex");
        assert_eq!(e("${B:-def}"), "def");
        assert_eq!(e("${EMPTY:-def}"), "def");
        assert_eq!(e("${EMPTY-def}"), "");
        assert_eq!(e("${A:+alt}"), "alt");
        assert_eq!(e("${B:+alt}"), "");
        assert_eq!(e("\\$A"), "$A");
        assert_eq!(e("'$A'"), "$A");
        assert_eq!(e("\"$A b\""), "one b");
        assert_eq!(e("a$"), "a$");
        assert!(expand("${A", &env, '\\').is_err());
        assert_eq!(
            expand_words("a=$A  b=\"x y\"", &env, '\\').expect("words"),
            vec!["a=one", "b=x y"]
        );
    }
}
