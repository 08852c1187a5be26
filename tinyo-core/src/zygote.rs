//! The fork server: a process forked from the harness before any thread exists, which
//! `clone3`s each container's PID 1 straight into its namespaces.
//!
//! The harness is multi-threaded, so it may not run Rust code after a `fork`; the zygote is
//! single-threaded forever, so it may. Each container is cloned with `CLONE_PARENT`, which
//! makes the *harness* its parent: the harness reaps it through the pidfd the zygote sends
//! back (`waitid(P_PIDFD)`), kills it race-free at its deadline (`pidfd_send_signal`), and
//! its death kills it (`PR_SET_PDEATHSIG`, armed against the harness's main thread).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::init::{ChildIo, WarmIo};
use crate::namespaces::Namespaces;
use crate::outcome::Termination;
use crate::sys::real::{self, Forked, SingleThreaded};
use crate::sys::{RealSys, Sys};
use crate::userns::IdMaps;

use crate::wire::{Reader, Writer};

/// What the zygote runs in each new container, as its PID 1: the request's id and the fds
/// for it. Never returns.
pub type Entry = fn(SingleThreaded, u32, ChildIo) -> !;

/// What the zygote runs in a *warm* container, made ahead of the request that will use it:
/// it sets itself up, then waits on its control socket for a test (see
/// [`crate::init::run_warm`]). Never returns.
pub type WarmEntry = fn(SingleThreaded, WarmIo) -> !;

/// How many warm containers the zygote keeps ready.
const WARM_POOL: usize = 1;

/// A warm container waiting in the zygote.
#[derive(Debug)]
struct Warm {
    pid: Pid,
    pidfd: OwnedFd,
    ctl: OwnedFd,
}

/// Why the zygote could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZygoteError {
    /// Threads already exist, so forking is unsound.
    #[error("start the fork server: the process already has several threads; call tinyo's main before anything spawns a thread (tinyo::main!() must be the test binary's `main`)")]
    Threaded,
    /// A syscall failed.
    #[error("start the fork server: {syscall}: {errno:?} ({})", .errno.desc())]
    Sys {
        /// The syscall.
        syscall: &'static str,
        /// The error.
        #[source]
        errno: Errno,
    },
}

/// Why a container could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The zygote could not be reached, or a syscall preparing the container failed.
    #[error("start the container: {syscall}: {errno:?} ({})", .errno.desc())]
    Channel {
        /// `sendmsg`, `recvmsg`, `dup`, `pidfd_open`.
        syscall: &'static str,
        /// The error.
        #[source]
        errno: Errno,
    },
    /// The zygote closed its end.
    #[error("the fork server exited before starting the container (see its stderr above)")]
    ZygoteGone,
    /// The zygote's answer was malformed.
    #[error("the fork server sent a malformed answer")]
    BadReply,
    /// Writing the container's `uid_map`/`gid_map` failed.
    #[error("map the container's user ids: write /proc/<pid>/uid_map or gid_map: {errno:?} ({}){}", .errno.desc(), idmap_fix(*.errno))]
    IdMap {
        /// The error.
        #[source]
        errno: Errno,
    },
    /// `clone3` failed in the zygote.
    #[error("create the container: clone3({namespaces:?}): {errno:?} ({}){}", .errno.desc(), clone_fix(*.errno))]
    Clone {
        /// The namespaces asked for.
        namespaces: Namespaces,
        /// The error.
        #[source]
        errno: Errno,
    },
}

fn idmap_fix(errno: Errno) -> &'static str {
    match errno {
        Errno::EPERM | Errno::EACCES => "; fix: the kernel refused the id mapping: AppArmor's kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu 24.04) does this to unprivileged users; run as root, or allow user namespaces (sysctl kernel.apparmor_restrict_unprivileged_userns=0)",
        _ => "",
    }
}

fn clone_fix(errno: Errno) -> &'static str {
    match errno {
        Errno::EPERM => "; fix: this environment forbids new namespaces: user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=0 or user.max_user_namespaces=0), or a seccomp profile refuses them (Docker's default: run with --privileged or --security-opt seccomp=unconfined)",
        Errno::ENOSPC | Errno::EUSERS => "; fix: a namespace limit is reached (see /proc/sys/user/max_*_namespaces)",
        Errno::ENOSYS => "; the kernel is older than 5.3 or a seccomp filter refuses clone3 and clone with namespace flags (see the diagnosis)",
        Errno::EINVAL => "; fix: this kernel lacks one of the namespaces (CONFIG_PID_NS, CONFIG_NET_NS, CONFIG_UTS_NS, CONFIG_IPC_NS)",
        _ => "",
    }
}

/// A running fork server.
#[derive(Debug)]
pub struct Zygote {
    sock: Mutex<Option<OwnedFd>>,
    pid: Pid,
}

impl Zygote {
    /// Fork the zygote. Must be called while the process has one thread (at the top of `main`).
    /// `prepare` runs first in the zygote (single-threaded), e.g. to stage bind sources in
    /// its own mount namespace, which every container then starts from. With `cpu`, the
    /// zygote and its containers run on that CPU only, the test bodies excepted (see
    /// [`crate::init::set_body_cpus`]).
    pub fn start(
        entry: Entry,
        warm: Option<WarmEntry>,
        prepare: fn(&SingleThreaded),
        cpu: Option<usize>,
    ) -> Result<Self, ZygoteError> {
        let proof = SingleThreaded::check().ok_or(ZygoteError::Threaded)?;
        let harness = nix::unistd::getpid();
        let (ours, theirs) = real::seqpacket_pair().map_err(|errno| ZygoteError::Sys {
            syscall: "socketpair",
            errno,
        })?;
        match real::fork(&proof).map_err(|errno| ZygoteError::Sys {
            syscall: "fork",
            errno,
        })? {
            Forked::Child(proof) => {
                drop(ours);
                if let Some(cpu) = cpu {
                    crate::init::set_body_cpus(real::allowed_cpus());
                    let _ = real::set_affinity(&[cpu]);
                }
                serve(proof, theirs, harness, entry, warm, prepare)
            }
            Forked::Parent(pid) => Ok(Self {
                sock: Mutex::new(Some(ours)),
                pid,
            }),
        }
    }

    /// Start a container running request `id` in `namespaces` (and always a user namespace
    /// of its own: see [`clone_namespaces`]), with these fds. `poolable`: the request's
    /// container is the one warm containers are made as (the zygote's `WarmEntry` set it
    /// up), so a warm one may serve it.
    pub fn spawn(
        &self,
        id: u32,
        namespaces: Namespaces,
        poolable: bool,
        stdout: BorrowedFd<'_>,
        stderr: BorrowedFd<'_>,
        report: BorrowedFd<'_>,
    ) -> Result<Running, SpawnError> {
        let request = Writer::new()
            .u32(id)
            .u32(namespaces.bits())
            .u8(u8::from(poolable))
            .finish();
        let guard = self
            .sock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let sock = guard.as_ref().ok_or(SpawnError::ZygoteGone)?;
        real::send_with_fds(sock.as_fd(), &request, &[stdout, stderr, report]).map_err(
            |errno| SpawnError::Channel {
                syscall: "sendmsg",
                errno,
            },
        )?;
        let mut buf = [0u8; 16];
        let (n, mut fds) = real::recv_with_fds(sock.as_fd(), &mut buf)
            .map_err(|errno| SpawnError::Channel {
                syscall: "recvmsg",
                errno,
            })?
            .ok_or(SpawnError::ZygoteGone)?;
        drop(guard);
        let mut r = Reader::new(&buf[..n]);
        let (pid, errno, stage) = (
            r.i32().ok_or(SpawnError::BadReply)?,
            r.i32().ok_or(SpawnError::BadReply)?,
            r.u8().ok_or(SpawnError::BadReply)?,
        );
        if errno != 0 {
            return Err(spawn_error(stage, Errno::from_raw(errno), namespaces));
        }
        let pidfd = fds.pop().ok_or(SpawnError::BadReply)?;
        Ok(Running {
            pid: Pid::from_raw(pid),
            pidfd,
            reaped: false,
        })
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        // Closing our end makes the zygote read end-of-stream and exit; then reap it.
        let sock = self
            .sock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        drop(sock);
        let _ = real::wait_pid(self.pid);
    }
}

fn serve(
    proof: SingleThreaded,
    sock: OwnedFd,
    harness: Pid,
    entry: Entry,
    warm_entry: Option<WarmEntry>,
    prepare: fn(&SingleThreaded),
) -> ! {
    // Die with the harness; it may already be gone.
    if RealSys.set_pdeathsig(Signal::SIGKILL).is_err() || nix::unistd::getppid() != harness {
        real::exit_now(1);
    }
    // Hold nothing inherited but this zygote's socket: another zygote's socket held here
    // would keep that one from ever seeing its end of stream.
    let Ok(sock) = real::keep_only(sock) else {
        real::exit_now(1)
    };
    let (euid, egid) = real::effective_ids();
    let maps = IdMaps::for_caller(euid, egid, real::in_init_userns());
    let (parent, devnull) = match (real::pidfd_open(harness), real::open_devnull()) {
        (Ok(parent), Ok(devnull)) => (parent, devnull),
        (Err(errno), _) | (_, Err(errno)) => {
            eprintln!("tinyo: fork server: pidfd_open/open(/dev/null): {errno:?} ({}): needs Linux 5.3 or newer", errno.desc());
            real::exit_now(1)
        }
    };
    // Last: it may change what this process's paths mean.
    prepare(&proof);
    let warm_ns = Namespaces::CONTAINER;
    // Containers made ahead: while the harness runs a test, the next ones set themselves up.
    let make_warm =
        || warm_entry.and_then(|w| clone_warm(&proof, w, warm_ns, &devnull, &parent, &maps).ok());
    let mut warm: std::collections::VecDeque<Warm> =
        std::collections::VecDeque::with_capacity(WARM_POOL);
    let top_up = |pool: &mut std::collections::VecDeque<Warm>| {
        while pool.len() < WARM_POOL {
            match make_warm() {
                Some(w) => pool.push_back(w),
                None => break,
            }
        }
    };
    top_up(&mut warm);
    let mut buf = [0u8; 64];
    loop {
        let (n, fds) = match real::recv_with_fds(sock.as_fd(), &mut buf) {
            Ok(Some(msg)) => msg,
            Ok(None) | Err(_) => {
                // The run is over; warm containers left unused go too.
                for w in warm.drain(..) {
                    let _ = real::pidfd_kill(w.pidfd.as_fd(), Signal::SIGKILL);
                }
                real::exit_now(0)
            }
        };
        let mut r = Reader::new(&buf[..n]);
        let (Some(id), Some(ns), Some(poolable)) = (r.u32(), r.u32(), r.u8()) else {
            continue;
        };
        let Ok::<[OwnedFd; 3], _>(io) = fds.try_into() else {
            continue;
        };
        let namespaces = Namespaces::from_bits_truncate(ns);
        let mut reply = None;
        if poolable == 1 && namespaces == warm_ns {
            if let Some(w) = warm.pop_front() {
                let assignment = Writer::new().u32(id).finish();
                let [a, b, c] = &io;
                if real::send_with_fds(
                    w.ctl.as_fd(),
                    &assignment,
                    &[a.as_fd(), b.as_fd(), c.as_fd()],
                )
                .is_ok()
                {
                    reply = Some((w.pid.as_raw(), 0, 0, Some(w.pidfd)));
                } else {
                    // It died waiting (it cannot have run anything): start cold instead.
                    let _ = real::pidfd_kill(w.pidfd.as_fd(), Signal::SIGKILL);
                }
            }
        }
        let reply = match reply {
            Some(r) => {
                drop(io);
                r
            }
            None => match clone_container(
                &proof,
                entry,
                id,
                namespaces,
                io,
                &devnull,
                &parent,
                real::ParentOf::CallersParent,
                &maps,
            ) {
                Ok((pid, pidfd)) => (pid.as_raw(), 0, 0, Some(pidfd)),
                Err((stage, errno)) => (0, errno as i32, stage, None),
            },
        };
        let bytes = Writer::new().i32(reply.0).i32(reply.1).u8(reply.2).finish();
        let fds: Vec<BorrowedFd<'_>> = reply.3.iter().map(AsFd::as_fd).collect();
        if real::send_with_fds(sock.as_fd(), &bytes, &fds).is_err() {
            real::exit_now(0);
        }
        // This request's fds (and the pidfd) are closed by now, before the next clone, so no
        // other container ever inherits them.
        drop(reply);
        if poolable == 1 {
            top_up(&mut warm);
        }
    }
}

/// The error of a failed [`clone_container`] for `requested` namespaces, from the stage
/// and errno it failed with.
fn spawn_error(stage: u8, errno: Errno, requested: Namespaces) -> SpawnError {
    match stage {
        STAGE_ID_MAP => SpawnError::IdMap { errno },
        _ => SpawnError::Clone {
            namespaces: clone_namespaces(requested),
            errno,
        },
    }
}

/// The namespaces a container is cloned into: the ones asked for, and always a user
/// namespace of its own. A container is never in the host's user namespace (its root would
/// be the host's), nor in one another container has had (what a user namespace holds, such
/// as its `binfmt_misc` handlers, its keyrings and its `/proc/sys/user` limits, would carry
/// from one test to the next).
fn clone_namespaces(requested: Namespaces) -> Namespaces {
    requested | Namespaces::USER
}

/// Clone a warm container: set up ahead, waiting for a test on its control socket.
fn clone_warm(
    proof: &SingleThreaded,
    warm: WarmEntry,
    namespaces: Namespaces,
    devnull: &OwnedFd,
    parent: &OwnedFd,
    maps: &IdMaps,
) -> Result<Warm, (u8, Errno)> {
    let (ours, theirs) = real::seqpacket_pair().map_err(|e| (STAGE_CLONE, e))?;
    let child = move |proof: SingleThreaded, stdin: OwnedFd, parent: OwnedFd| -> Cloned {
        warm(
            proof,
            WarmIo {
                ctl: theirs,
                stdin,
                parent,
            },
        )
    };
    let (pid, pidfd) = clone_with(
        proof,
        namespaces,
        devnull,
        parent,
        real::ParentOf::CallersParent,
        maps,
        child,
    )?;
    Ok(Warm {
        pid,
        pidfd,
        ctl: ours,
    })
}

/// The parent's result of a clone: PID 1's pid and pidfd, or the stage and errno that
/// failed. (The child's side never returns: its closure diverges into the container.)
type Cloned = Result<(Pid, OwnedFd), (u8, Errno)>;

/// Which step of [`clone_container`] failed.
const STAGE_CLONE: u8 = 0;
const STAGE_ID_MAP: u8 = 1;

/// Clone a container running `entry(id)` with these fds; returns PID 1's pid and pidfd.
#[allow(clippy::too_many_arguments)]
fn clone_container(
    proof: &SingleThreaded,
    entry: Entry,
    id: u32,
    namespaces: Namespaces,
    [stdout, stderr, report]: [OwnedFd; 3],
    devnull: &OwnedFd,
    parent: &OwnedFd,
    parent_of: real::ParentOf,
    maps: &IdMaps,
) -> Result<(Pid, OwnedFd), (u8, Errno)> {
    let child = move |proof: SingleThreaded, stdin: OwnedFd, parent: OwnedFd| -> Cloned {
        entry(
            proof,
            id,
            ChildIo {
                stdin,
                stdout,
                stderr,
                report,
                parent,
            },
        )
    };
    clone_with(proof, namespaces, devnull, parent, parent_of, maps, child)
}

/// Clone a process into `namespaces` that runs `child(proof, stdin, parent)`. With a user
/// namespace, the child waits on a pipe until its id maps are written, then takes the
/// container's root ids. In the child this never returns.
fn clone_with(
    proof: &SingleThreaded,
    namespaces: Namespaces,
    devnull: &OwnedFd,
    parent: &OwnedFd,
    parent_of: real::ParentOf,
    maps: &IdMaps,
    child: impl FnOnce(SingleThreaded, OwnedFd, OwnedFd) -> Cloned,
) -> Cloned {
    let namespaces = clone_namespaces(namespaces);
    let sync = if namespaces.contains(Namespaces::USER) {
        Some(real::pipe().map_err(|e| (STAGE_CLONE, e))?)
    } else {
        None
    };
    match real::clone_into(proof, namespaces, parent_of).map_err(|e| (STAGE_CLONE, e))? {
        Forked::Child(proof) => {
            if let Some((ready, go)) = sync {
                drop(go);
                let mut byte = [0u8];
                if real::read(ready.as_fd(), &mut byte) != Ok(1)
                    || real::become_container_root(maps.deny_setgroups).is_err()
                {
                    // The maps were not written or not usable: nothing here could work.
                    real::exit_now(1);
                }
            }
            // A container of the zygote's keeps its PID 1 out of the test's reach: a
            // non-dumpable process cannot be ptraced or have its memory read without
            // capabilities in the host's user namespace. (Taking new ids above did the same
            // as root, but not rootless, where the ids stay the user's. A container started
            // directly is left as it is: started by a test, its PID 1 stays open to that
            // test, which reads its namespaces.)
            if parent_of == real::ParentOf::CallersParent
                && nix::sys::prctl::set_dumpable(false).is_err()
            {
                real::exit_now(1);
            }
            let (stdin, parent) = match (devnull.try_clone(), parent.try_clone()) {
                (Ok(a), Ok(b)) => (a, b),
                _ => real::exit_now(1),
            };
            child(proof, stdin, parent)
        }
        Forked::Parent((pid, pidfd)) => {
            if let Some((ready, go)) = sync {
                drop(ready);
                if let Err((_, errno)) = real::write_id_maps(pid, maps) {
                    let _ = real::pidfd_kill(pidfd.as_fd(), Signal::SIGKILL);
                    return Err((STAGE_ID_MAP, errno));
                }
                real::write_all(go.as_fd(), &[1]).map_err(|e| (STAGE_ID_MAP, e))?;
            }
            Ok((pid, pidfd))
        }
    }
}

/// Start a container as a child of this process, without a zygote: for a process that is
/// itself single-threaded (the stock-harness re-run, before `main`). The container always
/// gets a user namespace of its own.
#[allow(clippy::too_many_arguments)]
pub fn spawn_direct(
    proof: &SingleThreaded,
    entry: Entry,
    id: u32,
    namespaces: Namespaces,
    stdin: Option<BorrowedFd<'_>>,
    stdout: BorrowedFd<'_>,
    stderr: BorrowedFd<'_>,
    report: BorrowedFd<'_>,
) -> Result<Running, SpawnError> {
    let sys = |syscall| move |errno| SpawnError::Channel { syscall, errno };
    let fds = [
        real::dup(stdout).map_err(sys("dup"))?,
        real::dup(stderr).map_err(sys("dup"))?,
        real::dup(report).map_err(sys("dup"))?,
    ];
    let devnull = match stdin {
        Some(fd) => real::dup(fd).map_err(sys("dup"))?,
        None => real::open_devnull().map_err(sys("open(/dev/null)"))?,
    };
    let me = real::pidfd_open(nix::unistd::getpid()).map_err(sys("pidfd_open"))?;
    let (euid, egid) = real::effective_ids();
    let (pid, pidfd) = clone_container(
        proof,
        entry,
        id,
        namespaces,
        fds,
        &devnull,
        &me,
        real::ParentOf::Caller,
        &IdMaps::for_caller(euid, egid, real::in_init_userns()),
    )
    .map_err(|(stage, errno)| spawn_error(stage, errno, namespaces))?;
    Ok(Running {
        pid,
        pidfd,
        reaped: false,
    })
}

/// A pipe from a container and where its bytes go.
pub type Pipe<'fd, 'sink> = (BorrowedFd<'fd>, &'sink mut dyn FnMut(&[u8]));

/// A running container, as the harness holds it. Dropping it without [`Running::wait`]
/// kills and reaps it: a container never outlives its handle.
#[derive(Debug)]
pub struct Running {
    pid: Pid,
    pidfd: OwnedFd,
    reaped: bool,
}

impl Running {
    /// PID 1's pid, in the harness's PID namespace.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The pidfd of PID 1: polls readable once the whole container has exited.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// `SIGKILL` PID 1; the kernel then kills every process of the container's PID namespace.
    pub fn kill(&self) -> Result<(), Errno> {
        real::pidfd_kill(self.pidfd.as_fd(), Signal::SIGKILL)
    }

    /// Read `pipes` (each into its sink) until every one is at end of file and PID 1 has
    /// exited, killing the container at `timeout`. Returns whether it was killed.
    pub fn drain(
        &self,
        timeout: std::time::Duration,
        pipes: &mut [Pipe<'_, '_>],
    ) -> Result<bool, Errno> {
        let deadline = std::time::Instant::now() + timeout;
        let (mut timed_out, mut exited) = (false, false);
        let mut open = vec![true; pipes.len()];
        let mut buf = vec![0u8; 64 * 1024];
        while open.iter().any(|o| *o) || !exited {
            let mut fds: Vec<BorrowedFd<'_>> = pipes
                .iter()
                .zip(&open)
                .filter(|(_, o)| **o)
                .map(|((fd, _), _)| *fd)
                .collect();
            if !exited {
                fds.push(self.pidfd());
            }
            let wait_ms = if exited || timed_out {
                None
            } else {
                Some(
                    deadline
                        .saturating_duration_since(std::time::Instant::now())
                        .as_millis() as u64,
                )
            };
            let ready = real::poll_readable(&fds, wait_ms)?;
            if !ready.iter().any(|r| *r) {
                // The deadline: SIGKILL to PID 1 takes its whole PID namespace with it.
                let _ = self.kill();
                timed_out = true;
                continue;
            }
            let mut i = 0;
            for ((fd, sink), is_open) in pipes.iter_mut().zip(open.iter_mut()) {
                if !*is_open {
                    continue;
                }
                if ready[i] {
                    let n = real::read(*fd, &mut buf)?;
                    *is_open = n > 0;
                    sink(&buf[..n]);
                }
                i += 1;
            }
            if !exited && ready[i] {
                exited = true;
            }
        }
        Ok(timed_out)
    }

    /// Reap PID 1.
    pub fn wait(mut self) -> Result<Termination, Errno> {
        let t = real::wait_pidfd(self.pidfd.as_fd());
        self.reaped = t.is_ok();
        t
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.kill();
            let _ = real::wait_pidfd(self.pidfd.as_fd());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_always_has_a_user_namespace_of_its_own() {
        let base = Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS | Namespaces::IPC;
        assert_eq!(clone_namespaces(base), base | Namespaces::USER);
        assert_eq!(
            clone_namespaces(base | Namespaces::USER),
            base | Namespaces::USER
        );
    }
}
