"""Wall time of `python -m handattn.solve` against a single `check` run, measured in the same run.

Targets (issue 9): problem1 with 1 head of width 1 reaches public KL ≤ 0.0004 within the time of
10 `check` runs; with 2 heads of width 1, ≤ 1e-5 within 20; problem2 with 1 head of width 1 passes.
The two-head target is also timed from the worst first start known (`--seed 5`), so the table shows
what an unlucky seed costs, not only the default one; that row is reported against the same budget
but is not one of the issue's targets, so it does not decide the exit status.
Each solve runs as a whole process (imports included), with the options the README gives for it;
the written file is then scored by `check` itself. `check` is timed before and after the solves
(median of both rounds), so a change in the machine's load shows in the report.

Run from the repo root: python benchmarks/bench_solve.py   (about 3 minutes on an idle machine)
"""

from __future__ import annotations

import argparse
import json
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

# (label, problem, solve options, public KL target, budget in check runs, one of the targets)
CASES = [
    ("problem1, 1 head of width 1", "problem1", ["--heads", "1", "--d-head", "1", "--restarts", "1"], 4e-4, 10, True),
    (
        "problem1, 2 heads of width 1",
        "problem1",
        ["--heads", "2", "--d-head", "1", "--target-kl", "5e-6"],
        1e-5,
        20,
        True,
    ),
    (
        "problem2, 1 head of width 1",
        "problem2",
        ["--heads", "1", "--d-head", "1", "--target-kl", "1e-4"],
        None,
        10,
        True,
    ),
    # the same target when the first start falls into a poorer minimum: seed 5 is the worst of seeds 0–11
    # (5e-5 after 680 steps, then seed 6 at 2.5e-4 after 390, then seed 7 reaches the target)
    (
        "problem1, 2 heads of width 1, seed 5",
        "problem1",
        ["--heads", "2", "--d-head", "1", "--target-kl", "5e-6", "--seed", "5"],
        1e-5,
        20,
        False,
    ),
]


def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def check_once() -> float:
    seconds, proc = timed([sys.executable, "-m", "handattn.check", "problem1", "solutions/problem1.toml"])
    if proc.returncode != 0:
        raise SystemExit(f"check failed:\n{proc.stderr}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_solve.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check-runs", type=int, default=5, help="check runs before and after the solves (median)")
    args = parser.parse_args(argv)
    load_at_start = load_note()
    check_once()  # warm-up
    checks = [check_once() for _ in range(args.check_runs)]
    rows, met = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for label, problem, options, target, budget, counts in CASES:
            out = Path(tmp) / f"{problem}_{len(rows)}.toml"
            seconds, proc = timed([sys.executable, "-m", "handattn.solve", problem, *options, "--out", str(out)])
            if proc.returncode not in (0, 1):
                raise SystemExit(f"solve {label} exited {proc.returncode}:\n{proc.stderr}")
            _, scored = timed([sys.executable, "-m", "handattn.check", problem, str(out), "--json"])
            result = json.loads(scored.stdout)
            summary = " · ".join(line.strip() for line in proc.stdout.splitlines()[:2])  # shape, stop, starts, steps
            rows.append((label, options, seconds, result, target, budget, counts, summary))
    checks += [check_once() for _ in range(args.check_runs)]
    check_s = statistics.median(checks)
    print(f"machine: {cpu_model()} · {os.cpu_count()} CPUs · Python {platform.python_version()}")
    print(f"load at start: {load_at_start} · at end: {load_note()}")
    print(f"one check run (problem1, whole process): median {check_s:.2f} s of {len(checks)} (min {min(checks):.2f} s)")
    print()
    print("| solve | options | wall time | ÷ check | public KL | target | met |")
    print("|---|---|---:|---:|---:|---|---|")
    for label, options, seconds, result, target, budget, counts, _summary in rows:
        ratio = seconds / check_s
        good = result["passed"] if target is None else result["kl"] <= target
        ok = good and ratio <= budget
        met &= ok or not counts
        goal = f"passes within {budget} checks" if target is None else f"≤ {target:g} within {budget} checks"
        shown = " ".join(options[4:])  # the shape is in the label
        print(
            f"| {label} | `{shown}` | {seconds:.1f} s | {ratio:.1f} | {result['kl']:.3g} | {goal}"
            f"{'' if counts else ' (not a target)'} | {'yes' if ok else 'NO'} |"
        )
    print()
    for label, *_, summary in rows:
        print(f"{label}: {summary}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
