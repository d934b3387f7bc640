//! Exit statuses: a command's verdict, and how an error carries one to `main`.
//!
//! A command that did its job returns its verdict as a value,
//! `Ok(ExitStatus)`: a red gate, a failing preflight or a JSON-RPC error
//! answer is an answer, printed as output, not an error. `Err` is kept for
//! "could not do it": raised with [`fail`] or tagged with
//! [`WithStatus::status`], and `main` reads the status back off the error
//! chain. The numbers are part of the command-line contract
//! (docs/ARCHITECTURE.md).

use std::fmt;

/// What the process exit code tells a script or an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Success = 0,
    /// The answer is no: the gate ran and failed (`run`, `wait`, `fleet`),
    /// or the node answered a call with a JSON-RPC error (`rpc`).
    Failed = 1,
    /// The command line or a configuration file is wrong.
    Usage = 2,
    /// A bundle is corrupt, forged, or not the pinned artifact.
    Integrity = 3,
    /// The node does not meet the gate's preconditions.
    Preflight = 4,
    /// The machine is not fit to run: no usable work dir, lock held, I/O failure.
    Environment = 5,
    Interrupted = 130,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// An error with the exit status it should end the process with.
#[derive(Debug)]
pub struct Failure {
    pub status: ExitStatus,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A new error that ends the process with `status`.
pub fn fail(status: ExitStatus, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        status,
        message: message.into(),
    })
}

/// Tags any error with the status it should end the process with.
pub trait WithStatus<T> {
    fn status(self, status: ExitStatus, message: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E> WithStatus<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn status(self, status: ExitStatus, message: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| {
            e.into().context(Failure {
                status,
                message: message(),
            })
        })
    }
}

/// The status an error ends the process with: the outermost one it carries.
/// An error nobody classified is an environment problem (I/O, mostly).
pub fn status_of(err: &anyhow::Error) -> ExitStatus {
    err.downcast_ref::<Failure>()
        .map(|f| f.status)
        .unwrap_or(ExitStatus::Environment)
}
