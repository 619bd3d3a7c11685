"""What a file is graded on: the public and the hidden evaluation set of each problem, and the limits.

The public set is the one `check` scores (seed 0, 2,048 texts of the problem's length), so a
student's public KL on the board is the number they saw. The hidden set is drawn with the
instructor's secret seed and longer texts (twice the problem's length by default), with as many
tokens as the public set. Without a secret seed there is no hidden set and the public one ranks.

`GradingOptions.key(problem)` names everything that decides a grade; a stored grade is reused
only under the same key. The secret seed enters the key only as a hash, so the key may be stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from handattn import __version__
from handattn.errors import UsageError
from handattn.evalset import DEFAULT_SEED, DEFAULT_TEXTS, sample_eval_set
from handattn.problems import Problem
from handattn.score import Scorer

SECRET_SEED_ENV = "HANDATTN_SECRET_SEED"


@dataclass(frozen=True)
class Limits:
    """What one file may cost a worker. Real solutions take well under a second and a few MiB."""

    seconds: float = 20.0  # wall time to load and score one file on both sets
    memory_mib: int = 2048  # memory a worker may add while grading one file


@dataclass(frozen=True)
class SetSpec:
    """A sampled evaluation set: seed, number of texts, tokens per text."""

    seed: int
    texts: int
    length: int


@dataclass(frozen=True)
class GradingOptions:
    secret_seed: int | None = None  # None: no hidden set; the public set ranks
    hidden_length: int | None = None  # None: twice the problem's length
    hidden_texts: int | None = None  # None: as many tokens as the public set
    public_seed: int = DEFAULT_SEED
    public_texts: int = DEFAULT_TEXTS
    public_length: int | None = None  # None: the problem's length, as `check` uses
    limits: Limits = Limits()

    def public(self, problem: Problem) -> SetSpec:
        return SetSpec(self.public_seed, self.public_texts, self.public_length or problem.length)

    def hidden(self, problem: Problem) -> SetSpec | None:
        if self.secret_seed is None:
            return None
        public = self.public(problem)
        length = self.hidden_length or 2 * problem.length
        texts = self.hidden_texts or max(1, public.texts * public.length // length)
        return SetSpec(self.secret_seed, texts, length)

    def record(self, problem: Problem) -> dict:
        """Everything that decides a grade, safe to store: the secret seed appears only hashed."""
        hidden = self.hidden(problem)
        return {
            "problem": problem.name,
            "problem_class": f"{type(problem).__module__}.{type(problem).__qualname__}",
            "problem_source": _source_hash(problem),  # an instructor's edited problem file regrades
            "threshold": problem.threshold,
            "public": asdict(self.public(problem)),
            "hidden": None if hidden is None else {**asdict(hidden), "seed": seed_hash(hidden.seed)},
            "limits": asdict(self.limits),
            "handattn": __version__,
        }

    def key(self, problem: Problem) -> str:
        """16 hex digits naming `record(problem)`: equal keys, equal grades."""
        text = json.dumps(self.record(problem), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _source_hash(problem: Problem) -> str:
    """16 hex digits of SHA-256 over the source file of the problem's class ("" if it has none)."""
    module = sys.modules.get(type(problem).__module__)
    try:
        return hashlib.sha256(Path(module.__file__).read_bytes()).hexdigest()[:16]
    except (AttributeError, OSError, TypeError):
        return ""


def env_secret_seed() -> int | None:
    """The secret seed from HANDATTN_SECRET_SEED (kept out of shell history and `ps`), or None."""
    text = os.environ.get(SECRET_SEED_ENV, "").strip()
    if not text:
        return None
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if not 0 <= seed < 2**63:
        raise UsageError(f"{SECRET_SEED_ENV} must be a whole number from 0 to 2**63 - 1")
    return seed


def seed_hash(seed: int) -> str:
    """The secret seed as stored and shown to instructors: 12 hex digits of its SHA-256."""
    return hashlib.sha256(f"handattn secret seed {seed}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ProblemSets:
    """A problem's scorers, built once in the parent process and shared by the forked workers."""

    problem: Problem
    public: Scorer
    hidden: Scorer | None

    def info(self) -> dict:
        """What the board shows about the sets: sizes, fingerprints, baselines (never the seed)."""
        out = {"threshold": self.problem.threshold}
        for name, scorer in (("public", self.public), ("hidden", self.hidden)):
            if scorer is None:
                out[name] = None
                continue
            es = scorer.eval_set
            out[name] = {
                "texts": len(es.tokens),
                "length": int(es.tokens.shape[1]),
                "positions": es.n_positions,
                "fingerprint": es.fingerprint,
                "baselines": dict(scorer.baselines),
            }
        return out


def build_sets(problem: Problem, options: GradingOptions) -> ProblemSets:
    """Sample both sets and precompute their targets (raises EvalSetError for unusable options)."""
    public = options.public(problem)
    hidden = options.hidden(problem)
    return ProblemSets(
        problem,
        Scorer(sample_eval_set(problem, public.texts, public.length, public.seed)),
        None if hidden is None else Scorer(sample_eval_set(problem, hidden.texts, hidden.length, hidden.seed)),
    )
