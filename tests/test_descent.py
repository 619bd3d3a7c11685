"""`fit`: gradient descent on the model, from Python (the command is tested in test_solve_cli.py).

Small training sets and step budgets keep these fast; the full-size runs are the benchmark's job.
"""

import math
from pathlib import Path

import pytest
import torch

from handattn import Scorer, SolveError, fit, get_problem, load, loads, sample_eval_set, score
from handattn.descent import Progress
from handattn.weights import dumps

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"
SMALL = {"train_texts": 64}  # 1,984 training positions: enough to see every behaviour


def same_weights(a, b) -> bool:
    return a.matrices().keys() == b.matrices().keys() and all(
        torch.equal(m, b.matrices()[k]) for k, m in a.matrices().items()
    )


@pytest.fixture(scope="module")
def short_fit():
    return fit("problem1", 1, 1, seed=3, restarts=2, max_steps=40, **SMALL)


def test_fit_lowers_the_kl_and_reports_both_sets_after_rounding(short_fit):
    f = short_fit
    problem = get_problem("problem1")
    uniform = score(loads('problem = "problem1"'), sample_eval_set(problem)).kl
    assert f.public_kl < uniform / 10
    train = sample_eval_set(problem, 64, seed=1)
    assert f.train_kl == Scorer(train)(f.weights).kl  # the reported KLs are of the rounded weights
    assert f.public_kl == score(f.weights, sample_eval_set(problem)).kl
    assert f.stopped == "steps" and f.steps == 40
    assert f.train_source == "64 texts of 32 tokens, seed 1"


def test_rounding_keeps_few_digits_within_one_percent(short_fit):
    f = short_fit
    assert 0 <= f.rounding_cost <= 0.01
    assert f.train_kl <= f.unrounded_train_kl * 1.01
    assert max(f.digits.values()) < 17
    for place, digits in f.digits.items():
        for x in f.weights.matrices()[place].flatten().tolist():
            assert x == float(f"{x:.{digits - 1}e}"), (place, x)


def test_the_written_file_reads_back_unchanged_and_names_every_head_dimension(short_fit):
    w = short_fit.weights
    text = dumps(w)
    assert "dims = [" in text and "values = [" in text
    assert same_weights(loads(text), w)
    assert w.max_abs() <= 1e6


def test_features_no_text_sets_carry_no_weights(short_fit):
    w = short_fit.weights  # problem1 never shows the digits: their one-hot rows are zero
    digits = [w.features.index("0"), w.features.index("1")]
    for m in (w.heads[0].W_Q, w.heads[0].W_K, w.heads[0].W_V, w.W_U[:28]):
        assert not m[digits].any()


def test_same_arguments_same_weights_bit_for_bit():
    a = fit("problem2", 1, 1, seed=5, restarts=1, max_steps=15, **SMALL)
    b = fit("problem2", 1, 1, seed=5, restarts=1, max_steps=15, **SMALL)
    assert same_weights(a.weights, b.weights) and a.train_kl == b.train_kl


def test_the_winning_start_reruns_alone_to_the_same_weights():
    many = fit("problem2", 0, seed=10, restarts=3, **SMALL)  # the direct path alone: each start converges fast
    assert (
        many.stopped == "converged"
        and len(many.kls) == 3
        and math.isclose(many.unrounded_train_kl, min(many.kls), rel_tol=1e-9)
    )
    alone = fit("problem2", 0, seed=many.best_seed, restarts=1, max_steps=many.best_steps, **SMALL)
    assert same_weights(alone.weights, many.weights)


def test_progress_reports_the_best_kl_so_far_and_steps_within_budget():
    seen: list[Progress] = []
    f = fit("problem1", 2, 1, restarts=1, max_steps=8, progress=seen.append, **SMALL)
    assert seen and all(p.max_steps == 8 and p.steps <= 8 for p in seen)
    kls = [p.kl for p in seen]
    assert kls == sorted(kls, reverse=True)  # the best so far never rises
    assert math.isclose(kls[-1], f.unrounded_train_kl, rel_tol=1e-9)


def test_stops_at_the_target():
    f = fit("problem2", 1, 1, restarts=3, target_kl=0.3, **SMALL)
    assert f.stopped == "target" and f.unrounded_train_kl <= 0.3 and len(f.kls) == 1


def test_a_target_reached_stays_reached_after_rounding():
    seen: list[Progress] = []
    fit("problem2", 1, 1, restarts=1, max_steps=15, progress=seen.append, **SMALL)
    target = seen[-1].kl * 1.0001  # rounding within 1% would cross it
    f = fit("problem2", 1, 1, restarts=1, target_kl=target, **SMALL)
    assert f.stopped == "target" and f.train_kl <= target and max(f.digits.values()) < 17


def test_stops_at_the_time_budget():
    f = fit("problem1", 1, 1, max_seconds=0.0, **SMALL)
    assert f.stopped == "time" and f.steps <= 1


def test_ctrl_c_returns_the_best_weights_so_far():
    def interrupt(p: Progress) -> None:
        if p.steps >= 3:
            raise KeyboardInterrupt

    f = fit("problem1", 1, 1, restarts=2, progress=interrupt, **SMALL)
    assert f.stopped == "interrupted" and len(f.kls) == 1
    assert f.train_kl < score(loads('problem = "problem1"'), sample_eval_set(get_problem("problem1"), 64, seed=1)).kl


def test_init_starts_from_the_files_values_and_keeps_its_features():
    start = load(SOLUTIONS / "problem1.toml")
    same = fit("problem1", init=start, max_steps=0, **SMALL)
    assert same.weights.features == ("vowel", "consonant") and same.steps == 0
    assert math.isclose(same.public_kl, score(start, sample_eval_set(get_problem("problem1"))).kl, rel_tol=0.01)
    better = fit("problem1", init=start, max_steps=20, **SMALL)
    assert better.public_kl < same.public_kl
    assert torch.equal(better.weights.W_E, start.W_E) and better.weights.heads[0].name == "share"
    assert better.weights.params == {}  # entries are plain numbers now, not the file's expressions


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"heads": 17}, "heads must be 0…16"),
        ({"heads": -1}, "heads must be 0…16"),
        ({"d_head": 65}, "d_head must be 0…64"),
        ({"d_value": 65}, "d_value must be 0…64"),
        ({"restarts": 0}, "restarts must be at least 1"),
        ({"train_seed": 0}, "must not be the public set"),
    ],
)
def test_impossible_options_are_refused_before_any_work(kwargs, message):
    with pytest.raises(SolveError, match=message):
        fit("problem1", **kwargs)


def test_a_starting_file_sets_the_shape_and_the_problem():
    start = load(SOLUTIONS / "problem1.toml")
    with pytest.raises(SolveError, match="either the file or heads"):
        fit("problem1", heads=2, init=start)
    with pytest.raises(SolveError, match="for problem1, not problem2"):
        fit("problem2", init=start)


def test_no_heads_fits_the_direct_path_alone():
    f = fit("problem2", 0, max_steps=30, **SMALL)
    assert f.weights.heads == () and f.public_kl < 0.5
