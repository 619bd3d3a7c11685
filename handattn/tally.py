"""What every scoring path hands back, and the two computations the fast paths share: the KL and
argmax hit from logits, and exact sums.

A `Tally` lists groups of real positions that share their target row and the model's
prediction, so they share their KL and argmax hit; the states path groups thousands of
positions at once, the others make every position its own group. `SoftmaxTerms` takes logits a
block at a time, by rows or by columns, and gives every position's KL and hit at the end.
`exact_sum` adds a value repeated `count` times, correctly rounded, so a grouped tally gives the
same mean as `math.fsum` over every position, to the last bit.

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
        self.plogp, self.mass, self.best = row_terms(self.p)  # [R] each


def row_terms(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What `SoftmaxTerms.kl_and_hits` needs of target rows p [R, V] besides p: Σ p log p and Σ p (1 up
    to the rows' rounding), each correctly rounded (math.fsum of exact products of p and its
    float64 log), and the probability of a most-likely token. Rows of 28 are short: fsum row by row
    takes 0.5 ms for the 243 rows of a default set, where `exact_sums` takes 5 ms."""
    log_p = torch.where(p > 0, p, 1.0).log()  # 0 where p = 0
    product, error = _two_product(p, log_p)  # p · log p = product + error exactly

    def fsums(*values: torch.Tensor) -> torch.Tensor:
        rows = zip(*(v.tolist() for v in values), strict=True)
        return torch.tensor([math.fsum(x for part in row for x in part) for row in rows], dtype=torch.float64)

    return fsums(product, error), fsums(p), p.max(-1).values


def _two_product(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """a · b as product + error exactly (Dekker's product, Veltkamp's split), for products and
    halves far from overflow and underflow, as probabilities and their logs are."""

    def split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # x = high + low, 26 bits each
        t = x * 134217729.0  # 2^27 + 1
        high = t - (t - x)
        return high, x - high

    (a1, a2), (b1, b2) = split(a), split(b)
    product = a * b
    return product, ((a1 * b1 - product) + a1 * b2 + a2 * b1) + a2 * b2


TIE = 2.0**-30  # nats: a logit less than this below the largest ties with it (probabilities within 1e-9)
# e^(logit − top) ≥ NEAR for a logit within TIE of the largest (e^-TIE ≈ 1 − 2^-30), with room for
# rounding, and for some a little further (up to about 2^-28 below), for no others
NEAR = 1 - 2.0**-28
TWO_NEAR = 2 - 2.0**-26  # Σ e^(logit − top) reaches this (with room for rounding) wherever two are ≥ NEAR
EXP_FLOOR = -700.0  # exponents are raised to this first: e^-700 ≈ 1e-304 is still a normal float64


def exp_(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """e^x into out (default: in place), for x ≤ 0 (−inf included) in sums that hold a 1: torch.exp
    takes a path 20 to 300 times slower where its result is subnormal or 0 (x < −708, −inf), so x
    is raised to EXP_FLOOR first. A sum that holds a 1 does not notice: e^-700 is below 1e-300,
    far below half of that 1's last bit."""
    return torch.clamp(x, min=EXP_FLOOR, out=x if out is None else out).exp_()


class SoftmaxTerms:
    """What the KL and the argmax hit need of the model at M positions, filled a block at a time
    (`add`), then put together with the targets for every position at once (`kl_and_hits`):
        total = Σ e^(logit − top) ≥ 1, cross = Σ p (logit − top) ≤ 0, at_top = p at the argmax.

    KL = Σ p log p − Σ p log q, with log q = (logit − top) − log total:
        KL = plogp − cross + mass · log total.
    Σ p log p and Σ p (mass, 1 up to rounding) come correctly rounded from `Targets`. −cross and
    log total are ≥ 0 (top is the largest logit), so only Σ p log p, at most log V, cancels: a
    near-perfect file is off by about one rounding of log 28, as the term-by-term
    Σ p (log p − log q) is. Where p = 0 a finite logit adds 0 · finite = 0. A deterministic target
    the model is sure of (p = 1 on its largest logit, every other e^(logit − top) below half of
    1's last bit) scores exactly 0.

    The hit: the model's argmax is a most-likely true token (p = best there). The argmax is the
    first token whose logit is less than TIE below the largest: logits equal in exact arithmetic
    but rounded differently on different paths (1/3 + 1/3 against 2/3) tie on every path, and the
    first of them wins, as in an exact scorer. near = [e^(logit − top) ≥ NEAR] is 1 at the largest
    (e^0 = 1) and at every logit within TIE of it, and 0 at any logit more than 2^-28 below it.
    Where it is 1 at one token alone, that token is the argmax and Σ p · near is p there; the
    positions where it is 1 at two or more (only possible where total ≥ TWO_NEAR) go through
    `_first_tied`, which reads the logits themselves.
    """

    def __init__(self, M: int):
        self.total, self.cross, self.at_top = (torch.empty(M, dtype=torch.float64) for _ in range(3))

    def add(
        self,
        logits: torch.Tensor,
        p: torch.Tensor,
        scratch: torch.Tensor,
        at: int,
        dim: int = -1,
        span: float = math.inf,
    ) -> None:
        """The terms of G positions into at:at + G, their tokens along `dim`: rows (logits, p,
        scratch [G, V], dim = -1) or columns ([V, G], dim = 0). logits and scratch are overwritten.
        span: a bound on every position's largest − smallest logit; within −EXP_FLOOR nats no
        exponent needs raising (`exp_`): the same bits, one pass fewer."""
        G = logits.shape[1 if dim == 0 else 0]
        total, cross, at_top = self.total[at : at + G], self.cross[at : at + G], self.at_top[at : at + G]
        top = logits.amax(dim, keepdim=True)  # [G, 1] or [1, G]
        shifted = logits.sub_(top)  # ≤ 0, exactly 0 at the largest
        e = torch.exp(shifted, out=scratch) if span <= -EXP_FLOOR else exp_(shifted, out=scratch)
        torch.sum(e, dim, out=total)
        near = e.ge_(NEAR)  # 1 at the largest and wherever e^(logit − top) ≥ NEAR, else 0 (one pass)
        maybe = bool(total.max() >= TWO_NEAR)  # somewhere a second logit may be near the largest
        tied = (near.sum(dim) >= 2).nonzero()[:, 0] if maybe else []  # a sum of 0s and 1s: exact
        torch.sum(near.mul_(p), dim, out=at_top)
        if len(tied):
            along = 1 if dim == 0 else 0  # the positions' dim
            rows = shifted.index_select(along, tied)
            first = _first_tied(rows, torch.empty_like(rows), dim)
            at_top[tied] = p.index_select(along, tied).gather(dim, first).squeeze(dim)
        torch.sum(shifted.mul_(p), dim, out=cross)

    def kl_and_hits(
        self, plogp: torch.Tensor, mass: torch.Tensor, best: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """KL [M] clamped at 0 (rounding can dip to -1e-16) and hit [M], from each position's
        target's Σ p log p, Σ p and most-likely probability (plogp, mass, best [M])."""
        spread = torch.log(self.total).mul_(mass)  # mass · log total, rounded before the add (no fused multiply-add)
        return torch.sub(plogp, self.cross).add_(spread).clamp_(min=0.0), self.at_top == best


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
    finite = math.isfinite(float(values.sum())) or bool(torch.isfinite(values).all())  # a float sum can overflow
    if not finite:  # inf (a baseline that rules out a possible token) or nan
        terms = (values if count is None else values * count).tolist()
        per = [math.fsum(t for t, lab in zip(terms, label.tolist(), strict=True) if lab == i) for i in range(n_labels)]
        return per, math.fsum(terms)
    fraction, exponent = torch.frexp(values)  # values = fraction · 2^exponent, 0.5 ≤ |fraction| < 1
    m = (fraction * 2.0**53).long()  # exact: the 53 bits of the significand (0 for 0), in units of 2^(exponent − 53)
    lowest, highest = (int(x) for x in torch.aminmax(exponent)) if len(values) else (0, 0)
    low, span = lowest - 53, highest - lowest + 1
    if count is None:  # each value once: two 27-bit digits, sums of up to 2^35 values
        digits, weights = [m & ((1 << 27) - 1), m >> 27], [0, 27]  # >> floors, so the high digit keeps the sign
    else:  # three 18-bit digits of m times two 21-bit digits of the count
        m_digits = [m & ((1 << 18) - 1), (m >> 18) & ((1 << 18) - 1), m >> 36]
        c_digits = [count & ((1 << 21) - 1), count >> 21]
        digits = [a * b for a in m_digits for b in c_digits]
        weights = [18 * i + 21 * j for i in range(3) for j in range(2)]
    bins = torch.add((exponent - lowest).long(), label, alpha=span)  # [G] (label, exponent) of each value
    sums = torch.stack([torch.zeros(n_labels * span, dtype=torch.long).index_add_(0, bins, d) for d in digits], 1)
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
