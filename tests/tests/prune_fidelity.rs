//! Prune fidelity (issue 16): `container`, `image [-a]`, `network`, `volume [-a]`, `builder`
//! and `system` prune against berthd and a private real dockerd — the same API calls
//! (status codes, the JSON answers with IDs mapped to names), the docker CLI's output on
//! both, berth's CLI printing what the docker CLI prints, and the Python SDK.
//!
//! The real engine is Debian's dockerd 20.10 (API 1.41): the comparisons use `/v1.41/`;
//! volume prune's API ≥ 1.42 rule (anonymous volumes only unless `all`) is checked on berthd
//! alone. Where old dockerd answers a bad `until` with 500, newer ones (and berthd) say 400:
//! only the failure is compared.

mod build_support;
mod prune_support;

use build_support::Pair;
use prune_support::*;
use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn container_and_network_prune_answer_as_dockerd() {
    let Some(p) = Pair::start() else { return };
    let since = unix_now();
    for (name, label) in [("c-a", "team=a"), ("c-b", "team=b"), ("c-none", "x=y")] {
        docker_both(
            &p,
            &[
                "create", "--name", name, "--label", label, "busybox", "true",
            ],
        );
    }
    docker_both(
        &p,
        &[
            "run",
            "-d",
            "--name",
            "c-run",
            "--network",
            "none",
            "busybox",
            "sleep",
            "300",
        ],
    );
    let ids = |p: &Pair| {
        let b = p.docker(
            &["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"],
            None,
        );
        b.ok();
        (
            container_ids(&b.ours.stdout),
            container_ids(&b.theirs.stdout),
        )
    };
    let (ours_ids, theirs_ids) = ids(&p);

    // Filters: unknown keys and bad times are refused.
    let (ours, theirs) = both(
        &p,
        "1.41",
        &format!("containers/prune?{}", filters(&[("bogus", "1")])),
    );
    assert_eq!(ours["message"].is_string(), theirs["message"].is_string());
    both_fail(
        &p,
        &format!("containers/prune?{}", filters(&[("until", "garbage")])),
    );
    let two = filters(&[("until", "1h"), ("until", "2h")]);
    both_fail(&p, &format!("containers/prune?{two}"));
    let (st, v) = post(p.d.socket(), "1.41", &format!("containers/prune?{two}"));
    assert_eq!(
        (st, v["message"].as_str()),
        (400, Some("more than one until filter specified"))
    );

    // `until` before everything: nothing, and `null` as Docker's.
    let q = filters(&[("until", "2000-01-01T00:00:00Z")]);
    let (ours, theirs) = both(&p, "1.41", &format!("containers/prune?{q}"));
    assert_eq!(ours, theirs);
    assert!(ours["ContainersDeleted"].is_null(), "{ours}");

    // `label` and `label!`.
    let q = filters(&[("label", "team=a")]);
    let (ours, theirs) = both(&p, "1.41", &format!("containers/prune?{q}"));
    assert_eq!(
        named(&ours, "ContainersDeleted", &ours_ids),
        Some(vec!["c-a".into()])
    );
    assert_eq!(
        named(&ours, "ContainersDeleted", &ours_ids),
        named(&theirs, "ContainersDeleted", &theirs_ids)
    );
    assert!(ours["SpaceReclaimed"].is_u64() && theirs["SpaceReclaimed"].is_u64());
    let q = filters(&[("label!", "x"), ("until", "1s")]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (ours, theirs) = both(&p, "1.41", &format!("containers/prune?{q}"));
    assert_eq!(
        named(&ours, "ContainersDeleted", &ours_ids),
        Some(vec!["c-b".into()])
    );
    assert_eq!(
        named(&ours, "ContainersDeleted", &ours_ids),
        named(&theirs, "ContainersDeleted", &theirs_ids)
    );

    // No filter: every stopped one; the running one stays.
    let (ours, theirs) = both(&p, "1.41", "containers/prune");
    assert_eq!(
        named(&ours, "ContainersDeleted", &ours_ids),
        Some(vec!["c-none".into()])
    );
    assert_eq!(
        named(&ours, "ContainersDeleted", &ours_ids),
        named(&theirs, "ContainersDeleted", &theirs_ids)
    );
    let (a, b) = names(&p, &["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(a, b);
    assert_eq!(a, BTreeSet::from(["c-run".to_string()]));
    let (ours, theirs) = both(&p, "1.41", "containers/prune");
    assert_eq!(ours, theirs);

    // SpaceReclaimed: what the container wrote in its rw layer.
    docker_both(
        &p,
        &[
            "run",
            "--name",
            "c-big",
            "--network",
            "none",
            "busybox",
            "dd",
            "if=/dev/zero",
            "of=/big",
            "bs=1000",
            "count=300",
        ],
    );
    let (ours, theirs) = both(&p, "1.41", "containers/prune");
    assert_eq!(ours["ContainersDeleted"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        theirs["ContainersDeleted"].as_array().map(Vec::len),
        Some(1)
    );
    for v in [&ours, &theirs] {
        let n = v["SpaceReclaimed"].as_u64().unwrap_or(0);
        assert!((300_000..400_000).contains(&n), "{ours} / {theirs}");
    }

    // Networks: labels, `until`, in use or predefined stays; `null` when nothing goes.
    for (name, label) in [("n-a", "team=a"), ("n-b", "team=b"), ("n-used", "team=a")] {
        docker_both(&p, &["network", "create", "--label", label, name]);
    }
    docker_both(
        &p,
        &[
            "run",
            "-d",
            "--name",
            "c-net",
            "--network",
            "n-used",
            "busybox",
            "sleep",
            "300",
        ],
    );
    let (ours, theirs) = both(
        &p,
        "1.41",
        &format!("networks/prune?{}", filters(&[("bogus", "1")])),
    );
    assert_eq!(ours["message"].is_string(), theirs["message"].is_string());
    both_fail(
        &p,
        &format!("networks/prune?{}", filters(&[("until", "nope")])),
    );
    let q = filters(&[("until", "2000-01-01")]);
    let (ours, theirs) = both(&p, "1.41", &format!("networks/prune?{q}"));
    assert_eq!(ours, theirs);
    let (ours, theirs) = both(
        &p,
        "1.41",
        &format!("networks/prune?{}", filters(&[("label", "team=a")])),
    );
    assert_eq!(ours, theirs);
    assert_eq!(ours["NetworksDeleted"], serde_json::json!(["n-a"]));
    let (ours, theirs) = both(&p, "1.41", "networks/prune");
    assert_eq!(ours, theirs);
    assert_eq!(ours["NetworksDeleted"], serde_json::json!(["n-b"]));
    let (ours, theirs) = both(&p, "1.41", "networks/prune");
    assert_eq!(ours, theirs);
    assert!(ours["NetworksDeleted"].is_null(), "{ours}");
    let (ours, theirs) = prune_events(&p, &since);
    assert_eq!(ours, theirs);
    assert_eq!(
        ours,
        BTreeSet::from(["container prune", "network prune"].map(String::from))
    );
    // The real engine runs with `--bridge=none`: it has no `bridge` network.
    let (mut a, b) = names(&p, &["network", "ls", "--format", "{{.Name}}"]);
    a.remove("bridge");
    assert_eq!(a, b);
}

#[test]
fn volume_image_and_build_prune_answer_as_dockerd() {
    let Some(p) = Pair::start() else { return };
    let since = unix_now();
    for (name, label) in [("v-a", "team=a"), ("v-b", "team=b"), ("v-used", "team=a")] {
        docker_both(&p, &["volume", "create", "--label", label, name]);
    }
    docker_both(
        &p,
        &[
            "create",
            "--name",
            "user",
            "-v",
            "v-used:/data",
            "busybox",
            "true",
        ],
    );
    // A volume with mount options is never pruned.
    let opts = ["--opt", "type=tmpfs", "--opt", "device=tmpfs"];
    docker_both(
        &p,
        &[&["volume", "create"][..], &opts, &["v-opts"]].concat(),
    );
    // API 1.41: every unused volume, named ones too; `until` and `all` are refused.
    for bad in [("until", "1h"), ("all", "true"), ("bogus", "1")] {
        let (ours, theirs) = both(&p, "1.41", &format!("volumes/prune?{}", filters(&[bad])));
        assert_eq!(ours["message"].is_string(), theirs["message"].is_string());
    }
    let (ours, theirs) = both(
        &p,
        "1.41",
        &format!("volumes/prune?{}", filters(&[("label", "team=a")])),
    );
    assert_eq!(ours, theirs);
    assert_eq!(ours["VolumesDeleted"], serde_json::json!(["v-a"]));
    let (ours, theirs) = both(
        &p,
        "1.41",
        &format!("volumes/prune?{}", filters(&[("label!", "team=a")])),
    );
    assert_eq!(ours, theirs);
    assert_eq!(ours["VolumesDeleted"], serde_json::json!(["v-b"]));
    let (ours, theirs) = both(&p, "1.41", "volumes/prune");
    assert_eq!(ours, theirs);
    assert_eq!(
        ours,
        serde_json::json!({"VolumesDeleted": [], "SpaceReclaimed": 0})
    );
    let (ours, theirs) = names(&p, &["volume", "ls", "--format", "{{.Name}}"]);
    assert_eq!(ours, theirs);
    assert_eq!(ours, BTreeSet::from(["v-opts", "v-used"].map(String::from)));

    // Images: dangling only by default; `dangling=false` takes unused tags; bad `until`.
    docker_both(&p, &["tag", "busybox", "extra:1"]);
    let (ours, theirs) = both(&p, "1.41", "images/prune");
    assert_eq!(ours, theirs);
    assert!(ours["ImagesDeleted"].is_null(), "{ours}");
    both_fail(
        &p,
        &format!("images/prune?{}", filters(&[("until", "bad")])),
    );
    // An image a container uses loses all tags but its last.
    let (ours, theirs) = both(
        &p,
        "1.41",
        &format!("images/prune?{}", filters(&[("dangling", "false")])),
    );
    assert_eq!(ours, theirs);
    assert_eq!(
        ours["ImagesDeleted"],
        serde_json::json!([{"Untagged": "busybox:latest"}])
    );
    docker_both(&p, &["tag", "extra:1", "busybox"]);
    docker_both(&p, &["rm", "user"]);
    let (ours, theirs) = both(
        &p,
        "1.41",
        &format!(
            "images/prune?{}",
            filters(&[("dangling", "false"), ("label", "nope")])
        ),
    );
    assert_eq!(ours, theirs);
    let (ours, theirs) = both(
        &p,
        "1.41",
        &format!("images/prune?{}", filters(&[("dangling", "false")])),
    );
    assert_eq!(ours["ImagesDeleted"], theirs["ImagesDeleted"]);
    assert_eq!(
        ours["ImagesDeleted"][0],
        serde_json::json!({"Untagged": "busybox:latest"})
    );
    assert_eq!(
        ours["ImagesDeleted"][1],
        serde_json::json!({"Untagged": "extra:1"})
    );
    assert!(ours["SpaceReclaimed"].as_u64() > Some(0), "{ours}");

    // Build cache: filters checked, nothing to delete with the classic builder.
    let (ours, theirs) = both(
        &p,
        "1.41",
        &format!("build/prune?{}", filters(&[("bogus", "1")])),
    );
    assert_eq!(ours["message"].is_string(), theirs["message"].is_string());
    both_fail(&p, &format!("build/prune?{}", filters(&[("until", "bad")])));
    for q in [
        filters(&[("until", "24h")]),
        filters(&[("label", "a")]),
        "all=1".to_string(),
    ] {
        let (ours, theirs) = both(&p, "1.41", &format!("build/prune?{q}"));
        assert_eq!(ours, theirs, "{q}");
    }
    // Each prune says so in the event stream.
    let (ours, theirs) = prune_events(&p, &since);
    assert_eq!(ours, theirs);
    assert_eq!(
        ours,
        BTreeSet::from(["volume prune", "image prune", "builder prune"].map(String::from))
    );
}

#[test]
fn volume_prune_spares_named_volumes_from_api_1_42() {
    let Some(p) = Pair::start() else { return };
    let d = &p.d;
    d.docker(&["volume", "create", "named"]).ok();
    // An anonymous volume, left when its container goes without `-v`.
    d.docker(&["create", "--name", "anon", "-v", "/data", "busybox", "true"])
        .ok();
    d.docker(&["rm", "anon"]).ok();
    let anon: Vec<String> = d
        .docker(&["volume", "ls", "-q"])
        .ok()
        .lines()
        .filter(|n| *n != "named")
        .map(str::to_string)
        .collect();
    assert_eq!(anon.len(), 1, "{anon:?}");
    let (st, v) = post(d.socket(), "1.43", "volumes/prune");
    assert_eq!(st, 200);
    assert_eq!(v["VolumesDeleted"], serde_json::json!(anon));
    let (st, v) = post(d.socket(), "1.43", "volumes/prune");
    assert_eq!(
        (st, &v),
        (
            200,
            &serde_json::json!({"VolumesDeleted": [], "SpaceReclaimed": 0})
        )
    );
    let (st, v) = post(
        d.socket(),
        "1.43",
        &format!("volumes/prune?{}", filters(&[("all", "true")])),
    );
    assert_eq!(
        (st, &v["VolumesDeleted"]),
        (200, &serde_json::json!(["named"]))
    );
}

#[test]
fn prune_output_is_dockers_in_both_clis() {
    let Some(p) = Pair::start() else { return };
    let d = &p.d;
    let berth = |args: &[&str], stdin: Option<&[u8]>| match stdin {
        Some(s) => d.berth_stdin(args, s),
        None => d.berth(args),
    };
    // A running container keeps busybox from `image prune -a`.
    docker_both(
        &p,
        &[
            "run",
            "-d",
            "--name",
            "holder",
            "--network",
            "none",
            "busybox",
            "sleep",
            "300",
        ],
    );
    // Each case: set up on both engines (and once more on berthd for berth's own CLI),
    // prune with the docker CLI on both and with berth's CLI; all print the same.
    let cases: [(&[&[&str]], &[&str]); 5] = [
        (
            &[&["create", "--name", "x1", "busybox", "true"]],
            &["container", "prune", "-f"],
        ),
        (&[&["network", "create", "nx"]], &["network", "prune", "-f"]),
        (&[], &["image", "prune", "-f"]),
        (&[], &["builder", "prune", "-f"]),
        (
            &[
                &["create", "--name", "x2", "busybox", "true"],
                &["network", "create", "ny"],
            ],
            &["system", "prune", "-f"],
        ),
    ];
    for (setup, prune) in cases {
        for s in setup {
            docker_both(&p, s);
        }
        let b = p.docker(prune, None);
        b.ok();
        assert_eq!(
            no_ids(&b.ours.stdout),
            no_ids(&b.theirs.stdout),
            "{prune:?}"
        );
        for s in setup {
            d.docker(s).ok();
        }
        let ours = berth(prune, None);
        assert_eq!(
            no_ids(ours.ok()),
            no_ids(&b.theirs.stdout),
            "berth {prune:?}"
        );
    }
    // `image prune -a` with a used image: it loses all tags but its last.
    docker_both(&p, &["tag", "busybox", "extra:2"]);
    let b = p.docker(&["image", "prune", "-a", "-f"], None);
    assert_eq!(b.ours.stdout, b.theirs.stdout);
    assert_eq!(
        b.ours.stdout,
        "Deleted Images:\nuntagged: busybox:latest\n\nTotal reclaimed space: 0B\n"
    );
    docker_both(&p, &["tag", "extra:2", "busybox"]);
    assert_eq!(
        berth(&["image", "prune", "-a", "-f"], None).ok(),
        b.ours.stdout
    );
    docker_both(&p, &["tag", "extra:2", "busybox"]);
    docker_both(&p, &["rmi", "extra:2"]);
    // `system prune -a --volumes` on berthd: both CLIs print the same.
    let setup: [&[&str]; 3] = [
        &["create", "--name", "s1", "-v", "/anon", "busybox", "true"],
        &["network", "create", "s-net"],
        &["volume", "create", "s-named"],
    ];
    let all = ["system", "prune", "-a", "--volumes", "-f"];
    for s in setup {
        d.docker(s).ok();
    }
    let docker_out = d.docker(&all);
    let text = no_ids(docker_out.ok());
    assert!(
        text
            == "Deleted Containers:\n<id>\n\nDeleted Networks:\ns-net\n\nDeleted Volumes:\n<id>\n\nTotal reclaimed space: 0B",
        "{text}"
    );
    for s in setup.iter().take(2) {
        d.docker(s).ok();
    }
    assert_eq!(no_ids(berth(&all, None).ok()), text);
    d.docker(&["volume", "rm", "s-named"]).ok();
    // `until` with `--volumes` is refused before anything is asked, as the docker CLI does.
    let until = ["system", "prune", "-f", "--volumes", "--filter", "until=1h"];
    let theirs = d.docker(&until);
    let ours = berth(&until, None);
    assert_eq!(
        (ours.status, ours.stderr.trim()),
        (theirs.status, theirs.stderr.trim())
    );
    // Without `-f` the question is asked; `n` keeps everything.
    docker_both(&p, &["create", "--name", "kept", "busybox", "true"]);
    let b = p.docker(&["container", "prune"], Some(b"n\n"));
    b.ok();
    assert_eq!(b.ours.stdout, b.theirs.stdout);
    let ours = berth(&["container", "prune"], Some(b"n\n"));
    assert_eq!(ours.ok(), b.theirs.stdout);
    let ours = berth(&["system", "prune", "-a", "--volumes"], Some(b"n\n"));
    let theirs = p.docker(&["system", "prune", "-a", "--volumes"], Some(b"n\n"));
    assert_eq!(ours.ok(), theirs.theirs.stdout);
    // Volume prune on berthd (API 1.47): anonymous only, named with -a, in both CLIs.
    d.docker(&["volume", "create", "vn"]).ok();
    let v = d.docker(&["volume", "prune", "-f"]);
    assert_eq!(v.ok(), berth(&["volume", "prune", "-f"], None).ok());
    assert_eq!(v.ok(), "Total reclaimed space: 0B\n");
    let v = d.docker(&["volume", "prune", "-a", "-f"]);
    assert_eq!(
        v.ok(),
        "Deleted Volumes:\nvn\n\nTotal reclaimed space: 0B\n"
    );
    d.docker(&["volume", "create", "vn"]).ok();
    assert_eq!(berth(&["volume", "prune", "-a", "-f"], None).ok(), v.ok());
    // `--filter` reaches the daemon from both CLIs.
    for cli_is_berth in [false, true] {
        d.docker(&[
            "create", "--name", "f1", "--label", "k=v", "busybox", "true",
        ])
        .ok();
        let id = d.docker(&["inspect", "--format", "{{.Id}}", "f1"]).stdout;
        let args = ["container", "prune", "-f", "--filter", "label=k=v"];
        let out = if cli_is_berth {
            berth(&args, None)
        } else {
            d.docker(&args)
        };
        assert_eq!(
            out.ok(),
            format!("Deleted Containers:\n{id}\nTotal reclaimed space: 0B\n")
        );
    }
    let kept = d.docker(&["inspect", "--format", "{{.Id}}", "kept"]).stdout;
    assert_eq!(
        d.berth(&["container", "prune", "-f"]).ok(),
        format!("Deleted Containers:\n{kept}\nTotal reclaimed space: 0B\n")
    );
}

#[test]
fn python_sdk_prunes_with_filters() {
    let Some(p) = Pair::start() else { return };
    let script = r#"
c.containers.create("busybox", "true", name="py-a", labels={"team": "a"})
c.containers.create("busybox", "true", name="py-b")
r = c.containers.prune(filters={"label": "team=a"})
assert len(r["ContainersDeleted"]) == 1, r
assert isinstance(r["SpaceReclaimed"], int), r
assert [x.name for x in c.containers.list(all=True)] == ["py-b"]
r = c.containers.prune(filters={"until": "2000-01-01T00:00:00Z"})
assert r["ContainersDeleted"] is None, r
c.networks.create("py-net", labels={"k": "v"})
r = c.networks.prune(filters={"label": "k=v"})
assert r["NetworksDeleted"] == ["py-net"], r
r = c.images.prune(filters={"dangling": False})
assert r["ImagesDeleted"] is None, r
c.volumes.create("py-vol", labels={"k": "v"})
f = {"label": "k=v"}
if tuple(map(int, c.api.api_version.split("."))) >= (1, 42):
    assert c.volumes.prune(filters=f)["VolumesDeleted"] == [], "named volumes stay"
    f["all"] = "true"
r = c.volumes.prune(filters=f)
assert r == {"VolumesDeleted": ["py-vol"], "SpaceReclaimed": 0}, r
r = c.api.prune_builds(filters={"until": "24h"})
assert r == {"CachesDeleted": None, "SpaceReclaimed": 0}, r
print("ok")
"#;
    let ours = p.d.python(script);
    assert_eq!(ours.ok().trim(), "ok");
    let full = format!(
        "import docker\nc = docker.DockerClient(base_url=\"unix://{}\")\n{script}\n",
        p.real.path("docker.sock").display()
    );
    let o = Command::new("python3")
        .arg("-c")
        .arg(full)
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
