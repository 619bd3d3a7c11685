"""Wall time of the whole `python -m handattn.check` process against `python -c "import torch"`.

A check cannot start faster than importing torch: that is the floor. Every command runs once as a
warm-up, then --repeats rounds run each command once, interleaved, so all commands share the same
cache and load conditions; medians are reported. Also timed: rejecting a malformed TOML file
through the whole process (must exit 2). Then, once each, the largest set check accepts
(--texts 8192 --length 512, 4,194,304 tokens): its wall time and peak memory (max RSS).
Targets: check ≤ 1.10 × the floor; the largest set under 1.5 GB.
Commands run with bytecode caching on (PYTHONDONTWRITEBYTECODE unset), as on a student's machine:
the warm-up writes handattn's __pycache__ (git ignores it), as torch's was written when it was installed.

Run from the repo root: python benchmarks/bench_check.py
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model, load_note  # benchmarks/_machine.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.10
TARGET_MEMORY = 1.5 * 2**30  # bytes
FLOOR = "python -c 'import torch' (floor)"


def run(argv: list[str], expect: int) -> tuple[float, float, int]:
    """Wall time (s), CPU time (s, user + system) and peak resident memory (bytes) of one process
    that must exit with `expect`."""
    start = time.perf_counter()
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != expect:
        raise SystemExit(f"{' '.join(argv)} exited {code}, expected {expect}:\n{stderr}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024  # Linux reports KiB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8, help="interleaved timed rounds (median)")
    parser.add_argument("--no-largest", action="store_true", help="skip the largest set (about 15 s per problem)")
    args = parser.parse_args(argv)
    load_at_start = load_note()

    py = sys.executable
    check = [py, "-m", "handattn.check"]
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "bad.toml"
        bad.write_text('problem = "problem1"\n[embed\nfeatures = ["vowel"]\n')  # unclosed table header
        commands = {
            FLOOR: ([py, "-c", "import torch"], 0),
            "check problem1 solutions/problem1.toml": ([*check, "problem1", "solutions/problem1.toml"], 0),
            "check problem2 solutions/problem2.toml": ([*check, "problem2", "solutions/problem2.toml"], 0),
            "check problem1 <malformed TOML> (rejected, exit 2)": ([*check, "problem1", str(bad)], 2),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for argv_, expect in commands.values():  # warm-up
            run(argv_, expect)
        for _ in range(args.repeats):
            for name, (argv_, expect) in commands.items():
                wall, seconds, _ = run(argv_, expect)
                times[name].append(wall)
                cpu[name].append(seconds)
    largest = {}
    if not args.no_largest:
        for name in ("problem1", "problem2"):
            options = ["--texts", "8192", "--length", "512"]
            largest[name] = run([*check, name, f"solutions/{name}.toml", *options], 0)

    medians = {name: statistics.median(ts) for name, ts in times.items()}
    cpu_medians = {name: statistics.median(ts) for name, ts in cpu.items()}
    floor, cpu_floor = medians[FLOOR], cpu_medians[FLOOR]
    print(f"machine: {cpu_model()} · {os.cpu_count()} CPUs · Python {platform.python_version()}")
    print(f"load at start: {load_at_start}; at end: {load_note()}")
    print(f"{args.repeats} interleaved rounds after one warm-up; wall time of the whole process, cwd = repo root")
    print()
    print("| command | wall, median (s) | min (s) | ÷ floor | CPU, median (s) | ÷ floor |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, ts in times.items():
        print(
            f"| `{name}` | {medians[name]:.3f} | {min(ts):.3f} | {medians[name] / floor:.2f}× "
            f"| {cpu_medians[name]:.3f} | {cpu_medians[name] / cpu_floor:.2f}× |"
        )
    for name, (wall, seconds, _) in largest.items():
        print(f"| `check {name} … --texts 8192 --length 512` (once) | {wall:.1f} | – | – | {seconds:.1f} | – |")
    for name, (_, _, peak) in largest.items():
        print(f"peak memory of `check {name} … --texts 8192 --length 512`: {peak / 2**20:,.0f} MiB")
    print()
    worst = max(
        medians[name] / floor for name in medians if name.startswith("check problem") and "malformed" not in name
    )
    ok = worst <= TARGET_RATIO and all(peak < TARGET_MEMORY for _, _, peak in largest.values())
    worst_cpu = max(
        cpu_medians[n] / cpu_floor for n in cpu_medians if n.startswith("check problem") and "malformed" not in n
    )
    verdict = "met" if worst <= TARGET_RATIO else "MISSED"
    print(f"target check ≤ {TARGET_RATIO}× floor (wall): {verdict} (worst {worst:.2f}×; in CPU time {worst_cpu:.2f}×)")
    if largest:
        peak = max(p for _, _, p in largest.values())
        print(f"target largest set < 1.5 GiB: {'met' if peak < TARGET_MEMORY else 'MISSED'} ({peak / 2**20:,.0f} MiB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
