//! The typed result of one isolated test.

use std::fmt;
use std::time::Duration;

use crate::error::SetupError;
use crate::report::{BodyReport, Report};

/// How a process ended, from its wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by a signal.
    Signaled {
        /// The signal number.
        signal: i32,
        /// Whether a core was dumped.
        core_dumped: bool,
    },
}

/// The name of a signal number (`SIGABRT`), or its number.
pub fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_owned())
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Exited(code) => write!(f, "exited with code {code}"),
            Self::Signaled {
                signal,
                core_dumped,
            } => {
                write!(
                    f,
                    "killed by {}{}",
                    signal_name(signal),
                    if core_dumped { " (core dumped)" } else { "" }
                )
            }
        }
    }
}

/// Why a test failed. The test's own doing, never the harness's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureReason {
    /// The body panicked.
    Panicked {
        /// The panic message.
        message: String,
        /// Where, when known.
        location: Option<String>,
    },
    /// The body returned `Err`; its `Debug`.
    ReturnedErr(String),
    /// The body's process exited (`std::process::exit`, `libc::exit`) before the body returned,
    /// or with a non-zero code after it.
    ExitedEarly(i32),
    /// The body's process was killed by a signal.
    Signaled {
        /// The signal number.
        signal: i32,
        /// Whether a core was dumped.
        core_dumped: bool,
    },
    /// The container's PID 1 died without a report (e.g. killed from outside).
    ContainerDied(Termination),
    /// The body ran out of memory under its `memory` limit (an allocation failed and the
    /// Rust runtime aborted).
    OutOfMemory {
        /// The limit, in bytes.
        limit: u64,
    },
    /// `#[should_panic]`, and the body returned.
    DidNotPanic {
        /// The expected substring, if one was given.
        expected: Option<String>,
    },
    /// `#[should_panic(expected = …)]`, and the message did not contain it.
    PanicMismatch {
        /// The panic message.
        message: String,
        /// The expected substring.
        expected: String,
    },
}

/// The outcome of one isolated test.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The body returned normally and its process exited 0.
    Passed,
    /// The test failed.
    Failed {
        /// Why.
        reason: FailureReason,
    },
    /// The container was killed at its deadline.
    TimedOut {
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The container could not be set up: the harness's or the environment's fault.
    SetupFailed(SetupError),
}

impl Outcome {
    /// Decide the outcome from PID 1's report (if any), PID 1's own wait status, and whether
    /// the harness killed it at its deadline. A test passes only on an explicit `Passed` from
    /// the body *and* a clean exit: nothing else reads as a pass.
    pub fn decide(report: Option<Report>, init: Termination, timed_out: Option<Duration>) -> Self {
        if let Some(after) = timed_out {
            return Self::TimedOut { after };
        }
        let failed = |reason| Self::Failed { reason };
        match report {
            None => failed(FailureReason::ContainerDied(init)),
            Some(Report::SetupFailed(e)) => Self::SetupFailed(e),
            Some(Report::Finished { status, body }) => match (body, status) {
                (BodyReport::Panicked { message, location }, _) => {
                    failed(FailureReason::Panicked { message, location })
                }
                (BodyReport::ReturnedErr(e), _) => failed(FailureReason::ReturnedErr(e)),
                (BodyReport::Passed, Termination::Exited(0)) => Self::Passed,
                (
                    BodyReport::Passed | BodyReport::Running | BodyReport::NotStarted,
                    Termination::Exited(code),
                ) => failed(FailureReason::ExitedEarly(code)),
                (
                    BodyReport::Passed | BodyReport::Running | BodyReport::NotStarted,
                    Termination::Signaled {
                        signal,
                        core_dumped,
                    },
                ) => failed(FailureReason::Signaled {
                    signal,
                    core_dumped,
                }),
            },
        }
    }
}

impl Outcome {
    /// Apply `#[should_panic]`: `expected` is `None` for a plain test, `Some(None)` for
    /// `#[should_panic]`, `Some(Some(s))` for `#[should_panic(expected = s)]`. A panic with the
    /// right message passes; a body that returns fails; every other failure (a signal, an
    /// exit, a timeout, a setup failure) stays what it was, as under libtest.
    pub fn expecting_panic(self, expected: Option<Option<&str>>) -> Self {
        let Some(expected) = expected else {
            return self;
        };
        match self {
            Self::Passed => Self::Failed {
                reason: FailureReason::DidNotPanic {
                    expected: expected.map(str::to_owned),
                },
            },
            Self::Failed {
                reason: FailureReason::Panicked { message, .. },
            } => match expected {
                Some(e) if !message.contains(e) => Self::Failed {
                    reason: FailureReason::PanicMismatch {
                        message,
                        expected: e.to_owned(),
                    },
                },
                _ => Self::Passed,
            },
            other => other,
        }
    }
}

/// `268435456` → `256M`.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}K", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 60_000 == 0 && ms >= 60_000 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Passed => f.write_str("passed"),
            Self::Failed { reason } => write!(f, "{reason}"),
            Self::TimedOut { after } => write!(
                f,
                "timed out after {}; the container and every process in it were killed",
                human(*after)
            ),
            Self::SetupFailed(e) => write!(
                f,
                "tinyo could not set up the container (not a failure of the test itself): {e}"
            ),
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked { message, location: Some(l) } => write!(f, "panicked at {l}:\n{message}"),
            Self::Panicked { message, location: None } => write!(f, "panicked:\n{message}"),
            Self::ReturnedErr(e) => write!(f, "returned Err: {e}"),
            Self::ExitedEarly(code) => write!(
                f,
                "the test's process exited with code {code} before the test function returned (std::process::exit or exit() in the body); a test that does not finish does not pass"
            ),
            Self::Signaled { signal, core_dumped } => {
                write!(f, "{}", crate::outcome::Termination::Signaled { signal: *signal, core_dumped: *core_dumped })
            }
            Self::ContainerDied(t) => write!(f, "the container's init (PID 1) {t} without reporting a result"),
            Self::OutOfMemory { limit } => write!(
                f,
                "out of memory (limit {}): an allocation failed and the test aborted; {}",
                size(*limit),
                crate::setup::Limits::MECHANISM
            ),
            Self::DidNotPanic { expected: None } => f.write_str("test did not panic as expected"),
            Self::DidNotPanic { expected: Some(e) } => write!(f, "test did not panic as expected (expected a panic containing `{e}`)"),
            Self::PanicMismatch { message, expected } => write!(
                f,
                "panic did not contain expected string\n      panic message: `{message:?}`,\n expected substring: `{expected:?}`"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(status: Termination, body: BodyReport) -> Option<Report> {
        Some(Report::Finished { status, body })
    }

    #[test]
    fn only_an_explicit_pass_with_exit_zero_passes() {
        assert_eq!(
            Outcome::decide(
                finished(Termination::Exited(0), BodyReport::Passed),
                Termination::Exited(0),
                None
            ),
            Outcome::Passed
        );
        for body in [BodyReport::Running, BodyReport::NotStarted] {
            assert_eq!(
                Outcome::decide(
                    finished(Termination::Exited(0), body),
                    Termination::Exited(0),
                    None
                ),
                Outcome::Failed {
                    reason: FailureReason::ExitedEarly(0)
                }
            );
        }
        assert_eq!(
            Outcome::decide(
                finished(Termination::Exited(2), BodyReport::Passed),
                Termination::Exited(0),
                None
            ),
            Outcome::Failed {
                reason: FailureReason::ExitedEarly(2)
            }
        );
        assert_eq!(
            Outcome::decide(None, Termination::Exited(0), None),
            Outcome::Failed {
                reason: FailureReason::ContainerDied(Termination::Exited(0))
            }
        );
    }

    #[test]
    fn should_panic() {
        let panicked = || Outcome::Failed {
            reason: FailureReason::Panicked {
                message: "boom here".into(),
                location: None,
            },
        };
        assert_eq!(panicked().expecting_panic(Some(None)), Outcome::Passed);
        assert_eq!(
            panicked().expecting_panic(Some(Some("boom"))),
            Outcome::Passed
        );
        assert!(matches!(
            panicked().expecting_panic(Some(Some("bang"))),
            Outcome::Failed {
                reason: FailureReason::PanicMismatch { .. }
            }
        ));
        assert_eq!(
            Outcome::Passed.expecting_panic(Some(None)).to_string(),
            "test did not panic as expected"
        );
        assert_eq!(panicked().expecting_panic(None), panicked());
        let abort = Outcome::Failed {
            reason: FailureReason::Signaled {
                signal: 6,
                core_dumped: false,
            },
        };
        assert_eq!(abort.clone().expecting_panic(Some(None)), abort);
    }

    #[test]
    fn signals_panics_and_timeouts() {
        let abort = Termination::Signaled {
            signal: 6,
            core_dumped: false,
        };
        let o = Outcome::decide(
            finished(abort, BodyReport::Running),
            Termination::Exited(0),
            None,
        );
        assert_eq!(o.to_string(), "killed by SIGABRT");
        let o = Outcome::decide(
            finished(
                abort,
                BodyReport::Panicked {
                    message: "m".into(),
                    location: Some("f.rs:1:1".into()),
                },
            ),
            Termination::Exited(0),
            None,
        );
        assert_eq!(o.to_string(), "panicked at f.rs:1:1:\nm");
        let o = Outcome::decide(
            None,
            Termination::Signaled {
                signal: 9,
                core_dumped: false,
            },
            Some(Duration::from_secs(2)),
        );
        assert!(o.to_string().starts_with("timed out after 2s"), "{o}");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(120)), "2m");
    }
}
