//! Running one test in its container: spawn, collect report and output against the
//! deadline, reap, decide the outcome.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use tinyo_core::diagnose::FailedAt;
use tinyo_core::report::Report;
use tinyo_core::sys::real::{self, SingleThreaded};
use tinyo_core::zygote::{self, Running, SpawnError, Zygote};
use tinyo_core::{FailureReason, Namespaces, Outcome};

use crate::capture::CappedOutput;
use crate::{container_entry, TestRecord};

/// How containers are started.
#[derive(Debug)]
pub(crate) enum Launcher<'a> {
    /// Through the fork server (the tinyo harness).
    Zygote(&'a Zygote),
    /// Directly, from this single-threaded process (the stock-harness re-run).
    Direct(&'a SingleThreaded),
}

impl Launcher<'_> {
    fn spawn(
        &self,
        id: u32,
        ns: Namespaces,
        poolable: bool,
        out: &OwnedFd,
        err: &OwnedFd,
        report: &OwnedFd,
    ) -> Result<Running, SpawnError> {
        match self {
            Self::Zygote(z) => z.spawn(id, ns, poolable, out.as_fd(), err.as_fd(), report.as_fd()),
            Self::Direct(proof) => zygote::spawn_direct(
                proof,
                container_entry,
                id,
                ns,
                None,
                out.as_fd(),
                err.as_fd(),
                report.as_fd(),
            ),
        }
    }
}

fn ctx(what: &'static str) -> impl Fn(Errno) -> RunError {
    move |e| RunError::Io(format!("tinyo: {what}: {e:?} ({})", e.desc()))
}

/// Why a test could not be run at all.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The container could not be started.
    Spawn(SpawnError),
    /// A pipe, poll or wait of the harness failed.
    Io(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Spawn(e) => write!(f, "tinyo could not start the container: {e}"),
            Self::Io(e) => f.write_str(e),
        }
    }
}

/// The environmental failure behind a spawn error or a failed setup, if that is what it is
/// (the kernel refusing namespaces, id maps, mounts), as opposed to a bug or a bad path.
pub(crate) fn environment_failure(
    result: &Result<(Outcome, Option<CappedOutput>), RunError>,
) -> Option<FailedAt> {
    match result {
        Err(RunError::Spawn(e)) => FailedAt::from_spawn(e),
        Ok((Outcome::SetupFailed(e), _)) => FailedAt::from_setup(e),
        _ => None,
    }
}

/// Run test `id` in a fresh container. With `nocapture` the container writes straight to
/// this process's stdout and stderr; otherwise both go to one pipe (so their order is kept)
/// and come back, bounded, with the outcome. `Err` is a failure of tinyo itself.
pub(crate) fn execute(
    launcher: &Launcher<'_>,
    id: usize,
    record: &TestRecord,
    timeout: Duration,
    nocapture: bool,
) -> Result<(Outcome, Option<CappedOutput>), RunError> {
    let (report_r, report_w) = real::pipe().map_err(ctx("create the report pipe: pipe2"))?;
    let (out_r, out_w, err_w) = if nocapture {
        let out = real::dup(std::io::stdout().as_fd()).map_err(ctx("dup stdout"))?;
        let err = real::dup(std::io::stderr().as_fd()).map_err(ctx("dup stderr"))?;
        (None, out, err)
    } else {
        let (r, w) = real::pipe().map_err(ctx("create the output pipe: pipe2"))?;
        let w2 = real::dup(w.as_fd()).map_err(ctx("dup"))?;
        (Some(r), w, w2)
    };
    let id = u32::try_from(id).map_err(|_| RunError::Io("tinyo: too many tests".to_owned()))?;
    let container = launcher
        .spawn(
            id,
            Namespaces::CONTAINER,
            crate::poolable(record),
            &out_w,
            &err_w,
            &report_w,
        )
        .map_err(RunError::Spawn)?;
    // Only the container holds the write ends now: end of file means it is gone.
    drop((out_w, err_w, report_w));

    let mut report = Vec::new();
    let mut output = CappedOutput::default();
    let mut to_report = |b: &[u8]| report.extend_from_slice(b);
    let mut to_output = |b: &[u8]| output.push(b);
    let mut pipes: Vec<zygote::Pipe<'_, '_>> = vec![(report_r.as_fd(), &mut to_report)];
    if let Some(o) = &out_r {
        pipes.push((o.as_fd(), &mut to_output));
    }
    let timed_out = container
        .drain(timeout, &mut pipes)
        .map_err(ctx("wait for the container: poll/read"))?;
    drop(pipes);
    let init = container
        .wait()
        .map_err(ctx("reap the container: waitid"))?;
    let mut outcome = Outcome::decide(Report::decode(&report), init, timed_out.then_some(timeout));
    // Under a memory limit, Rust's "memory allocation of N bytes failed" then SIGABRT is an
    // out-of-memory failure; say so rather than naming the signal.
    if let (
        Some(limit),
        Outcome::Failed {
            reason: FailureReason::Signaled { signal, .. },
        },
    ) = (record.memory, &outcome)
    {
        if *signal == libc_sigabrt() && (out_r.is_none() || output.contains("memory allocation of"))
        {
            outcome = Outcome::Failed {
                reason: FailureReason::OutOfMemory { limit },
            };
        }
    }
    Ok((
        outcome.expecting_panic(record.should_panic.expected()),
        out_r.map(|_| output),
    ))
}

fn libc_sigabrt() -> i32 {
    nix::sys::signal::Signal::SIGABRT as i32
}

/// The failure message libtest-mimic shows for a non-passing outcome, with the output.
pub(crate) fn failure_message(outcome: &Outcome, output: Option<&CappedOutput>) -> String {
    let mut msg = outcome.to_string();
    if let Some(output) = output.filter(|o| !o.is_empty()) {
        msg.push_str("\n---- output of the container ----\n");
        msg.push_str(&output.to_string());
    }
    msg
}
