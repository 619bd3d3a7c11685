"""Gradient-descent references: stored for the built-in problems, shown by check, and reproducible."""

import json
from pathlib import Path

import pytest
import torch

from handattn import check, fit, gd_reference, get_problem, load, reference_for, render, sample_eval_set, score
from handattn.gradient_references import RECIPES, describe_shape, head_shape, stored

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"


def test_shapes_read_as_words():
    assert describe_shape(((1, 1),)) == "1 head of width 1"
    assert describe_shape(((1, 1), (1, 1))) == "2 heads of width 1"
    assert describe_shape(((2, 1),)) == "1 head of width 2, values of width 1"
    assert describe_shape(((1, 1), (2, 2))) == "1 head of width 1 and 1 head of width 2"
    assert describe_shape(()) == "no heads"


def test_every_recipe_has_a_stored_reference_and_no_other():
    made = {(p, tuple(sorted([(k, v)] * h))) for p, h, k, v, *_ in RECIPES}
    assert {(r.problem, r.heads) for r in stored()} == made


def test_the_best_reference_for_a_file_matches_its_problem_and_head_shape():
    one_head = reference_for(load(SOLUTIONS / "problem1.toml"))
    two_heads = reference_for(load(SOLUTIONS / "problem1_two_heads.toml"))
    assert one_head.problem == "problem1" and one_head.shape == "1 head of width 1"
    assert two_heads.shape == "2 heads of width 1" and two_heads.public_kl < one_head.public_kl
    assert gd_reference("problem1", ((5, 5),)) is None
    assert gd_reference("problem2", ((1, 1),)).public_kl <= 0.001  # gradient descent passes problem2


def test_two_hand_built_heads_sit_between_the_one_and_two_head_references():
    hand = score(load(SOLUTIONS / "problem1_two_heads.toml"), sample_eval_set(get_problem("problem1")))
    assert (
        gd_reference("problem1", ((1, 1),)).public_kl > hand.kl > gd_reference("problem1", ((1, 1), (1, 1))).public_kl
    )


def test_check_shows_the_reference_beside_the_students_kl(capsys):
    assert check.main(["problem1", str(SOLUTIONS / "problem1.toml")]) == 0
    out = capsys.readouterr().out
    ref = gd_reference("problem1", ((1, 1),))
    assert f"  gradient descent, 1 head of width 1: {render.fmt(ref.public_kl)} nats on the public set" in out
    assert check.main(["problem1", str(SOLUTIONS / "problem1.toml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["gradient_descent"] == {"shape": "1 head of width 1", "kl": ref.public_kl}


def test_check_says_nothing_where_no_reference_is_stored(capsys, tmp_path):
    path = tmp_path / "wide.toml"
    path.write_text('problem = "problem1"\n[[heads]]\ndims = ["a", "b", "c"]\nvalues = ["v"]\n')
    check.main(["problem1", str(path)])
    out = capsys.readouterr().out
    assert "gradient descent" not in out


@pytest.fixture
def one_thread():
    """References are made on one thread (as solve runs); rerun them the same way."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("ref", stored(), ids=lambda r: f"{r.problem}, {r.shape}")
def test_every_stored_reference_is_reproduced_within_10_percent(one_thread, ref):
    # the short solve: only the start that won, for as many steps as it took
    (d_head, d_value) = ref.heads[0]
    f = fit(ref.problem, len(ref.heads), d_head, d_value, seed=ref.best_seed, restarts=1, max_steps=ref.best_steps)
    assert abs(f.public_kl - ref.public_kl) <= 0.1 * ref.public_kl
    assert head_shape(f.weights) == ref.heads
