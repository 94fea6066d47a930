//! Applying config-changing instructions (`CMD`, `ENV`, `LABEL`, ...) to an image config's
//! `config` object — shared by `build`, `import -c` and `commit -c`.

use crate::expand::{expand, expand_words};
use crate::parse::{Args, Instruction};
use serde_json::{json, Map, Value};

/// Why an instruction could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The instruction is not a config change (e.g. `RUN` in `import -c`).
    #[error("{0} is not a valid change command")]
    NotAChange(String),
    /// `STOPSIGNAL` names no signal.
    #[error("Invalid signal: {0}")]
    Signal(String),
    /// Bad arguments.
    #[error("line {line}: {keyword}: {message}")]
    Invalid {
        /// Line.
        line: usize,
        /// Keyword.
        keyword: String,
        /// What is wrong.
        message: String,
    },
}

/// Linux signal names (without `SIG`), as Docker's `signal.ParseSignal` knows them.
const SIGNALS: &[&str] = &[
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// Whether `s` names a signal: a number 1-64, a name with or without `SIG`, or `RTMIN+n` /
/// `RTMAX-n`.
fn valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let name = s.strip_prefix("SIG").unwrap_or(s);
    SIGNALS.contains(&name)
        || ["RTMIN", "RTMAX"].iter().any(|rt| {
            name.strip_prefix(rt).is_some_and(|r| {
                r.is_empty()
                    || r.strip_prefix(['+', '-'])
                        .and_then(|n| n.parse::<u32>().ok())
                        .is_some_and(|n| n <= 15)
            })
        })
}

/// Keywords a change may use.
pub const CHANGE_KEYWORDS: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
    "HEALTHCHECK",
    "SHELL",
];

/// The value of `name` in the config's `Env`.
pub fn env_value(cfg: &Map<String, Value>, name: &str) -> Option<String> {
    cfg.get("Env")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// The shell used for shell-form commands (`SHELL`, default `/bin/sh -c`).
pub fn shell(cfg: &Map<String, Value>) -> Vec<String> {
    cfg.get("Shell")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .filter(|v: &Vec<String>| !v.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

pub(crate) fn command(ins: &Instruction, cfg: &Map<String, Value>) -> Value {
    match &ins.args {
        Args::Json(v) => json!(v),
        Args::Shell(s) => {
            let mut c = shell(cfg);
            c.push(s.clone());
            json!(c)
        }
    }
}

/// Sets `Env` key `k` to `v`, replacing an existing entry.
pub fn set_env(cfg: &mut Map<String, Value>, k: &str, v: &str) {
    let env = cfg.entry("Env").or_insert_with(|| json!([]));
    if !env.is_array() {
        *env = json!([]);
    }
    if let Some(a) = env.as_array_mut() {
        let entry = format!("{k}={v}");
        match a
            .iter_mut()
            .find(|e| e.as_str().is_some_and(|s| s.split('=').next() == Some(k)))
        {
            Some(slot) => *slot = json!(entry),
            None => a.push(json!(entry)),
        }
    }
}

fn invalid(ins: &Instruction, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        line: ins.line,
        keyword: ins.keyword.clone(),
        message: message.into(),
    }
}

pub(crate) fn kv_pairs(
    ins: &Instruction,
    words: Vec<String>,
) -> Result<Vec<(String, String)>, ConfigError> {
    if words.len() == 2 && !words[0].contains('=') {
        return Ok(vec![(words[0].clone(), words[1].clone())]);
    }
    if words.len() > 2 && !words[0].contains('=') {
        // Legacy `ENV key value with spaces`.
        return Ok(vec![(words[0].clone(), words[1..].join(" "))]);
    }
    words
        .into_iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| invalid(ins, format!("{w:?} must be of the form key=value")))
        })
        .collect()
}

/// The variables a word expands with: the config's `Env`, then `args`.
fn vars<'a>(
    cfg: &'a Map<String, Value>,
    args: &'a dyn Fn(&str) -> Option<String>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| env_value(cfg, name).or_else(|| args(name))
}

/// Applies one instruction to the config object `cfg` (the image config's `config`); words
/// are expanded with the config's `Env` only.
pub fn apply(
    cfg: &mut Map<String, Value>,
    ins: &Instruction,
    escape: char,
) -> Result<(), ConfigError> {
    apply_with(cfg, ins, escape, &|_| None)
}

/// [`apply`] in a build: a variable missing from the config's `Env` is looked up in
/// `args` (the build arguments in scope; `ENV` wins over `ARG`, as Docker's).
pub fn apply_with(
    cfg: &mut Map<String, Value>,
    ins: &Instruction,
    escape: char,
    args: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let lookup = |c: &Map<String, Value>, s: &str| -> Result<String, ConfigError> {
        let env = vars(c, args);
        expand(s, &env, escape).map_err(|e| invalid(ins, e.to_string()))
    };
    match ins.keyword.as_str() {
        "CMD" => {
            let v = command(ins, cfg);
            cfg.insert("Cmd".into(), v);
        }
        "ENTRYPOINT" => {
            let v = command(ins, cfg);
            cfg.insert("Entrypoint".into(), v);
            cfg.insert("Cmd".into(), Value::Null);
        }
        "ENV" | "LABEL" => {
            let words = {
                let env = vars(cfg, args);
                expand_words(&ins.text(), &env, escape).map_err(|e| invalid(ins, e.to_string()))?
            };
            for (k, v) in kv_pairs(ins, words)? {
                if ins.keyword == "ENV" {
                    set_env(cfg, &k, &v);
                } else {
                    let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
                    if !labels.is_object() {
                        *labels = json!({});
                    }
                    if let Some(m) = labels.as_object_mut() {
                        m.insert(k, json!(v));
                    }
                }
            }
        }
        "EXPOSE" => {
            let words = {
                let env = vars(cfg, args);
                expand_words(&ins.text(), &env, escape).map_err(|e| invalid(ins, e.to_string()))?
            };
            let ports = cfg.entry("ExposedPorts").or_insert_with(|| json!({}));
            if !ports.is_object() {
                *ports = json!({});
            }
            for w in words {
                let p = if w.contains('/') {
                    w.to_lowercase()
                } else {
                    format!("{w}/tcp")
                };
                if let Some(m) = ports.as_object_mut() {
                    m.insert(p, json!({}));
                }
            }
        }
        "VOLUME" => {
            let list: Vec<String> = match &ins.args {
                Args::Json(v) => v.clone(),
                Args::Shell(_) => {
                    let env = vars(cfg, args);
                    expand_words(&ins.text(), &env, escape)
                        .map_err(|e| invalid(ins, e.to_string()))?
                }
            };
            let vols = cfg.entry("Volumes").or_insert_with(|| json!({}));
            if !vols.is_object() {
                *vols = json!({});
            }
            for v in list {
                if let Some(m) = vols.as_object_mut() {
                    m.insert(v, json!({}));
                }
            }
        }
        "USER" => {
            let v = lookup(cfg, ins.text().trim())?;
            cfg.insert("User".into(), json!(v));
        }
        "WORKDIR" => {
            let v = lookup(cfg, ins.text().trim())?;
            let cur = cfg
                .get("WorkingDir")
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_string();
            let path = if v.starts_with('/') {
                v
            } else {
                format!("{}/{}", cur.trim_end_matches('/'), v)
            };
            cfg.insert("WorkingDir".into(), json!(path));
        }
        "STOPSIGNAL" => {
            let v = lookup(cfg, ins.text().trim())?;
            if !valid_signal(&v) {
                return Err(ConfigError::Signal(v));
            }
            cfg.insert("StopSignal".into(), json!(v));
        }
        "SHELL" => match &ins.args {
            Args::Json(v) => {
                cfg.insert("Shell".into(), json!(v));
            }
            Args::Shell(_) => {
                return Err(invalid(
                    ins,
                    "SHELL requires the arguments to be in JSON form",
                ))
            }
        },
        "ONBUILD" => {
            let list = cfg.entry("OnBuild").or_insert_with(|| json!([]));
            if !list.is_array() {
                *list = json!([]);
            }
            if let Some(a) = list.as_array_mut() {
                a.push(json!(ins.text()));
            }
        }
        "HEALTHCHECK" => {
            let text = ins.text();
            let mut hc = Map::new();
            if text.trim().eq_ignore_ascii_case("NONE") {
                hc.insert("Test".into(), json!(["NONE"]));
            } else {
                let rest = text
                    .trim()
                    .strip_prefix("CMD")
                    .or_else(|| text.trim().strip_prefix("cmd"))
                    .ok_or_else(|| invalid(ins, "expected CMD or NONE"))?
                    .trim();
                let test = match serde_json::from_str::<Vec<String>>(rest) {
                    Ok(v) => {
                        let mut t = vec!["CMD".to_string()];
                        t.extend(v);
                        t
                    }
                    Err(_) => vec!["CMD-SHELL".to_string(), rest.to_string()],
                };
                hc.insert("Test".into(), json!(test));
                for (k, v) in &ins.flags {
                    let key = match k.as_str() {
                        "interval" => "Interval",
                        "timeout" => "Timeout",
                        "start-period" => "StartPeriod",
                        "start-interval" => "StartInterval",
                        "retries" => {
                            let n: i64 = v
                                .parse()
                                .map_err(|_| invalid(ins, format!("invalid retries {v:?}")))?;
                            hc.insert("Retries".into(), json!(n));
                            continue;
                        }
                        other => return Err(invalid(ins, format!("unknown flag: --{other}"))),
                    };
                    let d = berth_core::duration::parse(v)
                        .ok_or_else(|| invalid(ins, format!("invalid duration {v:?}")))?;
                    hc.insert(key.into(), json!(d));
                }
            }
            cfg.insert("Healthcheck".into(), Value::Object(hc));
        }
        other => return Err(ConfigError::NotAChange(other.to_string())),
    }
    Ok(())
}

/// Applies `import -c` / `commit -c` change lines to `cfg`.
pub fn apply_changes(cfg: &mut Map<String, Value>, changes: &[String]) -> Result<(), ConfigError> {
    for c in changes {
        if c.trim().is_empty() {
            continue;
        }
        let df = crate::parse(&format!("FROM scratch\n{c}")).map_err(|e| ConfigError::Invalid {
            line: 1,
            keyword: c.split_whitespace().next().unwrap_or("").to_string(),
            message: e.to_string(),
        })?;
        for ins in df.instructions.iter().skip(1) {
            if !CHANGE_KEYWORDS.contains(&ins.keyword.as_str()) {
                return Err(ConfigError::NotAChange(ins.keyword.clone()));
            }
            apply(cfg, ins, df.escape)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_like_docker() {
        let mut cfg = Map::new();
        apply_changes(
            &mut cfg,
            &[
                "CMD [\"sh\"]".into(),
                "ENV A=1 B=\"two words\"".into(),
                "EXPOSE 80 53/udp".into(),
                "WORKDIR /app".into(),
                "WORKDIR sub".into(),
                "LABEL x=y".into(),
            ],
        )
        .expect("apply");
        assert_eq!(cfg["Cmd"], json!(["sh"]));
        assert_eq!(cfg["Env"], json!(["A=1", "B=two words"]));
        assert!(cfg["ExposedPorts"].get("80/tcp").is_some());
        assert!(cfg["ExposedPorts"].get("53/udp").is_some());
        assert_eq!(cfg["WorkingDir"], json!("/app/sub"));
        assert_eq!(cfg["Labels"]["x"], json!("y"));
        assert!(apply_changes(&mut cfg, &["RUN true".into()]).is_err());
        for (sig, ok) in [
            ("SIGUSR1", true),
            ("TERM", true),
            ("9", true),
            ("SIGRTMIN+3", true),
        ] {
            let r = apply_changes(&mut cfg, &[format!("STOPSIGNAL {sig}")]);
            assert_eq!(r.is_ok(), ok, "{sig}");
        }
        let bad = apply_changes(&mut cfg, &["STOPSIGNAL SIGx".into()]);
        assert_eq!(bad, Err(ConfigError::Signal("SIGx".into())));
        assert_eq!(cfg["StopSignal"], json!("SIGRTMIN+3"));
    }
}
