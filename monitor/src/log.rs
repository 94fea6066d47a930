//! The json-file log writer: one JSON object per line, split at newlines.

use std::fs::File;
use std::io::Write;

/// Buffers partial lines per stream and appends complete ones to the log file.
pub struct JsonLog {
    file: Option<File>,
    partial: [Vec<u8>; 2],
}

const MAX_PARTIAL: usize = 16 * 1024;

impl JsonLog {
    /// Opens (appending) the log at `path`, or a no-op log.
    pub fn open(path: Option<&str>) -> JsonLog {
        let file = path.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        JsonLog {
            file,
            partial: [Vec::new(), Vec::new()],
        }
    }

    fn emit(&mut self, stream: usize, line: &[u8]) {
        let Some(f) = self.file.as_mut() else { return };
        let rec = serde_json::json!({
            "log": String::from_utf8_lossy(line),
            "stream": if stream == 0 { "stdout" } else { "stderr" },
            "time": crate::config::now(),
        });
        let mut b = serde_json::to_vec(&rec).unwrap_or_default();
        b.push(b'\n');
        let _ = f.write_all(&b);
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
