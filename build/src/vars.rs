//! Build arguments: what an `ARG` declares, the value it takes (`--build-arg`, its default,
//! or the global `ARG` of that name before the first `FROM`), and the variables a build step
//! expands its words with (the image's `Env` first, then the `ARG`s in scope — Docker's
//! rule that `ENV` wins over `ARG`).

use crate::config::env_value;
use crate::expand::{expand_words, ExpandError};
use crate::parse::Instruction;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Build arguments by name; `None` is declared without a value.
pub type ArgMap = BTreeMap<String, Option<String>>;

/// The `name[=default]` declarations of an `ARG`, defaults expanded with `vars` (quotes
/// removed, as Docker's word processing does).
pub fn declarations(
    ins: &Instruction,
    vars: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<(String, Option<String>)>, ExpandError> {
    if ins.keyword != "ARG" {
        return Ok(Vec::new());
    }
    Ok(expand_words(&ins.text(), vars, escape)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w, None),
        })
        .collect())
}

/// The value `ARG name[=default]` takes: the `--build-arg` given, else its default, else
/// the value of the global `ARG` of that name (`meta`).
pub fn value(
    name: &str,
    default: Option<String>,
    build_args: &ArgMap,
    meta: &ArgMap,
) -> Option<String> {
    build_args
        .get(name)
        .cloned()
        .flatten()
        .or(default)
        .or_else(|| meta.get(name).cloned().flatten())
}

/// The variables a step of a stage expands with: `Env` of `cfg`, then `args`.
pub fn lookup<'a>(
    cfg: &'a Map<String, Value>,
    args: &'a ArgMap,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| env_value(cfg, name).or_else(|| args.get(name).cloned().flatten())
}

/// The `name=value` pairs of the `ARG`s in scope that a `RUN` sees in its environment (and
/// that its history records): those with a value and not shadowed by an `ENV`.
pub fn run_env(cfg: &Map<String, Value>, args: &ArgMap) -> Vec<String> {
    args.iter()
        .filter(|(k, _)| env_value(cfg, k).is_none())
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect()
}

/// Build arguments every build accepts without an `ARG` (Docker's predefined proxy ones).
pub const PREDEFINED: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Docker's warning for `--build-arg`s no `ARG` of the stages built declared (none when all
/// were): `[Warning] One or more build-args [A B] were not consumed`.
pub fn unconsumed_warning<'a>(
    given: &ArgMap,
    declared: impl Iterator<Item = &'a String>,
) -> Option<String> {
    let declared: std::collections::BTreeSet<&String> = declared.collect();
    let left: Vec<&str> = given
        .keys()
        .filter(|k| !declared.contains(k) && !PREDEFINED.contains(&k.as_str()))
        .map(String::as_str)
        .collect();
    (!left.is_empty()).then(|| {
        format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            left.join(" ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::apply_with;
    use serde_json::json;

    fn ins(text: &str) -> Instruction {
        let df = crate::parse(&format!("FROM scratch\n{text}")).expect("parse");
        df.instructions[1].clone()
    }

    #[test]
    fn arg_values_reach_every_expansion() {
        let mut args = ArgMap::new();
        let meta: ArgMap = [("G".to_string(), Some("global".to_string()))].into();
        let build: ArgMap = [("B".to_string(), Some("given".to_string()))].into();
        let mut cfg = Map::new();
        for line in [
            "ARG G",
            "ARG A=x B=def",
            "ARG C=\"$A-y\"",
            "ARG N",
            "ARG ONE=1",
        ] {
            let i = ins(line);
            let decls = declarations(&i, &lookup(&cfg, &args), '\\').expect("decl");
            for (k, d) in decls {
                let v = value(&k, d, &build, &meta);
                args.insert(k, v);
            }
        }
        assert_eq!(args["G"].as_deref(), Some("global"));
        assert_eq!(args["B"].as_deref(), Some("given"));
        assert_eq!(args["C"].as_deref(), Some("x-y"));
        assert_eq!(args["N"], None);
        for line in [
            "ENV E=$A F=${G}",
            "LABEL l=$B",
            "WORKDIR /w/$A",
            "USER $A",
            "STOPSIGNAL SIGUSR$ONE",
            "EXPOSE ${P:-80}",
            "VOLUME /v/$C",
        ] {
            let vars = |n: &str| args.get(n).cloned().flatten();
            apply_with(&mut cfg, &ins(line), '\\', &vars).expect("apply");
        }
        assert_eq!(cfg["Env"], json!(["E=x", "F=global"]));
        assert_eq!(cfg["Labels"], json!({"l": "given"}));
        assert_eq!(cfg["WorkingDir"], json!("/w/x"));
        assert_eq!(cfg["User"], json!("x"));
        assert_eq!(cfg["StopSignal"], json!("SIGUSR1"));
        assert!(cfg["ExposedPorts"].get("80/tcp").is_some());
        assert!(cfg["Volumes"].get("/v/x-y").is_some());
        // ENV wins over ARG, and a RUN sees only the ARGs ENV does not shadow.
        let mut shadow = Map::new();
        apply_with(&mut shadow, &ins("ENV A=env"), '\\', &|_| None).expect("env");
        assert_eq!(lookup(&shadow, &args)("A").as_deref(), Some("env"));
        let run = run_env(&shadow, &args);
        assert!(!run.iter().any(|e| e.starts_with("A=")), "{run:?}");
        assert!(run.contains(&"B=given".to_string()), "{run:?}");
    }
}
