//! Helpers of the prune fidelity tests (`prune_fidelity.rs`): raw API calls on both engines,
//! `filters` query values, IDs mapped to names, the docker CLI on both, prune events.

use crate::build_support::Pair;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// `POST /v{version}/{path}` on the socket: (status, JSON answer).
pub fn post(sock: &Path, version: &str, path: &str) -> (u16, Value) {
    let o = Command::new("curl")
        .args(["-sS", "-X", "POST", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(sock)
        .arg(format!("http://localhost/v{version}/{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// A `filters` query value (URL-encoded JSON) from `key=value` pairs.
pub fn filters(pairs: &[(&str, &str)]) -> String {
    let mut m = serde_json::Map::new();
    for (k, v) in pairs {
        let e = m
            .entry(k.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
        e[*v] = Value::Bool(true);
    }
    let json = Value::Object(m).to_string();
    let mut out = String::new();
    for b in json.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out += &format!("%{b:02X}");
        }
    }
    format!("filters={out}")
}

/// Container IDs in `v[key]` replaced by the names `ids` maps them to (sorted).
pub fn named(v: &Value, key: &str, ids: &[(String, String)]) -> Option<Vec<String>> {
    let list = v[key].as_array()?;
    let mut out: Vec<String> = list
        .iter()
        .filter_map(Value::as_str)
        .map(|id| {
            ids.iter()
                .find(|(i, _)| i == id)
                .map_or_else(|| format!("unknown {id}"), |(_, n)| n.clone())
        })
        .collect();
    out.sort();
    Some(out)
}

/// Every container of an engine as (full id, name).
pub fn container_ids(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(i, n)| (i.to_string(), n.to_string()))
        .collect()
}

/// The same request on both engines, its status codes equal; the two answers.
#[track_caller]
pub fn both(p: &Pair, version: &str, path: &str) -> (Value, Value) {
    let (s1, ours) = post(p.d.socket(), version, path);
    let (s2, theirs) = post(&p.real.path("docker.sock"), version, path);
    assert_eq!(s1, s2, "{path}: berthd {ours} / dockerd {theirs}");
    (ours, theirs)
}

/// The same request fails on both engines (a 4xx or 5xx each).
#[track_caller]
pub fn both_fail(p: &Pair, path: &str) {
    let (s1, ours) = post(p.d.socket(), "1.41", path);
    let (s2, theirs) = post(&p.real.path("docker.sock"), "1.41", path);
    assert!(
        s1 >= 400 && s2 >= 400 && ours["message"].is_string(),
        "{path}: berthd {s1} {ours} / dockerd {s2} {theirs}"
    );
}

/// The docker CLI on both engines, each must succeed.
#[track_caller]
pub fn docker_both(p: &Pair, args: &[&str]) {
    p.docker(args, None).ok();
}

pub fn names(p: &Pair, args: &[&str]) -> (BTreeSet<String>, BTreeSet<String>) {
    let b = p.docker(args, None);
    b.ok();
    let set = |s: &str| s.lines().map(str::to_string).collect::<BTreeSet<_>>();
    (set(&b.ours.stdout), set(&b.theirs.stdout))
}

/// Container IDs (64 hex digits) as `<id>`, so outputs of two engines compare.
pub fn no_ids(s: &str) -> String {
    s.lines()
        .map(|l| {
            if l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()) {
                "<id>"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn unix_now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string()
}

/// The `prune` events since `since` on both engines, as `type action` sets.
pub fn prune_events(p: &Pair, since: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let until = unix_now();
    let fmt = "{{.Type}} {{.Action}}";
    let args = [
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        "event=prune",
    ];
    let mut args = args.to_vec();
    args.extend(["--format", fmt]);
    let b = p.docker(&args, None);
    b.ok();
    let set = |s: &str| s.lines().map(str::to_string).collect::<BTreeSet<_>>();
    (set(&b.ours.stdout), set(&b.theirs.stdout))
}
