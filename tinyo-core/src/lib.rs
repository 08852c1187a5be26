//! The tinyo runtime: namespaces, process control and the container recipe.
//!
//! A container is made in four moves, each in its own module:
//!
//! * [`zygote`]: a fork server, started while the program is still single-threaded, that
//!   `clone3`s each container's PID 1 straight into fresh namespaces and hands the harness a
//!   pidfd for it (the harness is its parent: `CLONE_PARENT`).
//! * [`setup`]: PID 1 arms its death signal, installs its stdio, applies the
//!   [`tinyo_rootfs`] plan, sets the hostname and brings `lo` up: one linear function over
//!   the [`sys::Sys`] seam, so the exact ordered call sequence is unit-tested without root.
//! * [`init`]: PID 1 forks the test body as PID 2, reaps every orphan until the body exits,
//!   and writes a [`report::Report`] for the harness.
//! * [`outcome`]: the harness turns the report and the wait status into a typed [`Outcome`].
//!
//! Every syscall goes through [`sys`]; all `unsafe` code of tinyo lives there.
//!
//! ```
//! use tinyo_core::{Namespaces, Outcome};
//! let ns = Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS | Namespaces::IPC;
//! assert!(ns.contains(Namespaces::PID) && !ns.contains(Namespaces::NET));
//! assert!(matches!(Outcome::Passed, Outcome::Passed));
//! ```

pub mod container;
pub mod diagnose;
pub mod error;
pub mod init;
pub mod namespaces;
pub mod network;
pub mod outcome;
pub mod probe;
pub mod report;
pub mod setup;
pub mod sys;
pub mod userns;
pub mod wire;
pub mod zygote;

pub use error::SetupError;
pub use namespaces::Namespaces;
pub use outcome::{FailureReason, Outcome, Termination};
pub use setup::{Limits, NetMode, Spec};
