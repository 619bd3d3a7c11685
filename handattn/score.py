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

from handattn.evalset import EvalSet
from handattn.model import AttentionModel
from handattn.weights import Weights

BATCH_ELEMENTS = 1 << 22  # texts per forward pass chosen so N·T·T stays near this (memory, not speed)


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
    argmax_accuracy: float  # share of positions whose argmax is a most-likely true token
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
        """Plain JSON data; a number that is undefined (nan: the SE of one text) becomes None."""
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
            "baselines": self.baselines,
            "eval_fingerprint": self.eval_fingerprint,
            "eval_source": self.eval_source,
            "seed": self.seed,
            "max_abs_weight": self.max_abs_weight,
        }


class Scorer:
    """An evaluation set with everything weight-free precomputed; call it on many solutions."""

    def __init__(self, eval_set: EvalSet):
        self.eval_set = eval_set
        self.mask = eval_set.mask  # [N, P]
        self.log_target = _log_or_zero(eval_set.target)  # [N, P, V]
        self.best = eval_set.target.max(-1).values  # [N, P] probability of a most-likely token
        self.contexts = [(name, self.mask & (eval_set.kind == i)) for i, name in enumerate(eval_set.problem.contexts)]
        self.baselines = baselines(eval_set)

    def __call__(self, solution: Weights | AttentionModel) -> Score:
        """Score weights (or a model built from them)."""
        model = solution if isinstance(solution, AttentionModel) else AttentionModel(solution)
        weights = model.to_weights() if isinstance(solution, AttentionModel) else solution
        es, mask = self.eval_set, self.mask
        if weights.problem != es.problem.name:
            raise ValueError(f"weights are for {weights.problem}, the evaluation set for {es.problem.name}")
        log_q = predict_log_probs(model, es.tokens)  # [N, P, V]
        p = es.target
        kl = _kl(p, self.log_target, log_q)  # [N, P]
        kl = kl.clamp(min=0.0) * mask  # float rounding can dip to -1e-17; padding counts 0
        hits = p.gather(-1, log_q.argmax(-1, keepdim=True))[..., 0] == self.best  # [N, P]
        return Score(
            problem=es.problem.name,
            kl=_mean(kl[mask]),
            kl_se=_clustered_se(kl, mask),
            argmax_accuracy=_mean(hits[mask].double()),
            n_positions=es.n_positions,
            n_texts=len(es.tokens),
            threshold=es.problem.threshold,
            by_context=tuple(ContextScore(name, int(m.sum()), _mean(kl[m])) for name, m in self.contexts),
            baselines=dict(self.baselines),
            eval_fingerprint=es.fingerprint,
            eval_source=es.source,
            seed=es.seed,
            max_abs_weight=weights.max_abs(),
            per_position=kl,
        )


def score(solution: Weights | AttentionModel, eval_set: EvalSet) -> Score:
    """Score one solution; to score many against one set, build a `Scorer` once."""
    return Scorer(eval_set)(solution)


@torch.no_grad()
def predict_log_probs(model: AttentionModel, tokens: torch.Tensor) -> torch.Tensor:
    """tokens [N, T] → [N, T−1, V] model log-probabilities at every predicted position, in batches."""
    N, T = tokens.shape
    batch = max(1, BATCH_ELEMENTS // (T * T))
    parts = [model(tokens[i : i + batch]).log_probs[:, :-1] for i in range(0, N, batch)]
    return torch.cat(parts)


def kl_divergence(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Σ_x p log(p/q) over the last axis; terms with p = 0 are exactly 0, even where q = 0."""
    return _kl(p, _log_or_zero(p), log_q)


def _kl(p: torch.Tensor, log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    return torch.where(p > 0, p * (log_p - log_q), 0.0).sum(-1)


def _log_or_zero(p: torch.Tensor) -> torch.Tensor:
    return torch.where(p > 0, p, 1.0).log()  # log 1 = 0 where p = 0, and p · 0 = 0 there


def baselines(eval_set: EvalSet) -> dict[str, float]:
    """KL of two guesses that use no weights: uniform over every token that ever comes next, and
    the best single fixed distribution (the mean target, which minimises the mean KL)."""
    mask = eval_set.mask
    p = eval_set.target[mask]  # [M, V]
    support = (p > 0).any(0)  # [V]
    uniform = (support.double() / support.sum()).log()  # [V], float64 (1.0 / an int tensor is float32)
    best_fixed = p.mean(0).log()  # [V], -inf only where every p is 0
    return {
        "uniform": _mean(kl_divergence(p, uniform.expand_as(p))),
        "best_fixed": _mean(kl_divergence(p, best_fixed.expand_as(p))),
    }


def _mean(values: torch.Tensor) -> float:
    """Correctly rounded mean (math.fsum), so the score does not depend on summation order."""
    return math.fsum(values.tolist()) / len(values) if len(values) else math.nan


def _clustered_se(kl: torch.Tensor, mask: torch.Tensor) -> float:
    """Standard error of the mean position KL with texts as the independent units."""
    n_texts = len(kl)
    if n_texts < 2:
        return math.nan
    per_text = kl.sum(-1)  # [N]
    counts = mask.sum(-1).double()  # [N]
    mean = per_text.sum() / counts.sum()
    residual = per_text - counts * mean  # [N]
    return float((residual.square().sum() * n_texts / (n_texts - 1)).sqrt() / counts.sum())


def _json_number(x: float) -> float | None:
    return None if math.isnan(x) else x
