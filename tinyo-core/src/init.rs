//! PID 1 of a container: set up, fork the body as PID 2, reap every orphan until the body
//! exits, report, exit.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, OnceLock};

use crate::error::SetupError;
use crate::report::{BodyReport, Report};
use crate::setup::{self, InheritedFds, Limits, Spec, REPORT_FD};
use crate::sys::real::{self, Forked, SharedPage, SingleThreaded};
use crate::sys::{RealSys, Sys};

/// The fds a container's PID 1 starts with, handed over by the zygote.
#[derive(Debug)]
pub struct ChildIo {
    /// `/dev/null`, for fd 0.
    pub stdin: OwnedFd,
    /// The test's stdout (a capture pipe, or the harness's own stdout).
    pub stdout: OwnedFd,
    /// The test's stderr.
    pub stderr: OwnedFd,
    /// Where PID 1 writes its [`Report`].
    pub report: OwnedFd,
    /// A pidfd of the harness, to close the death-signal race.
    pub parent: OwnedFd,
}

/// Size of the page the body reports through; longer panic messages are truncated.
const PAGE_LEN: usize = 64 * 1024;

static PAGE: OnceLock<SharedPage> = OnceLock::new();

/// The CPUs the body may run on, where its fork server pinned itself (and so its
/// containers) to one: the harness's own, as a test would have under plain `cargo test`.
static BODY_CPUS: Mutex<Option<Vec<usize>>> = Mutex::new(None);

/// Give bodies started from now on in this process these CPUs (see [`BODY_CPUS`]).
pub fn set_body_cpus(cpus: Vec<usize>) {
    *BODY_CPUS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cpus);
}

static PAGE_LOCK: Mutex<()> = Mutex::new(());

fn store(report: &BodyReport) {
    if let Some(page) = PAGE.get() {
        let _guard = PAGE_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        page.store(&report.encode());
    }
}

fn send(report_fd: std::os::fd::BorrowedFd<'_>, report: &Report) -> ! {
    // If the harness is gone there is no one to tell; exit all the same.
    let _ = real::write_all(report_fd, &report.encode());
    real::exit_now(0)
}

/// Run as PID 1 of a fresh container. `body` runs in PID 2 and returns the test's result
/// (`Err` carries the `Debug` of the error it returned). Never returns.
pub fn run(
    proof: SingleThreaded,
    spec: &Spec,
    io: ChildIo,
    body: &dyn Fn() -> Result<(), String>,
) -> ! {
    let sys = RealSys;
    let fds = InheritedFds {
        stdin: io.stdin.as_raw_fd(),
        stdout: io.stdout.as_raw_fd(),
        stderr: io.stderr.as_raw_fd(),
        report: io.report.as_raw_fd(),
    };
    if let Err(e) = setup::install_fds(&sys, fds, io.parent.as_fd()) {
        send(io.report.as_fd(), &Report::SetupFailed(e));
    }
    // install_fds closed the originals; their numbers may be reused, so never close them again.
    for fd in [io.stdin, io.stdout, io.stderr, io.report, io.parent] {
        real::forget_fd(fd);
    }
    let report_fd = real::borrow_fd(REPORT_FD);
    let umask = match setup::build(&sys, spec) {
        Ok(umask) => umask,
        Err(e) => send(report_fd, &Report::SetupFailed(e)),
    };
    start_body(proof, spec.limits, umask, body)
}

/// The fds of a warm container, which sets itself up before it knows its test.
#[derive(Debug)]
pub struct WarmIo {
    /// Where the zygote sends the assignment: a test id and its stdout, stderr and report fds.
    pub ctl: OwnedFd,
    /// `/dev/null`, for fd 0.
    pub stdin: OwnedFd,
    /// A pidfd of the harness, to close the death-signal race.
    pub parent: OwnedFd,
}

/// What a warm container runs once assigned: the test's limits and body.
pub type Assigned = (Limits, Box<dyn Fn() -> Result<(), String>>);

/// Run as PID 1 of a *warm* container: do the whole setup of `spec` ahead, wait for the
/// zygote to assign a test (`assign(id)` gives its limits and body), then run it as
/// [`run`] does. A setup failure is reported once assigned, to that test.
pub fn run_warm(
    proof: SingleThreaded,
    spec: &Spec,
    io: WarmIo,
    assign: &dyn Fn(u32) -> Option<Assigned>,
) -> ! {
    let sys = RealSys;
    if setup::arm_death_signal(&sys, io.parent.as_fd()).is_err() {
        real::exit_now(1);
    }
    drop(io.parent);
    // Hold nothing of the harness's while waiting (its stdout and stderr included).
    for target in 0..3 {
        let _ = sys.dup2(io.stdin.as_raw_fd(), target);
    }
    let built = setup::build(&sys, spec);
    let mut buf = [0u8; 16];
    let Ok(Some((n, fds))) = real::recv_with_fds(io.ctl.as_fd(), &mut buf) else {
        // The zygote is gone: the run is over.
        real::exit_now(0)
    };
    let (Some(id), Ok::<[OwnedFd; 3], _>([stdout, stderr, report])) =
        (crate::wire::Reader::new(&buf[..n]).u32(), fds.try_into())
    else {
        real::exit_now(1)
    };
    let fds = InheritedFds {
        stdin: io.stdin.as_raw_fd(),
        stdout: stdout.as_raw_fd(),
        stderr: stderr.as_raw_fd(),
        report: report.as_raw_fd(),
    };
    if let Err(e) = setup::move_fds(&sys, fds) {
        send(report.as_fd(), &Report::SetupFailed(e));
    }
    for fd in [io.stdin, io.ctl, stdout, stderr, report] {
        real::forget_fd(fd);
    }
    let report_fd = real::borrow_fd(REPORT_FD);
    let umask = match built {
        Ok(umask) => umask,
        Err(e) => send(report_fd, &Report::SetupFailed(e)),
    };
    let Some((limits, body)) = assign(id) else {
        real::exit_now(70)
    };
    start_body(proof, limits, umask, &*body)
}

/// Fork the body as PID 2 and reap until it exits; report; exit.
fn start_body(
    proof: SingleThreaded,
    limits: Limits,
    umask: nix::sys::stat::Mode,
    body: &dyn Fn() -> Result<(), String>,
) -> ! {
    let sys = RealSys;
    let report_fd = real::borrow_fd(REPORT_FD);
    let page = match SharedPage::new(PAGE_LEN) {
        Ok(page) => page,
        Err(errno) => send(
            report_fd,
            &Report::SetupFailed(SetupError::Body {
                syscall: "mmap",
                errno,
            }),
        ),
    };
    page.store(&BodyReport::NotStarted.encode());
    let page = PAGE.get_or_init(|| page);

    let body_pid = match real::fork(&proof) {
        Err(errno) => send(
            report_fd,
            &Report::SetupFailed(SetupError::Body {
                syscall: "fork",
                errno,
            }),
        ),
        Ok(Forked::Child(_proof)) => {
            // PID 2: the body. It keeps no fd of tinyo's.
            let _ = sys.close_from(REPORT_FD);
            sys.umask(umask);
            // PID 1 is non-dumpable (its /proc files belong to host root, see the zygote's
            // `clone_with`); the body is an ordinary process of the container again: its
            // /proc/self is its own and it may ptrace its children. PID 1 stays out of its
            // reach.
            let _ = nix::sys::prctl::set_dumpable(true);
            // Taken, not read: a container this body starts (the `Container` API) keeps
            // whatever CPUs the body chose for itself.
            let cpus = BODY_CPUS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(cpus) = cpus {
                let _ = real::set_affinity(&cpus);
            }
            if let Err(errno) = real::apply_limits(&limits) {
                store(&BodyReport::Panicked {
                    message: format!(
                        "tinyo: setrlimit for the test's limits: {errno:?} ({})",
                        errno.desc()
                    ),
                    location: None,
                });
                real::exit_now(1);
            }
            run_body(body)
        }
        Ok(Forked::Parent(pid)) => pid,
    };

    // Reap every process that ends up ours (orphans are reparented to PID 1) until the body
    // itself has exited; then leave, and the kernel kills whatever is left in the namespace.
    let status = loop {
        match real::wait_any() {
            Ok((pid, Some(status))) if pid == body_pid => break status,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => send(
                report_fd,
                &Report::SetupFailed(SetupError::Body {
                    syscall: "fork",
                    errno,
                }),
            ),
        }
    };
    let body = BodyReport::decode(&page.load());
    send(report_fd, &Report::Finished { status, body })
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

fn run_body(body: &dyn Fn() -> Result<(), String>) -> ! {
    store(&BodyReport::Running);
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        store(&BodyReport::Panicked {
            message: panic_message(info.payload()),
            location: info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())),
        });
        default_hook(info);
    }));
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => store(&BodyReport::Passed),
        Ok(Err(e)) => store(&BodyReport::ReturnedErr(e)),
        // The hook recorded the panic (message and location) as it happened.
        Err(_) => {}
    }
    real::exit_now(0)
}
