//! `run -it` in a real terminal (issue 4): the stock docker CLI and berth's CLI run
//! `busybox sh` inside a tmux pane (a private tmux server, killed at the end); typed input
//! reaches the shell, resizing the tmux window reaches the container's terminal
//! (`stty size`), and `exit 5` makes the client exit 5.

use berth_tests::TestDaemon;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long to wait for text to appear in the pane (a hang guard, not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(60);

/// A private tmux server (its socket in its own temp folder) with one session; the server is
/// killed and the folder removed when dropped.
struct Tmux {
    dir: tempfile::TempDir,
}

impl Tmux {
    /// Starts a 100x30 session running `cmd` (through `sh -c`).
    fn start(tag: &str, cmd: &str) -> Tmux {
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-tmux-{tag}-"))
            .tempdir()
            .expect("tmux temp dir");
        let t = Tmux { dir };
        let out = t.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "100",
            "-y",
            "30",
            cmd,
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        t.tmux(&["set-option", "-g", "status", "off"]);
        t.tmux(&["set-option", "-g", "history-limit", "5000"]);
        t
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(self.dir.path().join("sock"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running tmux")
    }

    /// Types `text` and Enter.
    fn type_line(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
        self.tmux(&["send-keys", "-t", "t", "Enter"]);
    }

    /// The pane's text, with its scroll-back.
    fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .tmux(&["capture-pane", "-p", "-t", "t", "-S", "-1000"])
                .stdout,
        )
        .into_owned()
    }

    /// Waits until a line of the pane, trimmed, satisfies `pred`; returns that line.
    #[track_caller]
    fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if let Some(l) = screen.lines().map(str::trim).find(|l| pred(l)) {
                return l.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "never saw {what} in the pane:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Resizes the window to `cols` x `rows`.
    fn resize(&self, cols: u16, rows: u16) {
        let out = self.tmux(&[
            "resize-window",
            "-t",
            "t",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
        assert!(out.status.success(), "tmux resize-window: {out:?}");
    }

    /// The pane's size as tmux sees it: (rows, cols).
    fn pane_size(&self) -> (u16, u16) {
        let out = self.tmux(&[
            "display-message",
            "-p",
            "-t",
            "t",
            "#{pane_height} #{pane_width}",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut it = text.split_whitespace().map(|n| n.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

/// A shell-quoted command line.
fn quoted(cmd: &Command) -> String {
    let q = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"));
    // `env -u NAME ... NAME=VALUE ... program args`: removals first.
    let mut env: Vec<String> = cmd
        .get_envs()
        .map(|(k, v)| match v {
            Some(v) => format!("{}={}", k.to_string_lossy(), q(v)),
            None => format!("-u {}", k.to_string_lossy()),
        })
        .collect();
    env.sort_by_key(|e| !e.starts_with("-u "));
    let mut parts = vec!["env".to_string()];
    parts.extend(env);
    parts.push(q(cmd.get_program()));
    parts.extend(cmd.get_args().map(q));
    parts.join(" ")
}

/// Runs `client` (a `run -it busybox sh` command line) in a tmux pane and checks input,
/// resize and the exit code.
fn interactive_shell(tag: &str, client: &Command) {
    let line = format!("{}; echo rc=$?; sleep 600", quoted(client));
    let t = Tmux::start(tag, &line);
    // The prompt, then a round trip through the container's terminal.
    t.wait_line("the prompt", |l| l.ends_with('#'));
    t.type_line("echo h''i");
    t.wait_line("hi", |l| l == "hi");
    // Resizing the window reaches the container's terminal.
    let (rows, cols) = (37u16, 113u16);
    t.resize(cols, rows);
    let (rows, cols) = t.pane_size();
    assert!(rows > 0 && cols == 113, "pane is {rows}x{cols}");
    let want = format!("{rows} {cols}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        t.type_line("stty size");
        std::thread::sleep(Duration::from_millis(200));
        if t.screen().lines().any(|l| l.trim() == want) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stty size never said {want}:\n{}",
            t.screen()
        );
    }
    t.type_line("exit 5");
    let rc = t.wait_line("the client's exit code", |l| l.starts_with("rc="));
    assert_eq!(rc, "rc=5", "{}", t.screen());
}

/// `run -it --rm busybox sh` through the client `cli` makes against a fresh daemon.
fn run_it(tag: &str, cli: fn(&TestDaemon, &[&str]) -> Command) {
    let d = TestDaemon::start();
    d.import_busybox();
    let args = ["run", "-it", "--rm", "--network", "none", "busybox", "sh"];
    interactive_shell(tag, &cli(&d, &args));
    assert!(d.docker(&["ps", "-aq"]).ok().trim().is_empty(), "--rm");
}

#[test]
fn docker_run_it_in_tmux() {
    run_it("docker", TestDaemon::docker_cmd);
}

#[test]
fn berth_run_it_in_tmux() {
    run_it("berth", TestDaemon::berth_cmd);
}
