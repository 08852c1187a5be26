#!/usr/bin/env python3
"""tinyo's benchmark: the same empty tests, side by side, in one run.

    python3 bench/run.py                   # N = 100 500 2000, --test-threads 1 and 2, 3 reps
    python3 bench/run.py --n 500 --reps 5  # a quicker look

Variants (per test: wall time, machine CPU; medians of the reps):
  libtest    plain #[test], in-process (no isolation at all)
  nextest    plain #[test] under `cargo nextest run` (a process per test, no isolation)
  host-net   tinyo isolated, net = "host" (no network namespace)
  tinyo      tinyo isolated, default (own network namespace, lo up)
  rootless   tinyo isolated, default, run as nobody
  bwrap      each test wrapped in `bwrap --unshare-all ...` (where bwrap is installed)
  unshare    each test wrapped in `unshare --pid --fork --mount --uts --net --ipc --mount-proc`
  floor      the C floor of ../shared/reference/floor: iso -f pmuinU (user, pid, mount, uts,
             ipc, net namespaces; full root filesystem; exec by fd), built here
  floor-nonet  iso -f pmuiU (the same without a network namespace), the floor of host-net

Writes bench/results/latest.md (tables, ratios to the floor and to tinyo) and
bench/results/latest.svg (per-test wall time at each N and thread count). Run as root.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOOR_SRC = os.path.join(ROOT, "..", "shared", "reference", "floor")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def busy_seconds():
    """Busy CPU time of the whole machine (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def settle(limit=5.0):
    """Wait for asynchronous teardown (network namespaces) to finish: a quiet 100 ms."""
    start = time.time()
    while time.time() - start < limit:
        b0 = busy_seconds()
        time.sleep(0.1)
        if busy_seconds() - b0 < 0.02:
            return


def measure(cmd, n, env=None, cwd=None):
    """Run cmd; return (wall per test in ms, machine CPU per test in ms, max RSS in KiB)."""
    settle()
    b0, t0 = busy_seconds(), time.time()
    proc = subprocess.run(["/usr/bin/env", "time", "-f", "%M"] + cmd, capture_output=True, text=True, env=env, cwd=cwd)
    wall = time.time() - t0
    settle()
    cpu = busy_seconds() - b0  # the settle windows before and after are quiet by construction
    if proc.returncode != 0:
        sys.exit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    rss = int(proc.stderr.strip().splitlines()[-1]) if proc.stderr.strip() else 0
    return wall * 1e3 / n, cpu * 1e3 / n, rss


def build():
    out = subprocess.run(
        ["cargo", "test", "--release", "-p", "tinyo-bench", "--no-run", "--message-format=json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    bins = {}
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and "test" in msg["target"]["kind"]:
            bins[msg["target"]["name"]] = msg["executable"]
    return bins


def build_floor(tmp):
    dst = os.path.join(tmp, "floor")
    shutil.copytree(FLOOR_SRC, dst)
    for root, dirs, files in os.walk(dst):
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o755)
    subprocess.run(["make", "-s"], cwd=dst, check=True, capture_output=True)
    os.makedirs(os.path.join(dst, "newroot"), exist_ok=True)
    return dst


def floor_per_test(floor, flags, n, threads):
    """The floor's wall time per run (from its throughput) and machine CPU per run."""
    cmd = [os.path.join(floor, "iso"), "-n", str(n // threads), "-f", flags, "-m", "exec", "-F", "-x", os.path.join(floor, "true_tiny"), "-j", str(threads)]
    out = subprocess.run(cmd, cwd=floor, capture_output=True, text=True, check=True).stdout
    throughput = float(re.search(r"throughput=(\d+) runs/s", out).group(1))
    cpu = float(re.search(r"incl. async settle=(\d+)us", out).group(1))
    return 1e3 / throughput, cpu / 1e3, 0


def wrapped(wrapper, plain, names, threads):
    """Each test in its own wrapper process, `threads` at a time."""
    script = os.path.join(tempfile.mkdtemp(), "run.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nexec " + " ".join(wrapper) + f" {plain} --exact \"$1\" -q >/dev/null\n")
    os.chmod(script, 0o755)
    return ["sh", "-c", f"printf '%s\\n' {' '.join(names)} | xargs -P {threads} -n 1 {script}"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[100, 500, 2000])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "latest"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run the benchmark as root (it also runs tinyo as nobody, and the floor needs root)")

    bins = build()
    iso, hostnet, plain = bins["empty_isolated"], bins["empty_isolated_hostnet"], bins["empty_plain"]
    tmp = tempfile.mkdtemp(prefix="tinyo-bench-")
    floor = build_floor(tmp)
    bwrap = shutil.which("bwrap")
    bench_dir = os.path.join(ROOT, "bench")
    all_names = subprocess.run([plain, "--list", "--format", "terse"], capture_output=True, text=True, check=True).stdout
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    bwrap_args = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
                  "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin", "--ro-bind", "/etc", "/etc",
                  "--ro-bind", plain, plain, "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"] if bwrap else None
    unshare_args = ["unshare", "--pid", "--fork", "--mount", "--uts", "--net", "--ipc", "--mount-proc"]

    results = {}  # (variant, n, threads) -> [(wall, cpu, rss)]
    for n in args.n:
        names = [l[: -len(": test")] for l in all_names.splitlines() if l.startswith(f"n{n}::")]
        assert len(names) == n, (n, len(names))
        for t in args.threads:
            variants = {
                "libtest": lambda: measure([plain, f"n{n}::", "-q", "--test-threads", str(t)], n),
                "nextest": lambda: measure(["cargo", "nextest", "run", "--release", "-p", "tinyo-bench", "--test", "empty_plain",
                                            "-E", f"test(/^n{n}::/)", "--test-threads", str(t), "--cargo-quiet", "--status-level", "none",
                                            "--final-status-level", "none"], n, cwd=ROOT),
                "host-net": lambda: measure([hostnet, f"n{n}::", "-q", "--test-threads", str(t)], n, cwd=bench_dir),
                "tinyo": lambda: measure([iso, f"n{n}::", "-q", "--test-threads", str(t)], n, cwd=bench_dir),
                "rootless": lambda: measure(nobody + [iso, f"n{n}::", "-q", "--test-threads", str(t)], n, cwd=bench_dir),
                "unshare": lambda: measure(wrapped(unshare_args, plain, names, t), n),
                "floor": lambda: floor_per_test(floor, "pmuinU", n, t),
                "floor-nonet": lambda: floor_per_test(floor, "pmuiU", n, t),
            }
            if bwrap_args:
                variants["bwrap"] = lambda: measure(wrapped(bwrap_args, plain, names, t), n)
            for rep in range(args.reps):
                for name, run in variants.items():
                    results.setdefault((name, n, t), []).append(run())
                    print(f"n={n} threads={t} rep={rep + 1} {name}: {results[(name, n, t)][-1][0]:.3f} ms/test", file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    report(results, args)


ORDER = ["libtest", "nextest", "floor-nonet", "host-net", "floor", "tinyo", "rootless", "unshare", "bwrap"]


def report(results, args):
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v), max(r[2] for r in v)) for k, v in results.items()}
    variants = [v for v in ORDER if any(k[0] == v for k in med)]
    lines = ["# tinyo benchmark", "", f"`python3 bench/run.py --n {' '.join(map(str, args.n))} --threads {' '.join(map(str, args.threads))} --reps {args.reps}`, "
             f"{time.strftime('%Y-%m-%d')}, `{os.uname().release}`, {os.cpu_count()} CPUs. Medians of {args.reps} runs.", ""]
    for n in args.n:
        for t in args.threads:
            f, ti = med.get(("floor", n, t)), med.get(("tinyo", n, t))
            lines += [f"## N = {n}, --test-threads {t}", "",
                      "| variant | wall per test (ms) | machine CPU per test (ms) | max RSS (MiB) | wall vs floor | wall vs tinyo |",
                      "|---|---|---|---|---|---|"]
            for v in variants:
                m = med.get((v, n, t))
                if not m:
                    continue
                lines.append(f"| {v} | {m[0]:.3f} | {m[1]:.3f} | {m[2] / 1024:.1f} | {m[0] / f[0]:.2f}x | {m[0] / ti[0]:.2f}x |")
            lines.append("")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".md", "w") as fh:
        fh.write("\n".join(lines))
    with open(args.out + ".svg", "w") as fh:
        fh.write(svg(med, variants, args))
    print("\n".join(lines))


def svg(med, variants, args):
    groups = [(n, t) for n in args.n for t in args.threads]
    colors = {"libtest": "#bbbbbb", "nextest": "#888888", "floor-nonet": "#9ecae1", "host-net": "#3182bd", "floor": "#a1d99b",
              "tinyo": "#31a354", "rootless": "#74c476", "unshare": "#fdae6b", "bwrap": "#e6550d"}
    top = max(m[0] for m in med.values())
    width, height, left, bottom = 120 + len(groups) * (len(variants) * 14 + 30), 420, 60, 360
    bar = 12
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 150}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="20" font-size="14">Wall time per empty test (ms), lower is better</text>']
    for i in range(6):
        v = top * i / 5
        y = bottom - (bottom - 40) * i / 5
        out.append(f'<line x1="{left}" x2="{width}" y1="{y:.0f}" y2="{y:.0f}" stroke="#eee"/><text x="{left - 5}" y="{y + 4:.0f}" text-anchor="end">{v:.1f}</text>')
    x = left + 10
    for n, t in groups:
        for v in variants:
            m = med.get((v, n, t))
            if m:
                h = (bottom - 40) * m[0] / top
                out.append(f'<rect x="{x}" y="{bottom - h:.1f}" width="{bar}" height="{h:.1f}" fill="{colors[v]}"><title>{v}: {m[0]:.3f} ms</title></rect>')
            x += bar + 2
        out.append(f'<text x="{x - (bar + 2) * len(variants) / 2:.0f}" y="{bottom + 18}" text-anchor="middle">N={n}, {t} thr</text>')
        x += 30
    for i, v in enumerate(variants):
        out.append(f'<rect x="{width + 10}" y="{40 + i * 18}" width="12" height="12" fill="{colors[v]}"/><text x="{width + 28}" y="{50 + i * 18}">{v}</text>')
    out.append("</svg>")
    return "\n".join(out)


if __name__ == "__main__":
    main()
