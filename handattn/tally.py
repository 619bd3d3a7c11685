"""What every scoring path hands back, and the two computations they share: KL per row and exact sums.

A `Tally` lists groups of real positions that share their target row and the model's
prediction, so they share their KL and argmax hit; the fast path groups thousands of
positions at once, the others make every position its own group. `exact_sum` adds a
value repeated `count` times, correctly rounded, so a grouped tally gives the same
mean as `math.fsum` over every position, to the last bit.

Shapes: G groups, R target rows, V = 28, N texts, P predicted positions.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from handattn.evalset import EvalSet


@dataclass(frozen=True)
class Tally:
    per_position: torch.Tensor  # [N, P] KL in nats, clamped at 0, 0 at padding
    kl: torch.Tensor  # [G] KL of each group, clamped at 0
    hit: torch.Tensor  # [G] bool: the model's argmax is a most-likely true token
    count: torch.Tensor | None  # [G] int64 positions in each group; None: one each (G = M, any order)
    row: torch.Tensor  # [G] int64 target row of each group (its context is the row's kind)


class Targets:
    """The weight-free half of the KL, precomputed once per evaluation set from its distinct rows."""

    def __init__(self, eval_set: EvalSet):
        self.p = eval_set.target_rows  # [R, V]
        self.log_p = torch.where(self.p > 0, self.p, 1.0).log()  # [R, V], 0 where p = 0
        self.best = self.p.max(-1).values  # [R] probability of a most-likely token


TIE = 2.0**-30  # nats: a logit less than this below the largest ties with it (probabilities within 1e-9)
EXP_FLOOR = -700.0  # exponents are raised to this first: e^-700 ≈ 1e-304 is still a normal float64


def exp_(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """e^x into out (default: in place), for x ≤ 0 (−inf included) in sums that hold a 1: torch.exp
    takes a path 20 to 300 times slower where its result is subnormal or 0 (x < −708, −inf), so x
    is raised to EXP_FLOOR first. A sum that holds a 1 does not notice: e^-700 is below 1e-300,
    far below half of that 1's last bit."""
    return torch.clamp(x, min=EXP_FLOOR, out=x if out is None else out).exp_()


def kl_and_hits(
    logits: torch.Tensor,
    p: torch.Tensor,
    log_p: torch.Tensor,
    best: torch.Tensor,
    scratch: torch.Tensor,
    kl: torch.Tensor,
    hit: torch.Tensor,
    dim: int = -1,
) -> None:
    """KL(p ‖ softmax(logits)) clamped at 0 (rounding can dip to -1e-17) and the argmax hit of G
    positions, their tokens along `dim`: rows (logits, p, log_p [G, V], dim = -1) or columns ([V, G],
    dim = 0), into kl [G] and hit [G]. logits and scratch are overwritten.

    The hit: the model's argmax is a most-likely true token (p = best there). The argmax is the
    first token whose logit is less than TIE below the largest: logits equal in exact arithmetic
    but rounded differently on different paths (1/3 + 1/3 against 2/3) tie on every path, and the
    first of them wins, as in an exact scorer. `_first_tied` finds it with two amax passes; along
    columns that is cheapest for every position. Along rows, max with indices gives the first
    largest, and in place that measured faster than `_first_tied` on every row: a second logit
    within TIE adds e^(−TIE) ≈ 1 to the largest's own e^0 = 1 in Σ e^(logit − top), so only rows
    where that sum reaches 2 − 2·TIE go through `_first_tied`.

    KL = Σ p (log p − log q) term by term, with log q = (logit − top) − log Σ e^(logit − top):
    where the model is exact, log p − log q is exactly 0, so a perfect file scores 0, not
    rounding noise. Logits are finite, so log q is too: where p = 0 the term is 0 · finite = 0.
    """
    if dim == 0:
        top = logits.amax(0, keepdim=True)  # [1, G]
        shifted = logits.sub_(top)  # ≤ 0
        first = _first_tied(shifted, scratch, 0)
        total = exp_(shifted, out=scratch).sum(0, keepdim=True)  # [1, G] ≥ 1: it holds the largest's e^0
    else:
        top, first = logits.max(-1, keepdim=True)  # [G, 1] the first largest
        shifted = logits.sub_(top)
        total = exp_(shifted, out=scratch).sum(-1, keepdim=True)  # [G, 1]
        tied = (total[:, 0] >= 2 - 2 * TIE).nonzero()[:, 0]  # rows where a second logit may tie
        if len(tied):
            rows = shifted[tied]
            first[tied] = _first_tied(rows, torch.empty_like(rows), -1)
    torch.eq(p.gather(dim, first).squeeze(dim), best, out=hit)
    log_q = shifted.sub_(total.log_())
    difference = torch.sub(log_p, log_q, out=log_q)
    torch.sum(difference.mul_(p), dim, out=kl).clamp_(min=0.0)


def _first_tied(shifted: torch.Tensor, scratch: torch.Tensor, dim: int) -> torch.Tensor:
    """The index along dim (keepdim) of the first token within TIE of the largest, for shifted
    logits (≤ 0, the largest 0), by amax: ⌈shifted / TIE⌉ is exactly 0 for a logit within TIE of
    the largest and at most −1 for any other (TIE is a power of 2), so (V − i) + 2^1000 ·
    ⌈shifted / TIE⌉ is V − i within TIE and below 0 elsewhere (−inf where it overflows): its
    largest is at the first token within TIE. shifted is only read; scratch is overwritten."""
    V = shifted.shape[dim]
    steps = torch.mul(shifted, 1 / TIE, out=scratch).ceil_()  # 0 within TIE of the largest, ≤ −1 elsewhere
    marked = torch.add(_countdown(V, dim), steps, alpha=2.0**1000, out=scratch)  # V − i within TIE
    return (V - marked.amax(dim, keepdim=True)).long()


@functools.cache
def _countdown(V: int, dim: int) -> torch.Tensor:
    """V − i for token i, along dim (0 or -1) of a 2-d tensor."""
    countdown = torch.arange(V, 0, -1, dtype=torch.float64)
    return countdown[:, None] if dim == 0 else countdown


def exact_sum(values: torch.Tensor, count: torch.Tensor | None = None) -> float:
    """Σ count·value over float64 values [G], correctly rounded: math.fsum of each value repeated count times."""
    return exact_totals(values, count)[1]


def exact_sums(values: torch.Tensor, count: torch.Tensor | None = None) -> list[float]:
    """exact_sum of every column of values [G, C]: C correctly rounded sums."""
    G, C = values.shape
    label = torch.arange(C).repeat_interleave(G)  # [C · G] column of each value of values.T
    return exact_totals(values.T.flatten(), None if count is None else count.repeat(C), label, C)[0]


def exact_totals(
    values: torch.Tensor, count: torch.Tensor | None = None, label: torch.Tensor | None = None, n_labels: int = 1
) -> tuple[list[float], float]:
    """Σ count·value over the values [G] of each label in range(n_labels), and over all of them; each
    correctly rounded, as math.fsum of every value repeated count times (counts below 2^42).

    Exact integer arithmetic, vectorised: a finite value is m · 2^e with m an integer below 2^53
    (frexp). m is cut into three 18-bit digits and the count into two 21-bit digits, so each digit
    product is below 2^39 and int64 sums of up to 2^24 of them cannot overflow. Products are summed
    per (label, exponent) with index_add_, then put together as Python integers and rounded once.
    """
    values = values.flatten()
    label = torch.zeros(len(values), dtype=torch.long) if label is None else label
    if not bool(torch.isfinite(values).all()):  # inf (a baseline that rules out a possible token) or nan
        terms = (values if count is None else values * count).tolist()
        per = [math.fsum(t for t, lab in zip(terms, label.tolist(), strict=True) if lab == i) for i in range(n_labels)]
        return per, math.fsum(terms)
    fraction, exponent = torch.frexp(values)  # values = fraction · 2^exponent, 0.5 ≤ |fraction| < 1
    m = (fraction * 2.0**53).long()  # exact: the 53 bits of the significand (0 for 0)
    e = exponent.long() - 53
    low = int(e.min()) if len(e) else 0
    span = int(e.max()) - low + 1 if len(e) else 1
    if count is None:  # each value once: two 27-bit digits, sums of up to 2^35 values
        digits, weights = [m & ((1 << 27) - 1), m >> 27], [0, 27]  # >> floors, so the high digit keeps the sign
    else:  # three 18-bit digits of m times two 21-bit digits of the count
        m_digits = [m & ((1 << 18) - 1), (m >> 18) & ((1 << 18) - 1), m >> 36]
        c_digits = [count & ((1 << 21) - 1), count >> 21]
        digits = [a * b for a in m_digits for b in c_digits]
        weights = [18 * i + 21 * j for i in range(3) for j in range(2)]
    sums = torch.zeros(n_labels * span, len(digits), dtype=torch.long)
    sums.index_add_(0, label * span + (e - low), torch.stack(digits, dim=1))
    totals = [0] * n_labels  # exact integers, in units of 2^low
    for at, row in zip(sums.any(1).nonzero()[:, 0].tolist(), sums[sums.any(1)].tolist(), strict=True):
        lab, shift = divmod(at, span)
        totals[lab] += sum(d << (w + shift) for d, w in zip(row, weights, strict=True))
    return [_to_float(t, low) for t in totals], _to_float(sum(totals), low)


def _to_float(total: int, low: int) -> float:
    """total · 2^low, correctly rounded (int → float and int / int are)."""
    try:
        return float(total << low) if low >= 0 else total / (1 << -low)
    except OverflowError:
        return math.inf if total > 0 else -math.inf
