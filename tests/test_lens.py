"""`to_transformer_lens`: the same layer in TransformerLens, logits and attention patterns equal.

Needs the optional extra (pip install "handattn[lens]"); without it these tests are skipped, all
but the one that checks the message a user without the extra gets.
"""

import sys
from pathlib import Path

import pytest
import torch
from conftest import random_weights

from handattn import AttentionModel, MissingExtraError, Weights, get_problem, load, sample_eval_set
from handattn.lens import to_transformer_lens

SOLUTIONS = sorted((Path(__file__).resolve().parent.parent / "solutions").glob("*.toml"))


RANDOM = {  # learned embeddings of 5 features (one-hot where said), W_P, heads of the given (d_head, d_value)
    "three heads of mixed widths, W_P, scale 0.7": random_weights(0, widths=((1, 1), (3, 2), (2, 4)), n_pos=10),
    "two heads, W_P longer than the texts, scale 1/sqrt(2)": random_weights(
        1, widths=((2, 2),) * 2, n_pos=40, scale=2**-0.5
    ),
    "one-hot, large weights": random_weights(2, one_hot=True, n_pos=None, magnitude=5.0),
    "scale 0: uniform attention": random_weights(3, widths=((2, 1),), n_pos=5, scale=0.0),
    "negative scale": random_weights(4, widths=((1, 2), (2, 1)), n_pos=None, scale=-1.5),
    "a head of width 0": random_weights(5, widths=((0, 2), (1, 1)), n_pos=3, scale=1.0),
    "no heads": random_weights(6, widths=(), n_pos=8, scale=1.0),
}


def compare(weights: Weights) -> None:
    tokens = sample_eval_set(get_problem(weights.problem), n_texts=64, length=32, seed=3).tokens  # [N, T]
    ours = AttentionModel(weights)(tokens)
    model = to_transformer_lens(weights)
    logits, cache = model.run_with_cache(tokens)
    assert logits.shape == (64, 32, 28) and logits.dtype == torch.float64
    assert (logits - ours.logits).abs().max() <= 1e-9
    pattern = cache["blocks.0.attn.hook_pattern"]  # [N, head, T, T]
    for i, ours_pattern in enumerate(ours.pattern):
        torch.testing.assert_close(pattern[:, i], ours_pattern, rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def lens():
    return pytest.importorskip("transformer_lens", reason="transformer-lens is not installed (handattn[lens])")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_reference_solutions_run_the_same_in_transformer_lens(lens, path):
    compare(load(path))


@pytest.mark.parametrize("name", RANDOM)
def test_random_layers_run_the_same_in_transformer_lens(lens, name):
    compare(RANDOM[name])


def test_the_callers_random_state_is_untouched(lens):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    to_transformer_lens(RANDOM["no heads"])
    assert torch.equal(torch.rand(3), expected)


def test_without_the_extra_the_error_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformer_lens", None)  # import transformer_lens now raises ImportError
    monkeypatch.setitem(sys.modules, "transformer_lens.config", None)
    with pytest.raises(MissingExtraError, match=r'pip install "handattn\[lens\]"'):
        to_transformer_lens(load(SOLUTIONS[0]))
