//! `--security-opt` (`HostConfig.SecurityOpt`) as Docker's daemon reads it: `no-new-privileges`
//! (bare or `=true|false`), `seccomp=unconfined|builtin|<profile JSON>` (the docker CLI sends
//! the content of `seccomp=FILE`), `systempaths=unconfined`, and the `label`/`apparmor`/
//! `writable-cgroups` keys (accepted, no effect here). `key:value` is the old spelling of
//! `key=value`. Anything else is refused with Docker's texts.

use crate::seccomp::Seccomp;

/// What the security options ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOpts {
    /// `no-new-privileges`.
    pub no_new_privileges: bool,
    /// `seccomp=...` (the last one wins, as with Docker).
    pub seccomp: Seccomp,
    /// `systempaths=unconfined`: no masked or read-only paths.
    pub systempaths_unconfined: bool,
}

/// Parses `HostConfig.SecurityOpt`; the error is Docker's `invalid --security-opt N: "..."`.
pub fn parse(opts: &[String]) -> Result<SecurityOpts, String> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        match opt.as_str() {
            "no-new-privileges" => {
                out.no_new_privileges = true;
                continue;
            }
            "disable" => continue,
            _ => {}
        }
        let (key, value) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .ok_or_else(|| format!("invalid --security-opt 1: {opt:?}"))?;
        match key {
            "label" | "apparmor" | "writable-cgroups" => {}
            "seccomp" => out.seccomp = Seccomp::from_value(value),
            "no-new-privileges" => {
                out.no_new_privileges = match value {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                    _ => return Err(format!("invalid --security-opt 2: {opt:?}")),
                }
            }
            "systempaths" if value == "unconfined" => out.systempaths_unconfined = true,
            _ => return Err(format!("invalid --security-opt 2: {opt:?}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_spellings() {
        let s = |v: &[&str]| parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let o = s(&["no-new-privileges", "seccomp=unconfined"]).expect("opts");
        assert!(o.no_new_privileges && o.seccomp == Seccomp::Unconfined);
        let o = s(&[
            "no-new-privileges:false",
            "seccomp={\"defaultAction\":\"x\"}",
        ])
        .expect("opts");
        assert!(!o.no_new_privileges);
        assert_eq!(
            o.seccomp,
            Seccomp::Custom("{\"defaultAction\":\"x\"}".into())
        );
        assert_eq!(
            s(&["seccomp=builtin"]).expect("opts").seccomp,
            Seccomp::Builtin
        );
        assert_eq!(
            s(&["bogus"]).expect_err("refused"),
            "invalid --security-opt 1: \"bogus\""
        );
        assert_eq!(
            s(&["foo=bar"]).expect_err("refused"),
            "invalid --security-opt 2: \"foo=bar\""
        );
    }
}
