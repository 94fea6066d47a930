//! The json-file log writer: one JSON object per line, split at newlines, rotated as Docker's
//! json-file driver does when `max-size` is set: once the file holds `max-size` bytes, the
//! next record first moves `<log>.N-1` to `<log>.N`, ..., `<log>` to `<log>.1` (the oldest
//! beyond `max-file` files in all is dropped) and starts a new `<log>`; with `max-file` 1 the
//! file is truncated instead. A container writing without end thus keeps at most about
//! `max-size * max-file` bytes of log on the host. With the CRI's format each line is
//! `<time> <stream> <F|P> <text>` instead (`P`: a partial line, cut at 16 KiB or at the exit).

use berth_monitor_proto::LogFormat;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

/// Buffers partial lines per stream and appends complete ones to the log file.
pub struct JsonLog {
    file: Option<File>,
    path: PathBuf,
    /// Bytes in the current file.
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
    partial: [Vec<u8>; 2],
    format: LogFormat,
}

const MAX_PARTIAL: usize = 16 * 1024;

fn open_append(path: &PathBuf) -> Option<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ok()
}

impl JsonLog {
    /// Opens (appending) the log at `path`, or a no-op log; rotated past `max_size` bytes,
    /// keeping `max_file` files.
    pub fn open(path: Option<&str>, max_size: Option<u64>, max_file: u32) -> JsonLog {
        let path = PathBuf::from(path.unwrap_or_default());
        let file = if path.as_os_str().is_empty() {
            None
        } else {
            open_append(&path)
        };
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        JsonLog {
            file,
            path,
            size,
            max_size: max_size.filter(|n| *n > 0),
            max_file: max_file.max(1),
            partial: [Vec::new(), Vec::new()],
            format: LogFormat::JsonFile,
        }
    }

    /// The same log in `format`.
    pub fn with_format(mut self, format: LogFormat) -> JsonLog {
        self.format = format;
        self
    }

    /// `<log>.n`.
    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    /// Moves the full file aside (or empties it when only one file is kept).
    fn rotate(&mut self) {
        if self.max_file <= 1 {
            if let Some(f) = self.file.as_ref() {
                if f.set_len(0).is_ok() {
                    self.size = 0;
                }
            }
            return;
        }
        for n in (1..self.max_file - 1).rev() {
            let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
        }
        if std::fs::rename(&self.path, self.rotated(1)).is_ok() {
            self.file = open_append(&self.path);
            self.size = 0;
        }
    }

    fn emit(&mut self, stream: usize, line: &[u8]) {
        if self.file.is_none() {
            return;
        }
        if self.max_size.is_some_and(|max| self.size >= max) {
            self.rotate();
        }
        let Some(f) = self.file.as_mut() else { return };
        let name = if stream == 0 { "stdout" } else { "stderr" };
        let b = match self.format {
            LogFormat::JsonFile => {
                let rec = serde_json::json!({
                    "log": String::from_utf8_lossy(line),
                    "stream": name,
                    "time": crate::config::now(),
                });
                let mut b = serde_json::to_vec(&rec).unwrap_or_default();
                b.push(b'\n');
                b
            }
            LogFormat::Cri => {
                let (text, tag) = match line.strip_suffix(b"\n") {
                    Some(t) => (t, "F"),
                    None => (line, "P"),
                };
                let mut b = format!("{} {name} {tag} ", crate::config::now()).into_bytes();
                b.extend_from_slice(text);
                b.push(b'\n');
                b
            }
        };
        if f.write_all(&b).is_ok() {
            self.size += b.len() as u64;
        }
    }

    /// Opens the log at its path afresh, appending (the CRI's reopen: kubelet renamed the
    /// old file to rotate it and wants new lines in a new file at the same path). Lines not
    /// yet complete go to the new file.
    pub fn reopen(&mut self) -> std::io::Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the container has no log file",
            ));
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = f.metadata().map_or(0, |m| m.len());
        self.file = Some(f);
        Ok(())
    }

    /// Adds output of `stream` (0 stdout, 1 stderr).
    pub fn write(&mut self, stream: usize, data: &[u8]) {
        let mut buf = std::mem::take(&mut self.partial[stream]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos + 1;
            let line = buf[start..end].to_vec();
            self.emit(stream, &line);
            start = end;
        }
        let rest = buf[start..].to_vec();
        if rest.len() > MAX_PARTIAL {
            self.emit(stream, &rest);
        } else {
            self.partial[stream] = rest;
        }
    }

    /// Writes what is left of partial lines (no fsync: like Docker's json-file driver, the
    /// log is not worth a disk flush on every container exit).
    pub fn flush(&mut self) {
        for s in 0..2 {
            let rest = std::mem::take(&mut self.partial[s]);
            if !rest.is_empty() {
                self.emit(s, &rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_within_bounds() {
        let dir = std::env::temp_dir().join(format!("berth-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("c-json.log");
        let mut log = JsonLog::open(path.to_str(), Some(1024), 3);
        for i in 0..500 {
            log.write(0, format!("line {i}\n").as_bytes());
        }
        let len = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(len(path.clone()) > 0);
        assert!(len(log.rotated(1)) >= 1024 && len(log.rotated(1)) < 1200);
        assert!(len(log.rotated(2)) >= 1024);
        assert!(!log.rotated(3).exists());
        let last = std::fs::read_to_string(&path).expect("read");
        assert!(last.contains("line 499"));

        let single = dir.join("one-json.log");
        let mut log = JsonLog::open(single.to_str(), Some(512), 1);
        for i in 0..500 {
            log.write(1, format!("line {i}\n").as_bytes());
        }
        assert!(len(single.clone()) < 700);
        assert!(!log.rotated(1).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reopen_follows_a_renamed_file() {
        let dir = std::env::temp_dir().join(format!("berth-log-reopen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("c.log");
        let moved = dir.join("c.log.1");
        let mut log = JsonLog::open(path.to_str(), None, 1).with_format(LogFormat::Cri);
        log.write(0, b"one\n");
        std::fs::rename(&path, &moved).expect("rename");
        log.write(0, b"two\n");
        log.reopen().expect("reopen");
        log.write(0, b"three\n");
        let old = std::fs::read_to_string(&moved).expect("old");
        let new = std::fs::read_to_string(&path).expect("new");
        assert!(
            old.contains(" F one\n") && old.contains(" F two\n"),
            "{old}"
        );
        assert!(
            new.ends_with(" stdout F three\n") && !new.contains("two"),
            "{new}"
        );
        let mut none = JsonLog::open(None, None, 1);
        assert!(none.reopen().is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cri_lines_carry_time_stream_and_tag() {
        let dir = std::env::temp_dir().join(format!("berth-log-cri-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("c.log");
        let mut log = JsonLog::open(path.to_str(), None, 1).with_format(LogFormat::Cri);
        log.write(0, b"one\ntw");
        log.write(1, b"err\n");
        log.write(0, b"o\nrest");
        log.flush();
        let text = std::fs::read_to_string(&path).expect("read");
        let tails: Vec<&str> = text
            .lines()
            .map(|l| {
                l.split_once(' ').map_or("", |(t, rest)| {
                    assert!(t.ends_with('Z') && t.contains('T'), "{l}");
                    rest
                })
            })
            .collect();
        assert_eq!(
            tails,
            [
                "stdout F one",
                "stderr F err",
                "stdout F two",
                "stdout P rest"
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
