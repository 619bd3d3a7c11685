"""The KL tail (`SoftmaxTerms`) by columns (the states and counts paths) and the one by rows (positions path)
against the plain path's KL and argmax, and both tails' argmax (the first logit within TIE of the
largest) against a plain reading of it, ties and near-ties included."""

from fractions import Fraction
from pathlib import Path

import mpmath
import pytest
import torch

from handattn import Scorer, get_problem, load, problem_names, sample_eval_set
from handattn.score import kl_divergence
from handattn.tables import PositionModel, round_up
from handattn.tally import TIE, SoftmaxTerms, row_terms
from handattn.vocab import D_VOCAB

V = D_VOCAB
SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"


def columns(logits, p, block=7):
    """KL and hits of [G, V] rows, turned into columns, added `block` positions at a time."""
    G = len(logits)
    terms, logits_T, p_T = SoftmaxTerms(G), logits.T.contiguous(), p.T.contiguous()
    for i in range(0, G, block):
        j = min(i + block, G)
        terms.add(logits_T[:, i:j].clone(), p_T[:, i:j], torch.empty(V, j - i, dtype=torch.float64), i, dim=0)
    return terms.kl_and_hits(*row_terms(p))


def rows(logits, p):
    """KL and hits of [G, V] rows, added at once (logits are overwritten: a copy)."""
    terms = SoftmaxTerms(len(logits))
    terms.add(logits.clone(), p, torch.empty_like(logits), 0)
    return terms.kl_and_hits(*row_terms(p))


def first_tied(row: list[float]) -> int:
    """The first token whose logit is less than TIE below the largest, in Python floats."""
    top = max(row)
    return next(i for i, x in enumerate(row) if x - top > -TIE)


def hard_logits() -> torch.Tensor:
    """[G, V] logits where the argmax is easy to get wrong: exact ties, ties by rounding (sums equal in
    exact arithmetic), gaps just inside and just outside TIE, unequal logits a subnormal apart,
    -0.0 beside 0.0, and spans far beyond what 2^1000 · gap keeps finite."""
    g = torch.Generator().manual_seed(0)
    rows = [torch.randn(V, generator=g, dtype=torch.float64) * scale for scale in (1e-3, 1.0, 30.0, 1e6)] * 25
    logits = torch.stack(rows)  # [100, V]
    logits[::3, 7] = logits[::3, 20] = logits[::3].amax(1) + 1.0  # a tie between tokens 7 and 20
    logits[1::5, 4] = 0.0
    logits[1::5, 2] = -5e-324  # the smallest subnormal below token 4's 0: a tie, so token 2 is the argmax
    logits[1::5, 5:] = -1.0
    logits[1::5, :2] = logits[1::5, 3] = -1.0
    logits[2::7] = 0.0
    logits[2::7, 9] = -0.0  # -0.0 equals 0.0: token 0 is the first largest
    logits[4::9, 11] = 1e300  # every other logit is 1e300 below: 2^1000 · gap overflows to -inf
    logits[5::11, 3] = logits[5::11].amax(1) + 2.0
    logits[5::11, 1] = logits[5::11, 3] - 2 * TIE  # just outside TIE: token 3 stays the argmax
    logits[6::11, 3] = 0.1 + 0.2  # 0.30000000000000004
    logits[6::11, 1] = 0.3  # equal to it in exact arithmetic: a tie, token 1 first
    logits[6::11, 4:] = logits[6::11, 0] = logits[6::11, 2] = -1.0
    logits[7::11] = -1.0
    logits[7::11, 3] = 5.0
    logits[7::11, 0] = 5.0 - TIE / 2  # just inside TIE: token 0 first
    logits[8::11] = -1.0
    logits[8::11, 3] = 5.0
    logits[8::11, 0] = 5.0 - TIE  # exactly TIE below: not a tie, token 3 stays the argmax
    logits[9::22] = -1.0  # odd rows, where token 20 is most likely
    logits[9::22, 20] = logits[9::22, 25] = 5.0  # a tie: token 20 first, a hit
    return logits


def targets(G: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    p = torch.rand(G, V, generator=g, dtype=torch.float64) ** 4
    p[p < 0.2] = 0.0  # sparse rows, as most targets are
    p[:, 20] += (torch.arange(G) % 2).double()  # token 20 often a most-likely token, so ties decide hits
    p[::4, 7] = p[::4, 20]  # two most-likely tokens
    p /= p.sum(1, keepdim=True)
    return p, p.max(1).values


@pytest.mark.parametrize("tail", [columns, rows])
def test_both_tails_take_the_first_logit_within_tie_of_the_largest(tail):
    logits = hard_logits()
    p, best = targets(len(logits))
    _, hit = tail(logits.clone(), p)
    expected = [float(p[i, first_tied(row)]) == float(best[i]) for i, row in enumerate(logits.tolist())]
    assert hit.tolist() == expected
    assert any(expected) and not all(expected)
    firsts = [first_tied(logits[i].tolist()) for i in (1, 2, 5, 6, 7, 8)]
    assert firsts == [2, 0, 3, 1, 0, 3]  # a subnormal apart, -0.0, outside, equal by rounding, inside, at TIE


def test_both_tails_agree_with_each_other_and_the_plain_path():
    logits = hard_logits()
    p, best = targets(len(logits))
    kl, hit = columns(logits.clone(), p)
    kl_rows, hit_rows = rows(logits.clone(), p)
    assert torch.equal(hit, hit_rows)
    torch.testing.assert_close(kl, kl_rows, rtol=1e-13, atol=1e-15)
    assert bool((kl >= 0).all())
    plain = kl_divergence(p, logits.log_softmax(-1)).clamp(min=0.0)  # as plain_tally computes them
    first = (logits - logits.amax(-1, keepdim=True) > -TIE).to(torch.uint8).argmax(-1, keepdim=True)
    plain_hit = p.gather(-1, first)[:, 0] == best  # as plain_tally takes them
    assert torch.equal(hit, plain_hit)
    torch.testing.assert_close(kl, plain, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("tail", [columns, rows])
def test_a_sure_and_right_prediction_scores_exactly_zero(tail):
    # p = 1 on the largest logit, every other token 40 nats below: e^-40 is under half of 1's last bit
    logits = torch.full((6, V), -40.0, dtype=torch.float64)
    target = torch.arange(6) * 5
    logits[torch.arange(6), target] = 3.5
    p = torch.nn.functional.one_hot(target, V).double()
    kl, hit = tail(logits, p)
    assert kl.tolist() == [0.0] * 6 and hit.all()


@pytest.mark.parametrize("tail", [columns, rows])
def test_a_prediction_equal_to_a_spread_target_is_off_by_rounding_alone(tail):
    # uniform over 26 letters, digits 800 nats down (q = 0 there): Σ p log p against log q, a few ulps of log 26 apart
    logits = torch.zeros(5, V, dtype=torch.float64)
    logits[:, 26:] = -800.0
    p = torch.zeros(5, V, dtype=torch.float64)
    p[:, :26] = 1 / 26
    q = logits.log_softmax(-1).exp()
    p[:, :26] = q[:, :26] / q[:, :26].sum(-1, keepdim=True)  # exactly what the model gives, renormalised
    kl, hit = tail(logits, p)
    assert bool((kl <= 1e-15).all()) and hit.all()


def test_row_terms_are_the_correctly_rounded_sums_of_exact_products():
    p, _ = targets(40)
    p[3] = 1 / 26  # a uniform row: 28 equal products, where rounding each would add up
    plogp, mass, _ = row_terms(p)
    log_p = torch.where(p > 0, p, 1.0).log()
    for i in range(len(p)):
        exact = sum(
            (Fraction(a) * Fraction(b) for a, b in zip(p[i].tolist(), log_p[i].tolist(), strict=True)), Fraction(0)
        )
        assert plogp[i].item() == float(exact)
        assert mass[i].item() == float(sum(map(Fraction, p[i].tolist()), Fraction(0)))


@pytest.mark.parametrize("name", problem_names())
def test_near_perfect_reference_files_are_off_by_no_more_than_the_plain_path(name):
    # the reference solutions' KL is rounding noise (1e-21 to 1e-15 nats) or small (problem1):
    # against the same float64 logits taken to 50 digits, the fast formula stays within 4e-16 nats
    eval_set = sample_eval_set(get_problem(name), 16, 12, seed=4)
    scorer, weights = Scorer(eval_set), load(SOLUTIONS / f"{name}.toml", problem=name)
    P = eval_set.row_index.shape[1]
    model = PositionModel(weights, round_up(P))
    logits = model.logits(torch.nn.functional.pad(eval_set.tokens[:, :P], (0, round_up(P) - P)))[:P]
    logits = logits.transpose(0, 1).reshape(-1, V)  # [N · P, V], text by text as row_index
    p = scorer.targets.p[eval_set.row_index.flatten()]
    with mpmath.workdps(50):
        terms = []
        for row, target in zip(logits.tolist(), p.tolist(), strict=True):
            lse = mpmath.log(mpmath.fsum(mpmath.exp(x) for x in row))
            terms.append(
                mpmath.fsum(q * (mpmath.log(q) - (x - lse)) for x, q in zip(row, target, strict=True) if q > 0)
            )
        exact = mpmath.fsum(terms) / len(terms)
        for path in ("positions", "auto", "plain"):
            assert abs(scorer(weights, path=path).kl - exact) <= 4e-16 + 1e-12 * exact


@pytest.mark.parametrize("tail", [columns, rows])
def test_a_second_logit_just_outside_tie_with_nothing_else_near_is_not_a_tie(tail):
    # the largest and one logit 2.5 to 3.9 TIE (2^-30) below it, every other far below: the
    # second counts as near the largest (e^(logit − top) ≥ NEAR), so it must go through the tie-break
    # even though Σ e^(logit − top) stays just under 2
    logits = torch.full((4, V), -1000.0, dtype=torch.float64)
    logits[:, 3] = 5.0
    logits[:, 1] = 5.0 - torch.tensor([2.5, 3.0, 3.5, 3.9], dtype=torch.float64) * TIE  # first, not tied
    p = torch.zeros(4, V, dtype=torch.float64)
    p[:, 3], p[:, 1] = 0.75, 0.25  # token 3, the argmax, is the most likely
    kl, hit = tail(logits, p)
    assert hit.all()
    plain = kl_divergence(p, logits.log_softmax(-1))
    torch.testing.assert_close(kl, plain, rtol=1e-13, atol=1e-15)
