//! The Dockerfile parser: text in, instructions with line numbers out.

use serde::{Deserialize, Serialize};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dockerfile {
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// The `# syntax=` directive, if any (recorded, not acted on).
    pub syntax: Option<String>,
    /// The instructions in order.
    pub instructions: Vec<Instruction>,
}

/// An instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Args {
    /// Exec (JSON array) form.
    Json(Vec<String>),
    /// Shell form: the rest of the line, continuations joined.
    Shell(String),
}

/// A here-document attached to an instruction (`RUN <<EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heredoc {
    /// The delimiter word.
    pub name: String,
    /// The body, each line ending in `\n`.
    pub content: String,
    /// Whether variables in the body are expanded (unquoted delimiter).
    pub expand: bool,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    /// 1-based line where it starts.
    pub line: usize,
    /// Upper-case keyword (`RUN`, `COPY`, ...).
    pub keyword: String,
    /// `--name=value` flags, in order (`value` empty for a bare `--name`).
    pub flags: Vec<(String, String)>,
    /// The arguments.
    pub args: Args,
    /// Here-documents, in order.
    pub heredocs: Vec<Heredoc>,
    /// The instruction text as written (continuations joined with a space), for history.
    pub original: String,
}

impl Instruction {
    /// The value of flag `name`, if given.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The arguments as text (shell form as written; exec form joined by spaces).
    pub fn text(&self) -> String {
        match &self.args {
            Args::Shell(s) => s.clone(),
            Args::Json(v) => v.join(" "),
        }
    }
}

/// Why a Dockerfile did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// An instruction Docker does not know.
    #[error("dockerfile parse error on line {line}: unknown instruction: {word}")]
    Unknown {
        /// Line.
        line: usize,
        /// The word as written.
        word: String,
    },
    /// Malformed exec form.
    #[error("dockerfile parse error on line {line}: {keyword} has an unterminated or invalid JSON array: {text}")]
    Json {
        /// Line.
        line: usize,
        /// Keyword.
        keyword: String,
        /// The argument text.
        text: String,
    },
    /// A here-document never closed.
    #[error("dockerfile parse error on line {line}: unterminated heredoc {name}")]
    Heredoc {
        /// Line.
        line: usize,
        /// Delimiter.
        name: String,
    },
    /// An instruction that needs arguments has none.
    #[error("dockerfile parse error on line {line}: {keyword} requires at least one argument")]
    Empty {
        /// Line.
        line: usize,
        /// Keyword.
        keyword: String,
    },
    /// A bad parser directive.
    #[error("dockerfile parse error on line {line}: invalid escape token '{value}' does not match ` or \\")]
    Escape {
        /// Line.
        line: usize,
        /// The value given.
        value: String,
    },
    /// `SHELL` in shell form.
    #[error(
        "dockerfile parse error on line {line}: SHELL requires the arguments to be in JSON form"
    )]
    ShellForm {
        /// Line.
        line: usize,
    },
    /// `ONBUILD ONBUILD`, `ONBUILD FROM`, `ONBUILD MAINTAINER`.
    #[error("dockerfile parse error on line {line}: {message}")]
    OnBuild {
        /// Line.
        line: usize,
        /// Docker's text.
        message: String,
    },
    /// No instructions at all.
    #[error("the Dockerfile cannot be empty")]
    NoInstructions,
    /// The first instruction is not FROM (ARG may come before it).
    #[error("dockerfile parse error on line {line}: no build stage in current context")]
    NoFrom {
        /// Line.
        line: usize,
    },
}

/// What Docker refuses when it parses the instructions, before building anything.
fn check(ins: &Instruction) -> Result<(), ParseError> {
    match ins.keyword.as_str() {
        "SHELL" if matches!(ins.args, Args::Shell(_)) => {
            Err(ParseError::ShellForm { line: ins.line })
        }
        "ONBUILD" => {
            let text = ins.text();
            let trigger = text
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let message = match trigger.as_str() {
                "ONBUILD" => "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string(),
                "FROM" | "MAINTAINER" => format!("{trigger} isn't allowed as an ONBUILD trigger"),
                _ => return Ok(()),
            };
            Err(ParseError::OnBuild {
                line: ins.line,
                message,
            })
        }
        _ => Ok(()),
    }
}

/// Keywords Docker knows.
pub const KEYWORDS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "ARG",
    "LABEL",
    "EXPOSE",
    "WORKDIR",
    "USER",
    "COPY",
    "ADD",
    "VOLUME",
    "SHELL",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "ONBUILD",
    "MAINTAINER",
];

/// Keywords whose leading `--flags` are parsed.
const FLAGGED: &[&str] = &["FROM", "RUN", "COPY", "ADD", "HEALTHCHECK"];
/// Keywords that may carry here-documents.
const HEREDOC: &[&str] = &["RUN", "COPY", "ADD"];
/// Keywords with an exec form.
const JSON_FORM: &[&str] = &["RUN", "CMD", "ENTRYPOINT", "SHELL", "VOLUME", "COPY", "ADD"];

/// Parses Dockerfile text.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut escape = '\\';
    let mut syntax = None;
    let mut i = 0;
    // Parser directives: only at the very top, `# key=value`.
    while i < lines.len() {
        let Some(body) = lines[i].trim().strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = body.split_once('=') else {
            break;
        };
        let k = k.trim().to_ascii_lowercase();
        let v = v.trim().to_string();
        match k.as_str() {
            "escape" => {
                escape = match v.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(ParseError::Escape {
                            line: i + 1,
                            value: v,
                        })
                    }
                }
            }
            "syntax" => syntax = Some(v),
            "check" => {}
            _ => break,
        }
        i += 1;
    }
    let mut instructions = Vec::new();
    while i < lines.len() {
        let trimmed = lines[i].trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        // Join continuation lines; comment lines inside are dropped.
        let mut logical = String::new();
        loop {
            let raw = lines[i].trim_end();
            i += 1;
            if let Some(stripped) = raw.strip_suffix(escape) {
                logical.push_str(stripped);
                while i < lines.len()
                    && (lines[i].trim().starts_with('#') || lines[i].trim().is_empty())
                {
                    if lines[i].trim().is_empty() {
                        break;
                    }
                    i += 1;
                }
                if i >= lines.len() || lines[i].trim().is_empty() {
                    break;
                }
            } else {
                logical.push_str(raw);
                break;
            }
        }
        let logical = logical.trim().to_string();
        let (word, rest) = match logical.split_once(char::is_whitespace) {
            Some((w, r)) => (w.to_string(), r.trim().to_string()),
            None => (logical.clone(), String::new()),
        };
        let keyword = word.to_ascii_uppercase();
        if !KEYWORDS.contains(&keyword.as_str()) {
            return Err(ParseError::Unknown {
                line: start + 1,
                word,
            });
        }
        let (flags, rest) = if FLAGGED.contains(&keyword.as_str()) {
            take_flags(&rest)
        } else {
            (Vec::new(), rest)
        };
        let mut heredocs = Vec::new();
        if HEREDOC.contains(&keyword.as_str()) {
            for (name, expand, strip_tabs) in heredoc_markers(&rest) {
                let mut content = String::new();
                loop {
                    let Some(l) = lines.get(i) else {
                        return Err(ParseError::Heredoc {
                            line: start + 1,
                            name,
                        });
                    };
                    i += 1;
                    let l = if strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if l == name {
                        break;
                    }
                    content.push_str(l);
                    content.push('\n');
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    expand,
                });
            }
        }
        let args = if JSON_FORM.contains(&keyword.as_str()) && rest.starts_with('[') {
            match serde_json::from_str::<Vec<String>>(&rest) {
                Ok(v) => Args::Json(v),
                Err(_) if rest.starts_with("[\"") || keyword == "SHELL" => {
                    return Err(ParseError::Json {
                        line: start + 1,
                        keyword,
                        text: rest,
                    });
                }
                Err(_) => Args::Shell(rest),
            }
        } else {
            Args::Shell(rest)
        };
        let empty = matches!(&args, Args::Shell(s) if s.is_empty()) && heredocs.is_empty();
        if empty && keyword != "CMD" && keyword != "ENTRYPOINT" {
            return Err(ParseError::Empty {
                line: start + 1,
                keyword,
            });
        }
        instructions.push(Instruction {
            line: start + 1,
            keyword,
            flags,
            args,
            heredocs,
            original: logical,
        });
    }
    if instructions.is_empty() {
        return Err(ParseError::NoInstructions);
    }
    if let Some(first) = instructions.iter().find(|ins| ins.keyword != "ARG") {
        if first.keyword != "FROM" {
            return Err(ParseError::NoFrom { line: first.line });
        }
    }
    for ins in &instructions {
        check(ins)?;
    }
    Ok(Dockerfile {
        escape,
        syntax,
        instructions,
    })
}

/// Splits leading `--name=value` / `--name` flags off `rest`.
fn take_flags(rest: &str) -> (Vec<(String, String)>, String) {
    let mut flags = Vec::new();
    let mut s = rest.trim_start();
    while let Some(f) = s.strip_prefix("--") {
        let end = f.find(char::is_whitespace).unwrap_or(f.len());
        let tok = &f[..end];
        match tok.split_once('=') {
            Some((k, v)) => flags.push((k.to_string(), v.to_string())),
            None => flags.push((tok.to_string(), String::new())),
        }
        s = f[end..].trim_start();
    }
    (flags, s.to_string())
}

/// Finds `<<WORD`, `<<-WORD`, `<<"WORD"`, `<<'WORD'` markers: (name, expand, strip tabs).
fn heredoc_markers(rest: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    let mut s = rest;
    while let Some(pos) = s.find("<<") {
        let mut t = &s[pos + 2..];
        let strip = t.starts_with('-');
        if strip {
            t = &t[1..];
        }
        let (quoted, t2) = match t.chars().next() {
            Some(q @ ('"' | '\'')) => (Some(q), &t[1..]),
            _ => (None, t),
        };
        let name: String = t2
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            s = &s[pos + 2..];
            continue;
        }
        let consumed = name.len() + usize::from(quoted.is_some()) * 2;
        out.push((name, quoted.is_none(), strip));
        s = t2
            .get(consumed.saturating_sub(usize::from(quoted.is_some()))..)
            .unwrap_or("");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms_flags_and_continuations() {
        let df = parse(
            "# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM $BASE AS build\n# a comment\nRUN echo a \\\n  && echo b\nCOPY --from=build --chown=1:1 /a /b\nCMD [\"sh\", \"-c\", \"echo hi\"]\nRUN [ -f /etc/passwd ]\n",
        )
        .expect("parse");
        assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
        let k: Vec<&str> = df.instructions.iter().map(|i| i.keyword.as_str()).collect();
        assert_eq!(k, ["ARG", "FROM", "RUN", "COPY", "CMD", "RUN"]);
        assert_eq!(
            df.instructions[2].args,
            Args::Shell("echo a   && echo b".into())
        );
        assert_eq!(df.instructions[2].line, 5);
        assert_eq!(df.instructions[3].flag("from"), Some("build"));
        assert_eq!(df.instructions[3].flag("chown"), Some("1:1"));
        assert_eq!(
            df.instructions[4].args,
            Args::Json(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(
            df.instructions[5].args,
            Args::Shell("[ -f /etc/passwd ]".into())
        );
    }

    #[test]
    fn heredocs_and_escape_directive() {
        let df = parse(
            "# escape=`\nFROM busybox\nRUN <<EOF\necho one\necho two\nEOF\nRUN echo a `\n b\n",
        )
        .expect("parse");
        assert_eq!(df.escape, '`');
        assert_eq!(
            df.instructions[1].heredocs[0].content,
            "echo one\necho two\n"
        );
        assert_eq!(df.instructions[2].args, Args::Shell("echo a  b".into()));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("FROM busybox\nFOO bar\n").expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "dockerfile parse error on line 2: unknown instruction: FOO"
        );
        let e = parse("FROM busybox\n\nCMD [\"sh\", \n").expect_err("json");
        assert!(e.to_string().contains("line 3"), "{e}");
        assert!(matches!(
            parse("RUN true\n"),
            Err(ParseError::NoFrom { line: 1 })
        ));
        assert!(matches!(
            parse("FROM x\nRUN <<EOF\nno end\n"),
            Err(ParseError::Heredoc { .. })
        ));
    }
}
