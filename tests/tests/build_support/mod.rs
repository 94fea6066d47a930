//! Support for the build fidelity tests: a berthd and a private real dockerd holding the same
//! busybox image (imported into berthd, `docker save`d and loaded into the real engine — no
//! registry), the same classic build (`DOCKER_BUILDKIT=0 docker build`) run against both, and
//! ways to compare what came out (config fields, files, the raw JSON stream).
// Shared by several test binaries, each using part of it.
#![allow(dead_code)]

use berth_tests::{Output, RealEngine, TestDaemon};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// berthd and the real engine side by side.
pub struct Pair {
    pub d: TestDaemon,
    pub real: RealEngine,
}

/// What a command printed on one engine and the other.
pub struct Both {
    pub ours: Output,
    pub theirs: Output,
}

impl Both {
    /// Both succeeded (else panics with what each printed).
    #[track_caller]
    pub fn ok(&self) {
        assert!(
            self.ours.success() && self.theirs.success(),
            "berthd: {:?}\nreal: {:?}",
            self.ours,
            self.theirs
        );
    }
}

fn run(mut c: Command, stdin: Option<&[u8]>) -> Output {
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawning docker");
    if let (Some(data), Some(mut w)) = (stdin, child.stdin.take()) {
        w.write_all(data).expect("feeding stdin");
    }
    let o = child.wait_with_output().expect("docker");
    Output {
        status: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

impl Pair {
    /// Both engines with `busybox:latest`, or `None` (with a message) without dockerd.
    pub fn start() -> Option<Pair> {
        let real = RealEngine::start()?;
        let d = TestDaemon::start();
        real.load_busybox_of(&d);
        Some(Pair { d, real })
    }

    /// A context folder `name` holding `files` (path, content).
    pub fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.d.dir().join(name);
        for (path, content) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, content).expect("write");
        }
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    /// A docker command (classic builder) against berthd.
    pub fn ours_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.d.docker_cmd(args);
        c.env("DOCKER_BUILDKIT", "0");
        c
    }

    /// A docker command (classic builder) against the real engine.
    pub fn theirs_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("/usr/local/bin/docker");
        c.arg("-H")
            .arg(format!(
                "unix://{}",
                self.real.path("docker.sock").display()
            ))
            .args(args)
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", self.real.path("docker-config"))
            .env_remove("DOCKER_HOST");
        c
    }

    /// The same docker command against both engines (`stdin` fed to both).
    pub fn docker(&self, args: &[&str], stdin: Option<&[u8]>) -> Both {
        Both {
            ours: run(self.ours_cmd(args), stdin),
            theirs: run(self.theirs_cmd(args), stdin),
        }
    }

    /// `docker build ARGS` (classic builder) against both.
    pub fn build(&self, args: &[&str]) -> Both {
        let mut a = vec!["build"];
        a.extend_from_slice(args);
        self.docker(&a, None)
    }

    /// Asserts that `Config.<field>` of `image` is the same on both engines.
    #[track_caller]
    pub fn same_config(&self, image: &str, fields: &[&str]) {
        for field in fields {
            let fmt = format!("{{{{json .Config.{field}}}}}");
            let both = self.docker(&["image", "inspect", "--format", &fmt, image], None);
            both.ok();
            assert_eq!(
                both.ours.stdout.trim(),
                both.theirs.stdout.trim(),
                "Config.{field} of {image} differs from the real engine's"
            );
        }
    }

    /// Asserts that `cat FILE` in `image` prints the same on both engines; returns it.
    #[track_caller]
    pub fn same_file(&self, image: &str, file: &str) -> String {
        let args = [
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "cat",
            image,
            file,
        ];
        let both = self.docker(&args, None);
        both.ok();
        assert_eq!(both.ours.stdout, both.theirs.stdout, "{file} in {image}");
        both.ours.stdout
    }

    /// `POST /build?QUERY` with the context folder `ctx` (tarred by `tar`) on both engines:
    /// the JSON messages each streamed back.
    pub fn api_build(&self, ctx: &Path, query: &str) -> (Vec<Value>, Vec<Value>) {
        let tar = self.d.dir().join("api-context.tar");
        let st = Command::new("tar")
            .arg("-cf")
            .arg(&tar)
            .arg("-C")
            .arg(ctx)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success());
        let post = |sock: &Path| -> Vec<Value> {
            let o = Command::new("curl")
                .args(["-sS", "--unix-socket"])
                .arg(sock)
                .args(["-X", "POST", "-H", "Content-Type: application/x-tar"])
                .arg("--data-binary")
                .arg(format!("@{}", tar.display()))
                .arg(format!("http://localhost/v1.41/build?{query}"))
                .output()
                .expect("curl");
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            serde_json::Deserializer::from_str(&text)
                .into_iter::<Value>()
                .map_while(Result::ok)
                .collect()
        };
        (post(self.d.socket()), post(&self.real.path("docker.sock")))
    }
}

/// The `stream` texts of a build's messages, concatenated.
pub fn streamed(msgs: &[Value]) -> String {
    msgs.iter().filter_map(|m| m["stream"].as_str()).collect()
}

/// The error messages of a build's stream (`{"errorDetail": …, "error": …}`), each with its
/// keys: (error, errorDetail.message, errorDetail.code).
pub fn errors(msgs: &[Value]) -> Vec<(String, String, Option<i64>)> {
    msgs.iter()
        .filter(|m| m.get("error").is_some() || m.get("errorDetail").is_some())
        .map(|m| {
            (
                m["error"].as_str().unwrap_or("").to_string(),
                m["errorDetail"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                m["errorDetail"]["code"].as_i64(),
            )
        })
        .collect()
}
