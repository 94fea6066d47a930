//! The CNI client's errors: a configuration that cannot be read or is malformed, a plugin that
//! cannot be found or run, that runs too long or writes too much, or that reports a failure
//! (the spec's `{"code", "msg", "details"}` error object, or its exit status and stderr).

use std::path::PathBuf;

/// Why loading a configuration or running a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// The configuration folder could not be listed.
    #[error("reading the CNI configuration folder {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// A configuration file could not be read.
    #[error("reading the CNI configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A configuration file (or the folder's listing) is larger than berth reads.
    #[error("the CNI configuration {path} is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    /// A configuration file is not a valid network configuration (list).
    #[error("invalid CNI configuration {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    /// No plugin binary of that type in the plugin folders.
    #[error("CNI plugin {plugin:?} not found in {dirs}")]
    PluginNotFound { plugin: String, dirs: String },
    /// The plugin could not be started or talked to.
    #[error("running CNI plugin {plugin}: {source}")]
    Spawn {
        plugin: String,
        source: std::io::Error,
    },
    /// The plugin did not finish in time (it and its children were killed).
    #[error("CNI plugin {plugin} did not finish within {secs} s (killed)")]
    Timeout { plugin: String, secs: u64 },
    /// The plugin wrote more than berth reads.
    #[error("CNI plugin {plugin} wrote more than {limit} bytes")]
    OutputTooLarge { plugin: String, limit: usize },
    /// The plugin reported an error (the spec's error object).
    #[error("CNI plugin {plugin} failed (code {code}): {msg}{details}")]
    Plugin {
        plugin: String,
        code: u64,
        msg: String,
        /// `": <details>"`, or empty.
        details: String,
    },
    /// The plugin failed without an error object.
    #[error("CNI plugin {plugin} failed ({status}): {stderr}")]
    Exit {
        plugin: String,
        status: String,
        stderr: String,
    },
    /// The plugin's result is not a CNI result.
    #[error("CNI plugin {plugin} returned an unreadable result: {reason}")]
    BadResult { plugin: String, reason: String },
}

/// The client's results.
pub type CniResult<T> = Result<T, CniError>;
