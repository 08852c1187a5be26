//! The stock libtest harness (no `harness = false`).
//!
//! libtest's `main` is not ours and starts a thread per test, so a container cannot be made
//! from the test itself. Instead the generated `#[test]` re-runs the test binary with
//! [`MARKER`] naming the test; in that process an `.init_array` hook ([`stock_init`]) runs
//! before `main`, while the process has one thread, sets up the container, runs the test
//! there and exits with its result: libtest's `main` never runs in it.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use tinyo_core::sys::real::{self, SingleThreaded};
use tinyo_core::{Outcome, Termination};

use crate::run::{execute, Launcher};
use crate::{default_timeout, Context, TestRecord, CONTEXT, TESTS};

/// Environment variable naming the test a re-run process must run (`<parent pid>:<name>`).
pub const MARKER: &str = "TINYO_STOCK_RUN";

/// Separates the test's own stderr from the outcome the re-run process reports.
const SENTINEL: &str = "\n\u{1}tinyo-outcome\u{1}\n";

/// Exit code of a re-run whose test failed.
const FAILED: i32 = 101;

/// The `.init_array` hook: in a re-run process, run the named test isolated and exit;
/// anywhere else, return at once.
pub fn stock_init() {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if DONE.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let Some(marker) = std::env::var_os(MARKER) else {
        return;
    };
    // The test's body must not see the marker (it could re-run itself).
    std::env::remove_var(MARKER);
    let code = match rerun(&marker.to_string_lossy()) {
        Ok(Outcome::Passed) => 0,
        Ok(other) => report(&other.to_string()),
        Err(e) => report(&e),
    };
    real::exit_now(code)
}

fn report(message: &str) -> i32 {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{SENTINEL}{message}");
    FAILED
}

fn rerun(marker: &str) -> Result<Outcome, String> {
    let (parent, name) = marker
        .split_once(':')
        .ok_or_else(|| format!("tinyo: malformed {MARKER}=`{marker}`"))?;
    // Die with the libtest thread that started us.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if nix::unistd::getppid().as_raw().to_string() != parent {
        return Err("tinyo: the test process that started this re-run is gone".into());
    }
    let (id, record) = TESTS
        .iter()
        .enumerate()
        .find(|(_, r)| r.test_name() == name)
        .ok_or_else(|| format!("tinyo: this binary has no isolated test named `{name}`"))?;
    let proof = SingleThreaded::check()
        .ok_or("tinyo: the re-run process has several threads before main; something in the binary spawns threads from a constructor")?;
    CONTEXT
        .get_or_init(|| Context::probe(record.manifest_dir))
        .check_binds(record)?;
    crate::stage_shared_root(&proof);
    let timeout = record
        .timeout_ms
        .map_or(default_timeout()?, Duration::from_millis);
    let result = execute(&Launcher::Direct(&proof), id, record, timeout, true);
    if let Some(failed_at) = crate::run::environment_failure(&result) {
        let diagnosis =
            tinyo_core::diagnose::diagnose(failed_at, &tinyo_core::diagnose::EnvFacts::gather());
        return Err(format!(
            "{}\n{diagnosis}{}",
            result.err().map_or_else(String::new, |e| e.to_string()),
            if crate::skip_unavailable() {
                "\n(TINYO_UNAVAILABLE=skip has no effect under the stock harness: libtest cannot mark a test ignored while it runs, and a skipped test must never pass; use harness = false)"
            } else {
                ""
            }
        ));
    }
    let (outcome, _) = result.map_err(|e| e.to_string())?;
    Ok(outcome)
}

/// The body of the generated `#[test]` under the stock harness: re-run this binary for
/// this one test and pass its output and result on to libtest.
#[allow(clippy::print_stdout)]
pub fn run_stock(record: &'static TestRecord) {
    if std::env::var_os(MARKER).is_some() {
        panic!("tinyo: the pre-main hook did not run in this re-run of the test binary; `{}` cannot be isolated on this platform", record.test_name());
    }
    let name = record.test_name();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => panic!("tinyo: find the test binary to re-run: {e}"),
    };
    let output = Command::new(&exe)
        .args(["--exact", &name, "--nocapture", "--test-threads=1"])
        .env(MARKER, format!("{}:{name}", std::process::id()))
        .stdin(Stdio::null())
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) => panic!("tinyo: re-run `{}` for `{name}`: {e}", exe.display()),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let (stderr, outcome) = match stderr.split_once(SENTINEL) {
        Some((before, outcome)) => (before.to_owned(), Some(outcome.to_owned())),
        None => (stderr.into_owned(), None),
    };
    // libtest captures these per test and shows them when it fails (or with --nocapture):
    // print! is the one channel into its capture.
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{stderr}");
    match (output.status.code(), outcome) {
        (Some(0), None) => {}
        (_, Some(outcome)) => panic!("{outcome}"),
        (code, None) => {
            let how = match code {
                Some(c) => Termination::Exited(c),
                None => Termination::Signaled {
                    signal: std::os::unix::process::ExitStatusExt::signal(&output.status)
                        .unwrap_or(0),
                    core_dumped: false,
                },
            };
            panic!("tinyo: the re-run of the test binary for `{name}` {how} without reporting a result")
        }
    }
}
