"""The training objective: its fast "counts" path is held to the model as defined ("plain"), value and gradient."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from handattn import AttentionModel, Scorer, eval_set_from_texts, get_problem, load, sample_eval_set
from handattn.descent import _random_start
from handattn.objective import Objective
from handattn.weights import Head

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"


def value_and_gradient(objective: Objective, weights, path: str) -> tuple[float, list[torch.Tensor]]:
    model = AttentionModel(weights)
    model.W_E.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    loss = objective(model, path)
    return loss.item(), list(torch.autograd.grad(loss, params))


def assert_paths_agree(objective: Objective, weights) -> None:
    plain, plain_grad = value_and_gradient(objective, weights, "plain")
    fast, fast_grad = value_and_gradient(objective, weights, "counts")
    assert fast == pytest.approx(plain, rel=1e-12, abs=1e-13)  # KL = Σ p log p − Σ p log q: O(1) terms cancel
    for a, b in zip(fast_grad, plain_grad, strict=True):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def problem1_set():
    return Objective(sample_eval_set(get_problem("problem1"), 64, seed=1))


def random_weights(problem: str, shape: list[tuple[int, int]], seed: int, scale: float = 1.0):
    return replace(_random_start(problem, shape, seed), scale=scale)


@pytest.mark.parametrize(
    "shape, scale",
    [([(1, 1)], 1.0), ([(1, 1), (1, 1)], 1.0), ([(2, 3), (1, 1), (0, 2)], 0.7), ([(3, 0)], -2.0), ([], 1.0)],
)
def test_counts_agree_with_the_model_on_random_one_hot_layers(problem1_set, shape, scale):
    assert_paths_agree(problem1_set, random_weights("problem1", shape, seed=len(shape), scale=scale))


@pytest.mark.parametrize("name", ["problem1", "problem1_two_heads", "problem2"])
def test_counts_agree_on_hand_built_files_with_their_own_embedding(name):
    weights = load(SOLUTIONS / f"{name}.toml")
    objective = Objective(sample_eval_set(get_problem(weights.problem), 64, seed=2))
    assert_paths_agree(objective, weights)


def test_counts_agree_on_texts_of_different_lengths():
    problem = get_problem("problem2")
    texts = sample_eval_set(problem, 40, seed=3).texts()
    objective = Objective(eval_set_from_texts(problem, [t[: 2 + i % 29] for i, t in enumerate(texts)]))
    assert_paths_agree(objective, random_weights("problem2", [(1, 1), (2, 1)], seed=4))


def test_the_objective_is_the_kl_check_reports(problem1_set):
    es = sample_eval_set(get_problem("problem1"), 64, seed=1)
    for weights in (load(SOLUTIONS / "problem1.toml"), random_weights("problem1", [(1, 1), (1, 1)], seed=5)):
        kl = Objective(es)(AttentionModel(weights)).item()
        assert kl == pytest.approx(Scorer(es)(weights).kl, rel=1e-12)


def test_a_position_embedding_or_a_huge_score_range_takes_the_plain_path(problem1_set):
    with_positions = load(SOLUTIONS / "problem4.toml")  # W_P: a position's residual is not its token's alone
    es = Objective(sample_eval_set(get_problem("problem4"), 16, seed=1))
    model = AttentionModel(with_positions)
    assert es(model).item() == es(model, "plain").item()
    with pytest.raises(ValueError, match="without position embedding"):
        es(model, "counts")
    huge = random_weights("problem1", [(1, 1)], seed=6)
    huge = replace(huge, heads=[Head(huge.heads[0].W_Q * 100, huge.heads[0].W_K * 100, huge.heads[0].W_V)])
    model = AttentionModel(huge)  # scores spanning thousands of nats: e^-span would underflow
    assert problem1_set(model).item() == problem1_set(model, "plain").item()
