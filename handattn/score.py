"""Scoring: how far a model's next-token distributions are from the exact ones, in KL.

For every predicted position of every text, KL(true ‖ model) = Σ_x p(x) (log p(x) − log q(x))
in nats, against the exact distribution for that prefix (nothing is sampled).
The score is the mean over positions, summed with math.fsum so it is the same
to the last digit run after run. Its standard error treats texts as the
independent units (positions within a text are not independent). Nothing here
prints; `Score.to_dict()` is what --json shows.

Shapes: N texts, P predicted positions per text, V = 28.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from handattn.errors import ProblemMismatchError
from handattn.evalset import EvalSet
from handattn.fastscore import FastScorer
from handattn.model import AttentionModel
from handattn.tally import TIE, Tally, Targets, exact_sum, exact_sums, exact_totals
from handattn.vocab import TOKENS
from handattn.weights import Weights

BATCH_ELEMENTS = 1 << 22  # plain path: texts per forward pass chosen so N·T·T stays near this (memory)


@dataclass(frozen=True)
class ContextScore:
    name: str
    n_positions: int
    kl: float  # mean nats over these positions (nan if there are none)


@dataclass(frozen=True)
class Score:
    problem: str
    kl: float  # mean KL(true ‖ model), nats
    kl_se: float  # its standard error, texts as the units
    argmax_accuracy: float  # share of positions whose argmax (tally.TIE) is a most-likely true token
    n_positions: int
    n_texts: int
    threshold: float
    by_context: tuple[ContextScore, ...]
    baselines: dict[str, float]  # "uniform", "best_fixed": the same KL for two weight-free guesses
    eval_fingerprint: str
    eval_source: str
    seed: int | None
    max_abs_weight: float
    per_position: torch.Tensor = field(repr=False)  # [N, P] KL in nats, 0 where masked
    path: str = field(default="", compare=False)  # how it was computed: states, counts, positions or plain

    @property
    def kl_bits(self) -> float:
        return self.kl / math.log(2)

    @property
    def passed(self) -> bool:
        return self.kl <= self.threshold

    def _repr_html_(self) -> str:  # Jupyter: the verdict, the breakdown by context, the baselines
        from handattn.views.html import score_html

        return score_html(self)

    def to_dict(self) -> dict:
        """Plain JSON data; a number that is undefined (nan: the SE of one text) or infinite becomes None."""
        return {
            "problem": self.problem,
            "passed": self.passed,
            "kl": self.kl,
            "kl_se": _json_number(self.kl_se),
            "kl_bits": self.kl_bits,
            "threshold": self.threshold,
            "argmax_accuracy": self.argmax_accuracy,
            "n_positions": self.n_positions,
            "n_texts": self.n_texts,
            "by_context": [
                {"context": c.name, "n_positions": c.n_positions, "kl": _json_number(c.kl)} for c in self.by_context
            ],
            "baselines": {name: _json_number(kl) for name, kl in self.baselines.items()},
            "eval_fingerprint": self.eval_fingerprint,
            "eval_source": self.eval_source,
            "seed": self.seed,
            "max_abs_weight": self.max_abs_weight,
        }


class Scorer:
    """An evaluation set with everything weight-free precomputed; call it on many solutions."""

    def __init__(self, eval_set: EvalSet):
        self.eval_set = eval_set
        self.targets = Targets(eval_set)
        self.fast = FastScorer(eval_set, self.targets)
        self.baselines = baselines(eval_set)

    def __call__(self, solution: Weights | AttentionModel, path: str = "auto") -> Score:
        """Score weights (or a model built from them). `path` is for tests and benchmarks: "auto"
        (the fast path that applies, see `handattn.fastscore`), one of its paths, or "plain"."""
        weights = solution.to_weights() if isinstance(solution, AttentionModel) else solution
        es = self.eval_set
        if weights.problem != es.problem.name:
            raise ProblemMismatchError(
                f"the weights are for {weights.problem}, the evaluation set for {es.problem.name}"
            )
        if path == "plain":
            model = solution if isinstance(solution, AttentionModel) else AttentionModel(weights)
            tally = plain_tally(model, es)
        else:
            path, tally = self.fast.tally(weights, path)
        return self._summarise(tally, weights, path)

    def _summarise(self, tally: Tally, weights: Weights, path: str) -> Score:
        es = self.eval_set
        M = es.n_positions
        kinds = es.row_kinds[tally.row]  # [G] context of each group
        n_contexts = len(es.problem.contexts)
        per_context, total = exact_totals(tally.kl, tally.count, kinds, n_contexts)
        sizes = torch.bincount(kinds, tally.count, minlength=n_contexts).long().tolist()  # exact below 2^53
        contexts = [
            ContextScore(name, n, kl / n if n else math.nan)
            for name, n, kl in zip(es.problem.contexts, sizes, per_context, strict=True)
        ]
        return Score(
            problem=es.problem.name,
            kl=total / M,
            kl_se=_clustered_se(tally.per_position, es.lengths - 1),
            argmax_accuracy=int(tally.hit.sum() if tally.count is None else tally.count[tally.hit].sum()) / M,
            n_positions=M,
            n_texts=len(es.tokens),
            threshold=es.problem.threshold,
            by_context=tuple(contexts),
            baselines=dict(self.baselines),
            eval_fingerprint=es.fingerprint,
            eval_source=es.source,
            seed=es.seed,
            max_abs_weight=weights.max_abs(),
            per_position=tally.per_position,
            path=path,
        )


def score(solution: Weights | AttentionModel, eval_set: EvalSet) -> Score:
    """Score one solution; to score many against one set, build a `Scorer` once."""
    return Scorer(eval_set)(solution)


# -- the plain path: the readable model on whole texts against dense targets (the tests' reference) ------


@torch.no_grad()
def plain_tally(model: AttentionModel, eval_set: EvalSet) -> Tally:
    """AttentionModel on every whole text, KL against dense targets; every position its own group."""
    N, T = eval_set.tokens.shape
    batch = max(1, BATCH_ELEMENTS // (T * T))
    kls, hits = [], []
    for i in range(0, N, batch):
        trace = model(eval_set.tokens[i : i + batch])
        p = eval_set.dense_target(slice(i, i + batch))  # [n, P, V]
        kls.append(kl_divergence(p, trace.log_probs[:, :-1]).clamp(min=0.0))  # float rounding can dip to -1e-17
        logits = trace.logits[:, :-1]  # [n, P, V]
        tied = logits - logits.amax(-1, keepdim=True) > -TIE  # [n, P, V] less than TIE below the largest logit
        argmax = tied.to(torch.uint8).argmax(-1, keepdim=True)  # [n, P, 1] the first of them
        hits.append(p.gather(-1, argmax)[..., 0] == p.max(-1).values)
    mask = eval_set.mask
    kl = torch.cat(kls) * mask  # [N, P], padding counts 0
    return Tally(kl, kl[mask], torch.cat(hits)[mask], None, eval_set.row_index[mask])


def kl_divergence(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Σ_x p log(p/q) over the last axis; terms with p = 0 are exactly 0, even where q = 0."""
    log_p = torch.where(p > 0, p, 1.0).log()  # log 1 = 0 where p = 0, and p · 0 = 0 there
    return torch.where(p > 0, p * (log_p - log_q), 0.0).sum(-1)


def baselines(eval_set: EvalSet) -> dict[str, float]:
    """KL of two guesses that use no weights: uniform over every token the problem can put next,
    and the best single fixed distribution (the mean target, which minimises the mean KL).
    Both are computed once per distinct target row and weighted by its positions."""
    p = eval_set.target_rows  # [R, V]
    count = torch.bincount(eval_set.row_index[eval_set.mask], minlength=len(p))  # [R] positions per row
    M = int(count.sum())
    possible = torch.tensor([tok in eval_set.problem.next_tokens for tok in TOKENS])  # [V]
    uniform = torch.full(possible.shape, -math.inf, dtype=torch.float64)  # [V] log of the uniform guess
    uniform[possible] = -math.log(int(possible.sum()))
    mean = torch.tensor(exact_sums(p, count), dtype=torch.float64) / M  # [V]
    return {
        "uniform": exact_sum(kl_divergence(p, uniform.expand_as(p)).clamp(min=0.0), count) / M,
        "best_fixed": exact_sum(kl_divergence(p, mean.log().expand_as(p)).clamp(min=0.0), count) / M,
    }


def _clustered_se(per_position: torch.Tensor, counts: torch.Tensor) -> float:
    """Standard error of the mean position KL with texts as the independent units (sums by fsum)."""
    n_texts = len(per_position)
    if n_texts < 2:
        return math.nan
    per_text = per_position.sum(-1)  # [N], each row summed alone: the same on any number of threads
    total = int(counts.sum())
    mean = math.fsum(per_text.tolist()) / total
    residual = per_text - counts.double() * mean  # [N]
    return math.sqrt(math.fsum(residual.square().tolist()) * n_texts / (n_texts - 1)) / total


def _json_number(x: float) -> float | None:
    return x if math.isfinite(x) else None
