//! The CRI's image service and runtime facts, driven by the real `crictl` (cri-tools v1.26.1)
//! against a test daemon's CRI socket and Debian's `docker-registry` on 127.0.0.1: `version`,
//! `info`, `pull` (anonymous and with credentials), `images`, `inspecti`, `rmi`,
//! `imagefsinfo` — and the images are the Docker API's (pulled through one, seen and removed
//! through the other). Skipped, with a message, without crictl or docker-registry.

use berth_tests::{Crictl, DistRegistry, RegistryAuth, TestDaemon};

fn docker_id(d: &TestDaemon, name: &str) -> Option<String> {
    let o = d.docker(&["image", "inspect", "--format", "{{.Id}}", name]);
    o.success().then(|| o.stdout.trim().to_string())
}

/// Pushes busybox as `name` into the registry and forgets it locally.
fn push_busybox(d: &TestDaemon, name: &str) -> String {
    d.import_busybox();
    d.docker(&["tag", "busybox:latest", name]).ok();
    let out = d.docker(&["push", name]).ok().to_string();
    assert!(out.contains("digest: sha256:"), "{out}");
    let id = docker_id(d, name).expect("pushed image");
    d.docker(&["rmi", name]).ok();
    id
}

#[test]
fn crictl_sees_berth_as_a_ready_v1_runtime() {
    let d = TestDaemon::start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    let v = c.ok(&["version"]);
    assert!(v.contains("RuntimeName:  berth"), "{v}");
    assert!(v.contains("RuntimeApiVersion:  v1"), "{v}");
    let info = c.json(&["info", "-o", "json"]);
    let conds = info["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let cond = |kind: &str| {
        conds
            .iter()
            .find(|x| x["type"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} in {info}"))
    };
    assert_eq!(cond("RuntimeReady")["status"], true, "{info}");
    // The test daemon has no CNI configuration: containerd's answer, network not ready.
    let net = cond("NetworkReady");
    assert_eq!(net["status"], false, "{info}");
    assert_eq!(net["reason"], "NetworkPluginNotReady", "{info}");
    assert_eq!(info["config"]["cgroupDriver"], "cgroupfs", "{info}");
    let fs = c.json(&["imagefsinfo", "-o", "json"]);
    let mp = fs["status"]["fsId"]["mountpoint"].as_str().unwrap_or("");
    assert!(mp.starts_with(&d.data_root().display().to_string()), "{fs}");
}

#[test]
fn images_pulled_through_the_cri_are_the_docker_apis_and_back() {
    let Some(reg) = DistRegistry::start(RegistryAuth::None) else {
        return;
    };
    let d = TestDaemon::start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    let name = format!("{}/cri/bb:1", reg.addr);
    let id = push_busybox(&d, &name);

    // CRI pull → the Docker API has it, with the same ID.
    let out = c.ok(&["pull", &name]);
    assert!(out.contains(&id), "crictl pull answers the image ID: {out}");
    assert_eq!(docker_id(&d, &name).as_deref(), Some(id.as_str()));

    // Both images are listed, fully qualified (busybox was imported through the Docker API).
    let list = c.json(&["images", "-o", "json"]);
    let images = list["images"].as_array().cloned().unwrap_or_default();
    let tags: Vec<String> = images
        .iter()
        .flat_map(|i| i["repoTags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    assert!(tags.contains(&name), "{tags:?}");
    assert!(
        tags.contains(&"docker.io/library/busybox:latest".to_string()),
        "{tags:?}"
    );
    let img = images
        .iter()
        .find(|i| i["id"] == id.as_str())
        .expect("pulled image listed");
    assert!(img["size"].as_str().unwrap_or("0") != "0", "{img}");
    assert!(
        img["repoDigests"][0]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("{}/cri/bb@sha256:", reg.addr))),
        "{img}"
    );

    // inspecti: status and the verbose info with the image config.
    let st = c.json(&["inspecti", "-o", "json", &name]);
    assert_eq!(st["status"]["id"], id.as_str(), "{st}");
    assert!(st["info"]["imageSpec"]["rootfs"].is_object(), "{st}");
    // By short ID and by the Docker-familiar name too.
    let short = &id["sha256:".len().."sha256:".len() + 12];
    assert_eq!(
        c.json(&["inspecti", "-o", "json", short])["status"]["id"],
        id.as_str()
    );
    let bb = c.json(&["inspecti", "-o", "json", "busybox"]);
    let bb_tags = bb["status"]["repoTags"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        bb_tags
            .iter()
            .any(|t| t == "docker.io/library/busybox:latest"),
        "{bb}"
    );

    // CRI rmi → gone from the Docker API, with every tag (busybox:latest was the same
    // image); then pulled again through the Docker API, it is
    // listed by the CRI.
    c.ok(&["rmi", &name]);
    assert_eq!(docker_id(&d, &name), None);
    assert_eq!(docker_id(&d, "busybox:latest"), None);
    let again = c.run(&["inspecti", &name]);
    assert!(!again.success(), "{again:?}");
    d.docker(&["pull", &name]).ok();
    let list = c.ok(&["images", "-q"]);
    assert!(list.lines().any(|l| l.trim() == id), "{list}");
    // A pull of what the registry does not have is an error naming the image.
    let missing = c.run(&["pull", &format!("{}/cri/none:1", reg.addr)]);
    assert!(!missing.success());
    assert!(missing.stderr.contains("cri/none"), "{}", missing.stderr);
}

#[test]
fn crictl_pull_passes_registry_credentials() {
    let Some(reg) = DistRegistry::start(RegistryAuth::BasicTls) else {
        return;
    };
    let d = TestDaemon::start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    let name = format!("{}/private/bb:1", reg.addr);
    let login = d.docker_stdin(
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        b"secret\n",
    );
    assert!(login.ok().contains("Login Succeeded"));
    let id = push_busybox(&d, &name);
    d.docker(&["logout", &reg.addr]).ok();

    let anonymous = c.run(&["pull", &name]);
    assert!(
        !anonymous.success(),
        "anonymous pull must fail: {anonymous:?}"
    );
    let wrong = c.run(&["pull", "--creds", "alice:wrong", &name]);
    assert!(!wrong.success(), "{wrong:?}");
    let out = c.ok(&["pull", "--creds", "alice:secret", &name]);
    assert!(out.contains(&id), "{out}");
    c.ok(&["rmi", &name]);
    // `--auth`: base64 of user:password, as kubelet sends it from a pull secret.
    let auth = "YWxpY2U6c2VjcmV0"; // alice:secret
    let out = c.ok(&["pull", "--auth", auth, &name]);
    assert!(out.contains(&id), "{out}");
}

#[test]
fn registry_mirrors_serve_any_registry_and_docker_hub() {
    let Some(reg) = DistRegistry::start(RegistryAuth::None) else {
        return;
    };
    let mirror = format!("http://{}", reg.addr);
    let d = TestDaemon::builder()
        .config_json(serde_json::json!({
            "registry-mirrors": [mirror],
            "registry-mirror-map": {"registry.k8s.io": [mirror]},
        }))
        .start();
    let Some(c) = Crictl::for_daemon(&d) else {
        return;
    };
    // The mirror holds the same repository paths as the registries it stands in for.
    let k8s_on_mirror = format!("{}/e2e-test-images/busybox:1.29-2", reg.addr);
    let id = push_busybox(&d, &k8s_on_mirror);
    let hub_on_mirror = format!("{}/library/busybox:mirrored", reg.addr);
    let hub_id = push_busybox(&d, &hub_on_mirror);
    d.docker(&["rmi", "busybox:latest"]).ok();

    // Nothing reaches registry.k8s.io or Docker Hub: both come from the loopback mirror and
    // are recorded under their own names.
    let name = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
    let out = c.ok(&["pull", name]);
    assert!(out.contains(&id), "{out}");
    let st = c.json(&["inspecti", "-o", "json", name]);
    assert_eq!(st["status"]["repoTags"][0], name, "{st}");
    // Its digest under its own name (the mirror's is there too: the test pushed it).
    let digests = st["status"]["repoDigests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        digests.iter().any(|d| d
            .as_str()
            .is_some_and(|d| d.starts_with("registry.k8s.io/e2e-test-images/busybox@sha256:"))),
        "{st}"
    );
    let pulled = d.docker(&["pull", "busybox:mirrored"]).ok().to_string();
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    assert_eq!(
        docker_id(&d, "busybox:mirrored").as_deref(),
        Some(hub_id.as_str())
    );
}
