//! `tinyo-userns-jail UID CMD ARGS…`: run CMD as UID inside a throw-away user namespace
//! (ids 0..65536 mapped to the same host ids) whose `user.max_user_namespaces` is 0: an
//! ordinary user on a machine without user namespaces. Must be started as root. For the
//! diagnosis tests in `tests/diagnosis.rs`.

use std::os::unix::process::CommandExt;

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("tinyo-userns-jail: {what}: {e}");
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(uid), Some((cmd, rest))) = (
        args.first().and_then(|u| u.parse::<u32>().ok()),
        args.get(1..).and_then(|a| a.split_first()),
    ) else {
        fail("usage", "tinyo-userns-jail UID CMD [ARGS…]");
    };
    let (ready_r, ready_w) = nix::unistd::pipe().unwrap_or_else(|e| fail("pipe", e));
    let (go_r, go_w) = nix::unistd::pipe().unwrap_or_else(|e| fail("pipe", e));
    // SAFETY: this program is single-threaded.
    #[allow(unsafe_code)]
    match unsafe { nix::unistd::fork() }.unwrap_or_else(|e| fail("fork", e)) {
        nix::unistd::ForkResult::Child => {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                .unwrap_or_else(|e| fail("unshare", e));
            nix::unistd::write(&ready_w, b"r").unwrap_or_else(|e| fail("write", e));
            let mut b = [0u8];
            nix::unistd::read(&go_r, &mut b).unwrap_or_else(|e| fail("read", e));
            let root = nix::unistd::Uid::from_raw(0);
            nix::unistd::setresuid(root, root, root).unwrap_or_else(|e| fail("setresuid", e));
            std::fs::write("/proc/sys/user/max_user_namespaces", "0")
                .unwrap_or_else(|e| fail("limit user namespaces", e));
            let gid = nix::unistd::Gid::from_raw(uid);
            nix::unistd::setgroups(&[]).unwrap_or_else(|e| fail("setgroups", e));
            nix::unistd::setresgid(gid, gid, gid).unwrap_or_else(|e| fail("setresgid", e));
            let user = nix::unistd::Uid::from_raw(uid);
            nix::unistd::setresuid(user, user, user).unwrap_or_else(|e| fail("setresuid", e));
            let err = std::process::Command::new(cmd).args(rest).exec();
            fail("exec", err)
        }
        nix::unistd::ForkResult::Parent { child } => {
            let mut b = [0u8];
            nix::unistd::read(&ready_r, &mut b).unwrap_or_else(|e| fail("read", e));
            for file in ["uid_map", "gid_map"] {
                std::fs::write(format!("/proc/{child}/{file}"), "0 0 65536")
                    .unwrap_or_else(|e| fail(file, e));
            }
            nix::unistd::write(&go_w, b"g").unwrap_or_else(|e| fail("write", e));
            let code = match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => c,
                _ => 1,
            };
            std::process::exit(code);
        }
    }
}
