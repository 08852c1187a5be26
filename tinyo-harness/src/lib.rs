//! The tinyo test harness: collects the `#[tinyo::isolated]` tests of a test binary, runs
//! each in its own container, and reports through [libtest-mimic], so `cargo test`,
//! cargo-nextest and IDEs read the results as usual.
//!
//! Use it through `tinyo::main!()`, which expands to a `main` calling [`run_main`]:
//!
//! ```text
//! #[tinyo::isolated]
//! fn sees_its_own_hostname() {
//!     assert_eq!(nix::unistd::gethostname().unwrap(), "tinyo");
//! }
//! tinyo::main!();
//! ```
//!
//! [libtest-mimic]: https://docs.rs/libtest-mimic

use std::fmt::Debug;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use tinyo_core::init::ChildIo;
use tinyo_core::report::Report;
use tinyo_core::sys::real::{self, SingleThreaded};
use tinyo_core::zygote::{Container, Zygote};
use tinyo_core::{Namespaces, NetMode, Outcome, Spec};
use tinyo_rootfs::{HostFacts, RootfsConfig};

mod capture;

pub use capture::CappedOutput;
pub use linkme;

/// One `#[isolated]` test, as the macro registers it. Not for hand-written use.
#[derive(Debug)]
#[doc(hidden)]
pub struct TestRecord {
    /// The function's name.
    pub name: &'static str,
    /// `module_path!()` where it was defined.
    pub module_path: &'static str,
    /// `file!()`.
    pub file: &'static str,
    /// `line!()`.
    pub line: u32,
    /// `hostname = "…"`.
    pub hostname: Option<&'static str>,
    /// `timeout = "…"`, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// `net = "…"`.
    pub net: NetMode,
    /// `#[ignore]` was given.
    pub ignored: bool,
    /// `#[ignore = "…"]`.
    pub ignore_reason: Option<&'static str>,
    /// Runs the body; `Err` carries the `Debug` of a returned error.
    pub body: fn() -> Result<(), String>,
}

impl TestRecord {
    /// The name libtest would print: the module path without the crate, then the function.
    pub fn test_name(&self) -> String {
        match self.module_path.split_once("::") {
            Some((_, rest)) => format!("{rest}::{}", self.name),
            None => self.name.to_owned(),
        }
    }
}

/// Every isolated test linked into this binary.
#[linkme::distributed_slice]
#[doc(hidden)]
pub static TESTS: [TestRecord];

/// What a test body may return: `()` or `Result<(), E: Debug>`.
#[doc(hidden)]
pub trait IntoTestResult {
    /// `Err` with the error's `Debug` when the test failed by returning it.
    fn into_test_result(self) -> Result<(), String>;
}

impl IntoTestResult for () {
    fn into_test_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Debug> IntoTestResult for Result<(), E> {
    fn into_test_result(self) -> Result<(), String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// The default per-test timeout, when neither the attribute nor `TINYO_TIMEOUT` set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// What every container of this run shares; fixed before the zygote is forked.
#[derive(Debug)]
struct Context {
    facts: HostFacts,
    crate_dir: Option<PathBuf>,
}

static CONTEXT: OnceLock<Context> = OnceLock::new();

/// Parse `"250ms"`, `"5s"`, `"2m"` (as the attribute's `timeout`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = text[..digits].parse().ok()?;
    let d = match &text[digits..] {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

fn crate_dir(compile_time: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(compile_time), PathBuf::from);
    (dir.is_absolute() && dir.is_dir()).then_some(dir)
}

/// The whole harness: fork the zygote while single-threaded, parse libtest's arguments,
/// run every isolated test in its container, print the results, exit (101 on failure).
pub fn run_main(compile_time_crate_dir: &'static str) -> ! {
    CONTEXT.get_or_init(|| Context { facts: real::host_facts(), crate_dir: crate_dir(compile_time_crate_dir) });
    // Before anything can start a thread: the zygote must be forked from a single thread.
    let zygote = Zygote::start(container_entry).map_err(|e| e.to_string());

    let args = Arguments::from_args();
    let default_timeout = match std::env::var("TINYO_TIMEOUT") {
        Err(_) => DEFAULT_TIMEOUT,
        Ok(text) => match parse_duration(&text) {
            Some(d) => d,
            None => {
                eprintln!("error: TINYO_TIMEOUT=`{text}` is not a duration; use e.g. TINYO_TIMEOUT=250ms, 5s or 2m");
                std::process::exit(2);
            }
        },
    };
    let zygote = std::sync::Arc::new(zygote);
    let trials = TESTS
        .iter()
        .enumerate()
        .map(|(id, record)| {
            let zygote = zygote.clone();
            let nocapture = args.nocapture;
            let timeout = record.timeout_ms.map_or(default_timeout, Duration::from_millis);
            Trial::test(record.test_name(), move || match zygote.as_ref() {
                Ok(z) => run_isolated(z, id, record, timeout, nocapture),
                Err(e) => Err(Failed::from(format!("tinyo could not start its fork server: {e}"))),
            })
            .with_ignored_flag(record.ignored)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    drop(zygote);
    conclusion.exit()
}

fn namespaces(net: NetMode) -> Namespaces {
    let base = Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS | Namespaces::IPC;
    match net {
        NetMode::Host => base,
        _ => base | Namespaces::NET,
    }
}

/// PID 1 of each container: build the spec for test `id` and run it.
fn container_entry(proof: SingleThreaded, id: u32, io: ChildIo) -> ! {
    let (Some(record), Some(context)) = (TESTS.get(id as usize), CONTEXT.get()) else {
        real::exit_now(70);
    };
    let hostname = record.hostname.unwrap_or("tinyo");
    let mut config = RootfsConfig::new(hostname);
    config.crate_dir = context.crate_dir.clone();
    let spec = Spec::new(hostname, record.net, tinyo_rootfs::plan(&config, &context.facts));
    tinyo_core::init::run(proof, &spec, io, &record.body)
}

/// Run one test in a fresh container and turn its outcome into libtest-mimic's.
fn run_isolated(zygote: &Zygote, id: usize, record: &TestRecord, timeout: Duration, nocapture: bool) -> Result<(), Failed> {
    let (outcome, output) = execute(zygote, id, record, timeout, nocapture).map_err(Failed::from)?;
    match outcome {
        Outcome::Passed => Ok(()),
        other => {
            let mut msg = other.to_string();
            if let Some(output) = output.filter(|o| !o.is_empty()) {
                msg.push_str("\n---- output of the container ----\n");
                msg.push_str(&output.to_string());
            }
            Err(Failed::from(msg))
        }
    }
}

fn execute(zygote: &Zygote, id: usize, record: &TestRecord, timeout: Duration, nocapture: bool) -> Result<(Outcome, Option<CappedOutput>), String> {
    let ctx = |what: &str| {
        let what = what.to_owned();
        move |e: nix::errno::Errno| format!("tinyo: {what}: {e:?} ({})", e.desc())
    };
    let (report_r, report_w) = real::pipe().map_err(ctx("create the report pipe: pipe2"))?;
    let (out_r, out_w): (Option<OwnedFd>, OwnedFd) = if nocapture {
        (None, real::dup(std::io::stdout().as_fd()).map_err(ctx("dup stdout"))?)
    } else {
        let (r, w) = real::pipe().map_err(ctx("create the output pipe: pipe2"))?;
        (Some(r), w)
    };
    let err_w = if nocapture { real::dup(std::io::stderr().as_fd()).map_err(ctx("dup stderr"))? } else { real::dup(out_w.as_fd()).map_err(ctx("dup"))? };
    let id = u32::try_from(id).map_err(|_| "tinyo: too many tests".to_owned())?;
    let container = zygote
        .spawn(id, namespaces(record.net), out_w.as_fd(), err_w.as_fd(), report_w.as_fd())
        .map_err(|e| format!("tinyo could not start the container: {e}"))?;
    drop((out_w, err_w, report_w));

    let mut report = Vec::new();
    let mut output = CappedOutput::default();
    let timed_out = collect(&container, timeout, &report_r, out_r.as_ref(), &mut report, &mut output).map_err(ctx("wait for the container: poll/read"))?;
    let init = container.wait().map_err(ctx("reap the container: waitid"))?;
    let outcome = Outcome::decide(Report::decode(&report), init, timed_out.then_some(timeout));
    Ok((outcome, out_r.map(|_| output)))
}

/// Read the report and output until the container has exited and every pipe is at end of
/// file, killing the container at its deadline. Returns whether it was killed.
fn collect(container: &Container, timeout: Duration, report_r: &OwnedFd, out_r: Option<&OwnedFd>, report: &mut Vec<u8>, output: &mut CappedOutput) -> Result<bool, nix::errno::Errno> {
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let mut exited = false;
    let (mut report_open, mut out_open) = (true, out_r.is_some());
    let mut buf = vec![0u8; 64 * 1024];
    while report_open || out_open || !exited {
        let mut fds = Vec::new();
        if report_open {
            fds.push(report_r.as_fd());
        }
        if let (true, Some(o)) = (out_open, out_r) {
            fds.push(o.as_fd());
        }
        if !exited {
            fds.push(container.pidfd());
        }
        let wait_ms = if exited || timed_out { None } else { Some(deadline.saturating_duration_since(Instant::now()).as_millis() as u64) };
        let ready = real::poll_readable(&fds, wait_ms)?;
        if !ready.iter().any(|r| *r) {
            // Deadline: SIGKILL to PID 1 takes the whole PID namespace with it.
            let _ = container.kill();
            timed_out = true;
            continue;
        }
        let mut i = 0;
        if report_open {
            if ready[i] {
                let n = real::read(report_r.as_fd(), &mut buf)?;
                report_open = n > 0;
                report.extend_from_slice(&buf[..n]);
            }
            i += 1;
        }
        if let (true, Some(o)) = (out_open, out_r) {
            if ready[i] {
                let n = real::read(o.as_fd(), &mut buf)?;
                out_open = n > 0;
                output.push(&buf[..n]);
            }
            i += 1;
        }
        if !exited && ready[i] {
            exited = true;
        }
    }
    Ok(timed_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("5"), None);
    }

    #[test]
    fn names_drop_the_crate() {
        let rec = |module_path| TestRecord {
            name: "t",
            module_path,
            file: "",
            line: 0,
            hostname: None,
            timeout_ms: None,
            net: NetMode::Loopback,
            ignored: false,
            ignore_reason: None,
            body: || Ok(()),
        };
        assert_eq!(rec("isolated").test_name(), "t");
        assert_eq!(rec("isolated::a::b").test_name(), "a::b::t");
    }

    #[test]
    fn result_bodies() {
        assert_eq!(().into_test_result(), Ok(()));
        assert_eq!(Err::<(), _>("bad").into_test_result(), Err("\"bad\"".into()));
    }
}
