"""Where a failing file should look: its worst contexts, and a hint derived from the numbers.

The hint reads where the lost probability goes in the kind of context that costs the
most, so it works for every problem, including ones added later. KL splits exactly
into two parts at each position,

    KL(p ‖ q) = −log q(S)  +  KL(p ‖ q|S)        S = the tokens that can follow (p > 0)

the first is probability spent on tokens that can never follow, the second the wrong
shares among those that can. The hint names the larger part and its tokens, and says
whether the loss grows along the text (the mark of a key too weak to stand out among
many earlier positions). Nothing here prints.

Shapes: N texts, P predicted positions, V = 28, M positions of one kind of context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from handattn.diagnose import Entry, compact, distributions, group_label
from handattn.evalset import EvalSet
from handattn.model import AttentionModel
from handattn.score import Score
from handattn.vocab import TOKENS
from handattn.weights import Weights

N_WORST = 5  # contexts listed
MAX_TEXTS = 256  # texts re-run through the model to split the loss of the worst kind of context
TREND = 3.0  # "grows along the text": later positions lose this many times more than earlier ones
LEAK = 0.5  # share of the loss on impossible tokens above which the hint is about them


@dataclass(frozen=True)
class Context:
    """One predicted position: the text so far, the true and predicted next tokens, the KL."""

    prefix: str
    kind: str
    true: tuple[Entry, ...]
    model: tuple[Entry, ...]
    kl: float

    def to_dict(self) -> dict:
        return {"prefix": self.prefix, "context": self.kind, **distributions(self.true, self.model, self.kl)}


@dataclass(frozen=True)
class WhereToLook:
    worst: tuple[Context, ...]  # the worst contexts, worst first, distinct prefixes
    context: str  # the kind of context that loses the most
    share: float  # its share of the total KL
    leak: float  # share of its loss on tokens that can never follow there
    leak_to: str  # where that probability goes ("0", "27 tokens (not 1)")
    too_little: str  # among the tokens that can follow: too little probability on these
    too_much: str  # … and too much on these
    trend: float  # mean KL of its later positions ÷ earlier ones (nan if it cannot tell)
    split: int  # the position that divides earlier from later

    @property
    def hint(self) -> str:
        """One sentence: where the loss of the worst kind of context goes, and what usually causes it."""
        if self.leak >= LEAK:
            text = f"{self.leak:.0%} of its loss is probability on tokens that can never follow: {self.leak_to}"
        else:
            text = (
                f"the tokens that can follow there get the wrong shares: too little on {self.too_little}, "
                f"too much on {self.too_much}"
            )
        if self.trend >= TREND:
            text += (
                f"; it grows along the text (positions past {self.split} lose {self.trend:.0f}× more), "
                "as when a key is too weak to stand out among many earlier positions"
            )
        elif self.trend <= 1 / TREND:
            text += f"; it is worst near the start of a text (up to position {self.split})"
        return text

    def to_dict(self) -> dict:
        return {
            "worst_contexts": [c.to_dict() for c in self.worst],
            "context": self.context,
            "share_of_kl": self.share,
            "hint": self.hint,
        }


def where_to_look(weights: Weights, eval_set: EvalSet, score: Score, n: int = N_WORST) -> WhereToLook:
    """The `n` worst contexts of a scored evaluation set, and a hint for the kind that loses the most."""
    problem, model = eval_set.problem, AttentionModel(weights)
    kl, mask = score.per_position, eval_set.mask  # [N, P]
    kinds = problem.context_kind(eval_set.tokens)[:, :-1]  # [N, P]
    totals = [float(kl[mask & (kinds == i)].sum()) for i in range(len(problem.contexts))]
    worst_kind = max(range(len(totals)), key=totals.__getitem__)
    in_kind = mask & (kinds == worst_kind)  # [N, P]
    leak, leak_to, too_little, too_much = _split_loss(model, eval_set, kl, in_kind)
    trend, split = _trend(kl, in_kind)
    return WhereToLook(
        worst=_worst_contexts(model, eval_set, kl.masked_fill(~mask, -1.0), kinds, n),
        context=problem.contexts[worst_kind],
        share=totals[worst_kind] / math.fsum(totals) if math.fsum(totals) > 0 else math.nan,
        leak=leak,
        leak_to=leak_to,
        too_little=too_little,
        too_much=too_much,
        trend=trend,
        split=split,
    )


@torch.no_grad()
def _distributions(model: AttentionModel, eval_set: EvalSet, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact targets (from the problem's rule) and model log-probabilities for some texts: [n, P, V] each."""
    tokens = eval_set.tokens[rows]  # [n, T]
    return eval_set.problem.exact_probs(tokens)[:, :-1], model(tokens).log_probs[:, :-1]


def _worst_contexts(
    model: AttentionModel, eval_set: EvalSet, kl: torch.Tensor, kinds: torch.Tensor, n: int
) -> tuple[Context, ...]:
    texts = eval_set.texts()
    order = kl.flatten().argsort(descending=True, stable=True)[: 64 * n].tolist()
    P = kl.shape[1]
    picked: dict[str, tuple[int, int]] = {}
    for flat in order:
        i, t = divmod(flat, P)
        if kl[i, t] < 0:
            break
        picked.setdefault(texts[i][: t + 1], (i, t))
        if len(picked) == n:
            break
    if not picked:
        return ()
    rows = torch.tensor([i for i, _ in picked.values()])
    true, log_q = _distributions(model, eval_set, rows)
    contexts = []
    for j, (prefix, (i, t)) in enumerate(picked.items()):
        contexts.append(
            Context(
                prefix=prefix,
                kind=eval_set.problem.contexts[int(kinds[i, t])],
                true=compact(true[j, t]),
                model=compact(log_q[j, t].exp(), top=3, mass=0.99),
                kl=float(kl[i, t]),
            )
        )
    return tuple(contexts)


def _split_loss(
    model: AttentionModel, eval_set: EvalSet, kl: torch.Tensor, in_kind: torch.Tensor
) -> tuple[float, str, str, str]:
    """Share of the loss on impossible tokens, where it goes, and the shares wrong among possible ones."""
    per_text = (kl * in_kind).sum(-1)  # [N]
    rows = per_text.argsort(descending=True, stable=True)[:MAX_TEXTS]  # the texts that lose most here
    rows = rows[per_text[rows] > 0]
    if not len(rows):
        return math.nan, "", "", ""
    p, log_q = _distributions(model, eval_set, rows)
    at = in_kind[rows]  # [n, P]
    p, q = p[at], log_q[at].exp()  # [M, V]
    can_follow = p > 0
    q_in = (q * can_follow).sum(-1)  # [M] probability the model keeps on tokens that can follow
    leaked = -q_in.log()  # [M] the first part of the KL
    total = (kl[rows][at]).sum()
    leak = float(leaked.sum() / total) if total > 0 else math.nan
    spent = (q * ~can_follow).sum(0)  # [V] probability on impossible tokens, per token
    shares = q * can_follow / q_in[:, None]  # [M, V] the model's shares among the tokens that can follow
    gap = (p - shares).mean(0)  # [V] > 0: too little on it
    return (
        min(1.0, leak),
        _largest(spent, "mostly"),
        _largest(gap.clamp(min=0), ""),
        _largest((-gap).clamp(min=0), ""),
    )


def _largest(amounts: torch.Tensor, lead: str) -> str:
    """The tokens holding most of an amount ([V]), named compactly: "0", "1 and 0", "27 tokens (not 1)"."""
    total = float(amounts.sum())
    if total <= 0:
        return "nothing"
    values = amounts.tolist()
    order = sorted(range(len(values)), key=lambda i: -values[i])
    chosen, held = [], 0.0
    for i in order:  # the fewest tokens that hold 80% of it, and every token tied with the last one
        if held >= 0.8 * total and not math.isclose(values[i], values[order[len(chosen) - 1]], rel_tol=1e-6):
            break
        chosen.append(TOKENS[i])
        held += values[i]
    named = " and ".join(chosen) if len(chosen) <= 3 else group_label(chosen)
    return f"{lead} {named}".strip() if held < 0.99 * total else named


def _trend(kl: torch.Tensor, in_kind: torch.Tensor) -> tuple[float, int]:
    """Mean KL of this kind's later positions ÷ its earlier ones, split at their median position."""
    positions = in_kind.nonzero()[:, 1] + 1  # [M] 1-based positions
    if len(positions) < 8:
        return math.nan, 0
    split = int(positions.median())
    values = kl[in_kind]
    early, late = values[positions <= split], values[positions > split]
    if not len(early) or not len(late) or float(early.mean()) <= 0:
        return (math.inf if len(late) and float(late.mean()) > 0 else math.nan), split
    return float(late.mean() / early.mean()), split
