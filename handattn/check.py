"""`python -m handattn.check PROBLEM [FILE]`: score a weight file against a problem's exact rule.

Exit codes: 0 passed, 1 scored but not passed, 2 unusable input (one line per issue on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from handattn import __version__
from handattn._cli import EXIT_FAILED, EXIT_OK, EXIT_UNUSABLE, error_lines, run
from handattn.errors import HandattnError
from handattn.evalset import DEFAULT_SEED, DEFAULT_TEXTS, MAX_TEXTS, read_eval_file, sample_eval_set
from handattn.problems import get_problem, problem_names
from handattn.score import Score, score
from handattn.weights import load
from handattn.weights.core import MAX_POSITIONS

PROG = "python -m handattn.check"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Score hand-written attention weights against the exact next-token distributions of a problem.",
        epilog="exit status: 0 passed, 1 scored but not passed, 2 unusable input",
    )
    parser.add_argument("problem", nargs="?", help="problem name (see --list)")
    parser.add_argument("file", nargs="?", help="weight file (default: PROBLEM.toml in this folder)")
    parser.add_argument("--list", action="store_true", help="list the problems and exit")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    sampled = parser.add_argument_group("evaluation set (sampled, or --eval-file)")
    sampled.add_argument("--seed", type=_bounded(0, 2**63 - 1), help=f"seed (default {DEFAULT_SEED}, the public set)")
    sampled.add_argument("--texts", type=_bounded(1, MAX_TEXTS), metavar="N", help=f"texts (default {DEFAULT_TEXTS:,})")
    sampled.add_argument("--length", type=_bounded(2, MAX_POSITIONS), metavar="T", help="tokens per text (default 32)")
    sampled.add_argument("--eval-file", metavar="FILE", help="score on these texts instead, one per line")
    return parser


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse has already printed
        return int(e.code or 0)
    if args.list:
        print(list_problems())
        return EXIT_OK
    if args.problem is None:
        parser.print_usage(sys.stderr)
        print(f"{prog}: error: name a problem ({', '.join(problem_names())}), or use --list", file=sys.stderr)
        return EXIT_UNUSABLE
    if args.eval_file and (args.seed, args.texts, args.length) != (None, None, None):
        parser.print_usage(sys.stderr)
        print(f"{prog}: error: --eval-file gives the texts; drop --seed, --texts and --length", file=sys.stderr)
        return EXIT_UNUSABLE
    path = args.file or f"{args.problem}.toml"
    # one thread: the tensors are small, and torch's thread pool stalls badly on a busy machine
    # (a grader running many checks at once); the score also no longer depends on the core count
    torch.set_num_threads(1)
    try:
        problem = get_problem(args.problem)
        weights = load(path, problem=problem.name)
        if args.eval_file:
            eval_set = read_eval_file(problem, args.eval_file)
        else:
            seed = DEFAULT_SEED if args.seed is None else args.seed
            eval_set = sample_eval_set(problem, args.texts or DEFAULT_TEXTS, args.length, seed)
        result = score(weights, eval_set)
    except HandattnError as e:
        lines = error_lines(prog, e)
        print("\n".join(lines), file=sys.stderr)
        if args.json:
            print(json.dumps({"problem": args.problem, "file": path, "error": lines}))
        return EXIT_UNUSABLE
    if args.json:
        print(json.dumps({**result.to_dict(), "file": path, "handattn": __version__}, allow_nan=False))
    else:
        print(report(result, path))
    return EXIT_OK if result.passed else EXIT_FAILED


def list_problems() -> str:
    lines = []
    for name in problem_names():
        p = get_problem(name)
        lines.append(f"{name}  {p.summary}  (pass: KL ≤ {p.threshold:g} nats)")
    return "\n".join(lines)


def report(s: Score, path: str) -> str:
    """The human-readable result: verdict, evaluation set, breakdown by context, baselines."""
    verdict = "PASSED" if s.passed else "NOT PASSED"
    relation = "≤" if s.passed else ">"
    lines = [
        f"{s.problem} · {path}",
        f"  {verdict}  KL {_fmt(s.kl)} nats per position (± {_fmt(s.kl_se)}), {relation} threshold {s.threshold:g}",
        f"  {_fmt(s.kl_bits)} bits · argmax is a most-likely token at {s.argmax_accuracy:.2%} of positions · largest |weight| {s.max_abs_weight:g}",
        f"  scored on {s.n_texts:,} texts from {s.eval_source}: {s.n_positions:,} predicted positions (eval fingerprint {s.eval_fingerprint})",
        "",
        f"  {'context':<36}{'positions':>10}{'mean KL':>12}",
    ]
    lines += [f"  {c.name:<36}{c.n_positions:>10,}{_fmt(c.kl):>12}" for c in s.by_context]
    lines += [
        "",
        f"  baselines: uniform over possible next tokens {_fmt(s.baselines['uniform'])} · "
        f"best fixed distribution {_fmt(s.baselines['best_fixed'])} nats",
    ]
    if not s.passed:
        worst = max((c for c in s.by_context if c.n_positions), key=lambda c: c.kl * c.n_positions)
        share = worst.kl * worst.n_positions / (s.kl * s.n_positions)
        lines.append(f"  most of the gap: {worst.name} ({share:.0%} of the total KL)")
    return "\n".join(lines)


def _fmt(x: float) -> str:
    if x != x:
        return "–"
    if x == 0:
        return "0"
    return f"{x:.4f}" if abs(x) >= 1e-3 else f"{x:.2e}"


def _bounded(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}…{hi}")
        return value

    return parse


if __name__ == "__main__":
    run(main)
