//! The `tinyo` command, run as a subprocess.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;

const TINYO: &str = env!("CARGO_BIN_EXE_tinyo");

fn run(cmd: &mut Command) -> (Option<i32>, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn doctor_says_isolation_works_here() {
    let (code, text) = run(Command::new(TINYO).arg("doctor"));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("probe:                      ok: a full container"),
        "{text}"
    );
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
    assert!(
        text.contains("probe:                      FAILED: "),
        "{text}"
    );
    assert!(text.contains("isolation is unavailable here: user namespaces are disabled by the sysctl user.max_user_namespaces"), "{text}");
}

#[test]
fn help_and_unknown_commands() {
    let (code, text) = run(Command::new(TINYO).arg("help"));
    assert_eq!(code, Some(0));
    assert!(text.contains("tinyo doctor"), "{text}");
    let (code, text) = run(Command::new(TINYO).arg("frobnicate"));
    assert_eq!(code, Some(2));
    assert!(
        text.starts_with("error: unknown command `frobnicate`"),
        "{text}"
    );
}

#[test]
fn run_passes_options_output_and_exit_codes_through() {
    let (code, text) = run(Command::new(TINYO).args([
        "run",
        "--hostname",
        "box",
        "--env",
        "G=hi",
        "--tmpfs",
        "/var/cache",
        "--net",
        "none",
        "--",
        "/bin/sh",
        "-c",
        "hostname; echo $G; ls /var/cache | wc -l; tail -1 /etc/hosts; exit 3",
    ]));
    assert_eq!(code, Some(3), "{text}");
    assert_eq!(text, "box\nhi\n0\n127.0.1.1\tbox\n");
    let (code, _) = run(Command::new(TINYO).args(["run", "--", "/bin/sh", "-c", "kill -9 $$"]));
    assert_eq!(code, Some(137), "128 + SIGKILL");
    let (code, _) =
        run(Command::new(TINYO).args(["run", "--timeout", "300ms", "--", "sleep", "5"]));
    assert_eq!(code, Some(124));
    let (code, text) = run(Command::new(TINYO).args(["run", "--", "no-such-program"]));
    assert_eq!(code, Some(125), "{text}");
    assert!(
        text.contains("run `no-such-program` in the container: execvp: ENOENT"),
        "{text}"
    );
}

#[test]
fn run_as_another_user() {
    let (code, text) = run(Command::new(TINYO).args([
        "run",
        "--user",
        "1000:100",
        "--",
        "/bin/sh",
        "-c",
        "id -u; id -g",
    ]));
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text, "1000\n100\n");
}

#[test]
fn run_shows_the_container_not_the_host() {
    let (code, text) = run(Command::new(TINYO).args([
        "run",
        "--",
        "/bin/sh",
        "-c",
        "ls /; cat /proc/1/comm; id -u",
    ]));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        !text.contains("home\n") && !text.contains("root\n"),
        "{text}"
    );
    assert!(
        text.ends_with("tinyo\n0\n") || text.contains("\n0\n"),
        "{text}"
    );
}

#[test]
fn run_rejects_bad_input_naming_it() {
    for (args, says) in [
        (
            vec!["run", "--rootfs", "/no/such/dir", "--", "true"],
            "--rootfs `/no/such/dir` is not a directory",
        ),
        (
            vec!["run", "--bind", "/no/such/src:/x", "--", "true"],
            "--bind `/no/such/src:/x`: the source `/no/such/src`",
        ),
        (
            vec!["run", "--bind", "/tmp:relative", "--", "true"],
            "DST must be an absolute path",
        ),
        (
            vec!["run", "--net", "wifi", "--", "true"],
            "--net `wifi`: use loopback, none or host",
        ),
        (vec!["run", "--hostname"], "--hostname needs a value"),
        (vec!["run", "--"], "no program given"),
    ] {
        let (code, text) = run(Command::new(TINYO).args(&args));
        assert_eq!(code, Some(2), "{args:?}: {text}");
        assert!(text.contains(says), "{args:?}: {text}");
    }
}

/// `tinyo run -- /bin/sh` gets this terminal: through a pty, the program sees a tty.
#[test]
fn run_passes_a_terminal_through() {
    let cmd = format!("{TINYO} run --hostname pty -- /bin/sh -c 'test -t 0 && test -t 1 && echo interactive on $(hostname)'");
    let (code, text) = run(Command::new("script").args(["-qec", &cmd, "/dev/null"]));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("interactive on pty"), "{text}");
}
