"""Grading one student's Gradescope upload into results.json (Gradescope's autograder format).

    results = grade_upload(Path("/autograder/submission"), AutograderConfig({"problem2": 1.0}, secret_seed=...))

One test per problem: its name, score (the points when the file passes on the ranking set, else
0), max_score, status, and an output with the KL on the public and the hidden set, the threshold,
and for a failing file the contexts that cost the most. A `leaderboard` array holds the ranking
KL per problem (ascending). Every failure (a missing, broken or hostile file, an internal error)
is a failing test with a message: the results are always valid. Nothing shown to students holds
the secret seed or the hidden texts; `scrub` removes the seed from any text as a last guard.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from handattn.errors import escape, listing
from handattn.evalset import EvalSet
from handattn.grading.options import GradingOptions, Limits, ProblemSets, build_sets
from handattn.grading.outcome import Outcome, SetResult, grade_bytes
from handattn.grading.submissions import find_uploads, read_file
from handattn.grading.workers import WorkerPool, default_workers
from handattn.problems import get_problem
from handattn.render import fmt, table

CONFIG_NAME = "handattn_autograder.json"


@dataclass(frozen=True)
class AutograderConfig:
    problems: dict[str, float]  # problem -> points
    secret_seed: int | None = None
    hidden_length: int | None = None
    hidden_texts: int | None = None
    limits: Limits = field(default_factory=Limits)
    problem_files: tuple[str, ...] = ()  # instructors' problems, paths relative to the config file

    def options(self) -> GradingOptions:
        return GradingOptions(self.secret_seed, self.hidden_length, self.hidden_texts, limits=self.limits)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "problem_files": list(self.problem_files)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> AutograderConfig:
        data = json.loads(text)
        problems = {str(name): float(points) for name, points in data["problems"].items()}
        numbers = [data.get(key) for key in ("secret_seed", "hidden_length", "hidden_texts")]
        if any(n is not None and (type(n) is not int or n < 0) for n in numbers):
            raise ValueError("secret_seed, hidden_length and hidden_texts must be whole numbers ≥ 0 or null")
        files = tuple(str(f) for f in data.get("problem_files", ()))
        return cls(problems, *numbers, Limits(**data.get("limits", {})), files)


def grade_upload(root: Path, config: AutograderConfig, sets: dict[str, ProblemSets] | None = None) -> dict:
    """results.json's content for the upload in `root`.

    `sets` (problem -> built sets for `config.options()`) lets a caller that grades many uploads
    build them once; by default they are built here for the problems that have a file to score."""
    start = time.monotonic()
    options = config.options()
    upload = find_uploads(root, list(config.problems)) if Path(root).is_dir() else None
    outcomes: dict[str, Outcome] = {}
    jobs = []
    for name in config.problems:
        paths = upload.found[name] if upload else []
        if len(paths) != 1:
            outcomes[name] = Outcome.failure(_not_one_file(name, paths, upload.other_toml if upload else []))
            continue
        read = read_file(Path(root) / paths[0])
        if read.error:
            outcomes[name] = Outcome.failure(f"{escape(paths[0])}: {read.error}")
        else:
            jobs.append((name, name, read.data))
    sets = {name: (sets or {}).get(name) or build_sets(get_problem(name), options) for name, _, _ in jobs}

    def work(problem: str, data: bytes) -> Outcome:  # runs in a forked worker holding `sets`
        return grade_bytes(data, problem, sets[problem])

    if jobs:
        with WorkerPool(work, min(default_workers(), len(jobs)), options.limits) as pool:
            outcomes.update(pool.run(jobs))
    tests = [_test(name, points, outcomes[name], sets.get(name)) for name, points in config.problems.items()]
    leaderboard = [
        {
            "name": f"{name} KL ({'hidden' if config.secret_seed is not None else 'public'})",
            "value": o.ranking.kl,
            "order": "asc",
        }
        for name, o in ((n, outcomes[n]) for n in config.problems)
        if o.error is None and o.ranking is not None
    ]
    return scrub(
        {
            "score": sum(t["score"] for t in tests),
            "execution_time": round(time.monotonic() - start, 3),
            "output": _summary(config),
            "stdout_visibility": "hidden",
            "tests": tests,
            "leaderboard": leaderboard,
        },
        config.secret_seed,
    )


def failed_results(config: AutograderConfig | None, message: str, seconds: float) -> dict:
    """Valid results when grading itself failed: every problem a failing test with `message`."""
    problems = config.problems if config else {}
    tests = [_test(name, points, Outcome.failure(message), None) for name, points in problems.items()]
    if not tests:
        tests = [{"name": "handattn", "score": 0.0, "max_score": 0.0, "status": "failed", "output": message}]
    results = {"score": 0.0, "execution_time": round(seconds, 3), "output": message, "tests": tests}
    return scrub({**results, "stdout_visibility": "hidden", "leaderboard": []}, config.secret_seed if config else None)


def scrub(results: dict, seed: int | None) -> dict:
    """Remove the secret seed from every text in the results (a guard; nothing should hold it)."""
    if seed is None or len(str(seed)) < 4:  # a tiny seed is unsafe anyway, and its digits are everywhere
        return results
    text = json.dumps(results)
    return json.loads(text.replace(str(seed), "<secret>")) if str(seed) in text else results


def _test(name: str, points: float, outcome: Outcome, sets) -> dict:
    passed = outcome.error is None and outcome.passed
    return {
        "name": name,
        "score": points if passed else 0.0,
        "max_score": points,
        "status": "passed" if passed else "failed",
        "output": _output(name, outcome, sets),
        "visibility": "visible",
    }


def _output(name: str, o: Outcome, sets) -> str:
    problem = get_problem(name)
    if o.error is not None:
        return f"NOT GRADED: {o.error}"
    ranking = "hidden" if o.hidden else "public"
    verdict = "PASSED" if o.passed else "NOT PASSED"
    relation = "≤" if o.passed else ">"
    lines = [
        f"{verdict}: {ranking} KL {fmt(o.ranking.kl)} nats per position {relation} threshold {problem.threshold:g}",
        "",
    ]
    rows = [_set_row("public (what `check` scores)", o.public, sets.public.eval_set)]
    if o.hidden:
        rows.append(_set_row("hidden", o.hidden, sets.hidden.eval_set))
    lines += table(("evaluation set", "KL (nats)", "passed", "texts"), rows, indent="")
    lines += ["", f"largest |weight|: {o.max_abs_weight:g}"]
    if o.hidden and o.public.passed and not o.hidden.passed:
        length = sets.hidden.eval_set.tokens.shape[1]
        lines.append(
            f"Passes on the public texts but not on the hidden ones, which are longer ({length} tokens): "
            f"try `python -m handattn.check {name} FILE --length {length}`."
        )
    if not o.passed:
        worst = o.ranking.worst_contexts()
        lines += ["", f"where the {ranking} KL comes from (the costliest contexts):"]
        lines += table(
            ("context", "positions", "mean KL", "share"),
            [(c, f"{n:,}", fmt(kl), f"{share:.0%}") for c, n, kl, share in worst],
            indent="  ",
        )
    return "\n".join(lines)


def _set_row(label: str, result: SetResult, eval_set: EvalSet) -> tuple[str, ...]:
    texts, length = eval_set.tokens.shape
    seed = "secret seed" if label == "hidden" else f"seed {eval_set.seed}"  # never the hidden one's
    return (label, fmt(result.kl), "yes" if result.passed else "no", f"{texts:,} × {length} tokens, {seed}")


def _not_one_file(name: str, paths: list[str], other: list[str]) -> str:
    if paths:
        return f"found {len(paths)} files named {name}.toml ({listing(paths, 5)}); upload exactly one"
    hint = f" (found: {listing(other, 5)})" if other else ""
    return f"no file named {name}.toml in your upload{hint}; name your file {name}.toml, then upload it again"


def _summary(config: AutograderConfig) -> str:
    names = ", ".join(config.problems)
    if config.secret_seed is None:
        return f"handattn graded {names} on the public evaluation texts (those `check` uses)."
    return (
        f"handattn graded {names} on the public texts (those `check` uses) and on hidden texts; "
        "the hidden KL decides the score."
    )
