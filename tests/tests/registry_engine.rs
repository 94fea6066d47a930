//! Registry interop with the real Docker engine (issue 5): Debian's dockerd, started by the
//! test with its own roots and socket, and a plain-HTTP `docker-registry` on 127.0.0.1 (which
//! both engines treat as insecure by default). An image the real engine pushes (gzip layers,
//! Docker schema2 manifest) pulls into berthd with the same image ID and runs; an image berthd
//! pushes pulls into the real engine with the same ID and runs there. Skipped, with a
//! message, when dockerd or docker-registry is missing.

use berth_tests::{DistRegistry, RealEngine, RegistryAuth, TestDaemon};

fn berth_id(d: &TestDaemon, name: &str) -> String {
    d.docker(&["image", "inspect", "--format", "{{.Id}}", name])
        .ok()
        .trim()
        .to_string()
}

#[test]
fn images_travel_between_the_real_engine_and_berthd_through_a_registry() {
    let Some(real) = RealEngine::start() else {
        return;
    };
    let Some(reg) = DistRegistry::start(RegistryAuth::None) else {
        return;
    };
    let d = TestDaemon::start();
    let rootfs = d.busybox_tar().display().to_string();

    // Real engine → registry → berthd.
    let from_real = format!("{}/real/bb:1", reg.addr);
    let real_id = real
        .ok(&["import", "-c", "CMD [\"sh\"]", &rootfs, &from_real])
        .trim()
        .to_string();
    let pushed = real.ok(&["push", &from_real]);
    assert!(pushed.contains("digest: sha256:"), "{pushed}");
    let pulled = d.docker(&["pull", &from_real]).ok().to_string();
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    assert_eq!(berth_id(&d, &from_real), real_id, "same image ID in berthd");
    let digests = d.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &from_real,
    ]);
    let real_digests = real.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &from_real,
    ]);
    assert_eq!(digests.ok(), real_digests, "the same manifest digest");
    assert_eq!(
        d.docker(&["run", "--rm", &from_real, "echo", "from the real engine"])
            .ok()
            .trim(),
        "from the real engine"
    );

    // berthd → registry → real engine.
    let from_berth = format!("{}/berth/bb:1", reg.addr);
    d.docker(&[
        "import",
        "-c",
        "ENV WHO=berth",
        "-c",
        "CMD [\"sh\"]",
        &rootfs,
        &from_berth,
    ])
    .ok();
    let berth_image = berth_id(&d, &from_berth);
    assert_ne!(berth_image, real_id);
    let out = d.docker(&["push", &from_berth]).ok().to_string();
    assert!(out.contains("digest: sha256:"), "{out}");
    let pulled = real.ok(&["pull", &from_berth]);
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    let got = real.ok(&["image", "inspect", "--format", "{{.Id}}", &from_berth]);
    assert_eq!(got.trim(), berth_image, "same image ID in the real engine");
    let said = real.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &from_berth,
        "sh",
        "-c",
        "echo $WHO",
    ]);
    assert_eq!(said.trim(), "berth");
    // The real engine pushing what it pulled from berthd finds every blob already there.
    let again = real.ok(&["push", &from_berth]);
    assert!(!again.contains("Pushed"), "{again}");
}
