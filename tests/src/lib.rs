//! Helpers for tinyo's own end-to-end tests.
//!
//! Every isolated test here starts with [`guard`], which refuses to go on unless the test
//! really is inside a fresh container: a test that mounts, renames the host or binds ports
//! must never do it to the machine running the suite, even if tinyo is broken.

use std::collections::BTreeSet;
use std::path::Path;

/// Panic unless this process is PID 2 of its own PID namespace and its root is a tmpfs
/// (tinyo's new root) or an overlay (an image root), i.e. unless it runs inside a tinyo
/// container.
pub fn guard() {
    assert_eq!(
        std::process::id(),
        2,
        "refusing to run: not PID 2 of a fresh PID namespace (tinyo did not isolate this test)"
    );
    let root_fs = root_fstype().unwrap_or_default();
    assert!(
        matches!(root_fs.as_str(), "tmpfs" | "overlay"),
        "refusing to run: `/` is {root_fs:?}, not tinyo's tmpfs or image root"
    );
}

/// The filesystem type of the mount at `/`, from `/proc/self/mountinfo`.
pub fn root_fstype() -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        (fields.get(4) == Some(&"/"))
            .then(|| fields.get(sep + 1).map(|s| (*s).to_owned()))
            .flatten()
    })
}

/// The numeric entries of `/proc`: the processes this process can see.
pub fn visible_pids() -> BTreeSet<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The fds open in this process, as seen in `/proc/self/fd`, without the one used to list it.
pub fn open_fds() -> BTreeSet<i32> {
    let mut fds = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for entry in dir.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            // The directory stream itself shows up as an fd pointing at /proc/<pid>/fd.
            let target = std::fs::read_link(entry.path()).unwrap_or_default();
            if target.starts_with("/proc") && target.ends_with("fd") {
                continue;
            }
            fds.insert(fd);
        }
    }
    fds
}

/// Whether a path exists (without following a final symlink).
pub fn exists(path: impl AsRef<Path>) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The pids of the processes whose executable is `exe` (a container's processes run the
/// test binary they were forked from).
pub fn processes_running(exe: &Path) -> Vec<u32> {
    let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Of those, the ones inside a container (their `NSpid` has more than one level).
pub fn container_processes(exe: &Path) -> Vec<u32> {
    processes_running(exe)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                s.lines()
                    .any(|l| l.starts_with("NSpid:") && l.split_whitespace().count() > 2)
            })
        })
        .collect()
}

/// Wait up to `limit` for `cond`; whether it became true.
pub fn wait_for(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The newest test binary `<name>-<hash>` next to the running one (cargo builds every test
/// target before it runs any).
pub fn sibling_test_binary(name: &str) -> std::path::PathBuf {
    let me = std::env::current_exe().unwrap_or_default();
    let dir = me.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix(&format!("{name}-"))
                .is_some_and(|hash| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .unwrap_or_else(|| dir.join(format!("{name}-not-built")))
}

/// What a finished process printed: its stdout, then its stderr.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A command running `program` as nobody, with no capabilities (`setpriv`, util-linux).
pub fn as_nobody(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ])
    .arg(program);
    cmd
}

/// Run `program` with `args` and `env` (and no `RUST_BACKTRACE`, so that panic messages
/// read the same everywhere); its exit and what it printed ([`output_text`]).
pub fn run_with(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Output, String) {
    let out = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let text = output_text(&out);
    (out, text)
}
