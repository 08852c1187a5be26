//! The `tinyo` command, run as a subprocess.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;

const TINYO: &str = env!("CARGO_BIN_EXE_tinyo");

fn run(cmd: &mut Command) -> (Option<i32>, String) {
    let out = cmd.output().unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn doctor_says_isolation_works_here() {
    let (code, text) = run(Command::new(TINYO).arg("doctor"));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("probe:                      ok: a full container"), "{text}");
    assert!(text.ends_with("isolation works here.\n"), "{text}");
}

#[test]
fn doctor_explains_what_blocks_isolation() {
    let (code, text) = run(Command::new("unshare").args([
        "--user",
        "--map-root-user",
        "sh",
        "-c",
        "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" doctor",
        TINYO,
    ]));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("user.max_user_namespaces:   0"), "{text}");
    assert!(text.contains("probe:                      FAILED: "), "{text}");
    assert!(text.contains("isolation is unavailable here: user namespaces are disabled by the sysctl user.max_user_namespaces"), "{text}");
}

#[test]
fn help_and_unknown_commands() {
    let (code, text) = run(Command::new(TINYO).arg("help"));
    assert_eq!(code, Some(0));
    assert!(text.contains("tinyo doctor"), "{text}");
    let (code, text) = run(Command::new(TINYO).arg("frobnicate"));
    assert_eq!(code, Some(2));
    assert!(text.starts_with("error: unknown command `frobnicate`"), "{text}");
}
