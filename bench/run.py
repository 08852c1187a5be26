#!/usr/bin/env python3
"""tinyo's benchmark: the same empty tests, side by side, in one run.

    python3 bench/run.py                   # N = 100 500 2000, --test-threads 1 and 2, 7 reps
    python3 bench/run.py --n 500 --reps 5  # a quicker look

Variants (per test: wall time, machine CPU; medians of the reps):
  libtest    plain #[test], in-process (no isolation at all)
  nextest    plain #[test] under `cargo nextest run` (a process per test, no isolation)
  host-net   tinyo isolated, net = "host" (no network namespace)
  tinyo      tinyo isolated, default (own network namespace, lo up)
  rootless   tinyo isolated, default, run as nobody
  bwrap      each test wrapped in `bwrap --unshare-all ...` (bubblewrap is installed with
             apt-get if missing; left out, with a note, where it cannot be)
  unshare    each test wrapped in `unshare --pid --fork --mount --uts --net --ipc --mount-proc`
  floor      the C floor of ../shared/reference/floor, built here: iso -f pmuin -m exec -F
             (pid, mount, uts, ipc and net namespaces, full root filesystem, exec by fd), as
             root: the floor the targets are measured against
  floor-userns  iso -f pmuinU: the same in a user namespace, the isolation tinyo gives (its
             containers are always in one)
  floor-nonet  iso -f pmui (no network namespace), the floor of host-net

Writes bench/results/latest.md (the targets, then tables with ratios to the floor and to
tinyo), latest.svg (per-test wall time at each N and thread count) and latest.json (every
rep's figures). Run as root.
"""

import argparse
import atexit
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


def install_bwrap():
    """bubblewrap, one of the peers compared, from the distribution (Debian/Ubuntu); the run
    goes on without it where it cannot be installed."""
    if not shutil.which("apt-get"):
        print("bwrap is not installed and there is no apt-get: the bwrap variant is left out", file=sys.stderr)
        return None
    print("installing bubblewrap (apt-get) for the bwrap variant", file=sys.stderr)
    ok = subprocess.run(["apt-get", "update", "-qq"], capture_output=True).returncode == 0 and \
        subprocess.run(["apt-get", "install", "-y", "-qq", "bubblewrap"], capture_output=True).returncode == 0
    if not ok:
        print("apt-get could not install bubblewrap: the bwrap variant is left out", file=sys.stderr)
    return shutil.which("bwrap")


def build_floor(src, tmp):
    dst = os.path.join(tmp, "floor")
    shutil.copytree(src, dst)
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


def wrapped(wrapper, plain, names, threads, tmp):
    """Each test in its own wrapper process, `threads` at a time (the script goes in tmp)."""
    script = os.path.join(tmp, f"run-{os.path.basename(wrapper[0])}.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nexec " + " ".join(wrapper) + f" {plain} --exact \"$1\" -q >/dev/null\n")
    os.chmod(script, 0o755)
    return ["sh", "-c", f"printf '%s\\n' {' '.join(names)} | xargs -P {threads} -n 1 {script}"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[100, 500, 2000])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "latest"))
    ap.add_argument("--floor-src", default=FLOOR_SRC, help="the C floor's sources (default: ../shared/reference/floor)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run the benchmark as root (it also runs tinyo as nobody, and the floor needs root)")

    bins = build()
    iso, hostnet, plain = bins["empty_isolated"], bins["empty_isolated_hostnet"], bins["empty_plain"]
    tmp = tempfile.mkdtemp(prefix="tinyo-bench-")
    atexit.register(shutil.rmtree, tmp, True)  # also when a variant fails (sys.exit)
    floor = build_floor(args.floor_src, tmp) if os.path.isdir(args.floor_src) else None
    if floor is None:
        print(f"the C floor's sources are not at {args.floor_src} (--floor-src): the floor variants are left out", file=sys.stderr)
    bwrap = shutil.which("bwrap") or install_bwrap()
    bench_dir = os.path.join(ROOT, "bench")
    all_names = subprocess.run([plain, "--list", "--format", "terse"], capture_output=True, text=True, check=True).stdout
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    bwrap_args = [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
                  "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin", "--ro-bind", "/etc", "/etc",
                  "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                  # Last: the binary may live under /tmp (a CI clone), which the tmpfs would hide.
                  "--ro-bind", plain, plain] if bwrap else None
    unshare_args = ["unshare", "--pid", "--fork", "--mount", "--uts", "--net", "--ipc", "--mount-proc"]

    results = {}  # (variant, n, threads) -> [(wall, cpu, rss)], rep by rep
    for n in args.n:
        names = [l[: -len(": test")] for l in all_names.splitlines() if l.startswith(f"n{n}::")]
        assert len(names) == n, (n, len(names))

        def variants(t):
            v = {
                "libtest": lambda: measure([plain, f"n{n}::", "-q", "--test-threads", str(t)], n),
                "nextest": lambda: measure(["cargo", "nextest", "run", "--release", "-p", "tinyo-bench", "--test", "empty_plain",
                                            "-E", f"test(/^n{n}::/)", "--test-threads", str(t), "--cargo-quiet", "--status-level", "none",
                                            "--final-status-level", "none"], n, cwd=ROOT),
                "host-net": lambda: measure([hostnet, f"n{n}::", "-q", "--test-threads", str(t)], n, cwd=bench_dir),
                "tinyo": lambda: measure([iso, f"n{n}::", "-q", "--test-threads", str(t)], n, cwd=bench_dir),
                "rootless": lambda: measure(nobody + [iso, f"n{n}::", "-q", "--test-threads", str(t)], n, cwd=bench_dir),
                "unshare": lambda: measure(wrapped(unshare_args, plain, names, t, tmp), n),
            }
            if floor:
                v["floor"] = lambda: floor_per_test(floor, "pmuin", n, t)
                v["floor-userns"] = lambda: floor_per_test(floor, "pmuinU", n, t)
                v["floor-nonet"] = lambda: floor_per_test(floor, "pmui", n, t)
            if bwrap_args:
                v["bwrap"] = lambda: measure(wrapped(bwrap_args, plain, names, t, tmp), n)
            return v

        # This VM's speed drifts by a third over tens of seconds, so what is compared runs
        # side by side: in each rep, every variant at each thread count back to back (the
        # two-to-one-thread ratios), tinyo next to its floors (the ratios to the floor).
        by_thread = {t: variants(t) for t in args.threads}
        for rep in range(args.reps):
            for name in RUN_ORDER:
                for t in args.threads:
                    run = by_thread[t].get(name)
                    if run is None:
                        continue
                    results.setdefault((name, n, t), []).append(run())
                    print(f"n={n} threads={t} rep={rep + 1} {name}: {results[(name, n, t)][-1][0]:.3f} ms/test", file=sys.stderr)
    report(results, args)


ORDER = ["libtest", "nextest", "floor-nonet", "host-net", "floor", "floor-userns", "tinyo", "rootless", "unshare", "bwrap"]
# The order runs are made in: each floor next to what is compared with it.
RUN_ORDER = ["libtest", "nextest", "host-net", "floor-nonet", "tinyo", "floor", "floor-userns", "rootless", "unshare", "bwrap"]


def report(results, args):
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v), max(r[2] for r in v)) for k, v in results.items()}
    variants = [v for v in ORDER if any(k[0] == v for k in med)]
    lines = ["# tinyo benchmark", "", f"`python3 bench/run.py --n {' '.join(map(str, args.n))} --threads {' '.join(map(str, args.threads))} --reps {args.reps}`, "
             f"{time.strftime('%Y-%m-%d')}, `{os.uname().release}`, {os.cpu_count()} CPUs. Medians of {args.reps} runs.", ""]
    lines += targets(med, results, args)
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
                vs_floor = f"{m[0] / f[0]:.2f}x" if f else "n/a"
                lines.append(f"| {v} | {m[0]:.3f} | {m[1]:.3f} | {m[2] / 1024:.1f} | {vs_floor} | {m[0] / ti[0]:.2f}x |")
            lines.append("")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as fh:
        json.dump([{"variant": v, "n": n, "threads": t, "reps": [{"wall_ms": r[0], "cpu_ms": r[1], "max_rss_kib": r[2]} for r in rs]}
                   for (v, n, t), rs in sorted(results.items())], fh, indent=1)
    with open(args.out + ".md", "w") as fh:
        fh.write("\n".join(lines))
    with open(args.out + ".svg", "w") as fh:
        fh.write(svg(med, variants, args))
    print("\n".join(lines))


def targets(med, results, args):
    """The issue's targets, each with its figure and whether it is met. A ratio is judged by
    the median of its rep-by-rep ratios (each of two runs made seconds apart: this VM's
    speed drifts by a third over tens of seconds); the ratio of the two medians is shown
    too."""
    out = ["## Targets", "",
           "Ratios: the median of the rep-by-rep ratios of two runs made side by side (in "
           "brackets: the ratio of the two medians).", "",
           "| target | where | figure | met |", "|---|---|---|---|"]

    def row(target, where, figure, ok):
        out.append(f"| {target} | {where} | {figure} | {'yes' if ok else '**no**'} |")

    def paired(a, b):
        """(median of the rep-by-rep ratios a/b, ratio of the medians), or None."""
        if a not in results or b not in results:
            return None
        per_rep = [x[0] / y[0] for x, y in zip(results[a], results[b])]
        return statistics.median(per_rep), med[a][0] / med[b][0], per_rep

    def fig(p, unit="x"):
        return f"{p[0]:.2f}{unit} ({p[1]:.2f}{unit})"

    for n in args.n:
        p = paired(("tinyo", n, 1), ("floor", n, 1))
        if p:
            u = paired(("tinyo", n, 1), ("floor-userns", n, 1))
            row("default net, 1 thread: <= 1.3x the C floor (`iso -f pmuin -m exec -F`)", f"N={n}",
                fig(p) + (f"; vs the floor in a user namespace, as tinyo: {fig(u)}" if u else ""), p[0] <= 1.3)
    for t in args.threads:
        p = paired(("tinyo", 500, t), ("nextest", 500, t))
        if p:
            row("500 isolated tests <= the same 500 plain tests under `cargo nextest run`", f"{t} thread(s)",
                fig(p) + " the time", p[0] <= 1)
    for n in args.n:
        for t in args.threads:
            p = paired(("bwrap", n, t), ("tinyo", n, t))
            if p:
                row(">= 3x faster than bwrap around each test", f"N={n}, {t} thr", fig(p), p[0] >= 3)
            p = paired(("unshare", n, t), ("tinyo", n, t))
            if p:
                row(">= 2x faster than unshare(1) around each test", f"N={n}, {t} thr", fig(p), p[0] >= 2)
    if 1 in args.threads and 2 in args.threads:
        for n in args.n:
            p = paired(("host-net", n, 1), ("host-net", n, 2))
            if p:
                f = paired(("floor-nonet", n, 1), ("floor-nonet", n, 2))
                row("2 threads >= 1.6x 1 thread, `net = \"host\"`", f"N={n}", fig(p) + " (rep by rep: "
                    + ", ".join(f"{r:.2f}" for r in p[2]) + (f"; the C floor without netns: {fig(f)}" if f else "") + ")",
                    p[0] >= 1.6)
        for n in args.n:
            p = paired(("tinyo", n, 1), ("tinyo", n, 2))
            if p:
                f = paired(("floor", n, 1), ("floor", n, 2))
                out.append(f"| (reported) 2 threads vs 1, default net | N={n} | {fig(p)}"
                           + (f"; the C floor with netns: {fig(f)}" if f else "") + " | |")
    ns = sorted(args.n)
    if len(ns) > 1:
        # Growth is judged against the floor measured beside each run (the machine's drift
        # would otherwise show as growth or shrinkage); the absolute figures are shown too.
        for v, base in (("tinyo", "floor"), ("host-net", "floor-nonet")):
            for t in args.threads:
                per_n = [paired((v, n, t), (base, n, t)) for n in ns]
                if all(per_n) and all((v, n, t) in med for n in ns):
                    growth = per_n[-1][0] / per_n[0][0]
                    row(f"per-test overhead flat from N={ns[0]} to N={ns[-1]} (no growth)", f"{v}, {t} thr",
                        " -> ".join(f"{p[0]:.2f}x" for p in per_n) + f" the {base} ({growth:.2f}x); "
                        + " -> ".join(f"{med[(v, n, t)][0]:.3f}" for n in ns) + " ms", growth <= 1.1)
        for t in args.threads:
            rss = [med[("tinyo", n, t)][2] / 1024 for n in ns if ("tinyo", n, t) in med]
            if len(rss) == len(ns):
                row("harness peak RSS independent of N", f"tinyo, {t} thr",
                    " -> ".join(f"{r:.1f}" for r in rss) + " MiB", rss[-1] <= rss[0] * 1.25)
    out.append("")
    return out


def svg(med, variants, args):
    groups = [(n, t) for n in args.n for t in args.threads]
    colors = {"libtest": "#bbbbbb", "nextest": "#888888", "floor-nonet": "#9ecae1", "host-net": "#3182bd", "floor": "#a1d99b", "floor-userns": "#c7e9c0",
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
