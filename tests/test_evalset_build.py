"""Evaluation sets store each distinct target row once: the rows are the problem's exact targets,
the representation stays small, and scoring the largest set allowed stays within memory."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import handattn.evalset as evalset
from handattn import EvalSetError, eval_set_from_texts, get_problem, problem_names, sample_eval_set

ROOT = Path(__file__).parent.parent
MEMORY_LIMIT = 1.5 * 2**30  # bytes: the whole process scoring a set of MAX_TOKENS tokens


def ragged_set(name: str):
    problem = get_problem(name)
    sampled = sample_eval_set(problem, 30, 16, seed=3).texts()
    return eval_set_from_texts(problem, [text[: 2 + i % 15] for i, text in enumerate(sampled)])


@pytest.mark.parametrize("name", problem_names())
def test_rows_are_the_problems_exact_targets_and_contexts(name):
    eval_set, problem = ragged_set(name), get_problem(name)
    mask = eval_set.mask
    expected = problem.exact_probs(eval_set.tokens)[:, :-1]  # [N, P, V] dense, the old representation
    torch.testing.assert_close(eval_set.dense_target()[mask], expected[mask], rtol=0, atol=0)
    assert torch.equal(eval_set.context_kind()[mask], problem.context_kind(eval_set.tokens)[:, :-1][mask])
    some = torch.tensor([4, 0, 17])
    assert torch.equal(eval_set.dense_target(some), eval_set.dense_target()[some])
    assert torch.equal(eval_set.dense_target(slice(2, 5)), eval_set.dense_target()[2:5])


@pytest.mark.parametrize("name", problem_names())
def test_building_in_small_blocks_gives_the_same_set(name, monkeypatch):
    whole = ragged_set(name)
    monkeypatch.setattr(evalset, "BUILD_POSITIONS", 40)  # 2 texts per block
    blocks = ragged_set(name)
    mask = whole.mask  # padding positions hold row 0, whichever row that is
    assert torch.equal(blocks.dense_target()[mask], whole.dense_target()[mask])
    assert torch.equal(blocks.context_kind()[mask], whole.context_kind()[mask])
    assert blocks.fingerprint == whole.fingerprint


def test_a_hash_collision_is_caught_and_never_merges_rows(monkeypatch):
    expected = ragged_set("problem1")
    zero = torch.zeros_like(evalset._SALTS[0])  # every row hashes to 0
    monkeypatch.setattr(evalset, "_SALTS", [zero, evalset._SALTS[0]])
    retried = ragged_set("problem1")
    assert torch.equal(retried.dense_target()[expected.mask], expected.dense_target()[expected.mask])
    monkeypatch.setattr(evalset, "_SALTS", [zero, zero])
    with pytest.raises(EvalSetError, match="could not be tabulated"):
        ragged_set("problem1")


def test_too_many_distinct_rows_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(evalset, "MAX_TARGET_ROWS", 10)
    with pytest.raises(EvalSetError, match="problem1's targets take over 10 distinct rows"):
        sample_eval_set(get_problem("problem1"), 50)


@pytest.mark.parametrize("name", problem_names())
def test_a_set_takes_few_bytes_per_position(name):
    eval_set = sample_eval_set(get_problem(name), 1024, 128)
    tensors = (eval_set.tokens, eval_set.lengths, eval_set.target_rows, eval_set.row_kinds, eval_set.row_index)
    size = sum(t.element_size() * t.numel() for t in tensors)
    assert size / eval_set.n_positions <= 24  # dense float64 targets alone took 224


_MEASURE = """
import resource, sys, torch
from handattn import Scorer, get_problem, load, sample_eval_set
def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
Scorer(sample_eval_set(get_problem("problem1"), 8, 8))(load("solutions/problem1.toml"))
base = peak()
eval_set = sample_eval_set(get_problem("problem1"), 512, 512)
result = Scorer(eval_set)(load("solutions/problem1.toml"))
print(base, peak(), result.path)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB is Linux's convention")
def test_scoring_the_largest_set_allowed_fits_in_memory():
    # a sixteenth of the cap, measured in a fresh process; memory grows linearly in the tokens
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    base, peak, path = out.stdout.split()
    per_token = (int(peak) - int(base)) / (512 * 512)
    assert path == "states"
    assert int(base) + per_token * evalset.MAX_TOKENS < MEMORY_LIMIT, f"{per_token:.0f} bytes per token"
