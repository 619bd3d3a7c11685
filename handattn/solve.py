"""`python -m handattn.solve PROBLEM --heads H --d-head K --out FILE`: the gradient-descent reference.

Fits the model by full-batch L-BFGS on a training set (never the public one) and writes a
labelled weight file that `check` scores as it is. See `handattn.descent` for the method.

Exit codes: 0 written (and --target-kl reached, if given), 1 written but --target-kl not reached,
2 unusable input (one line on stderr), 130 stopped by Ctrl-C after writing the best weights so far.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from handattn._cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNUSABLE,
    Parser,
    add_problem_file_option,
    error_lines,
    register_problem_files,
    run,
    usage_lines,
)
from handattn.descent import DEFAULT_RESTARTS, DEFAULT_STEPS, Fit, Progress, fit
from handattn.errors import HandattnError, UsageError, escape
from handattn.gradient_references import describe_shape, head_shape
from handattn.weights import dumps, load

PROG = "python -m handattn.solve"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = Parser(
        prog=prog,
        description="Fit the attention layer by gradient descent (L-BFGS) and write it as a weight file.",
        epilog="exit status: 0 written, 1 written but --target-kl not reached, 2 unusable input, "
        "130 Ctrl-C (the best weights so far are written)",
    )
    parser.add_argument("problem", help="problem name (see python -m handattn.check --list)")
    parser.add_argument("--out", required=True, metavar="FILE", help="the weight file to write")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    shape = parser.add_argument_group("shape (one-hot embedding), or a starting file")
    shape.add_argument("--heads", type=int, metavar="H", help="number of heads (default 1)")
    shape.add_argument("--d-head", type=int, metavar="K", help="query/key width of every head (default 1)")
    shape.add_argument("--d-value", type=int, metavar="K", help="value width of every head (default: --d-head)")
    shape.add_argument("--init", metavar="FILE", help="start from this weight file: its embedding, shapes and values")
    budget = parser.add_argument_group("when to stop (whichever comes first)")
    budget.add_argument("--target-kl", type=float, metavar="X", help="stop once the training KL is ≤ X nats")
    budget.add_argument(
        "--max-steps",
        type=int,
        default=DEFAULT_STEPS,
        metavar="N",
        help=f"L-BFGS steps over all starts (default {DEFAULT_STEPS})",
    )
    budget.add_argument(
        "--max-seconds", type=float, metavar="S", help="wall-time budget (the one stop that is not reproducible)"
    )
    parser.add_argument(
        "--restarts",
        type=int,
        metavar="R",
        help=f"random starts, seeds SEED…SEED+R-1 (default {DEFAULT_RESTARTS}; 1 with --init)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the first start (default 0)")
    add_problem_file_option(parser)
    return parser


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    parser = build_parser(prog)
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(argv)
        register_problem_files(args.problem_file)
        out = Path(args.out)
        if out.exists() and not args.force:
            raise UsageError(f"{escape(args.out)} exists; use --force to overwrite it")
        init = load(args.init, problem=args.problem) if args.init else None
        with _ProgressBar() as bar:
            result = fit(
                args.problem,
                args.heads,
                args.d_head,
                args.d_value,
                init=init,
                seed=args.seed,
                restarts=args.restarts,
                target_kl=args.target_kl,
                max_steps=args.max_steps,
                max_seconds=args.max_seconds,
                progress=bar.update,
            )
        text = f"# {_command_line(argv)}\n{_summary_comment(result)}\n{dumps(result.weights)}"
        out.write_text(text, encoding="utf-8")
    except SystemExit as e:  # --help prints and stops
        return int(e.code or 0)
    except HandattnError as e:
        print("\n".join(usage_lines(parser, e) if isinstance(e, UsageError) else error_lines(prog, e)), file=sys.stderr)
        return EXIT_UNUSABLE
    except OSError as e:
        print(f"{prog}: {escape(args.out)}: cannot be written ({e.strerror or e})", file=sys.stderr)
        return EXIT_UNUSABLE
    print(report(result, escape(args.out)))
    if result.stopped == "interrupted":
        return EXIT_INTERRUPTED
    reached = args.target_kl is None or result.train_kl <= args.target_kl
    return EXIT_OK if reached else EXIT_FAILED


def report(f: Fit, path: str) -> str:
    """What solve prints: the shape, how it stopped, both KLs after rounding, the file written."""
    digits = sorted(set(f.digits.values()))
    kept = f"{digits[0]}" if len(digits) == 1 else f"{digits[0]}–{digits[-1]}"
    stopped = {
        "target": "reached the target",
        "converged": "every start converged",
        "steps": "used the step budget",
        "time": "used the time budget",
        "interrupted": "interrupted (Ctrl-C): the best weights so far",
    }[f.stopped]
    starts = f"{f.restarts} start{'s' if f.restarts > 1 else ''}"
    if len(f.kls) < f.restarts:
        starts = f"{len(f.kls)} of {starts}"
    return "\n".join(  # each line fits 80 columns, but for the path
        [
            f"{f.problem} · {describe_shape(head_shape(f.weights))} · {stopped}",
            f"  {starts} · {f.steps:,} steps in {f.seconds:.1f} s · best start: seed {f.best_seed}",
            f"  public KL {f.public_kl:.3e} (check's set, seed 0) · training KL {f.train_kl:.3e}",
            f"    (training set: {f.train_source})",
            f"  entries rounded to {kept} significant digits: +{f.rounding_cost:.2%} training KL",
            f"  largest |weight| {f.weights.max_abs():.3g}",
            f"  the best start alone: --seed {f.best_seed} --restarts 1 --max-steps {f.best_steps}",
            f"wrote {path}",
            f"score it with: python -m handattn.check {f.problem} {path}",
        ]
    )


def _command_line(argv: list[str]) -> str:
    """The command as given, minus --out and --force, safe inside a TOML comment."""
    kept, skip = [], False
    for arg in argv:
        if skip or arg == "--force":
            skip = False
            continue
        if arg == "--out":
            skip = True
            continue
        if not arg.startswith("--out="):
            kept.append(arg if re.fullmatch(r"[\w.,/:=+-]+", arg) else json.dumps(arg))
    return "written by: python -m handattn.solve " + " ".join(kept)


def _summary_comment(f: Fit) -> str:
    return (
        f"# gradient descent (L-BFGS), {describe_shape(head_shape(f.weights))}: training KL {f.train_kl:.4g} "
        f"({f.train_source}), public KL {f.public_kl:.4g} (seed 0), entries rounded at +{f.rounding_cost:.2%}"
    )


class _ProgressBar:
    """A tqdm bar over the step budget showing the best training KL; silent when stderr is not a terminal
    or tqdm (the `progress` extra) is not installed."""

    def __enter__(self) -> _ProgressBar:
        try:
            from tqdm import tqdm
        except ImportError:
            self.bar = None
            return self
        self.bar = tqdm(total=None, unit="step", disable=None, leave=False, dynamic_ncols=True, file=sys.stderr)
        return self

    def update(self, p: Progress) -> None:
        if self.bar is None:
            return
        self.bar.total = p.max_steps
        self.bar.set_postfix_str(f"KL {p.kl:.3e} · start {p.start + 1}/{p.starts}", refresh=False)
        self.bar.update(p.steps - self.bar.n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


if __name__ == "__main__":
    run(main)
