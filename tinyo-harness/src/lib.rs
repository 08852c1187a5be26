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
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use run::Launcher;
use tinyo_core::diagnose::Diagnosis;
use tinyo_core::init::ChildIo;
use tinyo_core::sys::real::{self, SingleThreaded};
use tinyo_core::sys::Sys as _;
use tinyo_core::zygote::Zygote;
use tinyo_core::{Limits, NetMode, Outcome, Spec};
use tinyo_rootfs::{BindSpec, DeviceMode, FileSpec, HostFacts, RootfsConfig, SysfsMode};

mod capture;
mod run;
mod stock;

pub use capture::CappedOutput;
pub use linkme;
pub use stock::{run_stock, stock_init, MARKER};

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
    /// `env = "K=V"`, in order.
    pub env: &'static [(&'static str, &'static str)],
    /// `memory = "…"`, in bytes.
    pub memory: Option<u64>,
    /// `pids = N`.
    pub pids: Option<u64>,
    /// `user = …`: the body runs as this user of the container.
    pub user: Option<User>,
    /// `bind = "src:dst[:rw]"`: (src as written, dst, writable).
    pub binds: &'static [(&'static str, &'static str, bool)],
    /// `tmpfs = "/path"`.
    pub tmpfs: &'static [&'static str],
    /// `file = ("/path", "contents", mode)`.
    pub files: &'static [(&'static str, &'static str, u32)],
    /// `workdir = "/path"`.
    pub workdir: Option<&'static str>,
    /// `readonly_root = true`.
    pub readonly_root: bool,
    /// `rootfs = "dir"`.
    pub rootfs: Option<&'static str>,
    /// `#[should_panic]`.
    pub should_panic: ShouldPanic,
    /// `CARGO_MANIFEST_DIR` of the crate the test is in, at compile time.
    pub manifest_dir: &'static str,
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

/// `user = "name"` or `user = id` on an isolated test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum User {
    /// A name from the container's `/etc/passwd`.
    Name(&'static str),
    /// A uid (its gid is taken equal).
    Id(u32),
}

/// `(uid, gid)` of `name` in a passwd file's text.
fn passwd_lookup(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

/// Become `user` in PID 2, before the body: a failure is the test's setup failing, said
/// plainly (the body then does not run).
fn become_user(user: User) -> Result<(), String> {
    let (uid, gid) = match user {
        User::Id(id) => (id, id),
        User::Name(name) => {
            let passwd = std::fs::read_to_string("/etc/passwd")
                .map_err(|e| format!("tinyo: user = \"{name}\": read /etc/passwd: {e}"))?;
            passwd_lookup(&passwd, name).ok_or_else(|| {
                format!("tinyo: user = \"{name}\": no such user in the container's /etc/passwd")
            })?
        }
    };
    real::become_user(uid, gid).map_err(|(call, e)| {
        let why = if real::effective_ids().0 == 0 && !real::in_init_userns() && e == nix::errno::Errno::EINVAL {
            " (rootless: only the container's root is mapped to your user; ids other than 0 need tinyo to run as root)"
        } else {
            ""
        };
        format!("tinyo: run the test as uid {uid}, gid {gid}: {call}: {e:?} ({}){why}", e.desc())
    })
}

/// `#[should_panic]` on an isolated test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum ShouldPanic {
    /// Not given.
    No,
    /// `#[should_panic]`.
    Yes,
    /// `#[should_panic(expected = "…")]`.
    Expected(&'static str),
}

impl ShouldPanic {
    /// In the form [`Outcome::expecting_panic`] takes.
    pub fn expected(self) -> Option<Option<&'static str>> {
        match self {
            Self::No => None,
            Self::Yes => Some(None),
            Self::Expected(e) => Some(Some(e)),
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

/// The hostname of a container whose test sets none.
pub const DEFAULT_HOSTNAME: &str = "tinyo";

/// The default per-test timeout, when neither the attribute nor `TINYO_TIMEOUT` set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// What every container of this run shares; fixed before the first container is made.
#[derive(Debug)]
pub(crate) struct Context {
    facts: HostFacts,
    crate_dir: Option<PathBuf>,
    /// Every distinct `bind` source of the binary's tests, resolved.
    bind_sources: Vec<BindSource>,
}

/// A `bind` source: its absolute host path, what it is, and whether any test binds it `:rw`.
#[derive(Debug)]
struct BindSource {
    path: PathBuf,
    /// `None`: it does not exist (the tests binding it fail, saying so).
    is_dir: Option<bool>,
    writable: bool,
    /// Used as a `rootfs` image.
    image: bool,
}

impl Context {
    /// Observe the host, find the crate directory (`CARGO_MANIFEST_DIR` at run time, as
    /// cargo and nextest set it, else the one the binary was built in), and resolve every
    /// `bind` source.
    pub(crate) fn probe(compile_time_crate_dir: &str) -> Self {
        let crate_dir = crate_dir(compile_time_crate_dir);
        let mut bind_sources: Vec<BindSource> = Vec::new();
        // A rootfs image is a (read-only, directory) bind source too: staged the same way.
        let images = TESTS
            .iter()
            .filter_map(|r| r.rootfs)
            .map(|dir| (dir, false, true));
        for (src, writable, image) in TESTS
            .iter()
            .flat_map(|r| r.binds.iter().map(|(s, _, w)| (*s, *w, false)))
            .chain(images)
        {
            let path = resolve_source(crate_dir.as_deref(), src);
            match bind_sources
                .iter_mut()
                .find(|b| b.path == path && b.image == image)
            {
                Some(b) => b.writable |= writable,
                None => {
                    let is_dir = std::fs::metadata(&path).ok().map(|m| m.is_dir());
                    bind_sources.push(BindSource {
                        path,
                        is_dir,
                        writable,
                        image,
                    });
                }
            }
        }
        Self {
            facts: real::host_facts(),
            crate_dir,
            bind_sources,
        }
    }

    fn bind_source(&self, src: &str) -> Option<(usize, &BindSource)> {
        self.source(src, false)
    }

    fn image_source(&self, dir: &str) -> Option<(usize, &BindSource)> {
        self.source(dir, true)
    }

    fn source(&self, src: &str, image: bool) -> Option<(usize, &BindSource)> {
        let path = resolve_source(self.crate_dir.as_deref(), src);
        self.bind_sources
            .iter()
            .enumerate()
            .find(|(_, b)| b.path == path && b.image == image)
    }

    /// Why this test's binds cannot be made, if they cannot: a missing source, a `rootfs`
    /// that is not a directory.
    pub(crate) fn check_binds(&self, record: &TestRecord) -> Result<(), String> {
        if let Some(dir) = record.rootfs {
            if let Some((_, source)) = self.image_source(dir) {
                if source.is_dir != Some(true) {
                    let what = if source.is_dir.is_none() {
                        "does not exist"
                    } else {
                        "is not a directory"
                    };
                    return Err(format!("rootfs = \"{dir}\": `{}` {what}; give a directory (relative to the crate directory, or absolute) holding the root filesystem", source.path.display()));
                }
            }
        }
        for (src, dst, _) in record.binds {
            if let Some((
                _,
                BindSource {
                    path, is_dir: None, ..
                },
            )) = self.bind_source(src)
            {
                let base = self.crate_dir.as_ref().map_or_else(String::new, |d| {
                    format!(
                        " (relative sources are from the crate directory `{}`)",
                        d.display()
                    )
                });
                return Err(format!("bind = \"{src}:{dst}\": the source `{}` does not exist; create it or fix the path{base}", path.display()));
            }
        }
        Ok(())
    }
}

/// A bind source as written: absolute, or relative to the crate directory.
fn resolve_source(crate_dir: Option<&std::path::Path>, src: &str) -> PathBuf {
    match crate_dir {
        Some(dir) if !src.starts_with('/') => dir.join(src),
        _ => PathBuf::from(src),
    }
}

pub(crate) static CONTEXT: OnceLock<Context> = OnceLock::new();

/// Where containers bind the crate directory from, once [`stage_shared_root`] staged it.
static CRATE_SOURCE: OnceLock<PathBuf> = OnceLock::new();

/// Whether [`stage_shared_root`] built the minimal root (the `/dev` template, `/etc` files, bind sources).
static STAGED: OnceLock<()> = OnceLock::new();

/// In the zygote (or the stock re-run), as root: in a private mount namespace, stage what
/// every container binds from (see [`tinyo_rootfs::staging_plan`]): the crate directory (so
/// containers, whose root is unprivileged on the host, reach it wherever it is), a `/dev`
/// template and each test's `/etc/hostname` and `/etc/hosts`. Unprivileged, or if staging
/// fails, containers build those themselves (and a bind that fails says why).
pub(crate) fn stage_shared_root(proof: &SingleThreaded) {
    // Only real root: root of a nested user namespace (a rootless CI container) finds the
    // host's mounts locked and cannot bind parts of them; its containers bind directly.
    if real::effective_ids().0 != 0
        || !real::in_init_userns()
        || real::unshare(proof, tinyo_core::Namespaces::MOUNT).is_err()
    {
        return;
    }
    // The handle must name the directory in *this* mount namespace (a bind from another
    // namespace is refused), and be taken before the staging tmpfs hides `/tmp`.
    let dir = CONTEXT.get().and_then(|c| c.crate_dir.as_ref());
    let handle = dir.and_then(|d| real::open_dir_path(d).ok());
    let handle_path = handle.as_ref().map(|h| {
        PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(h)
        ))
    });
    let mut hostnames: Vec<&str> = TESTS
        .iter()
        .map(|r| r.hostname.unwrap_or(DEFAULT_HOSTNAME))
        .collect();
    hostnames.sort_unstable();
    hostnames.dedup();
    let umask = real::RealSys.umask(nix::sys::stat::Mode::empty());
    let Some(context) = CONTEXT.get() else { return };
    // Staged sources are indexed like `bind_sources`; a missing one stays an empty directory.
    // Each is reached through a handle taken now, before the staging tmpfs hides `/tmp`.
    let handles: Vec<Option<std::fs::File>> = context
        .bind_sources
        .iter()
        .map(|b| {
            b.is_dir
                .and_then(|_| real::open_path(&b.path).ok().map(std::fs::File::from))
        })
        .collect();
    let sources: Vec<tinyo_rootfs::StagedSource> = context
        .bind_sources
        .iter()
        .zip(&handles)
        .map(|(b, h)| tinyo_rootfs::StagedSource {
            path: h.as_ref().map_or_else(
                || b.path.clone(),
                |h| {
                    PathBuf::from(format!(
                        "/proc/self/fd/{}",
                        std::os::fd::AsRawFd::as_raw_fd(h)
                    ))
                },
            ),
            is_dir: b.is_dir.unwrap_or(true),
            writable: b.writable,
            image: b.image,
        })
        .collect();
    let sources_present: Vec<bool> = context
        .bind_sources
        .iter()
        .map(|b| b.is_dir.is_some())
        .collect();
    // Image roots are shown with the container's ids (an id-mapped mount), so that the host
    // root's files in them are the container root's.
    let userns = if sources.iter().any(|s| s.image) {
        real::make_userns_fd(
            proof,
            &tinyo_core::userns::IdMaps::for_caller(0, 0, real::in_init_userns()),
        )
        .ok()
    } else {
        None
    };
    let userns_path = userns.as_ref().map(|fd| {
        PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(fd)
        ))
    });
    let plan: Vec<tinyo_rootfs::Step> = tinyo_rootfs::staging_plan(
        handle_path.as_deref(),
        &hostnames,
        &context.facts,
        &sources,
        userns_path.as_deref(),
    )
    .into_iter()
    .filter(|step| match step {
        // A missing source is not bound (its tests fail before any container is made).
        tinyo_rootfs::Step::Bind { src, .. } | tinyo_rootfs::Step::BindIdmapped { src, .. } => {
            !sources
                .iter()
                .zip(&sources_present)
                .any(|(s, present)| !present && &s.path == src)
        }
        _ => true,
    })
    .collect();
    let staged = tinyo_core::setup::apply(&real::RealSys, &plan);
    real::RealSys.umask(umask);
    match staged {
        Ok(()) => {
            if handle.is_some() {
                let _ = CRATE_SOURCE.set(PathBuf::from(tinyo_rootfs::STAGED_CRATE));
            }
            let _ = STAGED.set(());
        }
        Err(e) => {
            // Leave the namespace as it was (unless the pivot itself half-happened, which
            // leaves nothing to undo), so containers can still bind the real paths.
            let _ = real::RealSys.umount_detach(std::path::Path::new(tinyo_rootfs::SCRATCH));
            say(&format!("tinyo: could not stage the containers' shared files ({e}); each container makes its own"));
        }
    }
}

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
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(compile_time), PathBuf::from);
    (dir.is_absolute() && dir.is_dir()).then_some(dir)
}

/// The timeout of tests that set none: `TINYO_TIMEOUT`, else [`DEFAULT_TIMEOUT`].
pub(crate) fn default_timeout() -> Result<Duration, String> {
    match std::env::var("TINYO_TIMEOUT") {
        Err(_) => Ok(DEFAULT_TIMEOUT),
        Ok(text) => parse_duration(&text).ok_or_else(|| {
            format!(
                "TINYO_TIMEOUT=`{text}` is not a duration; use e.g. TINYO_TIMEOUT=250ms, 5s or 2m"
            )
        }),
    }
}

/// Tinyo's own flags, taken out of the arguments (libtest-mimic would reject them):
/// `--timeout D` and `--unavailable fail|skip` (also as `--flag=value`).
type TinyoFlags = (Option<Duration>, Option<String>, Vec<std::ffi::OsString>);

fn take_tinyo_flags(args: Vec<std::ffi::OsString>) -> Result<TinyoFlags, String> {
    let mut rest = Vec::with_capacity(args.len());
    let (mut timeout, mut unavailable) = (None, None);
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy().into_owned();
        let mut value_of = |flag: &str| -> Result<Option<String>, String> {
            if text == flag {
                let v = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
                Ok(Some(v.to_string_lossy().into_owned()))
            } else {
                Ok(text.strip_prefix(&format!("{flag}=")).map(str::to_owned))
            }
        };
        if let Some(v) = value_of("--timeout")? {
            timeout = Some(parse_duration(&v).ok_or_else(|| {
                format!("--timeout `{v}` is not a duration; use e.g. 250ms, 5s or 2m")
            })?);
        } else if let Some(v) = value_of("--unavailable")? {
            unavailable = Some(v);
        } else {
            rest.push(arg);
        }
    }
    Ok((timeout, unavailable, rest))
}

/// `fail` (the default) or `skip`.
fn parse_skip_policy(text: &str) -> Result<bool, String> {
    match text {
        "fail" => Ok(false),
        "skip" => Ok(true),
        other => Err(format!("`{other}` is not a policy for when isolation is unavailable; use fail (the default) or skip")),
    }
}

fn skip_policy_from_env() -> Result<bool, String> {
    match std::env::var("TINYO_UNAVAILABLE") {
        Err(_) => Ok(false),
        Ok(v) => parse_skip_policy(&v).map_err(|e| format!("TINYO_UNAVAILABLE: {e}")),
    }
}

/// Whether `TINYO_UNAVAILABLE=skip` is set.
pub(crate) fn skip_unavailable() -> bool {
    skip_policy_from_env().unwrap_or(false)
}

/// Tests skipped because isolation is unavailable.
static SKIPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The run's diagnosis, made (and printed) once, at the first environmental failure.
static DIAGNOSIS: OnceLock<Diagnosis> = OnceLock::new();

fn unavailable(failed_at: tinyo_core::diagnose::FailedAt) -> &'static Diagnosis {
    DIAGNOSIS.get_or_init(|| {
        let d =
            tinyo_core::diagnose::diagnose(failed_at, &tinyo_core::diagnose::EnvFacts::gather());
        say(&format!("tinyo: {d}"));
        d
    })
}

/// The whole harness: fork the zygote while single-threaded, parse libtest's arguments,
/// run every isolated test in its container, print the results, exit (101 on failure).
pub fn run_main(compile_time_crate_dir: &'static str) -> ! {
    CONTEXT.get_or_init(|| Context::probe(compile_time_crate_dir));
    // Before anything can start a thread: the zygote must be forked from a single thread.
    let (timeout_flag, unavailable_flag, argv) =
        match take_tinyo_flags(std::env::args_os().collect()) {
            Ok(split) => split,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        };
    let args = Arguments::from_iter(argv);
    // Before anything can start a thread: zygotes must be forked from a single thread. One
    // per test thread (up to 4), so that making containers is not serialised in one of them.
    let test_threads = args
        .test_threads
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    let threads = test_threads.clamp(1, 4);
    let pins = cpu_pins(test_threads, threads, &real::allowed_cpus());
    // Warm containers only where some test can use one.
    let warm = TESTS
        .iter()
        .any(poolable)
        .then_some(warm_entry as tinyo_core::zygote::WarmEntry);
    let zygotes: Result<Vec<Zygote>, String> = (0..if args.list { 1 } else { threads })
        .map(|i| {
            let cpu = pins.as_ref().and_then(|p| p.get(i).copied());
            Zygote::start(container_entry, warm, prepare_zygote, cpu).map_err(|e| e.to_string())
        })
        .collect();
    let pins = Arc::new(pins);
    let next_zygote = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let default_timeout = match timeout_flag.map_or_else(default_timeout, Ok) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let skip_unavailable = match unavailable_flag
        .as_deref()
        .map_or_else(skip_policy_from_env, parse_skip_policy)
    {
        Ok(skip) => skip,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let zygotes = Arc::new(zygotes);
    let passed_output: Arc<Mutex<Vec<(String, CappedOutput)>>> = Arc::default();
    let trials = TESTS
        .iter()
        .enumerate()
        .map(|(id, record)| {
            let zygotes = zygotes.clone();
            let next_zygote = next_zygote.clone();
            let pins = pins.clone();
            let (nocapture, show_output) = (args.nocapture, args.show_output);
            let passed_output = passed_output.clone();
            let timeout = record.timeout_ms.map_or(default_timeout, Duration::from_millis);
            let skip = skip_unavailable;
            Trial::ignorable_test(record.test_name(), move || {
                let all = zygotes.as_ref().as_ref().map_err(|e| Failed::from(format!("tinyo could not start its fork server: {e}")))?;
                let z = &all[zygote_of_this_thread(&next_zygote, &|n| {
                    // The thread joins its fork server's CPU (see `cpu_pins`).
                    if let Some(&cpu) = pins.as_ref().as_ref().and_then(|p| p.get(n % all.len())) {
                        let _ = real::set_affinity(&[cpu]);
                    }
                }) % all.len()];
                if let Some(context) = CONTEXT.get() {
                    context.check_binds(record).map_err(Failed::from)?;
                }
                let result = run::execute(&Launcher::Zygote(z), id, record, timeout, nocapture);
                if let Some(failed_at) = run::environment_failure(&result) {
                    let diagnosis = unavailable(failed_at);
                    if skip {
                        SKIPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        return Ok(Completion::ignored_with(format!("tinyo: isolation unavailable: {}", diagnosis.cause.what())));
                    }
                    let first = match &result {
                        Err(e) => e.to_string(),
                        Ok((outcome, _)) => outcome.to_string(),
                    };
                    return Err(Failed::from(format!("{first}\n{diagnosis}\n(TINYO_UNAVAILABLE=skip reports such tests as ignored instead)")));
                }
                let (outcome, output) = result.map_err(|e| Failed::from(e.to_string()))?;
                match outcome {
                    Outcome::Passed => {
                        if let (true, Some(output)) = (show_output, output) {
                            passed_output.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((record.test_name(), output));
                        }
                        Ok(Completion::Completed)
                    }
                    other => Err(Failed::from(run::failure_message(&other, output.as_ref()))),
                }
            })
            .with_ignored_flag(record.ignored)
        })
        .collect();
    // TINYO_DEBUG_FDS=1: say which fds the harness holds before and after the run (a leak
    // check: the two must be the same).
    let debug_fds = std::env::var_os("TINYO_DEBUG_FDS").is_some();
    let fds_before = debug_fds.then(open_fds);
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(before) = fds_before {
        eprintln!(
            "tinyo-debug: harness fds before the run: {before:?}, after: {:?}",
            open_fds()
        );
    }
    drop(zygotes);
    print_successes(
        &passed_output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let skipped = SKIPPED.load(std::sync::atomic::Ordering::Relaxed);
    if let (true, Some(d)) = (skipped > 0, DIAGNOSIS.get()) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "tinyo: {skipped} isolated test(s) skipped, not run (TINYO_UNAVAILABLE=skip): {}; fix: {}", d.cause.what(), d.cause.fix());
    }
    conclusion.exit()
}

/// Which CPU each fork server (and the test thread using it) keeps to, if any: only when
/// every CPU the harness may use will be busy (at least as many test threads as CPUs, each
/// with a fork server of its own). Then a test's chain of processes (thread, fork server,
/// PID 1) stays on one CPU: no wake-up crosses CPUs (each crossing is an interrupt, dear in
/// a VM) and no process migrates. The test bodies get every CPU back. With fewer threads
/// the other CPUs do useful work (warm containers, namespace teardown): no pinning.
/// The result has a CPU for each fork server, in order.
fn cpu_pins(test_threads: usize, zygotes: usize, cpus: &[usize]) -> Option<Vec<usize>> {
    (cpus.len() > 1 && test_threads >= cpus.len() && zygotes == test_threads)
        .then(|| (0..zygotes).map(|i| cpus[i % cpus.len()]).collect())
}

/// The fork server of the calling test thread: each thread takes the next one the first
/// time it runs a test (calling `first` with it) and keeps it, so that threads never queue
/// at the same fork server while another idles (one per thread while there are as many
/// as threads).
fn zygote_of_this_thread(next: &std::sync::atomic::AtomicUsize, first: &dyn Fn(usize)) -> usize {
    thread_local! {
        static MINE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    }
    MINE.with(|mine| match mine.get() {
        Some(n) => n,
        None => {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            mine.set(Some(n));
            first(n);
            n
        }
    })
}

/// Print a line to stderr in one write, so that lines of the harness and of its fork
/// servers never interleave mid-line.
fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(format!("{line}\n").as_bytes());
}

/// The fds open in this process, sorted.
fn open_fds() -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    fds.sort_unstable();
    // The last one is the directory being read.
    fds.pop();
    fds
}

/// `--show-output`: the captured output of the tests that passed, as libtest prints it.
fn print_successes(outputs: &[(String, CappedOutput)]) {
    if outputs.is_empty() {
        return;
    }
    let mut text = String::from("\nsuccesses:\n");
    for (name, output) in outputs {
        text.push_str(&format!("\n---- {name} stdout ----\n{output}\n"));
    }
    text.push_str("\nsuccesses:\n");
    for (name, _) in outputs {
        text.push_str(&format!("    {name}\n"));
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
}

/// The specs of the containers most tests get (a [`poolable`] one without limits), by
/// network: built once in each fork server, so that PID 1 only reads one (building a plan
/// allocates, and every heap page PID 1 writes is a page the kernel must copy for it).
static COMMON_SPECS: OnceLock<[Spec; 3]> = OnceLock::new();

fn net_index(net: NetMode) -> Option<usize> {
    match net {
        NetMode::Loopback => Some(0),
        NetMode::None => Some(1),
        NetMode::Host => Some(2),
        _ => None,
    }
}

/// What each fork server does before serving: stage the shared root, then build the
/// common specs from it.
fn prepare_zygote(proof: &SingleThreaded) {
    stage_shared_root(proof);
    if let Some(context) = CONTEXT.get() {
        let spec = |net| spec_for(context, DEFAULT_HOSTNAME, net, None);
        let _ = COMMON_SPECS.set([
            spec(NetMode::Loopback),
            spec(NetMode::None),
            spec(NetMode::Host),
        ]);
    }
}

/// The prebuilt spec of the common container with this network, where this fork server
/// built them.
fn prebuilt_spec(net: NetMode) -> Option<&'static Spec> {
    COMMON_SPECS.get()?.get(net_index(net)?)
}

/// The prebuilt spec for `record`, where it is a common one.
fn common_spec(record: &TestRecord) -> Option<&'static Spec> {
    let common = poolable_fs(record) && record.memory.is_none() && record.pids.is_none();
    common.then(|| prebuilt_spec(record.net)).flatten()
}

/// PID 1 of each container: build the spec for test `id` (or take the prebuilt one) and run
/// it.
pub(crate) fn container_entry(proof: SingleThreaded, id: u32, io: ChildIo) -> ! {
    let (Some(record), Some(context)) = (TESTS.get(id as usize), CONTEXT.get()) else {
        real::exit_now(70);
    };
    if let Some(spec) = common_spec(record) {
        tinyo_core::init::run(proof, spec, io, &body_of(record))
    }
    let mut spec = spec_for(
        context,
        record.hostname.unwrap_or(DEFAULT_HOSTNAME),
        record.net,
        Some(record),
    );
    spec.limits = Limits::new(record.memory, record.pids);
    tinyo_core::init::run(proof, &spec, io, &body_of(record))
}

/// Whether a warm container (set up ahead, see [`warm_entry`]) can serve this test: it has
/// the default hostname and network.
pub(crate) fn poolable(record: &TestRecord) -> bool {
    record.net == NetMode::Loopback && poolable_fs(record)
}

/// Whether this test's container has the default hostname and filesystem (whatever its
/// network).
fn poolable_fs(record: &TestRecord) -> bool {
    record.hostname.is_none()
        && record.binds.is_empty()
        && record.tmpfs.is_empty()
        && record.files.is_empty()
        && record.workdir.is_none()
        && !record.readonly_root
        && record.rootfs.is_none()
}

/// PID 1 of a warm container: set up as for a [`poolable`] test, then run the one assigned.
fn warm_entry(proof: SingleThreaded, io: tinyo_core::init::WarmIo) -> ! {
    let Some(context) = CONTEXT.get() else {
        real::exit_now(70)
    };
    let built;
    let spec = match prebuilt_spec(NetMode::Loopback) {
        Some(spec) => spec,
        None => {
            built = spec_for(context, DEFAULT_HOSTNAME, NetMode::Loopback, None);
            &built
        }
    };
    tinyo_core::init::run_warm(proof, spec, io, &|id| {
        let record = TESTS.get(id as usize)?;
        let body: Box<dyn Fn() -> Result<(), String>> = Box::new(body_of(record));
        Some((Limits::new(record.memory, record.pids), body))
    })
}

/// The container spec for a test with this hostname and network.
fn spec_for(context: &Context, hostname: &str, net: NetMode, record: Option<&TestRecord>) -> Spec {
    let mut config = RootfsConfig::new(hostname);
    config.crate_dir = context.crate_dir.clone();
    config.crate_source = CRATE_SOURCE.get().cloned();
    if STAGED.get().is_some() {
        config.dev_source = Some(PathBuf::from(tinyo_rootfs::STAGED_DEV));
        config.etc_source = Some(std::path::Path::new(tinyo_rootfs::STAGED_ETC).join(hostname));
        config.staged = true;
    }
    // In a user namespace mknod is refused and sysfs needs a network namespace of its own.
    config.devices = DeviceMode::BindHost;
    if net == NetMode::Host {
        config.sysfs = SysfsMode::HostBind;
    }
    if let Some(record) = record {
        for (src, dst, writable) in record.binds {
            let Some((index, source)) = context.bind_source(src) else {
                continue;
            };
            let src = if STAGED.get().is_some() {
                tinyo_rootfs::staged_bind(index)
            } else {
                source.path.clone()
            };
            config.binds.push(BindSpec {
                src,
                dst: PathBuf::from(dst),
                writable: *writable,
                is_dir: source.is_dir.unwrap_or(true),
            });
        }
        config.tmpfs = record.tmpfs.iter().map(PathBuf::from).collect();
        config.files = record
            .files
            .iter()
            .map(|(path, contents, mode)| FileSpec {
                path: PathBuf::from(path),
                contents: contents.as_bytes().to_vec(),
                mode: *mode,
            })
            .collect();
        config.workdir = record.workdir.map(PathBuf::from);
        config.readonly_root = record.readonly_root;
        if let Some((index, source)) = record.rootfs.and_then(|dir| context.image_source(dir)) {
            config.image = Some(if STAGED.get().is_some() {
                tinyo_rootfs::staged_bind(index)
            } else {
                source.path.clone()
            });
        }
    }
    Spec::new(hostname, net, tinyo_rootfs::plan(&config, &context.facts))
}

/// The body PID 2 runs: the test's environment, then its function.
fn body_of(record: &'static TestRecord) -> impl Fn() -> Result<(), String> {
    move || {
        // PID 2 is single-threaded here: setting the environment is sound.
        for (key, value) in record.env {
            std::env::set_var(key, value);
        }
        if let Some(user) = record.user {
            become_user(user)?;
        }
        (record.body)()
    }
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
    fn tinyo_flags_are_taken_out() {
        let args = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        let (t, u, rest) = take_tinyo_flags(args(&[
            "bin",
            "--timeout",
            "2s",
            "--exact",
            "x",
            "--unavailable=skip",
        ]))
        .unwrap();
        assert_eq!(
            (t, u, rest),
            (
                Some(Duration::from_secs(2)),
                Some("skip".into()),
                args(&["bin", "--exact", "x"])
            )
        );
        let (t, _, _) = take_tinyo_flags(args(&["bin", "--timeout=250ms"])).unwrap();
        assert_eq!(t, Some(Duration::from_millis(250)));
        assert!(take_tinyo_flags(args(&["bin", "--timeout", "soon"])).is_err());
        assert!(take_tinyo_flags(args(&["bin", "--timeout"])).is_err());
        assert_eq!(parse_skip_policy("skip"), Ok(true));
        assert!(parse_skip_policy("maybe").is_err());
    }

    fn record(module_path: &'static str) -> TestRecord {
        TestRecord {
            name: "t",
            module_path,
            file: "",
            line: 0,
            hostname: None,
            timeout_ms: None,
            net: NetMode::Loopback,
            ignored: false,
            ignore_reason: None,
            env: &[],
            memory: None,
            pids: None,
            user: None,
            binds: &[],
            tmpfs: &[],
            files: &[],
            workdir: None,
            readonly_root: false,
            rootfs: None,
            should_panic: ShouldPanic::No,
            manifest_dir: "/",
            body: || Ok(()),
        }
    }

    #[test]
    fn each_thread_keeps_its_own_zygote() {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (a, b) = std::thread::scope(|s| {
            let one = || {
                let calls = std::cell::Cell::new(0);
                let count = |_| calls.set(calls.get() + 1);
                let first = zygote_of_this_thread(&next, &count);
                // Later tests of the same thread go to the same fork server.
                assert!((0..10).all(|_| zygote_of_this_thread(&next, &count) == first));
                assert_eq!(calls.get(), 1, "the first time only");
                first
            };
            let a = s.spawn(one);
            let b = s.spawn(one);
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_ne!(a, b, "two threads share a fork server");
        assert_eq!(next.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn a_common_test_gets_the_spec_it_would_have_built() {
        let context = Context::probe("/work/crate");
        let mut r = record("isolated");
        for net in [NetMode::Loopback, NetMode::None, NetMode::Host] {
            r.net = net;
            let mut built = spec_for(&context, DEFAULT_HOSTNAME, net, Some(&r));
            built.limits = Limits::new(r.memory, r.pids);
            assert_eq!(spec_for(&context, DEFAULT_HOSTNAME, net, None), built);
            assert!(poolable_fs(&r));
        }
        // Anything a common spec does not hold makes the test build its own.
        r.hostname = Some("db");
        assert!(!poolable_fs(&r));
        let mut r = record("isolated");
        r.tmpfs = &["/var/cache"];
        assert!(!poolable_fs(&r));
        let mut r = record("isolated");
        r.readonly_root = true;
        assert!(!poolable_fs(&r));
    }

    #[test]
    fn pinned_only_when_every_cpu_has_a_thread_of_its_own() {
        assert_eq!(cpu_pins(2, 2, &[0, 1]), Some(vec![0, 1]));
        assert_eq!(cpu_pins(4, 4, &[2, 3]), Some(vec![2, 3, 2, 3]));
        assert_eq!(
            cpu_pins(1, 1, &[0, 1]),
            None,
            "one thread: the other CPU helps"
        );
        assert_eq!(cpu_pins(8, 4, &[0, 1]), None, "threads share fork servers");
        assert_eq!(cpu_pins(2, 2, &[5]), None, "one CPU: nothing to choose");
        assert_eq!(cpu_pins(2, 2, &[]), None);
    }

    #[test]
    fn names_drop_the_crate() {
        assert_eq!(record("isolated").test_name(), "t");
        assert_eq!(record("isolated::a::b").test_name(), "a::b::t");
    }

    #[test]
    fn passwd_lookups() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(passwd_lookup(passwd, "nobody"), Some((65534, 65534)));
        assert_eq!(passwd_lookup(passwd, "nob"), None);
    }

    #[test]
    fn result_bodies() {
        assert_eq!(().into_test_result(), Ok(()));
        assert_eq!(
            Err::<(), _>("bad").into_test_result(),
            Err("\"bad\"".into())
        );
    }
}
