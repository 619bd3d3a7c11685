"""Scoring throughput: the vectorised `Scorer` against a naive per-prefix loop on the same weights.

For each problem with its reference solution (solutions/PROBLEM.toml):
  - vectorised: `Scorer(eval_set)(weights)` on the default set (2,048 texts × 32 tokens, seed 0),
    median of --repeats runs; building the set and the Scorer are timed separately (one-time costs);
  - naive: for each of the first --naive-texts texts and each prefix length t, run the model on that
    prefix alone (batch of 1), take the last position's log-probs, KL against the eval set's target
    row for that prefix; the rate is extrapolated per position.
Both must give the same mean KL on the subset (within 1e-12). Target: speedup ≥ 100×.

Run from the repo root: python benchmarks/bench_score.py
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from _machine import cpu_model, load_note  # benchmarks/_machine.py, beside this script

from handattn import AttentionModel, Scorer, get_problem, load, problem_names, sample_eval_set

ROOT = Path(__file__).resolve().parent.parent
TARGET_SPEEDUP = 100.0
KL_TOLERANCE = 1e-12


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


@torch.no_grad()
def naive_mean_kl(model: AttentionModel, tokens: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor):
    """Per-prefix loop: one forward pass per (text, prefix). Returns (mean KL, positions)."""
    kls = []
    for i in range(len(tokens)):
        for t in range(1, int(lengths[i])):  # prefix tokens[i, :t] predicts token t
            log_q = model(tokens[i : i + 1, :t]).log_probs[0, -1]  # [V]
            p = target[i, t - 1]  # [V]
            nz = p > 0
            kls.append(max(0.0, float((p[nz] * (p[nz].log() - log_q[nz])).sum())))
    return math.fsum(kls) / len(kls), len(kls)


def check_reference_rule(problem, tokens: torch.Tensor, lengths: torch.Tensor, target: torch.Tensor, n: int) -> None:
    """Untimed sanity check: the eval set's target rows equal the sympy reference rule, as floats."""
    for i in range(min(n, len(tokens))):
        for t in range(1, int(lengths[i])):
            expected = torch.tensor(
                [float(x) for x in problem.reference_rule(tokens[i, :t].tolist())], dtype=torch.float64
            )
            if not torch.equal(expected, target[i, t - 1]):
                raise AssertionError(f"{problem.name}: target differs from reference_rule at text {i}, prefix {t}")


def bench_problem(name: str, repeats: int, naive_texts: int, naive_threads: int) -> dict:
    problem = get_problem(name)
    weights = load(ROOT / "solutions" / f"{name}.toml", problem=name)
    t_eval, eval_set = timed(lambda: sample_eval_set(problem))
    t_scorer, scorer = timed(lambda: Scorer(eval_set))
    scorer(weights)  # warm-up
    times = []
    for _ in range(repeats):
        dt, result = timed(lambda: scorer(weights))
        times.append(dt)
    t_vec = statistics.median(times)

    sub = slice(0, naive_texts)
    tokens, lengths, target = eval_set.tokens[sub], eval_set.lengths[sub], eval_set.target[sub]
    model = AttentionModel(weights)
    threads = torch.get_num_threads()
    torch.set_num_threads(naive_threads)  # batch-1 tensors are tiny: extra threads only add overhead
    try:
        naive_mean_kl(model, tokens[:2], lengths[:2], target[:2])  # warm-up
        t_naive, (naive_kl, naive_positions) = timed(lambda: naive_mean_kl(model, tokens, lengths, target))
    finally:
        torch.set_num_threads(threads)
    mask = eval_set.mask[sub]
    vec_kl = math.fsum(result.per_position[sub][mask].tolist()) / int(mask.sum())
    check_reference_rule(problem, tokens, lengths, target, n=8)
    diff = abs(vec_kl - naive_kl)
    assert diff <= KL_TOLERANCE, f"{name}: vectorised {vec_kl!r} vs naive {naive_kl!r} on the subset"

    vec_rate = result.n_positions / t_vec
    naive_rate = naive_positions / t_naive
    return {
        "problem": name,
        "positions": result.n_positions,
        "t_eval": t_eval,
        "t_scorer": t_scorer,
        "t_vec": t_vec,
        "t_vec_min": min(times),
        "vec_rate": vec_rate,
        "naive_positions": naive_positions,
        "t_naive": t_naive,
        "naive_rate": naive_rate,
        "speedup": vec_rate / naive_rate,
        "kl": result.kl,
        "subset_kl": vec_kl,
        "kl_diff": diff,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_score.py", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of the vectorised scorer (median)")
    parser.add_argument("--naive-texts", type=int, default=256, help="texts in the naive loop's subset")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for the vectorised path (default: torch's)"
    )
    parser.add_argument(
        "--naive-threads", type=int, default=1, help="torch threads for the naive loop (default 1, its fastest)"
    )
    parser.add_argument("--problems", nargs="*", default=None, help="default: every registered problem")
    args = parser.parse_args(argv)
    load_at_start = load_note()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = [
        bench_problem(name, args.repeats, args.naive_texts, args.naive_threads)
        for name in args.problems or problem_names()
    ]

    print(
        f"machine: {cpu_model()} · {os.cpu_count()} CPUs · torch {torch.__version__} · Python {platform.python_version()} · {load_at_start}"
    )
    print(
        f"vectorised: Scorer(eval_set)(weights), default set (seed 0), median of {args.repeats}, "
        f"{torch.get_num_threads()} torch threads; naive: model on each prefix alone (batch 1, no_grad, "
        f"{args.naive_threads} thread), first {args.naive_texts} texts, "
        "KL against the eval set's target tensor (checked equal to reference_rule as floats on 8 texts)"
    )
    print()
    print("| problem | positions | vectorised (pos/s) | naive per-prefix (pos/s) | speedup | mean KL (nats) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['problem']} | {r['positions']:,} | {r['vec_rate']:,.0f} ({r['t_vec'] * 1e3:.1f} ms) "
            f"| {r['naive_rate']:,.0f} | {r['speedup']:,.0f}× | {r['kl']:.3g} |"
        )
    print()
    print(
        "| problem | build eval set (one-time) | build Scorer (one-time) | score, median (min) | naive loop, subset |"
    )
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['problem']} | {r['t_eval'] * 1e3:.0f} ms | {r['t_scorer'] * 1e3:.0f} ms "
            f"| {r['t_vec'] * 1e3:.1f} ms ({r['t_vec_min'] * 1e3:.1f}) | {r['t_naive']:.2f} s / {r['naive_positions']:,} pos |"
        )
    print()
    for r in rows:
        print(
            f"{r['problem']}: subset mean KL vectorised {r['subset_kl']:.17g}, naive agrees within {r['kl_diff']:.1e}"
        )
    worst = min(r["speedup"] for r in rows)
    verdict = "met" if worst >= TARGET_SPEEDUP else "MISSED"
    print(f"target ≥ {TARGET_SPEEDUP:.0f}× the naive loop: {verdict} (lowest speedup {worst:,.0f}×)")
    return 0 if worst >= TARGET_SPEEDUP else 1


if __name__ == "__main__":
    sys.exit(main())
