"""Wall time of the whole `python -m handattn.check` process against the import floor.

The floor is `python -c "import torch, sympy"`: a check cannot start faster than its imports.
Every command runs once as a warm-up, then --repeats rounds run each command once, interleaved,
so all commands share the same cache and load conditions; medians are reported.
Also timed: `python -c "import torch"` for context, and rejecting a malformed TOML file through
the whole process (must exit 2). Target: check ≤ 1.15 × floor.

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
TARGET_RATIO = 1.15
FLOOR = "import torch, sympy"


def run(argv: list[str], expect: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != expect:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}, expected {expect}:\n{proc.stderr}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_check.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=6, help="interleaved timed rounds (median); 7 rounds take about 2 minutes"
    )
    args = parser.parse_args(argv)
    load_at_start = load_note()

    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "bad.toml"
        bad.write_text('problem = "problem1"\n[embed\nfeatures = ["vowel"]\n')  # unclosed table header
        commands = {
            "python -c 'import torch'": ([py, "-c", "import torch"], 0),
            f"python -c '{FLOOR}' (floor)": ([py, "-c", FLOOR], 0),
            "check problem1 solutions/problem1.toml": (
                [py, "-m", "handattn.check", "problem1", "solutions/problem1.toml"],
                0,
            ),
            "check problem2 solutions/problem2.toml": (
                [py, "-m", "handattn.check", "problem2", "solutions/problem2.toml"],
                0,
            ),
            "check problem1 <malformed TOML> (rejected, exit 2)": (
                [py, "-m", "handattn.check", "problem1", str(bad)],
                2,
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for argv_, expect in commands.values():  # warm-up
            run(argv_, expect)
        for _ in range(args.repeats):
            for name, (argv_, expect) in commands.items():
                times[name].append(run(argv_, expect))

    medians = {name: statistics.median(ts) for name, ts in times.items()}
    floor = medians[f"python -c '{FLOOR}' (floor)"]
    print(f"machine: {cpu_model()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · {load_at_start}")
    print(f"{args.repeats} interleaved rounds after one warm-up; wall time of the whole process, cwd = repo root")
    print()
    print("| command | median (s) | min (s) | ÷ floor |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        print(f"| `{name}` | {medians[name]:.3f} | {min(ts):.3f} | {medians[name] / floor:.2f}× |")
    print()
    ratios = {name: medians[name] / floor for name in medians if name.startswith("check problem")}
    worst = max(ratios.values())
    verdict = "met" if worst <= TARGET_RATIO else "MISSED"
    print(f"target check ≤ {TARGET_RATIO}× floor: {verdict} (worst {worst:.2f}×)")
    return 0 if worst <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
