//! Where isolation cannot run, the run says exactly why and how to fix it, once; and a
//! skipped test is reported ignored, never passed. Each blocker is reproduced here without
//! touching the host: a seccomp filter in a process of the test's own, a user namespace of
//! the test's own with `user.max_user_namespaces = 0`, a mount namespace of the test's own
//! with a masked `/proc` path.

use std::process::{Command, Output};

use tinyo_tests::output_text;

const FIXTURE: &str = env!("CARGO_BIN_EXE_tinyo-fixture");
const SECCOMP_JAIL: &str = env!("CARGO_BIN_EXE_tinyo-seccomp-jail");
const USERNS_JAIL: &str = env!("CARGO_BIN_EXE_tinyo-userns-jail");

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Two tests fail, each with the diagnosis; the diagnosis is printed once for the run.
fn assert_diagnosed(out: &Output, cause: &str, fix: &str) {
    let t = output_text(out);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(t.contains("0 passed; 2 failed"), "{t}");
    assert_eq!(
        t.lines()
            .filter(|l| l.starts_with("tinyo: isolation is unavailable here:"))
            .count(),
        1,
        "printed once: {t}"
    );
    assert!(
        t.contains(&format!("isolation is unavailable here: {cause}")),
        "{t}"
    );
    assert!(t.contains(fix), "{t}");
    assert!(!t.contains("panicked at"), "{t}");
}

#[test]
fn a_seccomp_filter_denying_namespaces() {
    let out = Command::new(SECCOMP_JAIL)
        .args([FIXTURE, "hangs_"])
        .output()
        .unwrap();
    assert_diagnosed(
        &out,
        "a seccomp filter refuses to create namespaces",
        "--security-opt seccomp=unconfined",
    );
}

#[test]
fn a_seccomp_filter_denying_only_clone3_falls_back_to_clone() {
    let out = Command::new(SECCOMP_JAIL)
        .args(["--clone3-only", FIXTURE, "--exact", "passes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
}

#[test]
fn user_namespaces_limited_to_zero() {
    let out = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" hangs_",
            FIXTURE,
        ])
        .output()
        .unwrap();
    assert_diagnosed(
        &out,
        "user namespaces are disabled by the sysctl user.max_user_namespaces",
        "sysctl -w user.max_user_namespaces=",
    );
}

#[test]
fn an_ordinary_user_without_user_namespaces() {
    if !is_root() {
        eprintln!("skipped: making a user namespace with many ids mapped needs root; the suite is not running as root");
        return;
    }
    let out = Command::new(USERNS_JAIL)
        .args(["65534", FIXTURE, "hangs_"])
        .output()
        .unwrap();
    assert_diagnosed(
        &out,
        "user namespaces are disabled by the sysctl user.max_user_namespaces",
        "sysctl -w user.max_user_namespaces=",
    );
}

#[test]
fn a_masked_proc_path() {
    if !is_root() {
        eprintln!("skipped: masking /proc in a mount namespace of our own needs root; the suite is not running as root");
        return;
    }
    let masked = |cmd: &str| {
        Command::new("unshare")
            .args([
                "--mount",
                "sh",
                "-c",
                &format!("mount -t tmpfs tmpfs /proc/sys/fs && exec {cmd} \"$0\" hangs_"),
                FIXTURE,
            ])
            .output()
            .unwrap()
    };
    // Unprivileged, the containers need a fully visible /proc: refused, and said why.
    let out = masked("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all");
    assert_diagnosed(
        &out,
        "parts of /proc or /sys are masked (/proc/sys/fs)",
        "systempaths=unconfined",
    );
    // As root, the zygote's staged root binds /proc whole, so the mask does not get in the way.
    let out = masked("");
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
}

#[test]
fn skipped_tests_are_ignored_never_passed() {
    for how in [vec!["--unavailable", "skip"], vec![]] {
        let mut cmd = Command::new(SECCOMP_JAIL);
        cmd.args([FIXTURE, "hangs_"]).args(&how);
        if how.is_empty() {
            cmd.env("TINYO_UNAVAILABLE", "skip");
        }
        let out = cmd.output().unwrap();
        let t = output_text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        assert!(
            t.contains("test result: ok. 0 passed; 0 failed; 2 ignored"),
            "{t}"
        );
        assert!(
            t.contains("test hangs_a ... ignored (tinyo: isolation unavailable: a seccomp filter"),
            "{t}"
        );
        assert!(t.contains("tinyo: 2 isolated test(s) skipped, not run (TINYO_UNAVAILABLE=skip): a seccomp filter"), "{t}");
    }
    let out = Command::new(FIXTURE)
        .args(["--exact", "passes"])
        .env("TINYO_UNAVAILABLE", "maybe")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("TINYO_UNAVAILABLE: `maybe` is not a policy"),
        "{}",
        output_text(&out)
    );
}
