//! tinyo in the ecosystem: `cargo test` with every libtest flag, and `cargo nextest run`
//! with ignored tests, partitions, its timeout and its leak detection, driven against the
//! fixture crate `tests/fixtures/demo` (tinyo's harness and the stock harness side by side).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn demo_manifest() -> PathBuf {
    workspace().join("tests/fixtures/demo/Cargo.toml")
}

/// A cargo command on the demo crate, with its own target directory. `args` starts with
/// the subcommand (`test`, or `nextest run`); the manifest path goes right after it.
fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    let sub = if args.first() == Some(&"nextest") {
        2
    } else {
        1
    };
    cmd.args(&args[..sub])
        .arg("--manifest-path")
        .arg(demo_manifest())
        .args(&args[sub..])
        .env("CARGO_TARGET_DIR", workspace().join("target/fixtures"))
        .env_remove("RUST_BACKTRACE")
        .env("NEXTEST_HIDE_PROGRESS_BAR", "1");
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `cargo test --test tinyo_suite -- <args>`.
fn libtest(args: &[&str]) -> (Output, String) {
    let out = cargo(&["test", "-q", "--test", "tinyo_suite", "--"])
        .args(args)
        .output()
        .unwrap();
    let t = text(&out);
    (out, t)
}

fn summary_of(text: &str) -> &str {
    text.lines()
        .find(|l| l.starts_with("test result:"))
        .unwrap_or_else(|| panic!("no summary in:\n{text}"))
}

const ALL: [&str; 9] = [
    "async_body_runs",
    "env_is_set",
    "fails",
    "ignored_panics",
    "ignored_passes",
    "outer::inner::nested_name",
    "passes",
    "should_panic_passes",
    "sleeps_when_asked",
];

#[test]
fn plain_run_counts_and_exit_code() {
    let (out, t) = libtest(&[]);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(
        summary_of(&t).starts_with(
            "test result: FAILED. 6 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out"
        ),
        "{t}"
    );
    assert!(t.contains("fails on purpose"), "{t}");
}

#[test]
fn filter_exact_and_skip() {
    let (out, t) = libtest(&["passes"]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        summary_of(&t).contains("2 passed; 0 failed; 1 ignored; 0 measured; 6 filtered out"),
        "{t}"
    );

    let (out, t) = libtest(&["--exact", "passes"]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        summary_of(&t).contains("1 passed; 0 failed; 0 ignored; 0 measured; 8 filtered out"),
        "{t}"
    );

    let (out, t) = libtest(&["--exact", "outer::inner::nested_name"]);
    assert!(
        summary_of(&t).contains("1 passed;"),
        "module paths are part of the name: {t}"
    );
    assert_eq!(out.status.code(), Some(0));

    let (out, t) = libtest(&["--skip", "fails", "--skip", "ignored"]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        summary_of(&t).contains("6 passed; 0 failed; 0 ignored; 0 measured; 3 filtered out"),
        "{t}"
    );
}

#[test]
fn exact_name_matching_nothing_runs_nothing_and_says_so() {
    let (out, t) = libtest(&["--exact", "no_such_test"]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("running 0 tests"), "{t}");
    assert!(
        summary_of(&t).contains("0 passed; 0 failed; 0 ignored; 0 measured; 9 filtered out"),
        "{t}"
    );
}

#[test]
fn ignored_tests_run_for_real_when_asked() {
    let (out, t) = libtest(&["--ignored"]);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(
        summary_of(&t).contains("1 passed; 1 failed; 0 ignored"),
        "{t}"
    );
    assert!(t.contains("ignored_panics ran and panicked"), "{t}");

    let (out, t) = libtest(&["--include-ignored"]);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(
        summary_of(&t).contains("7 passed; 2 failed; 0 ignored"),
        "{t}"
    );
}

#[test]
fn list_terse_is_exactly_name_colon_test() {
    let (out, t) = libtest(&["--list", "--format", "terse"]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = stdout
        .lines()
        .map(|l| {
            l.strip_suffix(": test")
                .unwrap_or_else(|| panic!("not `name: test`: {l:?}"))
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ALL);

    let (_, t) = libtest(&["--list", "--format", "terse", "--ignored"]);
    let ignored: Vec<&str> = t.lines().filter_map(|l| l.strip_suffix(": test")).collect();
    assert_eq!(ignored.len(), 2, "{t}");
}

#[test]
fn output_flags() {
    let (_, t) = libtest(&["--exact", "passes"]);
    assert!(
        !t.contains("stdout of passes"),
        "captured output of a passing test is hidden: {t}"
    );
    let (_, t) = libtest(&["--exact", "passes", "--nocapture"]);
    assert!(t.contains("stdout of passes"), "{t}");
    let (_, t) = libtest(&["--exact", "passes", "--show-output"]);
    assert!(
        t.contains("---- passes stdout ----\nstdout of passes"),
        "{t}"
    );
    let (_, t) = libtest(&["--exact", "fails"]);
    assert!(
        t.contains("stdout of fails"),
        "the output of a failing test is shown: {t}"
    );
}

#[test]
fn format_quiet_color_threads_and_logfile() {
    let (out, t) = libtest(&["-q", "--skip", "fails"]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("running 8 tests\n") && !t.contains("test passes ..."),
        "terse output: {t}"
    );

    let (_, t) = libtest(&["--format", "json", "--exact", "passes"]);
    assert!(
        t.lines()
            .any(|l| l.contains("\"event\": \"ok\"") && l.contains("\"name\": \"passes\"")),
        "{t}"
    );

    let (out, t) = libtest(&["--color", "never", "--test-threads", "1", "--skip", "fails"]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(!t.contains('\u{1b}'), "no colour codes: {t}");

    let log = workspace().join("target/fixtures/tinyo-logfile.txt");
    let _ = std::fs::remove_file(&log);
    let (out, t) = libtest(&["--exact", "passes", "--logfile", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        std::fs::read_to_string(&log).unwrap().contains("1 passed"),
        "the log file has the results"
    );
}

#[test]
fn unknown_flags_are_rejected_not_dropped() {
    let (out, t) = libtest(&["--bogus-flag"]);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("--bogus-flag"), "{t}");
}

#[test]
fn stock_harness_isolates_and_reports() {
    let out = cargo(&["test", "-q", "--test", "stock_suite"])
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(
        summary_of(&t).contains("1 passed; 1 failed; 1 ignored"),
        "{t}"
    );
    assert!(t.contains("stock fails on purpose"), "{t}");
    let out = cargo(&["test", "-q", "--test", "stock_suite", "--", "--ignored"])
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(t.contains("stock_ignored_panics ran and panicked"), "{t}");
}

// ---- cargo nextest -------------------------------------------------------------------

fn nextest_available() -> bool {
    Command::new("cargo-nextest")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `cargo nextest run` with `args`; returns the output and the set of tests that ran, by
/// `binary name`, with their status word (PASS, FAIL, TIMEOUT…).
fn nextest(args: &[&str]) -> (Output, String, BTreeSet<(String, String)>) {
    nextest_env(args, &[])
}

fn nextest_env(
    args: &[&str],
    env: &[(&str, &str)],
) -> (Output, String, BTreeSet<(String, String)>) {
    assert!(
        nextest_available(),
        "cargo-nextest is not installed (.ci/run installs it)"
    );
    let out = cargo(&["nextest", "run", "--no-fail-fast", "--color", "never"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let t = text(&out);
    let mut ran = BTreeSet::new();
    for line in t.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(status) = words.first() else {
            continue;
        };
        if !matches!(
            *status,
            "PASS" | "FAIL" | "TIMEOUT" | "SIGSEGV" | "SIGABRT" | "LEAK" | "LEAK-FAIL" | "ABORT"
        ) {
            continue;
        }
        // "PASS [   0.010s] (1/8) demo::tinyo_suite passes"
        if let [.., binary, name] = words.as_slice() {
            if binary.starts_with("demo::") {
                ran.insert((format!("{binary} {name}"), (*status).to_owned()));
            }
        }
    }
    (out, t, ran)
}

fn summary_line(t: &str) -> &str {
    t.lines()
        .find(|l| l.trim_start().starts_with("Summary"))
        .unwrap_or_else(|| panic!("no summary:\n{t}"))
}

#[test]
fn nextest_runs_every_test_once_with_the_right_counts() {
    let (out, t, ran) = nextest(&[]);
    assert_eq!(out.status.code(), Some(100), "{t}");
    assert!(
        summary_line(&t).contains("9 tests run: 7 passed, 2 failed, 3 skipped"),
        "{t}"
    );
    assert_eq!(ran.len(), 9, "{ran:?}");
    assert!(
        ran.contains(&(
            "demo::tinyo_suite outer::inner::nested_name".into(),
            "PASS".into()
        )),
        "{ran:?}"
    );
    assert!(
        ran.contains(&("demo::tinyo_suite fails".into(), "FAIL".into())),
        "{ran:?}"
    );
    assert!(
        ran.contains(&("demo::stock_suite stock_passes".into(), "PASS".into())),
        "{ran:?}"
    );
    assert!(!t.contains("LEAK"), "nextest saw leaked handles: {t}");
}

#[test]
fn nextest_runs_ignored_tests_for_real() {
    let (_, t, ran) = nextest(&["--run-ignored", "only"]);
    assert!(
        summary_line(&t).contains("3 tests run: 1 passed, 2 failed"),
        "{t}"
    );
    assert!(
        ran.contains(&("demo::tinyo_suite ignored_panics".into(), "FAIL".into())),
        "{ran:?}"
    );
    assert!(
        ran.contains(&(
            "demo::stock_suite stock_ignored_panics".into(),
            "FAIL".into()
        )),
        "{ran:?}"
    );
    let (_, t, ran) = nextest(&["--run-ignored", "all"]);
    assert!(
        summary_line(&t).contains("12 tests run: 8 passed, 4 failed"),
        "{t}"
    );
    assert_eq!(ran.len(), 12);
}

#[test]
fn nextest_partitions_split_the_suite_with_none_lost_or_doubled() {
    let (_, _, all) = nextest(&["--run-ignored", "all"]);
    let names = |set: &BTreeSet<(String, String)>| {
        set.iter().map(|(n, _)| n.clone()).collect::<BTreeSet<_>>()
    };
    let all = names(&all);
    for scheme in ["count", "hash"] {
        let (_, t1, a) = nextest(&[
            "--run-ignored",
            "all",
            "--partition",
            &format!("{scheme}:1/2"),
        ]);
        let (_, t2, b) = nextest(&[
            "--run-ignored",
            "all",
            "--partition",
            &format!("{scheme}:2/2"),
        ]);
        let (a, b) = (names(&a), names(&b));
        assert!(
            a.is_disjoint(&b),
            "{scheme}: a test ran in both shards: {a:?} {b:?}"
        );
        assert_eq!(
            a.union(&b).cloned().collect::<BTreeSet<_>>(),
            all,
            "{scheme}: shards lost tests\n{t1}\n{t2}"
        );
    }
}

fn demo_processes() -> Vec<String> {
    let fixtures = workspace().join("target/fixtures");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .ok()
                .map(|exe| (pid, exe))
        })
        .filter(|(_, exe)| exe.starts_with(&fixtures))
        .map(|(pid, exe)| format!("{pid} {}", exe.display()))
        .collect()
}

#[test]
fn nextest_timeout_tears_the_container_down() {
    let start = Instant::now();
    // The one test sleeps forever; the profile's timeout is 1s.
    let (_, t, ran) = nextest_env(
        &[
            "--profile",
            "timeout",
            "-E",
            "test(sleeps_when_asked)",
            "--no-tests=fail",
        ],
        &[("DEMO_SLEEP", "1")],
    );
    assert!(
        ran.contains(&(
            "demo::tinyo_suite sleeps_when_asked".into(),
            "TIMEOUT".into()
        )),
        "{t}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    // Nothing of the container is left: its PID 1 died with the harness.
    let deadline = Instant::now() + Duration::from_secs(1);
    while !demo_processes().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(demo_processes(), Vec::<String>::new(), "{t}");
    assert!(!t.contains("LEAK"), "{t}");
}
