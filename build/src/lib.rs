//! berth-build: Dockerfiles as data.
//!
//! [`parse`] turns Dockerfile text into [`Instruction`]s with their line numbers: parser
//! directives (`# syntax`, `# escape`), comments, line continuations, JSON (exec) and shell
//! forms, heredocs (`RUN <<EOF`), and flags (`COPY --from=... --chown=...`). [`expand`]
//! performs Docker's variable substitution (`$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR:+alt}`, escapes); [`vars`] knows the build arguments in scope; [`ignore`] is
//! `.dockerignore`. Executing the instructions (containers, layers, cache) is the
//! daemon's job; this crate knows no I/O.

pub mod config;
pub mod expand;
pub mod history;
pub mod ignore;
pub mod parse;
pub mod vars;

pub use expand::expand;
pub use parse::{parse, Args, Dockerfile, Heredoc, Instruction, ParseError};
