//! `tinyo_core::container::Container`, used from the body of an isolated test (which is
//! single-threaded): a container in a container. Run by tinyo.

use tinyo::isolated;
use tinyo_core::container::{Container, RunError};
use tinyo_core::Termination;
use tinyo_tests::guard;

#[isolated]
fn runs_a_shell_and_captures_its_output() {
    guard();
    let out = Container::new()
        .hostname("inner")
        .env("GREETING", "hi")
        .tmpfs("/var/cache")
        .file("/srv/motd", "welcome\n", 0o644)
        .command(
            "/bin/sh",
            [
                "-c",
                "hostname; echo $GREETING; cat /srv/motd; ls /var/cache | wc -l; echo err >&2",
            ],
        )
        .output()
        .unwrap();
    assert_eq!(out.status, Some(Termination::Exited(0)));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "inner\nhi\nwelcome\n0\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
}

#[isolated]
fn exit_codes_signals_and_timeouts() {
    guard();
    let run = |script: &str| {
        Container::new()
            .timeout(std::time::Duration::from_millis(500))
            .command("/bin/sh", ["-c", script])
            .output()
            .unwrap()
    };
    assert_eq!(run("exit 7").status, Some(Termination::Exited(7)));
    let killed = run("kill -9 $$");
    assert_eq!(
        killed.status,
        Some(Termination::Signaled {
            signal: 9,
            core_dumped: false
        })
    );
    assert_eq!(killed.code(), 137);
    let slow = run("sleep 10");
    assert_eq!((slow.status, slow.code()), (None, 124));
}

#[isolated]
fn a_missing_program_is_an_error_naming_it() {
    guard();
    let err = Container::new()
        .command("no-such-program", Vec::<String>::new())
        .output()
        .unwrap_err();
    assert!(matches!(err, RunError::Exec { .. }), "{err}");
    assert!(
        err.to_string().contains("`no-such-program`")
            && err
                .to_string()
                .contains("not found in the container's PATH"),
        "{err}"
    );
}

/// Nested in a test's container only its root is mapped, so another user is refused, and
/// said (`cli-tests/cli.rs` runs `tinyo run --user` from the host, where it works).
#[isolated]
fn another_user_in_a_nested_container_is_refused_and_said() {
    guard();
    let err = Container::new()
        .user(1000, 1000)
        .command("/usr/bin/id", ["-u"])
        .output()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("become uid 1000, gid 1000: setresgid: EINVAL"),
        "{err}"
    );
    let out = Container::new()
        .user(0, 0)
        .command("/usr/bin/id", ["-u"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"0\n");
}

#[isolated]
fn spawn_then_kill_or_wait() {
    guard();
    let child = Container::new()
        .command("/bin/sh", ["-c", "echo started; sleep 30"])
        .spawn()
        .unwrap();
    assert!(child.id() > 0);
    std::thread::sleep(std::time::Duration::from_millis(100));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status,
        Some(Termination::Signaled {
            signal: 9,
            core_dumped: false
        })
    );
    assert_eq!(out.stdout, b"started\n");
    let child = Container::new()
        .command("/bin/echo", ["done"])
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        (out.status, out.stdout),
        (Some(Termination::Exited(0)), b"done\n".to_vec())
    );
}

tinyo::main!();
