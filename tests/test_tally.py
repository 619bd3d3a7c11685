"""The KL tail by columns (the states and counts paths) and the one by rows (positions path)
against the plain path's KL and argmax, and the columns' first-largest-logit trick against a plain
reading of argmax, ties and near-ties included."""

import torch

from handattn.score import kl_divergence
from handattn.tally import kl_and_hits, kl_and_hits_T
from handattn.vocab import D_VOCAB

V = D_VOCAB


def columns(logits, p, log_p, best):
    """kl_and_hits_T on [G, V] rows, turned into columns, with its buffers."""
    G = len(logits)
    kl, hit = torch.empty(G, dtype=torch.float64), torch.empty(G, dtype=torch.bool)
    scratch = torch.empty(V, G, dtype=torch.float64)
    kl_and_hits_T(logits.T.contiguous(), p.T.contiguous(), log_p.T.contiguous(), best, scratch, kl, hit)
    return kl, hit


def first_largest(row: list[float]) -> int:
    return row.index(max(row))


def hard_logits() -> torch.Tensor:
    """[G, V] logits where the first largest is easy to get wrong: ties, near-ties down to the
    smallest subnormal, -0.0 beside 0.0, and spans far beyond what 2^1000 · gap keeps finite."""
    g = torch.Generator().manual_seed(0)
    rows = [torch.randn(V, generator=g, dtype=torch.float64) * scale for scale in (1e-3, 1.0, 30.0, 1e6)] * 25
    logits = torch.stack(rows)  # [100, V]
    logits[::3, 7] = logits[::3, 20] = logits[::3].amax(1) + 1.0  # a tie between tokens 7 and 20
    logits[1::5, 4] = 0.0
    logits[1::5, 2] = -5e-324  # unequal to the 0 at token 4 by the smallest subnormal: 4 is the first largest
    logits[1::5, 5:] = -1.0
    logits[1::5, :2] = logits[1::5, 3] = -1.0
    logits[2::7] = 0.0
    logits[2::7, 9] = -0.0  # -0.0 equals 0.0: token 0 is the first largest
    logits[4::9, 11] = 1e300  # every other logit is 1e300 below: 2^1000 · gap overflows to -inf
    return logits


def targets(G: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    p = torch.rand(G, V, generator=g, dtype=torch.float64) ** 4
    p[p < 0.2] = 0.0  # sparse rows, as most targets are
    p[:, 20] += (torch.arange(G) % 2).double()  # token 20 often a most-likely token, so ties decide hits
    p[::4, 7] = p[::4, 20]  # two most-likely tokens
    p /= p.sum(1, keepdim=True)
    log_p = torch.where(p > 0, p, 1.0).log()
    return p, log_p, p.max(1).values


def test_columns_find_the_first_largest_logit_as_argmax_does():
    logits = hard_logits()
    p, log_p, best = targets(len(logits))
    _, hit = columns(logits.clone(), p, log_p, best)
    expected = [
        float(p[i, first_largest(row)]) == float(best[i]) for i, row in enumerate(logits.tolist())
    ]  # python's max and index: the first of equal largest
    assert hit.tolist() == expected
    assert any(expected) and not all(expected)
    assert first_largest(logits[1].tolist()) == 4 and first_largest(logits[2].tolist()) == 0


def test_both_tails_agree_with_each_other_and_the_plain_path():
    logits = hard_logits()
    p, log_p, best = targets(len(logits))
    kl, hit = columns(logits.clone(), p, log_p, best)
    kl_rows, hit_rows = kl_and_hits(logits.clone(), p, log_p, best)
    assert torch.equal(hit, hit_rows)
    torch.testing.assert_close(kl, kl_rows, rtol=1e-13, atol=1e-15)
    assert bool((kl >= 0).all())
    plain = kl_divergence(p, logits.log_softmax(-1)).clamp(min=0.0)  # as plain_tally computes them
    plain_hit = p.gather(-1, logits.argmax(-1, keepdim=True))[:, 0] == best
    assert torch.equal(hit, plain_hit)
    torch.testing.assert_close(kl, plain, rtol=1e-13, atol=1e-15)


def test_a_prediction_equal_to_the_target_scores_exactly_zero():
    # uniform over every token: log q = 0 − log 28 is what the target's log p is, term by term
    p = torch.full((5, V), 1 / V, dtype=torch.float64)
    log_p = torch.log_softmax(torch.zeros(5, V, dtype=torch.float64), -1)
    kl, hit = columns(torch.zeros(5, V, dtype=torch.float64), p, log_p, p.max(1).values)
    assert kl.tolist() == [0.0] * 5 and hit.all()
