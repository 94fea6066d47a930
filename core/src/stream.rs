//! A byte stream produced on a thread of its own: the reading end of a pipe whose writing end
//! a worker thread fills. The end of the stream is reported only once the worker has
//! returned, and the worker's error (a digest mismatch, a broken transfer) is the error of the
//! last `read`, so a consumer can never mistake a failed producer for a complete stream.

use crate::{DriverError, DriverResult};
use std::io::{PipeReader, PipeWriter, Read};
use std::thread::JoinHandle;

/// The reading end of a stream a worker thread writes (see the module doc).
pub struct Produced<T> {
    pipe: PipeReader,
    worker: Option<JoinHandle<DriverResult<T>>>,
    name: String,
}

/// Runs `f` on a thread named `name` with the writing end of `pipe`; returns the reading end.
pub fn produce<T: Send + 'static>(
    name: &str,
    pipe: (PipeReader, PipeWriter),
    f: impl FnOnce(PipeWriter) -> DriverResult<T> + Send + 'static,
) -> DriverResult<Produced<T>> {
    let (r, w) = pipe;
    let worker = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || f(w))
        .map_err(|e| DriverError::io(format!("starting the {name} thread"), e))?;
    Ok(Produced {
        pipe: r,
        worker: Some(worker),
        name: name.to_string(),
    })
}

impl<T> Read for Produced<T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        match self.worker.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(_))) => Ok(0),
            Some(Ok(Err(e))) => Err(std::io::Error::other(e.to_string())),
            Some(Err(_)) => Err(std::io::Error::other(format!(
                "the {} thread panicked",
                self.name
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_end_of_the_stream_carries_the_producers_error() {
        let ok = produce("ok", std::io::pipe().expect("pipe"), |mut w| {
            w.write_all(b"abc")
                .map_err(|e| DriverError::io("writing", e))
        })
        .expect("spawn");
        let mut s = String::new();
        std::io::BufReader::new(ok)
            .read_to_string(&mut s)
            .expect("read");
        assert_eq!(s, "abc");
        let bad = produce("bad", std::io::pipe().expect("pipe"), |mut w| {
            let _ = w.write_all(b"ab");
            Err::<(), _>(DriverError::Internal("broken".into()))
        })
        .expect("spawn");
        let mut v = Vec::new();
        let e = std::io::BufReader::new(bad)
            .read_to_end(&mut v)
            .expect_err("the producer failed");
        assert!(e.to_string().contains("broken"), "{e}");
    }
}
