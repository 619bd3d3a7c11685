"""Grade a folder of submissions into a leaderboard: the library call behind `handattn.leaderboard`.

    board = grade_folder("submissions", History("out/history.sqlite"), GradingOptions(secret_seed=...))

Every file is read (bounded, never blocking) and hashed in this process; files whose content has
no grade under the current options are graded by forked workers under limits; grades go into the
history as they arrive, so an interrupted run keeps its work. The board is then built from the
history alone: each student's best or latest submission per problem, ranked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from handattn.grading.history import History
from handattn.grading.options import GradingOptions, build_sets
from handattn.grading.outcome import Outcome, grade_bytes
from handattn.grading.ranking import (
    BASELINE,
    POLICIES,
    REFERENCE,
    STUDENT,
    Entry,
    OverallRow,
    choose,
    overall,
    rank,
)
from handattn.grading.submissions import display_name, find_submissions, read_file
from handattn.grading.workers import WorkerPool, default_workers
from handattn.problems import get_problem, problem_names

BASELINE_NAMES = {"uniform": "uniform over possible next tokens", "best_fixed": "best fixed distribution"}
COMMIT_EVERY = 5.0  # seconds between commits while grading (an interrupted run loses at most these)

Progress = Callable[[int, int], None]  # (files graded so far, files to grade)


@dataclass(frozen=True)
class ProblemBoard:
    problem: str
    threshold: float
    sets: dict  # sizes, fingerprints, baselines of the public and hidden set (ProblemSets.info)
    entries: list[Entry]


@dataclass
class RunStats:
    submissions: int = 0  # submission files found this run
    graded: int = 0  # files graded this run (new content, or new options)
    reused: int = 0  # files whose grade came from the history
    ignored: list[str] = field(default_factory=list)  # entries that are not <problem>.toml
    seconds: float = 0.0


@dataclass(frozen=True)
class Board:
    problems: list[ProblemBoard]
    overall: list[OverallRow]
    hidden: bool  # ranked on a hidden set drawn with the secret seed
    policy: str
    stats: RunStats


def reference_files(folder: Path | None, problem: str) -> list[Path]:
    """The reference solutions for a problem in `folder`: <problem>.toml and <problem>_*.toml."""
    if folder is None or not Path(folder).is_dir():
        return []
    return sorted(
        p for p in Path(folder).glob(f"{problem}*.toml") if p.stem == problem or p.stem.startswith(problem + "_")
    )


def grade_folder(
    root: str | Path,
    history: History,
    options: GradingOptions,
    *,
    problems: Sequence[str] | None = None,
    policy: str = "best",
    references: str | Path | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Board:
    """Grade what is new in `root`, record it in `history`, and rank everything the history holds."""
    start = time.perf_counter()
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, not {policy!r}")
    root = Path(root)
    chosen = [get_problem(name) for name in (problems or problem_names())]  # unknown names raise here
    keys = {p.name: options.key(p) for p in chosen}
    found = find_submissions(root, list(keys))
    stats = RunStats(submissions=len(found.submissions), ignored=found.ignored)
    seen = set()  # (problem, hash) of the files found this run
    for sub in found.submissions:
        read = read_file(sub.path)
        history.add_file(read.digest, read.data, read.error)
        when = (
            sub.submitted_at if sub.submitted_at is not None else read.mtime if read.mtime is not None else time.time()
        )
        history.add_submission(
            sub.student, sub.problem, read.digest, display_name(str(sub.path.relative_to(root))), when
        )
        seen.add((sub.problem, read.digest))
    refs: dict[str, list[tuple[str, str]]] = {name: [] for name in keys}
    for name in keys:
        for path in reference_files(Path(references) if references else None, name):
            read = read_file(path)
            history.add_file(read.digest, read.data, read.error)
            refs[name].append((display_name(f"{path.parent.name}/{path.name}"), read.digest))
    history.commit()

    todo = {name: history.ungraded(name, key, [d for _, d in refs[name]]) for name, key in keys.items()}
    stats.graded = sum(map(len, todo.values()))
    stats.reused = len(seen - {(name, d) for name, digests in todo.items() for d in digests})
    sets = {p.name: build_sets(p, options) for p in chosen if todo[p.name] or history.sets(keys[p.name]) is None}
    for name, built in sets.items():
        history.add_grading(keys[name], name, options.record(built.problem), built.info())
    _grade(history, keys, sets, todo, options, workers or default_workers(), progress)

    tables, boards = {}, []
    for problem in chosen:
        name, key = problem.name, keys[problem.name]
        info = history.sets(key)
        entries = _student_entries(history.graded_submissions(name, key), name, policy)
        entries += [_reference_entry(history, name, key, label, digest) for label, digest in refs[name]]
        entries += _baseline_entries(name, info)
        tables[name] = rank(entries)
        boards.append(ProblemBoard(name, problem.threshold, info, tables[name]))
    stats.seconds = time.perf_counter() - start
    return Board(boards, overall(tables), options.secret_seed is not None, policy, stats)


def _grade(
    history: History,
    keys: dict[str, str],
    sets: dict,
    todo: dict[str, list[str]],
    options: GradingOptions,
    workers: int,
    progress: Progress | None,
) -> None:
    """Grade every (problem, hash) in `todo`, storing each grade as it arrives."""
    total = sum(map(len, todo.values()))
    jobs, done = [], 0
    for problem, digests in todo.items():
        key = keys[problem]
        for digest in digests:
            data, error = history.file(digest)
            if data is None:  # unreadable: its error is its grade, no worker needed
                history.add_score(problem, digest, key, Outcome.failure(f"{problem}.toml: {error}"))
                done += 1
            else:
                jobs.append(((problem, digest), problem, data))
    if progress and total:
        progress(done, total)
    if not jobs:
        history.commit()
        return

    def work(problem: str, data: bytes) -> Outcome:  # runs in a forked worker, which holds `sets`
        return grade_bytes(data, problem, sets[problem])

    last_commit = time.monotonic()
    with WorkerPool(work, min(workers, len(jobs)), options.limits) as pool:
        for (problem, digest), outcome in pool.run(jobs):
            history.add_score(problem, digest, keys[problem], outcome)
            done += 1
            if progress:
                progress(done, total)
            if time.monotonic() - last_commit > COMMIT_EVERY:
                history.commit()
                last_commit = time.monotonic()
    history.commit()


def _student_entries(rows: list[dict], problem: str, policy: str) -> list[Entry]:
    by_student: dict[str, list[Entry]] = {}
    for row in rows:  # oldest first
        entry = Entry(
            STUDENT,
            row["student"],
            problem,
            row["kl_public"],
            row["kl_hidden"],
            row["max_abs_weight"],
            bool(row["passed"]),
            row["error"],
            row["submitted_at"],
        )
        by_student.setdefault(row["student"], []).append(entry)
    return [choose(entries, policy) for entries in by_student.values()]


def _reference_entry(history: History, problem: str, key: str, label: str, digest: str) -> Entry:
    score = history.score(problem, digest, key) or {}
    return Entry(
        REFERENCE,
        label,
        problem,
        score.get("kl_public"),
        score.get("kl_hidden"),
        score.get("max_abs_weight"),
        bool(score.get("passed")),
        score.get("error") if score else "not graded",
    )


def _baseline_entries(problem: str, info: dict | None) -> list[Entry]:
    if not info:
        return []
    public, hidden = info["public"], info["hidden"]
    out = []
    for key, label in BASELINE_NAMES.items():
        kl_public = public["baselines"][key]
        kl_hidden = hidden["baselines"][key] if hidden else None
        passed = (kl_hidden if kl_hidden is not None else kl_public) <= info["threshold"]
        out.append(Entry(BASELINE, label, problem, kl_public, kl_hidden, None, passed, None))
    return out
