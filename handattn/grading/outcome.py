"""One file's grade: load its bytes, score them on the public and the hidden set, or say why not.

`grade_bytes` is what a worker process runs for each file. Its `Outcome` is plain data (it
crosses a pipe and goes into SQLite) and holds nothing secret: the hidden set appears by its
size and fingerprint, never by its seed or texts.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from handattn.errors import HandattnError, InputError, escape
from handattn.grading.options import ProblemSets
from handattn.score import Score
from handattn.weights import loads

MAX_ERROR_LINES = 8  # issues kept per file; the rest are counted


@dataclass(frozen=True)
class SetResult:
    """A file's score on one evaluation set."""

    kl: float
    kl_se: float | None
    passed: bool
    argmax_accuracy: float
    by_context: tuple[tuple[str, int, float | None], ...]  # (context, positions, mean KL or None)

    @classmethod
    def of(cls, s: Score) -> SetResult:
        contexts = tuple((c.name, c.n_positions, None if math.isnan(c.kl) else c.kl) for c in s.by_context)
        kl_se = None if math.isnan(s.kl_se) else s.kl_se
        return cls(s.kl, kl_se, s.passed, s.argmax_accuracy, contexts)

    def worst_contexts(self, n: int = 3) -> list[tuple[str, int, float, float]]:
        """The contexts that cost the most KL: (name, positions, mean KL, share of the total)."""
        total = sum(count * kl for _, count, kl in self.by_context if kl is not None)
        costs = [(name, count, kl, count * kl / total if total else 0.0) for name, count, kl in self.by_context if kl]
        return sorted(costs, key=lambda c: -c[3])[:n]


@dataclass(frozen=True)
class Outcome:
    """Scores on both sets, or the error that stopped the file (terminal-safe lines)."""

    public: SetResult | None = None
    hidden: SetResult | None = None
    max_abs_weight: float | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ranking(self) -> SetResult | None:
        """The set that ranks and decides `passed`: the hidden one when there is one."""
        return self.hidden or self.public

    @property
    def passed(self) -> bool:
        return self.error is None and self.ranking is not None and self.ranking.passed

    @classmethod
    def failure(cls, message: str, seconds: float = 0.0) -> Outcome:
        return cls(error=message, seconds=seconds)


def grade_bytes(data: bytes, problem: str, sets: ProblemSets) -> Outcome:
    """Load a weight file's bytes for `problem` and score them on its sets.

    A file the core refuses, or weights the scorer cannot use, give an Outcome with the error;
    anything else (a bug, running out of memory) propagates to the worker.
    """
    start = time.perf_counter()
    try:
        weights = loads(data, source=f"{problem}.toml", problem=problem)
        public = sets.public(weights)
        hidden = None if sets.hidden is None else sets.hidden(weights)
    except InputError as e:
        return Outcome.failure("\n".join(e.lines(MAX_ERROR_LINES)), time.perf_counter() - start)
    except (HandattnError, ValueError) as e:  # e.g. weights for another problem than the set's
        return Outcome.failure(escape(str(e)), time.perf_counter() - start)
    results = [SetResult.of(s) for s in (public, hidden) if s is not None]
    if any(not math.isfinite(r.kl) for r in results):
        message = "the KL is infinite or undefined: the model gives probability 0 to a token that can come next"
        return Outcome.failure(message, time.perf_counter() - start)
    return Outcome(
        public=results[0],
        hidden=results[1] if hidden is not None else None,
        max_abs_weight=public.max_abs_weight,
        seconds=time.perf_counter() - start,
    )
