"""CPU time to read or refuse hostile weight files that fit under the 1 MiB cap.

Each file is built to be as slow as possible for one part of the reader: the TOML parser
(dotted keys, table headers, arrays of tables, long arrays, inline tables) or the sections
that follow (many labelled entries, dense rows, expressions). Each is loaded with
`handattn.load` in this process, and its CPU time (`time.process_time`, so other work on the
machine counts less) is the median of --repeats runs. For scale, the CPU time of
`python -c "import torch"` is measured in the same run. Target: every file ≤ 1 s of CPU.

Run from the repo root: python benchmarks/bench_refuse.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model, load_note  # benchmarks/_machine.py, beside this script

from handattn import load
from handattn.errors import WeightFileError
from handattn.weights.read import (
    MAX_BRACKET_LINES,
    MAX_ENTRIES,
    MAX_FILE_BYTES,
    MAX_KEY_PARTS,
    MAX_KEYS,
    MAX_QUOTES,
    MAX_TABLES,
)
from handattn.weights.read import MAX_KEY_DEPTH as MAX_PARTS_PER_KEY
from handattn.weights.sections import MAX_PARAMS

TARGET_CPU_SECONDS = 1.0
HEADER = 'problem = "problem2"\n'


def fill(unit, lines: int = MAX_KEYS - 10) -> str:
    """Up to `lines` lines from `unit(i)`, stopping before the file would pass the size cap."""
    out, size = [HEADER], len(HEADER)
    for i in range(lines):
        line = unit(i)
        if size + len(line.encode()) > MAX_FILE_BYTES - 200:
            break
        out.append(line)
        size += len(line.encode())
    return "".join(out)


def cases() -> dict[str, str]:
    per_table = MAX_KEYS // MAX_TABLES - 1
    tables = (MAX_TABLES - 1) * per_table  # lines: every table header the limit allows, keys under each
    key = ".".join("k" * (MAX_PARTS_PER_KEY - 1))
    deep = MAX_KEY_PARTS // (MAX_PARTS_PER_KEY - 1)  # keys of the most parts, until their parts reach the limit
    row = "[" + ",".join("0" for _ in range(27)) + ",1]"
    letters = "abcdefghijklmnopqrstuvwxyz"
    return {
        "dotted keys of the most parts": fill(lambda i: f"{key}.x{i} = 1\n", deep),
        "the most headers, dotted keys under each": fill(
            lambda i: f"[{key}{i // per_table}]\n" if i % per_table == 0 else f"k{i}.x = 1\n", tables
        ),
        "the most [[heads]], keys in each": fill(
            lambda i: "[[heads]]\n" if i % per_table == 0 else f"a{i} = 1\n", tables
        ),
        "the most lines that start with [, headers of numbers": fill(lambda i: f"[{i}]\n", MAX_BRACKET_LINES - 10),
        "a dense W_P of the most rows, one per line": HEADER
        + "[embed]\nW_P = [\n"
        + "".join(f"  [{i}.5],\n" for i in range(MAX_BRACKET_LINES - 10))
        + "]\n",
        "the longest int array": HEADER + "x = [" + ",".join("1" for _ in range(MAX_ENTRIES - 10)) + "]\n",
        "the most string entries, each an expression (a dense W_P)": HEADER
        + "[embed]\nW_P = ["
        + ",".join(
            "[" + ",".join(f'"log(2)*exp(1)/sqrt({i + 1})"' for i in range(28 * r, 28 * r + 28)) + "]"
            for r in range(MAX_QUOTES // 56 - 1)
        )
        + "]\n",
        "nested inline tables": HEADER + "x = [" + ",".join("{a={b=1}}" for _ in range(MAX_KEYS // 2 - 10)) + "]\n",
        "a parameter per line, each an expression": fill(
            lambda i: "[params]\n" if i == 0 else f'p{i} = "log(2)*exp(1)/sqrt(3)+{i}"\n'
        ),
        "labelled entries, each a new cell": fill(
            lambda i: "[unembed]\n" if i == 0 else f"W_U.{letters[i % 26]}.{letters[(i // 26) % 26]}{i} = 1\n"
        ),
        "a dense W_U, padded with a comment": HEADER
        + "[unembed]\nW_U = ["
        + ",".join([row] * 29)
        + "]\n"
        + "#" * (MAX_FILE_BYTES // 2)
        + "\n",
        "one huge comment": HEADER + "#" * (MAX_FILE_BYTES - 100) + "\n",
        "one long string": HEADER + 'x = "' + "a" * (MAX_FILE_BYTES - 100) + '"\n',
    }


def cpu_seconds(path: Path, repeats: int) -> tuple[float, str]:
    times, outcome = [], ""
    for _ in range(repeats):
        start = time.process_time()
        try:
            load(path)
            outcome = "loaded"
        except WeightFileError as e:
            outcome = "refused: " + e.issues[0].message[:50]
        times.append(time.process_time() - start)
    return statistics.median(times), outcome


def import_torch_cpu() -> float:
    code = "import resource, torch; u = resource.getrusage(resource.RUSAGE_SELF); print(u.ru_utime + u.ru_stime)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    floor = statistics.median(import_torch_cpu() for _ in range(3))
    print(f"{cpu_model()}, Python {sys.version.split()[0]}; {load_note()}\n")
    print(f"CPU time of `import torch` (for scale): {floor:.2f} s\n")
    print("| file (≤ 1 MiB) | size | outcome | CPU time, median | ÷ import torch |")
    print("|---|---:|---|---:|---:|")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in cases().items():
            path = Path(tmp) / "w.toml"
            path.write_text(text, encoding="utf-8")
            seconds, outcome = cpu_seconds(path, args.repeats)
            worst = max(worst, seconds)
            print(f"| {name} | {path.stat().st_size:,} B | {outcome} | {seconds:.3f} s | {seconds / floor:.2f}× |")
    print(
        f"\nworst: {worst:.3f} s of CPU (target ≤ {TARGET_CPU_SECONDS:g} s); limits: {MAX_TABLES} headers, "
        f"{MAX_BRACKET_LINES:,} lines starting with [, "
        f"{MAX_KEYS:,} keys, {MAX_ENTRIES:,} entries, {MAX_KEY_PARTS:,} dotted parts, {MAX_PARTS_PER_KEY} per key, "
        f"{MAX_QUOTES:,} quote marks, {MAX_PARAMS} parameters"
    )
    return 0 if worst <= TARGET_CPU_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
