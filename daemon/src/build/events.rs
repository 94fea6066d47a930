//! What a build reports as it goes: typed [`BuildEvent`]s handed to a [`BuildSink`]. The
//! builder knows nothing of the wire; the HTTP side (`api/build.rs`) renders the events as
//! Docker's JSON stream (`{"stream": …}`, `{"aux": …}`, `errorDetail`).

/// One thing a build reports. Image and container IDs are full (`sha256:…` for images); the
/// renderer shortens them as Docker shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// Instruction `n` of `total` starts (`instruction` as written in the Dockerfile).
    Step {
        n: usize,
        total: usize,
        instruction: String,
    },
    /// The step's result was found in the cache.
    UsingCache,
    /// The image a step (or `FROM`) produced or found.
    StepImage(String),
    /// A `RUN` step's container is running.
    RunningIn(String),
    /// Output a `RUN` step's command printed (a line, with its end of line).
    Output(String),
    /// A `RUN` step's container was removed (`--rm`, `--force-rm`).
    RemovedIntermediate(String),
    /// The build's final image.
    ImageId(String),
    /// The build succeeded with this image (after [`BuildEvent::ImageId`]).
    Built(String),
    /// The final image got this tag (in its familiar form).
    Tagged(String),
    /// The build (or tagging its image) failed; `code` is a failing `RUN`'s exit code.
    Error { message: String, code: Option<i64> },
}

impl BuildEvent {
    /// Progress meant for a person (Docker's `stream` messages), which `-q` hides.
    pub fn is_progress(&self) -> bool {
        !matches!(self, BuildEvent::ImageId(_) | BuildEvent::Error { .. })
    }
}

/// Where a build's events go. Called from the build's own thread.
pub trait BuildSink: Sync {
    /// Takes one event (a client that went away is the sink's business).
    fn emit(&self, ev: BuildEvent);
}

impl<F: Fn(BuildEvent) + Sync> BuildSink for F {
    fn emit(&self, ev: BuildEvent) {
        self(ev)
    }
}

/// Called once: whether the build got as far as its first step. Before that (an unreadable
/// context, a missing or malformed Dockerfile, an unknown `--target`) Docker answers with an
/// HTTP error rather than in the stream, so the HTTP side holds its answer until this fires.
pub struct Ready(std::sync::Mutex<Option<ReadyFn>>);

type ReadyFn = Box<dyn FnOnce(Result<(), String>) + Send>;

impl Ready {
    /// `f` learns the outcome.
    pub fn new(f: impl FnOnce(Result<(), String>) + Send + 'static) -> Ready {
        Ready(std::sync::Mutex::new(Some(Box::new(f))))
    }

    /// Reports `r` unless already reported; false when it was.
    pub fn fire(&self, r: Result<(), String>) -> bool {
        let f = self.0.lock().ok().and_then(|mut g| g.take());
        match f {
            Some(f) => {
                f(r);
                true
            }
            None => false,
        }
    }
}
