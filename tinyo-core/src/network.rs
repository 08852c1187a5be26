//! Private networks between containers: test distributed code across several hosts.
//!
//! From the body of an isolated test (which has its own network namespace), a [`Network`]
//! makes a bridge there and starts further containers, "hosts", each with its own
//! hostname, network namespace and address, plugged into the bridge by a veth pair, and
//! every host's name in every host's `/etc/hosts`. Nothing is made in the machine's own
//! network namespace: it all lives in the test's, and goes with it.
//!
//! ```no_run
//! use tinyo_core::network::Network;
//!
//! fn server() { /* listen on 0.0.0.0:7000 */ }
//! fn client() { /* connect to a:7000 */ }
//!
//! let net = Network::new(&["a", "b"]).unwrap();
//! let a = net.spawn("a", server).unwrap();
//! let b = net.spawn("b", client).unwrap();
//! net.partition(&["a"], &["b"]).unwrap(); // a and b cannot reach each other
//! net.heal().unwrap();
//! a.kill();
//! assert!(b.wait().unwrap().status.is_some());
//! ```

use std::path::PathBuf;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use crate::container::{Child, Container, Output, RunError};

/// The bridge every host is plugged into, in the test's network namespace.
const BRIDGE: &str = "tinyo-br0";
/// The second bridge a partition moves hosts to.
const CUT: &str = "tinyo-br1";
/// The private range hosts get addresses from by default (`.1`, `.2`…).
pub const DEFAULT_PREFIX: &str = "10.201.0";

/// What went wrong with a test network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// A command of iproute2 failed.
    #[error("tinyo network: {step}: {detail}")]
    Ip {
        /// What was being done.
        step: String,
        /// Its error output.
        detail: String,
    },
    /// A host could not be started.
    #[error("tinyo network: start host `{host}`: {source}")]
    Start {
        /// The host.
        host: String,
        /// Why.
        #[source]
        source: RunError,
    },
    /// The address prefix is not three bytes (`"10.77.3"`).
    #[error("tinyo network: `{0}` is not an address prefix like \"10.77.3\" (the first three bytes of a /24)")]
    Prefix(String),
    /// The name is not one of the network's, or not a usable name.
    #[error("tinyo network: `{0}` is not a host of this network (or not a name of 1 to 12 letters, digits and hyphens)")]
    Name(String),
}

fn ip(step: &str, args: &[&str]) -> Result<(), NetworkError> {
    run_tool("ip", step, args)
}

fn run_tool(tool: &str, step: &str, args: &[&str]) -> Result<(), NetworkError> {
    let out = Process::new(tool)
        .args(args)
        .output()
        .map_err(|e| NetworkError::Ip {
            step: step.into(),
            detail: format!("run `{tool}`: {e} (iproute2 is needed)"),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Ip {
            step: step.into(),
            detail: format!(
                "{tool} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// A private network of named hosts.
#[derive(Debug)]
pub struct Network {
    names: Vec<String>,
    prefix: String,
}

/// A host of a [`Network`]: a container running a function or a program.
#[derive(Debug)]
pub struct Host {
    name: String,
    addr: String,
    child: Option<Child>,
    pid: u32,
}

impl Network {
    /// Make the network's bridge, for hosts with these names (1 to 12 letters, digits and
    /// hyphens; each gets `10.201.0.N` in order). Must be called from a test with its own
    /// network namespace (the default, not `net = "host"`).
    pub fn new(names: &[&str]) -> Result<Self, NetworkError> {
        Self::with_prefix(names, DEFAULT_PREFIX)
    }

    /// [`Network::new`] with addresses `<prefix>.1`, `<prefix>.2`… (`prefix` is the first
    /// three bytes of a `/24`, e.g. `"10.77.3"`; the network exists only in the test).
    pub fn with_prefix(names: &[&str], prefix: &str) -> Result<Self, NetworkError> {
        let bytes: Vec<Option<u8>> = prefix.split('.').map(|b| b.parse().ok()).collect();
        if bytes.len() != 3 || bytes.iter().any(Option::is_none) {
            return Err(NetworkError::Prefix(prefix.to_owned()));
        }
        if names.len() > 253 {
            return Err(NetworkError::Name(format!(
                "{} hosts (at most 253)",
                names.len()
            )));
        }
        for name in names {
            if name.is_empty()
                || name.len() > 12
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(NetworkError::Name((*name).to_owned()));
            }
        }
        ip(
            "make the bridge (the test needs its own network namespace: not net = \"host\")",
            &["link", "add", BRIDGE, "type", "bridge"],
        )?;
        // The test itself is on the network too, at .254: it can watch and drive its hosts.
        ip(
            "address the bridge",
            &["addr", "add", &format!("{prefix}.254/24"), "dev", BRIDGE],
        )?;
        ip("bring the bridge up", &["link", "set", BRIDGE, "up"])?;
        Ok(Self {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            prefix: prefix.to_owned(),
        })
    }

    fn addr(&self, name: &str) -> Result<String, NetworkError> {
        let i = self
            .names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| NetworkError::Name(name.to_owned()))?;
        Ok(format!("{}.{}", self.prefix, i + 1))
    }

    fn container(&self, name: &str) -> Result<Container, NetworkError> {
        let addr = self.addr(name)?;
        let mut c = Container::new().hostname(name).attach(format!("{addr}/24"));
        for other in &self.names {
            c = c.host_entry(other.clone(), self.addr(other)?);
        }
        Ok(c)
    }

    /// Start host `name` running `f`, a function of this test binary.
    pub fn spawn(&self, name: &str, f: fn()) -> Result<Host, NetworkError> {
        let command = self.container(name)?.function(name, f);
        self.plug(name, command.spawn())
    }

    /// Start host `name` running a program.
    pub fn command(&self, name: &str, program: &str, args: &[&str]) -> Result<Host, NetworkError> {
        let command = self.container(name)?.command(program, args.iter().copied());
        self.plug(name, command.spawn())
    }

    fn plug(&self, name: &str, child: Result<Child, RunError>) -> Result<Host, NetworkError> {
        let child = child.map_err(|source| NetworkError::Start {
            host: name.to_owned(),
            source,
        })?;
        let pid = child.id();
        // The host's PID 1 makes its own network namespace: wait for it, or the veth's end
        // would land in ours.
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(5);
        if !crate::container::poll_until(deadline, || {
            std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|ns| ns != ours)
        }) {
            return Err(NetworkError::Ip {
                step: format!("plug in host `{name}`"),
                detail: "its network namespace never appeared".into(),
            });
        }
        let veth = format!("v-{name}");
        // A host of the same name that just died may leave its end for a moment.
        let _ = Process::new("ip").args(["link", "del", &veth]).output();
        let pid_text = pid.to_string();
        ip(
            &format!("plug in host `{name}`"),
            &[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &pid_text,
            ],
        )?;
        ip(
            &format!("plug in host `{name}`"),
            &["link", "set", &veth, "master", BRIDGE, "up"],
        )?;
        Ok(Host {
            name: name.to_owned(),
            addr: self.addr(name)?,
            child: Some(child),
            pid,
        })
    }

    /// Cut the network in two: the hosts of `a` reach each other, those of `b` each other,
    /// and no host of one side reaches one of the other (until [`Network::heal`]).
    pub fn partition(&self, a: &[&str], b: &[&str]) -> Result<(), NetworkError> {
        for name in a.iter().chain(b) {
            self.addr(name)?;
        }
        let _ = ip(
            "make the partition's bridge",
            &["link", "add", CUT, "type", "bridge"],
        );
        ip(
            "bring the partition's bridge up",
            &["link", "set", CUT, "up"],
        )?;
        for name in a {
            ip(
                &format!("partition host `{name}`"),
                &["link", "set", &format!("v-{name}"), "master", CUT],
            )?;
        }
        Ok(())
    }

    /// Undo every partition.
    pub fn heal(&self) -> Result<(), NetworkError> {
        for name in &self.names {
            let veth = format!("v-{name}");
            if PathBuf::from(format!("/sys/class/net/{veth}")).exists() {
                ip(
                    &format!("heal host `{name}`"),
                    &["link", "set", &veth, "master", BRIDGE],
                )?;
            }
        }
        Ok(())
    }

    /// Delay, loss and the like on host `name`'s link, as `tc netem` arguments
    /// (`"delay 100ms"`, `"loss 20%"`); says so where netem is unavailable.
    pub fn netem(&self, name: &str, args: &str) -> Result<(), NetworkError> {
        self.addr(name)?;
        let veth = format!("v-{name}");
        let mut all = vec!["qdisc", "replace", "dev", &veth, "root", "netem"];
        all.extend(args.split_whitespace());
        run_tool("tc", &format!("netem on host `{name}` (tc netem is unavailable here if the kernel lacks sch_netem)"), &all)
    }
}

impl Host {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Kill it: every process in it.
    pub fn kill(&self) {
        if let Some(child) = &self.child {
            let _ = child.kill();
        }
    }

    fn signal_all(&self, signal: nix::sys::signal::Signal) -> Result<(), NetworkError> {
        let Ok(ns) = std::fs::read_link(format!("/proc/{}/ns/pid", self.pid)) else {
            return Ok(());
        };
        for entry in std::fs::read_dir("/proc")
            .map_err(|e| NetworkError::Ip {
                step: "list processes".into(),
                detail: e.to_string(),
            })?
            .flatten()
        {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            if std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|p| p == ns) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
            }
        }
        Ok(())
    }

    /// Stop every process of the host (`SIGSTOP`), as a frozen machine.
    pub fn pause(&self) -> Result<(), NetworkError> {
        self.signal_all(nix::sys::signal::Signal::SIGSTOP)
    }

    /// Let a paused host go on (`SIGCONT`).
    pub fn resume(&self) -> Result<(), NetworkError> {
        self.signal_all(nix::sys::signal::Signal::SIGCONT)
    }

    /// Wait for it to end; its exit status and output.
    pub fn wait(mut self) -> Result<Output, RunError> {
        match self.child.take() {
            Some(child) => child.wait_with_output(),
            None => Err(RunError::Io {
                what: "wait for a host",
                errno: nix::errno::Errno::ECHILD,
            }),
        }
    }
}

impl Drop for Host {
    /// A host not waited for is killed with the test; its output is shown, each line
    /// prefixed by its name (it lands in the test's captured output, shown if it fails).
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = child.kill();
            if let Ok(out) = child.wait_with_output() {
                let mut text = String::new();
                for line in String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .chain(String::from_utf8_lossy(&out.stderr).lines())
                {
                    text.push_str(&format!("[{}] {line}\n", self.name));
                }
                let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
            }
        }
    }
}
