"""Rounding fitted entries to few significant digits, within a budget of KL."""

import torch

from handattn import Head, Weights
from handattn.rounding import fitted_places, round_entries, significant


def test_significant_digits_are_the_decimal_text():
    x = torch.tensor([[123.456, -0.0012345], [0.0, 9.999]], dtype=torch.float64)
    assert significant(x, 2).tolist() == [[120.0, -0.0012], [0.0, 10.0]]
    assert torch.equal(significant(x, 17), x)


def weights():
    g = torch.Generator().manual_seed(0)
    head = Head(torch.randn(28, 1, generator=g, dtype=torch.float64), torch.zeros(28, 1), torch.ones(28, 1) / 3)
    return Weights("problem1", [head], torch.randn(29, 28, generator=g, dtype=torch.float64))


def test_each_matrix_keeps_only_the_digits_the_budget_needs():
    w = weights()
    exact = w.W_U.clone()

    def cost(v: Weights) -> float:  # only W_U matters, and only to about 3 digits
        return 1.0 + float((v.W_U - exact).abs().max())

    rounded, digits = round_entries(w, cost, tolerance=1e-3)
    assert set(digits) == set(fitted_places(w)) == {"heads[0].W_Q", "heads[0].W_K", "heads[0].W_V", "W_U", "b_U"}
    assert digits["W_U"] == 4 and digits["heads[0].W_Q"] == 1 and digits["heads[0].W_V"] == 1
    assert cost(rounded) <= 1.001
    assert torch.equal(rounded.heads[0].W_V, torch.full((28, 1), 0.3, dtype=torch.float64))
    assert torch.equal(rounded.W_E, w.W_E)  # the embedding is never rounded


def test_a_cost_that_allows_nothing_keeps_every_digit():
    w = weights()
    rounded, digits = round_entries(
        w, lambda v: float((v.W_U - w.W_U).abs().sum() + (v.heads[0].W_V - w.heads[0].W_V).abs().sum()), 0.0
    )
    assert digits["W_U"] == 17 and torch.equal(rounded.W_U, w.W_U)
