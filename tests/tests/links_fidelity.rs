//! Legacy links against a private real dockerd (issue 16), the same calls on both engines and
//! their answers compared: the variables a `--link` gives (`ALIAS_NAME`, `ALIAS_ENV_*`,
//! `ALIAS_PORT*` with port runs) at start and in an exec, the `/etc/hosts` lines (after
//! `--add-host` ones; rewritten when the target comes back with a new address),
//! `HostConfig.Links` in inspect, the link's name naming its target (inspect, `ps` names),
//! dockerd's errors (unknown target, bad formats, host and
//! container network modes, a target that is not running at start), `docker rm --link` and
//! its errors, and links on a user network acting as aliases (`EndpointSettings.Links`, the
//! embedded DNS answering the linking container only). Without dockerd the berth side is
//! still checked against the values dockerd gives.

use berth_tests::{RealEngine, TestDaemon};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::process::Command;

/// A docker CLI run: (success, stdout, stderr).
type Cli<'a> = Box<dyn Fn(&[&str]) -> (bool, String, String) + 'a>;

/// One engine: its socket and a way to run the docker CLI against it.
struct Eng<'a> {
    sock: PathBuf,
    cli: Cli<'a>,
}

impl Eng<'_> {
    /// The docker CLI: (success, stdout, stderr).
    fn docker(&self, args: &[&str]) -> (bool, String, String) {
        (self.cli)(args)
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.docker(args);
        assert!(ok, "docker {args:?}: {err}");
        out
    }

    /// A raw API call (API 1.41, the oldest both engines speak): (status, body).
    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-m", "60", "-w", "\n%{http_code}", "-X", method])
            .arg("--unix-socket")
            .arg(&self.sock)
            .arg(format!("http://x/v1.41{path}"));
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "-d", &b.to_string()]);
        }
        let o = cmd.output().expect("curl");
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let v = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
        (code.trim().parse().unwrap_or(0), v)
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name]).trim().to_string()
    }
}

/// `text` with each (value, placeholder) replaced: addresses and generated host names
/// differ between the engines.
fn norm(text: &str, subst: &[(String, &str)]) -> String {
    let mut t = text.to_string();
    for (v, p) in subst.iter().filter(|(v, _)| !v.is_empty()) {
        t = t.replace(v.as_str(), p);
    }
    t
}

/// The sorted `PREFIX*` variables of a NUL- or newline-separated environment.
fn vars(env: &str, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = env
        .split(['\0', '\n'])
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// The lines after the six default ones of an `/etc/hosts`.
fn host_lines(hosts: &str) -> Vec<String> {
    hosts.lines().skip(6).map(str::to_string).collect()
}

/// Everything observed on one engine (busybox loaded).
fn scenario(e: &Eng) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_string(), v);
    };
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--hostname",
        "webhost",
        "-e",
        "FOO=bar",
        "-e",
        "PATH=/x:/bin",
        "--expose",
        "80",
        "--expose",
        "443/udp",
        "--expose",
        "8000-8002",
        "busybox",
        "sleep",
        "300",
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "--add-host",
        "extra:1.2.3.4",
        "--link",
        "web:db",
        "busybox",
        "sleep",
        "300",
    ]);
    let web_ip = e.inspect("web", "{{.NetworkSettings.IPAddress}}");
    let app_ip = e.inspect("app", "{{.NetworkSettings.IPAddress}}");
    let app_host = e.inspect("app", "{{.Config.Hostname}}");
    let subst = |web_ip: &str| {
        vec![
            (web_ip.to_string(), "WEBIP"),
            (app_ip.clone(), "APPIP"),
            (app_host.clone(), "APPHOST"),
        ]
    };
    let s = subst(&web_ip);
    let environ = e.ok(&["exec", "app", "cat", "/proc/1/environ"]);
    put("start_env", json!(vars(&norm(&environ, &s), "DB_")));
    let exec_env = e.ok(&["exec", "app", "env"]);
    put("exec_env", json!(vars(&norm(&exec_env, &s), "DB_")));
    let hosts = e.ok(&["exec", "app", "cat", "/etc/hosts"]);
    put("hosts", json!(host_lines(&norm(&hosts, &s))));
    put(
        "links",
        json!(e.inspect("app", "{{json .HostConfig.Links}}")),
    );
    // A link's name names its target, in inspect and in the list.
    put("by_link_name", json!(e.inspect("app/db", "{{.Name}}")));
    let ps = e.ok(&["ps", "--no-trunc", "--format", "{{.Names}}"]);
    let mut ps: Vec<&str> = ps.lines().collect();
    ps.sort();
    put("ps_names", json!(ps));
    // A link without an alias, and one whose alias is the target's name.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web2",
        "--hostname",
        "web2",
        "busybox",
        "sleep",
        "300",
    ]);
    let out2 = e.ok(&[
        "run",
        "--rm",
        "--name",
        "lone",
        "--link",
        "web2",
        "--link",
        "/web:/x/My-Web",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts; env",
    ]);
    let web2_ip = e.inspect("web2", "{{.NetworkSettings.IPAddress}}");
    let mut s2 = s.clone();
    s2.push((web2_ip, "WEB2IP"));
    let out2 = norm(&out2, &s2);
    let mut lines: Vec<&str> = out2
        .lines()
        .filter(|l| l.contains("WEB") && !l.contains('='))
        .collect();
    lines.sort();
    put("noalias_hosts", json!(lines));
    put("noalias_name", json!(vars(&out2, "WEB2_NAME")));
    put("dash_alias", json!(vars(&out2, "MY_WEB_PORT_80_TCP=")));

    // Create-time errors.
    let create = |links: Value, mode: &str| {
        let body = json!({"Image": "busybox", "Cmd": ["sleep", "1"],
            "HostConfig": {"Links": links, "NetworkMode": mode}});
        let (code, v) = e.api("POST", "/containers/create", Some(body));
        json!([code, v.get("message").cloned().unwrap_or(json!("created"))])
    };
    put("missing", create(json!(["missing:x"]), "bridge"));
    put("bad_format", create(json!(["a:b:c"]), "bridge"));
    put("empty", create(json!([""]), "bridge"));
    put("host_mode", create(json!(["web:x"]), "host"));
    put("container_mode", create(json!(["web:x"]), "container:web"));
    // A target that is not running when the container starts.
    e.ok(&["create", "--name", "stopped", "busybox", "sleep", "1"]);
    e.ok(&[
        "create",
        "--name",
        "c1",
        "--link",
        "stopped:s",
        "busybox",
        "sleep",
        "1",
    ]);
    let (code, v) = e.api("POST", "/containers/c1/start", None);
    put("start_not_running", json!([code, v["message"]]));
    let st = "{{.State.Status}} {{.State.Error}} {{.State.ExitCode}}";
    put("start_not_running_state", json!(e.inspect("c1", st)));

    // The target comes back with a new address: the parent's /etc/hosts follows.
    e.ok(&["stop", "-t", "0", "web"]);
    e.ok(&["run", "-d", "--name", "filler", "busybox", "sleep", "300"]);
    e.ok(&["start", "web"]);
    let new_ip = e.inspect("web", "{{.NetworkSettings.IPAddress}}");
    put("new_address", json!(new_ip != web_ip));
    let hosts = e.ok(&["exec", "app", "cat", "/etc/hosts"]);
    put(
        "hosts_after_restart",
        json!(host_lines(&norm(&hosts, &subst(&new_ip)))),
    );

    // `rm --link` and its errors.
    let rm = |name: &str| {
        let (code, v) = e.api("DELETE", &format!("/containers/{name}?link=1"), None);
        json!([code, v.get("message").cloned().unwrap_or(v)])
    };
    put("rm_link_default_name", rm("web"));
    put("rm_link_unknown", rm("app/nope"));
    let (ok, _, err) = e.docker(&["rm", "--link", "/app/db"]);
    put("rm_link", json!([ok, err]));
    put("rm_link_again", rm("app/db"));
    put(
        "links_after_rm",
        json!(e.inspect("app", "{{json .HostConfig.Links}}")),
    );
    let hosts = e.ok(&["exec", "app", "cat", "/etc/hosts"]);
    put(
        "hosts_after_rm",
        json!(host_lines(&norm(&hosts, &subst(&new_ip)))),
    );
    let exec_env = e.ok(&["exec", "app", "env"]);
    put("exec_env_after_rm", json!(vars(&exec_env, "DB_")));

    // On a user network links are aliases for the linking container.
    e.ok(&["network", "create", "un"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "w3",
        "--network",
        "un",
        "busybox",
        "sleep",
        "300",
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "u3",
        "--network",
        "un",
        "--link",
        "w3:dbx",
        "busybox",
        "sleep",
        "300",
    ]);
    let w3_ip = e.inspect("w3", "{{.NetworkSettings.Networks.un.IPAddress}}");
    let f = "{{json .HostConfig.Links}} {{json .NetworkSettings.Networks.un.Links}}";
    put("user_links", json!(e.inspect("u3", f)));
    let (ok, o, _) = e.docker(&["exec", "u3", "nslookup", "dbx"]);
    put("user_alias_resolves", json!(ok && o.contains(&w3_ip)));
    let (ok, _, _) = e.docker(&["exec", "w3", "nslookup", "dbx"]);
    put("user_alias_elsewhere", json!(ok));
    let (code, v) = e.api(
        "POST",
        "/containers/create",
        Some(
            json!({"Image": "busybox", "HostConfig": {"NetworkMode": "un",
            "Links": ["missing:x"]}}),
        ),
    );
    let id = v["Id"].as_str().unwrap_or_default().to_string();
    put("user_missing_target", json!(code));
    if !id.is_empty() {
        put(
            "user_missing_links",
            json!(e.inspect(&id, "{{json .HostConfig.Links}}")),
        );
    }
    out
}

/// What dockerd answers (checked on berth when dockerd is not there).
fn expected_of_dockerd() -> Vec<(&'static str, Value)> {
    vec![
        ("links", json!("[\"/web:/app/db\"]")),
        ("by_link_name", json!("/web")),
        ("ps_names", json!(["app", "app/db,web"])),
        (
            "hosts",
            json!(["1.2.3.4\textra", "WEBIP\tdb webhost web", "APPIP\tAPPHOST"]),
        ),
        (
            "missing",
            json!([
                400,
                "could not get container for missing: No such container: missing"
            ]),
        ),
        ("bad_format", json!([500, "bad format for links: a:b:c"])),
        (
            "start_not_running",
            json!([
                500,
                "Cannot link to a non running container: /stopped AS /c1/s"
            ]),
        ),
        (
            "rm_link_default_name",
            json!([
                500,
                "Conflict, cannot remove the default link name of the container"
            ]),
        ),
        (
            "rm_link_unknown",
            json!([404, "No such container: app/nope"]),
        ),
        ("links_after_rm", json!("null")),
        ("user_links", json!("null [\"w3:dbx\"]")),
        ("user_alias_resolves", json!(true)),
        ("user_alias_elsewhere", json!(false)),
    ]
}

#[test]
fn links_as_dockerd() {
    let d = TestDaemon::start();
    let real = RealEngine::start_bridged();
    match &real {
        Some(r) => r.load_busybox_of(&d),
        None => d.import_busybox(),
    }
    let berth = Eng {
        sock: d.socket().to_path_buf(),
        cli: Box::new(|a: &[&str]| {
            let o = d.docker(a);
            (o.success(), o.stdout, o.stderr)
        }),
    };
    let ours = scenario(&berth);
    let Some(real) = real else {
        eprintln!("SKIP: no dockerd; berth checked against dockerd's known answers");
        for (k, v) in expected_of_dockerd() {
            assert_eq!(ours.get(k), Some(&v), "{k}");
        }
        return;
    };
    let docker = Eng {
        sock: real.path("docker.sock"),
        cli: Box::new(|a: &[&str]| real.docker(a)),
    };
    let theirs = scenario(&docker);
    let differ: Vec<String> = theirs
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: berth {:?}, dockerd {v:?}", ours.get(k)))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    for (k, v) in expected_of_dockerd() {
        assert_eq!(theirs.get(k), Some(&v), "dockerd's {k} changed");
    }
}
