"""The ranking rules: which submission counts, the order within a problem, the overall table.

Per problem, among the students' entries that scored:
    1. a passing entry before a failing one (this matters only when rounding makes them tie);
    2. the ranking KL (hidden, or public without a secret seed), rounded to 1e-6 nats;
    3. the largest absolute weight, ascending: among equally good solutions the most economical wins;
    4. the submission time, earliest first.
Equal keys share a rank and the next rank skips (competition ranking: 1, 2, 2, 4). Entries with
an error are listed after, unranked. Reference rows (the shipped solution, the baselines) are
placed where their key puts them, unranked, and never take a rank from a student.

Overall: students by problems passed (most first), then by the sum of their per-problem ranks; a
problem without a ranked entry counts as one place below that problem's last ranked entry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

POLICIES = ("best", "latest")
STUDENT, REFERENCE, BASELINE = "student", "reference", "baseline"


@dataclass(frozen=True)
class Entry:
    """One row of a problem's table."""

    kind: str  # STUDENT, REFERENCE or BASELINE
    name: str  # the student, or what the reference row is
    problem: str
    kl_public: float | None
    kl_hidden: float | None
    max_abs_weight: float | None
    passed: bool
    error: str | None
    submitted_at: float | None = None
    rank: int | None = None
    submissions: int = 1  # how many submissions the student made for this problem

    @property
    def kl(self) -> float | None:
        """The KL that ranks: the hidden one when there is a hidden set."""
        return self.kl_hidden if self.kl_hidden is not None else self.kl_public

    @property
    def scored(self) -> bool:
        return self.error is None and self.kl is not None

    def tie_key(self) -> tuple:
        """What decides the rank; equal keys share one."""
        return (not self.passed, round(self.kl, 6), self.max_abs_weight or 0.0, _time(self))


def _time(entry: Entry) -> float:
    return -math.inf if entry.submitted_at is None else entry.submitted_at


def choose(entries: Sequence[Entry], policy: str) -> Entry:
    """The entry that represents a student on a problem: their "best" or their "latest" submission."""
    if policy == "latest":  # the last in time; among equal times, the last given
        order = range(len(entries))
        chosen = entries[max(order, key=lambda i: (_time(entries[i]), i))]
    else:
        scored = [e for e in entries if e.scored]
        chosen = min(scored, key=Entry.tie_key) if scored else entries[-1]
    return replace(chosen, submissions=len(entries))


def rank(entries: Iterable[Entry]) -> list[Entry]:
    """A problem's table in display order, students ranked, references placed but unranked."""
    entries = list(entries)
    scored = sorted((e for e in entries if e.scored), key=lambda e: (*e.tie_key(), e.kind != STUDENT, e.name))
    table, previous, position, table_rank = [], None, 0, 0
    for entry in scored:
        if entry.kind != STUDENT:
            table.append(entry)
            continue
        position += 1
        key = entry.tie_key()
        number = table_rank if key == previous else position
        table.append(replace(entry, rank=number))
        previous, table_rank = key, number
    broken = sorted((e for e in entries if not e.scored), key=lambda e: (e.kind != STUDENT, e.name))
    return table + [replace(e, rank=None) for e in broken]


@dataclass(frozen=True)
class OverallRow:
    student: str
    passed: int  # problems passed
    ranks: dict[str, int | None]  # problem -> rank, None if unranked there
    rank_sum: int
    rank: int


def overall(tables: dict[str, list[Entry]]) -> list[OverallRow]:
    """Students by problems passed, then by the sum of their ranks (missing: one below the last)."""
    students = sorted({e.name for table in tables.values() for e in table if e.kind == STUDENT})
    fallback = {p: 1 + max((e.rank for e in t if e.rank is not None), default=0) for p, t in tables.items()}
    rows = []
    for student in students:
        mine = {p: next((e for e in t if e.kind == STUDENT and e.name == student), None) for p, t in tables.items()}
        ranks = {p: e.rank if e is not None else None for p, e in mine.items()}
        passed = sum(1 for e in mine.values() if e is not None and e.scored and e.passed)
        total = sum(r if r is not None else fallback[p] for p, r in ranks.items())
        rows.append(OverallRow(student, passed, ranks, total, 0))
    rows.sort(key=lambda r: (-r.passed, r.rank_sum, r.student))
    out, previous = [], None
    for i, row in enumerate(rows):
        key = (row.passed, row.rank_sum)
        number = out[-1].rank if key == previous else i + 1
        out.append(replace(row, rank=number))
        previous = key
    return out
