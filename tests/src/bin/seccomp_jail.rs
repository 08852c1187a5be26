//! `tinyo-seccomp-jail [--clone3-only] CMD ARGS…`: run CMD under a seccomp filter that
//! refuses to create namespaces, as Docker's default profile does (`clone3` → ENOSYS so libc
//! falls back to `clone`; `unshare` and `clone` with any `CLONE_NEW*` flag → EPERM). With
//! `--clone3-only`, only `clone3` is refused (Docker's profile with `--cap-add SYS_ADMIN`).
//! For the diagnosis tests in `tests/diagnosis.rs`.

use std::os::unix::process::CommandExt;

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const CLONE_NEW_ANY: u32 = 0x7E02_0000;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> nix::libc::sock_filter {
    nix::libc::sock_filter { code, jt, jf, k }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let clone3_only = args.first().is_some_and(|a| a == "--clone3-only");
    if clone3_only {
        args.remove(0);
    }
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("usage: tinyo-seccomp-jail CMD [ARGS…]");
        std::process::exit(2);
    };
    let mut filter = vec![
        insn(LD_W_ABS, 0, 0, 0), // syscall number
        insn(JEQ_K, 0, 1, nix::libc::SYS_clone3 as u32),
        insn(RET_K, 0, 0, RET_ERRNO | nix::libc::ENOSYS as u32),
    ];
    filter.extend(if clone3_only {
        vec![]
    } else {
        vec![
            insn(JEQ_K, 0, 1, nix::libc::SYS_unshare as u32),
            insn(RET_K, 0, 0, RET_ERRNO | nix::libc::EPERM as u32),
            insn(JEQ_K, 0, 3, nix::libc::SYS_clone as u32),
            insn(LD_W_ABS, 0, 0, 16), // low half of args[0], the flags
            insn(JSET_K, 0, 1, CLONE_NEW_ANY),
            insn(RET_K, 0, 0, RET_ERRNO | nix::libc::EPERM as u32),
        ]
    });
    filter.push(insn(RET_K, 0, 0, RET_ALLOW));
    let prog = nix::libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: plain prctl calls; `prog` points at a valid filter that outlives them.
    #[allow(unsafe_code)]
    let installed = unsafe {
        nix::libc::prctl(nix::libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && nix::libc::prctl(
                nix::libc::PR_SET_SECCOMP,
                nix::libc::SECCOMP_MODE_FILTER,
                &prog as *const nix::libc::sock_fprog,
            ) == 0
    };
    if !installed {
        eprintln!(
            "tinyo-seccomp-jail: install the filter: {}",
            std::io::Error::last_os_error()
        );
        std::process::exit(2);
    }
    let err = std::process::Command::new(cmd).args(rest).exec();
    eprintln!("tinyo-seccomp-jail: exec {cmd}: {err}");
    std::process::exit(127);
}
