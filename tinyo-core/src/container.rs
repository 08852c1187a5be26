//! A container as a library: run a program in the same kind of container a test gets.
//!
//! ```no_run
//! use tinyo_core::container::Container;
//!
//! let out = Container::new()
//!     .hostname("box")
//!     .tmpfs("/var/cache")
//!     .env("GREETING", "hi")
//!     .command("/bin/sh", ["-c", "hostname; echo $GREETING"])
//!     .output()
//!     .expect("run the container");
//! assert_eq!(out.stdout, b"box\nhi\n");
//! ```
//!
//! The calling process must be single-threaded (a fresh `main`, a `tinyo run`, or the body
//! of an isolated test, which is one): containers are forked from it.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use nix::errno::Errno;
use tinyo_rootfs::{BindSpec, DeviceMode, FileSpec, RootfsConfig, SysfsMode};

use crate::init::ChildIo;
use crate::outcome::{Outcome, Termination};
use crate::report::{BodyReport, Report};
use crate::setup::{Limits, NetMode, Spec};
use crate::sys::real::{self, SingleThreaded};
use crate::zygote::{spawn_direct, SpawnError};
use crate::Namespaces;

/// Why a program could not be run in a container.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The calling process has several threads.
    #[error("tinyo: a container is forked from the calling process, which must be single-threaded (call it before starting threads, or from an isolated test)")]
    Threaded,
    /// An argument holds a NUL byte.
    #[error("tinyo: `{0}` holds a NUL byte")]
    Nul(String),
    /// The container could not be created.
    #[error("{0}")]
    Spawn(SpawnError),
    /// Its setup failed.
    #[error("{0}")]
    Setup(Outcome),
    /// The program could not be executed inside.
    #[error("tinyo: run `{program}` in the container: {why}")]
    Exec {
        /// The program.
        program: String,
        /// The error (from `execvp`).
        why: String,
    },
    /// A pipe, poll or wait failed.
    #[error("tinyo: {what}: {errno:?} ({})", .errno.desc())]
    Io {
        /// The operation.
        what: &'static str,
        /// The error.
        errno: Errno,
    },
}

/// How a container run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Output {
    /// How the program ended; `None` when the timeout killed it.
    pub status: Option<Termination>,
    /// Its standard output (empty with [`Command::status`]).
    pub stdout: Vec<u8>,
    /// Its standard error (empty with [`Command::status`]).
    pub stderr: Vec<u8>,
}

impl Output {
    /// The exit code as a shell reports it: the code, or 128 + the signal; 124 for a timeout.
    pub fn code(&self) -> i32 {
        match self.status {
            Some(Termination::Exited(c)) => c,
            Some(Termination::Signaled { signal, .. }) => 128 + signal,
            None => 124,
        }
    }
}

/// The container's configuration: a builder with the options of `#[isolated]`.
#[derive(Debug, Clone)]
#[must_use]
pub struct Container {
    hostname: String,
    net: NetMode,
    image: Option<PathBuf>,
    binds: Vec<BindSpec>,
    tmpfs: Vec<PathBuf>,
    files: Vec<FileSpec>,
    env: Vec<(String, String)>,
    workdir: Option<PathBuf>,
    readonly_root: bool,
    timeout: Duration,
    limits: Limits,
    user: Option<(u32, u32)>,
    extra_hosts: Vec<(String, String)>,
    attach: Option<String>,
}

impl Default for Container {
    fn default() -> Self {
        Self::new()
    }
}

impl Container {
    /// The default container: the host's system directories read-only, a private `/tmp`,
    /// `/dev`, `/proc`, `/sys`, its own network with `lo` up, hostname `tinyo`, 300 s.
    pub fn new() -> Self {
        Self {
            hostname: "tinyo".into(),
            net: NetMode::Loopback,
            image: None,
            binds: Vec::new(),
            tmpfs: Vec::new(),
            files: Vec::new(),
            env: Vec::new(),
            workdir: None,
            readonly_root: false,
            timeout: Duration::from_secs(300),
            limits: Limits::default(),
            user: None,
            extra_hosts: Vec::new(),
            attach: None,
        }
    }
    /// One more `/etc/hosts` line: `name` at `addr`.
    pub fn host_entry(mut self, name: impl Into<String>, addr: impl Into<String>) -> Self {
        self.extra_hosts.push((name.into(), addr.into()));
        self
    }
    /// Wait (up to 5 s) for an interface `eth0` to be moved into the container's network
    /// namespace from outside, give it `addr` (CIDR, e.g. `10.201.0.1/24`) and bring it up,
    /// before the program starts. How [`crate::network::Network`] plugs hosts in.
    pub fn attach(mut self, addr: impl Into<String>) -> Self {
        self.attach = Some(addr.into());
        self
    }
    /// A function of this binary to run in it (instead of a program): the process is forked,
    /// not executed, so `f` runs with everything the caller had in memory.
    pub fn function(self, name: &str, f: fn()) -> Command {
        Command {
            container: self,
            program: name.to_owned(),
            args: Vec::new(),
            function: Some(f),
        }
    }
    /// Run the program as this uid and gid of the container (root by default; ids other than
    /// 0 need the caller to be root, whose containers map 65536 ids).
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.user = Some((uid, gid));
        self
    }
    /// Its hostname.
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.hostname = name.into();
        self
    }
    /// Its network.
    pub fn net(mut self, net: NetMode) -> Self {
        self.net = net;
        self
    }
    /// A directory image as the root, copy-on-write.
    pub fn rootfs(mut self, dir: impl Into<PathBuf>) -> Self {
        self.image = Some(dir.into());
        self
    }
    /// Bind host `src` at `dst`, read-only unless `writable`.
    pub fn bind(
        mut self,
        src: impl Into<PathBuf>,
        dst: impl Into<PathBuf>,
        writable: bool,
    ) -> Self {
        let src = src.into();
        let is_dir = std::fs::metadata(&src).map_or(true, |m| m.is_dir());
        self.binds.push(BindSpec {
            src,
            dst: dst.into(),
            writable,
            is_dir,
        });
        self
    }
    /// An empty writable tmpfs at `path`.
    pub fn tmpfs(mut self, path: impl Into<PathBuf>) -> Self {
        self.tmpfs.push(path.into());
        self
    }
    /// A file written before the program starts.
    pub fn file(
        mut self,
        path: impl Into<PathBuf>,
        contents: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Self {
        self.files.push(FileSpec {
            path: path.into(),
            contents: contents.into(),
            mode,
        });
        self
    }
    /// An environment variable of the program (over the caller's environment).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    /// The program's working directory (default `/`).
    pub fn workdir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workdir = Some(dir.into());
        self
    }
    /// `/` read-only.
    pub fn readonly_root(mut self, on: bool) -> Self {
        self.readonly_root = on;
        self
    }
    /// Kill the whole container after this long.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Resource limits (`memory` in bytes, `pids`).
    pub fn limits(mut self, memory: Option<u64>, pids: Option<u64>) -> Self {
        self.limits = Limits::new(memory, pids);
        self
    }
    /// A program to run in it, looked up with `execvp` semantics inside the new root.
    pub fn command<S: AsRef<str>>(
        self,
        program: &str,
        args: impl IntoIterator<Item = S>,
    ) -> Command {
        Command {
            container: self,
            program: program.to_owned(),
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            function: None,
        }
    }

    fn spec(&self) -> Spec {
        let mut config = RootfsConfig::new(self.hostname.clone());
        config.devices = DeviceMode::BindHost;
        if self.net == NetMode::Host {
            config.sysfs = SysfsMode::HostBind;
        }
        config.image = self.image.clone();
        config.binds = self.binds.clone();
        config.tmpfs = self.tmpfs.clone();
        config.files = self.files.clone();
        config.readonly_root = self.readonly_root;
        config.workdir = self.workdir.clone();
        config.extra_hosts = self.extra_hosts.clone();
        let mut spec = Spec::new(
            self.hostname.clone(),
            self.net,
            tinyo_rootfs::plan(&config, &real::host_facts()),
        );
        spec.limits = self.limits;
        spec
    }
}

/// A program and the container to run it in.
#[derive(Debug, Clone)]
#[must_use]
pub struct Command {
    container: Container,
    program: String,
    args: Vec<String>,
    function: Option<fn()>,
}

/// What the container's PID 1 runs, handed over through the fork.
struct Request {
    spec: Spec,
    program: CString,
    argv: Vec<CString>,
    env: Vec<(String, String)>,
    user: Option<(u32, u32)>,
    function: Option<fn()>,
    attach: Option<String>,
}

/// Wait for `eth0`, then give it `addr`, bring it up (with the container's `ip`) and wait
/// until it is operationally up: the kernel takes a carrier change into account up to a
/// second later (link events are rate-limited), and drops what is sent before.
fn attach_eth0(addr: &str) -> Result<(), String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    if !poll_until(deadline, || {
        std::path::Path::new("/sys/class/net/eth0").exists()
    }) {
        return Err("attach to the network: no eth0 arrived within 5s".into());
    }
    for args in [
        vec!["addr", "add", addr, "dev", "eth0"],
        vec!["link", "set", "eth0", "up"],
    ] {
        let out = std::process::Command::new("ip")
            .args(&args)
            .output()
            .map_err(|e| format!("attach to the network: run `ip`: {e} (iproute2 is needed)"))?;
        if !out.status.success() {
            return Err(format!(
                "attach to the network: ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let up =
        || std::fs::read_to_string("/sys/class/net/eth0/operstate").is_ok_and(|s| s.trim() == "up");
    if !poll_until(deadline, up) {
        return Err("attach to the network: eth0 was not up within 5s (its other end, in the test's network namespace, must be up too)".into());
    }
    Ok(())
}

/// Check `cond` every millisecond until it holds (true) or `deadline` passes (false).
pub(crate) fn poll_until(deadline: std::time::Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

static REQUEST: Mutex<Option<Request>> = Mutex::new(None);

fn exec_entry(proof: SingleThreaded, _id: u32, io: ChildIo) -> ! {
    let request = REQUEST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let Some(request) = request else {
        real::exit_now(70)
    };
    crate::init::run(proof, &request.spec, io, &|| {
        // PID 2, single-threaded: the environment is ours to set.
        for (k, v) in &request.env {
            std::env::set_var(k, v);
        }
        if let Some(addr) = &request.attach {
            attach_eth0(addr)?;
        }
        if let Some((uid, gid)) = request.user {
            real::become_user(uid, gid).map_err(|(call, e)| {
                format!("become uid {uid}, gid {gid}: {call}: {e:?} ({})", e.desc())
            })?;
        }
        if let Some(f) = request.function {
            f();
            return Ok(());
        }
        let errno = nix::unistd::execvp(&request.program, &request.argv)
            .err()
            .unwrap_or(Errno::UnknownErrno);
        Err(format!(
            "execvp: {errno:?} ({}){}",
            errno.desc(),
            if errno == Errno::ENOENT {
                "; not found in the container's PATH"
            } else {
                ""
            }
        ))
    })
}

impl Command {
    /// Run it with the caller's stdin, stdout and stderr (a terminal passes through), and
    /// wait for it.
    pub fn status(&self) -> Result<Output, RunError> {
        let stdin = std::io::stdin();
        self.start(Some(stdin.as_fd()), None)
    }

    /// [`Command::status`] under its usual `std::process` name for "run and wait".
    pub fn run(&self) -> Result<Output, RunError> {
        self.status()
    }

    /// Run it with stdin from `/dev/null`, capturing stdout and stderr.
    pub fn output(&self) -> Result<Output, RunError> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut result = self.start(None, Some((&mut out, &mut err)))?;
        result.stdout = out;
        result.stderr = err;
        Ok(result)
    }

    /// Start it, capturing stdout and stderr, and return at once: the [`Child`] is waited
    /// for (or killed) later. Dropping the child kills and reaps the container.
    pub fn spawn(&self) -> Result<Child, RunError> {
        self.launch(None, true)
    }

    fn start(
        &self,
        stdin: Option<BorrowedFd<'_>>,
        capture: Option<(&mut Vec<u8>, &mut Vec<u8>)>,
    ) -> Result<Output, RunError> {
        let child = self.launch(stdin, capture.is_some())?;
        let output = child.wait_with_output()?;
        if let Some((out, err)) = capture {
            *out = output.stdout.clone();
            *err = output.stderr.clone();
        }
        Ok(output)
    }

    fn launch(&self, stdin: Option<BorrowedFd<'_>>, capture: bool) -> Result<Child, RunError> {
        let proof = SingleThreaded::check().ok_or(RunError::Threaded)?;
        let cstr = |s: &str| CString::new(s).map_err(|_| RunError::Nul(s.to_owned()));
        let request = Request {
            spec: self.container.spec(),
            program: cstr(&self.program)?,
            argv: std::iter::once(self.program.as_str())
                .chain(self.args.iter().map(String::as_str))
                .map(cstr)
                .collect::<Result<_, _>>()?,
            env: self.container.env.clone(),
            user: self.container.user,
            function: self.function,
            attach: self.container.attach.clone(),
        };
        *REQUEST
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(request);
        let (report_r, report_w) = real::pipe().map_err(io("pipe"))?;
        let pipes = if capture {
            Some((
                real::pipe().map_err(io("pipe"))?,
                real::pipe().map_err(io("pipe"))?,
            ))
        } else {
            None
        };
        let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
        let (stdout_w, stderr_w) = match &pipes {
            Some(((_, ow), (_, ew))) => (ow.as_fd(), ew.as_fd()),
            None => (stdout.as_fd(), stderr.as_fd()),
        };
        let ns = Namespaces::CONTAINER;
        let running = spawn_direct(
            &proof,
            exec_entry,
            0,
            ns,
            stdin,
            stdout_w,
            stderr_w,
            report_w.as_fd(),
        )
        .map_err(RunError::Spawn);
        REQUEST
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        Ok(Child {
            running: running?,
            report: report_r,
            output: pipes.map(|((out_r, _), (err_r, _))| (out_r, err_r)),
            timeout: self.container.timeout,
            program: self.program.clone(),
            function: self.function.is_some(),
        })
    }
}

fn io(what: &'static str) -> impl Fn(Errno) -> RunError {
    move |errno| RunError::Io { what, errno }
}

/// A program running in its container ([`Command::spawn`]).
#[derive(Debug)]
pub struct Child {
    running: crate::zygote::Running,
    report: std::os::fd::OwnedFd,
    output: Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
    timeout: Duration,
    program: String,
    function: bool,
}

impl Child {
    /// The host pid of the container's init.
    pub fn id(&self) -> u32 {
        self.running.pid().as_raw().unsigned_abs()
    }

    /// Kill the container: every process in it.
    pub fn kill(&self) -> Result<(), RunError> {
        self.running.kill().map_err(io("pidfd_send_signal"))
    }

    /// Wait for the program to end (or the timeout), with its captured output.
    pub fn wait_with_output(self) -> Result<Output, RunError> {
        let (mut report, mut out, mut err) = (Vec::new(), Vec::new(), Vec::new());
        let mut to_report = |b: &[u8]| report.extend_from_slice(b);
        let mut to_out = |b: &[u8]| out.extend_from_slice(b);
        let mut to_err = |b: &[u8]| err.extend_from_slice(b);
        let timed_out = match &self.output {
            Some((o, e)) => self.running.drain(
                self.timeout,
                &mut [
                    (self.report.as_fd(), &mut to_report),
                    (o.as_fd(), &mut to_out),
                    (e.as_fd(), &mut to_err),
                ],
            ),
            None => self
                .running
                .drain(self.timeout, &mut [(self.report.as_fd(), &mut to_report)]),
        }
        .map_err(io("poll/read"))?;
        let init = self.running.wait().map_err(io("waitid"))?;
        if timed_out {
            return Ok(Output {
                status: None,
                stdout: out,
                stderr: err,
            });
        }
        match Report::decode(&report) {
            Some(Report::Finished {
                body: BodyReport::ReturnedErr(why),
                ..
            }) => Err(RunError::Exec {
                program: self.program,
                why,
            }),
            // A function that panics is a host that failed: exit code 101, as a Rust program's.
            Some(Report::Finished {
                body: BodyReport::Panicked { .. },
                ..
            }) if self.function => Ok(Output {
                status: Some(Termination::Exited(101)),
                stdout: out,
                stderr: err,
            }),
            Some(Report::Finished {
                body: BodyReport::Panicked { message, .. },
                ..
            }) => Err(RunError::Exec {
                program: self.program,
                why: message,
            }),
            Some(Report::Finished { status, .. }) => Ok(Output {
                status: Some(status),
                stdout: out,
                stderr: err,
            }),
            // Killed from outside ([`Child::kill`]): the container's end is the program's.
            None => Ok(Output {
                status: Some(init),
                stdout: out,
                stderr: err,
            }),
            other => Err(RunError::Setup(Outcome::decide(other, init, None))),
        }
    }
}
