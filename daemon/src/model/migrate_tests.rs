//! Tests of the start-up migration on hand-made format-1 data roots.

use super::*;
use std::fs;

fn v1_root() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("t");
    let c = d.path().join("containers").join("c0ffee");
    fs::create_dir_all(&c).expect("t");
    fs::write(
        c.join("config.v2.json"),
        r#"{"Name":"/web","State":{"Status":"exited","ExitCode":3,"Pid":null},
            "Config":{"Labels":{"a":"b"},"MacAddress":""},"HostConfig":{"MemorySwappiness":-1},
            "NetworkSettings":{"Networks":{"n1":{"IPAMConfig":null,"NetworkID":"ff"}}},
            "ManuallyStopped":false}"#,
    )
    .expect("t");
    let bad = d.path().join("containers").join("bad");
    fs::create_dir_all(&bad).expect("t");
    fs::write(bad.join("config.v2.json"), "{not json").expect("t");
    let n = d.path().join("network").join("networks");
    fs::create_dir_all(&n).expect("t");
    fs::write(
        n.join("ab12.json"),
        r#"{"Name":"n1","Driver":"bridge","IPAM":{"Driver":"default","Options":null,
            "Config":[{"Subnet":"10.9.0.0/24","Gateway":null}]},"BerthUserSubnet":true}"#,
    )
    .expect("t");
    let v = d.path().join("volumes").join("data");
    fs::create_dir_all(v.join("_data")).expect("t");
    fs::write(
        v.join("volume.json"),
        r#"{"CreatedAt":"2026-01-01T00:00:00Z","Labels":null,"Options":{}}"#,
    )
    .expect("t");
    d
}

#[test]
fn converts_every_record_then_writes_the_version() {
    let d = v1_root();
    let out = run(d.path()).expect("migrates");
    assert_eq!(
        out,
        Outcome {
            from: 1,
            converted: 3,
            skipped: 1
        }
    );
    assert_eq!(format::read(d.path()).expect("t"), CURRENT);
    let c: ContainerRecord = serde_json::from_slice(
        &fs::read(d.path().join("containers/c0ffee/config.v2.json")).expect("t"),
    )
    .expect("typed");
    assert_eq!(c.id, "c0ffee");
    assert_eq!((c.state.status.as_str(), c.state.exit_code), ("exited", 3));
    assert_eq!(
        c.host_config.extra["MemorySwappiness"],
        serde_json::json!(-1)
    );
    assert_eq!(c.network_settings.networks["n1"].network_id, "ff");
    let n: NetworkRecord =
        serde_json::from_slice(&fs::read(d.path().join("network/networks/ab12.json")).expect("t"))
            .expect("typed");
    assert_eq!((n.id.as_str(), n.user_subnet), ("ab12", true));
    assert_eq!(n.ipam.config[0].subnet, "10.9.0.0/24");
    let v: VolumeRecord =
        serde_json::from_slice(&fs::read(d.path().join("volumes/data/volume.json")).expect("t"))
            .expect("typed");
    assert_eq!(v.name, "data");
    // The unparseable record is untouched.
    assert_eq!(
        fs::read_to_string(d.path().join("containers/bad/config.v2.json")).expect("t"),
        "{not json"
    );
}

#[test]
fn a_second_run_does_nothing() {
    let d = v1_root();
    run(d.path()).expect("migrates");
    let again = run(d.path()).expect("runs");
    assert_eq!((again.from, again.converted), (CURRENT, 0));
}

#[test]
fn a_newer_data_root_is_refused_untouched() {
    let d = v1_root();
    fs::write(d.path().join(format::FILE), r#"{"version":3}"#).expect("t");
    let e = run(d.path()).expect_err("refused");
    assert!(e.to_string().contains("newer berthd"), "{e}");
    assert!(
        fs::read_to_string(d.path().join("containers/c0ffee/config.v2.json"))
            .expect("t")
            .contains("\"Pid\":null")
    );
}

#[test]
fn an_empty_data_root_just_gets_the_version() {
    let d = tempfile::tempdir().expect("t");
    let out = run(d.path()).expect("runs");
    assert_eq!(out.converted, 0);
    assert_eq!(format::read(d.path()).expect("t"), CURRENT);
}
