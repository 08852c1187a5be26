//! A real container, made once to see whether isolation works here (`tinyo doctor`).

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use tinyo_rootfs::{DeviceMode, RootfsConfig};

use crate::diagnose::FailedAt;
use crate::init::ChildIo;
use crate::outcome::Outcome;
use crate::report::Report;
use crate::setup::{NetMode, Spec};
use crate::sys::real::{self, SingleThreaded};
use crate::zygote::{spawn_direct, SpawnError};
use crate::Namespaces;

/// Why the probe container failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The container could not be created.
    #[error("{0}")]
    Spawn(SpawnError),
    /// It was created and its setup or run failed.
    #[error("{0}")]
    Run(Outcome),
    /// Waiting for it failed.
    #[error("wait for the probe container: {errno:?} ({})", .errno.desc())]
    Wait {
        /// The error.
        errno: Errno,
    },
}

impl ProbeError {
    /// The environmental failure behind this error, for [`crate::diagnose::diagnose`].
    pub fn failed_at(&self) -> Option<FailedAt> {
        match self {
            Self::Spawn(e) => FailedAt::from_spawn(e),
            Self::Run(Outcome::SetupFailed(e)) => FailedAt::from_setup(e),
            _ => None,
        }
    }
}

fn wait(errno: Errno) -> ProbeError {
    ProbeError::Wait { errno }
}

fn probe_entry(proof: SingleThreaded, _id: u32, io: ChildIo) -> ! {
    let mut config = RootfsConfig::new("tinyo-probe");
    config.devices = DeviceMode::BindHost;
    let spec = Spec::new(
        "tinyo-probe",
        NetMode::Loopback,
        tinyo_rootfs::plan(&config, &real::host_facts()),
    );
    crate::init::run(proof, &spec, io, &|| Ok(()))
}

/// Make one full container (user, PID, mount, UTS, IPC and network namespaces, the default
/// root filesystem, hostname, `lo` up) with an empty body. This process must be
/// single-threaded. Returns how long it took.
pub fn probe(proof: &SingleThreaded) -> Result<Duration, ProbeError> {
    let start = Instant::now();
    let ns = Namespaces::CONTAINER;
    let (report_r, report_w) = real::pipe().map_err(wait)?;
    let devnull = real::open_devnull().map_err(wait)?;
    let container = spawn_direct(
        proof,
        probe_entry,
        0,
        ns,
        None,
        devnull.as_fd(),
        devnull.as_fd(),
        report_w.as_fd(),
    )
    .map_err(ProbeError::Spawn)?;
    drop(report_w);
    let mut report = Vec::new();
    let mut to_report = |b: &[u8]| report.extend_from_slice(b);
    container
        .drain(
            Duration::from_secs(10),
            &mut [(report_r.as_fd(), &mut to_report)],
        )
        .map_err(wait)?;
    let init = container.wait().map_err(wait)?;
    match Outcome::decide(Report::decode(&report), init, None) {
        Outcome::Passed => Ok(start.elapsed()),
        other => Err(ProbeError::Run(other)),
    }
}
