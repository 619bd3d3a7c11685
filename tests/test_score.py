"""The vectorised scorer agrees with a slow, readable reference; evaluation sets from texts and files."""

import functools
import json
import math
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from conftest import random_weights

from handattn import (
    AttentionModel,
    EvalFileError,
    HandattnError,
    ProblemMismatchError,
    Scorer,
    Weights,
    eval_set_from_texts,
    get_problem,
    load,
    problem_names,
    read_eval_file,
    sample_eval_set,
    score,
)
from handattn.vocab import CONSONANTS, D_VOCAB, INDEX, TOKENS, VOWELS, encode

FIXTURES = Path(__file__).parent / "fixtures"
PROBLEMS = problem_names()  # every registered problem: a new one must not skip these tests


def exact_p2() -> Weights:
    return load(FIXTURES / "p2_exact.toml")


def solutions(problem: str) -> dict[str, Weights]:
    """Weights checked against the slow reference (zero weights have their own closed-form test)."""
    found = {
        "random0": random_weights(0, problem, features=6, widths=((2, 3), (1, 1)), n_pos=5, scale=0.5),
        "random1": random_weights(1, problem, features=3, widths=((2, 3), (1, 1)), n_pos=5, scale=0.5),
    }
    if problem == "problem2":
        found["exact"] = exact_p2()
    return found


def small_eval_set(name: str):
    return sample_eval_set(get_problem(name), 20, 12)


@pytest.fixture(scope="module", params=PROBLEMS)
def small_set(request):
    return small_eval_set(request.param)


# -- the slow readable reference ---------------------------------------------------------------------


def reference_distributions(problem, text: str) -> list[list[float]]:
    """The exact next-token distribution after each proper prefix of the text, as floats."""
    ids = encode(text)
    return [[float(p) for p in problem.reference_rule(ids[:t])] for t in range(1, len(ids))]


def reference_kls(problem, weights: Weights, texts: list[str]) -> list[list[float]]:
    """KL(true ‖ model) at every prefix, running the model on that prefix alone."""
    model = AttentionModel(weights)
    kls = []
    for text in texts:
        ids = encode(text)
        row = []
        for t, p in enumerate(reference_distributions(problem, text), start=1):
            with torch.no_grad():
                log_q = model(torch.tensor([ids[:t]])).log_probs[0, -1].tolist()  # the last position predicts
            row.append(sum(pi * (math.log(pi) - lq) for pi, lq in zip(p, log_q, strict=True) if pi > 0))
        kls.append(row)
    return kls


@functools.cache
def small_set_reference_kls(name: str, label: str) -> list[list[float]]:
    """reference_kls of one of `solutions(name)` on the small set, computed once per test run."""
    return reference_kls(get_problem(name), solutions(name)[label], small_eval_set(name).texts())


def reference_kind(problem_name: str, prefix: str) -> int:
    """The context of a prefix, read off the problem's rules in plain words."""
    if problem_name == "problem1":
        share = Fraction(sum(ch in CONSONANTS for ch in prefix), len(prefix))
        if share in (0, 1):
            return 0 if share == 0 else 4
        return 1 if share <= Fraction(1, 3) else 2 if share <= Fraction(2, 3) else 3
    if problem_name == "problem4":  # the first prediction; the token before the current one equal to it or not
        return 0 if len(prefix) == 1 else 1 if prefix[-2] == prefix[-1] else 2
    if problem_name not in ("problem2", "problem3", "problem5"):
        raise NotImplementedError(f"write the contexts of {problem_name} here, in plain words")
    last, earlier = prefix[-1], prefix[:-1]
    if last in CONSONANTS:
        return 0
    if last in "01":
        return 1
    if problem_name == "problem3":  # after a vowel: by the first letter
        return 2 if prefix[0] in CONSONANTS else 3
    if problem_name == "problem5":  # after a vowel: a tie, a margin of 1 or 2, or more
        margin = abs(sum(ch in CONSONANTS for ch in prefix) - sum(ch in "aeiou" for ch in prefix))
        return 2 if margin == 0 else 3 if margin <= 2 else 4
    return 2 if any(ch in CONSONANTS for ch in earlier) else 3


def flat_mean(rows: list[list[float]]) -> float:
    values = [x for row in rows for x in row]
    return math.fsum(values) / len(values)


# -- agreement -----------------------------------------------------------------------------------------


def test_scorer_agrees_with_the_slow_reference(small_set):
    problem = small_set.problem
    scorer = Scorer(small_set)
    for label, weights in solutions(problem.name).items():
        expected = small_set_reference_kls(problem.name, label)
        result = scorer(weights)
        assert result.kl == pytest.approx(flat_mean(expected), rel=1e-10, abs=1e-13), label
        assert result.per_position.shape == (20, 11)
        torch.testing.assert_close(
            result.per_position, torch.tensor(expected, dtype=torch.float64).clamp(min=0), rtol=1e-10, atol=1e-13
        )
        assert (result.n_positions, result.n_texts) == (20 * 11, 20)


def test_exact_solution_scores_near_zero_and_passes():
    eval_set = sample_eval_set(get_problem("problem2"), 200)
    result = score(exact_p2(), eval_set)
    assert 0 <= result.kl < 1e-12 and result.passed and result.kl_se < 1e-12
    assert result.argmax_accuracy == 1.0
    assert result.max_abs_weight == 90.0  # L = 3*M = 90


def test_zero_weights_score_the_uniform_guess_over_all_28_tokens(small_set):
    result = Scorer(small_set)(Weights(small_set.problem.name))
    rows = [reference_distributions(small_set.problem, text) for text in small_set.texts()]
    expected = flat_mean([[sum(x * math.log(x * 28) for x in p if x > 0) for p in row] for row in rows])
    assert result.kl == pytest.approx(expected, rel=1e-12)
    assert not result.passed


def test_scoring_a_model_equals_scoring_its_weights(small_set):
    weights = random_weights(2, small_set.problem.name, features=6, widths=((2, 3), (1, 1)), n_pos=5, scale=0.5)
    by_weights, by_model = score(weights, small_set), score(AttentionModel(weights), small_set)
    assert by_model.kl == by_weights.kl and by_model.max_abs_weight == by_weights.max_abs_weight


def test_weights_for_another_problem_are_refused_with_a_typed_error():
    with pytest.raises(ProblemMismatchError, match="weights are for problem2, the evaluation set for problem1"):
        score(exact_p2(), sample_eval_set(get_problem("problem1"), 5, 4))
    try:  # what a caller catches: every error handattn raises on purpose
        score(exact_p2(), sample_eval_set(get_problem("problem1"), 5, 4))
    except HandattnError as e:
        assert "problem1" in str(e)


# -- determinism -----------------------------------------------------------------------------------------


def test_score_is_the_same_to_the_last_bit(small_set):
    weights = random_weights(3, small_set.problem.name, features=6, widths=((2, 3), (1, 1)), n_pos=5, scale=0.5)
    scorer = Scorer(small_set)
    first, again = scorer(weights), scorer(weights)
    fresh = Scorer(sample_eval_set(small_set.problem, 20, 12))(weights)
    for other in (again, fresh):
        assert other.to_dict() == first.to_dict()
        assert torch.equal(other.per_position, first.per_position)


# -- breakdowns, accuracy, baselines -------------------------------------------------------------------


def test_by_context_breakdown(small_set):
    problem, texts = small_set.problem, small_set.texts()
    result = Scorer(small_set)(solutions(problem.name)["random0"])
    assert [c.name for c in result.by_context] == list(problem.contexts)
    assert sum(c.n_positions for c in result.by_context) == result.n_positions
    weighted = math.fsum(c.n_positions * c.kl for c in result.by_context if c.n_positions)
    assert weighted / result.n_positions == pytest.approx(result.kl, rel=1e-12)
    # each context's mean equals the reference KLs grouped by a plain reading of the rule
    kls = small_set_reference_kls(problem.name, "random0")
    groups: dict[int, list[float]] = {}
    for text, row in zip(texts, kls, strict=True):
        for t, kl in enumerate(row, start=1):
            groups.setdefault(reference_kind(problem.name, text[:t]), []).append(kl)
    for i, context in enumerate(result.by_context):
        if i in groups:
            assert context.n_positions == len(groups[i])
            assert context.kl == pytest.approx(math.fsum(groups[i]) / len(groups[i]), rel=1e-10)
        else:
            assert context.n_positions == 0 and math.isnan(context.kl)


@pytest.mark.parametrize("favourite", ["a", "b", "1"])
def test_argmax_accuracy_of_a_fixed_favourite(small_set, favourite):
    # a bias alone: the model always puts its argmax on one token; it is right where that token is most likely
    b_U = torch.zeros(D_VOCAB, dtype=torch.float64)
    b_U[INDEX[favourite]] = 1.0
    result = Scorer(small_set)(Weights(small_set.problem.name, b_U=b_U))
    hits = [
        p[INDEX[favourite]] == max(p)
        for text in small_set.texts()
        for p in reference_distributions(small_set.problem, text)
    ]
    assert result.argmax_accuracy == sum(hits) / len(hits)
    if small_set.problem.name == "problem2" and favourite in "ab":  # right after a consonant or a digit only
        after_vowel = sum(ch in VOWELS for text in small_set.texts() for ch in text[:-1])
        assert result.argmax_accuracy == 1 - after_vowel / result.n_positions


def test_baselines_computed_independently(small_set):
    rows = [p for text in small_set.texts() for p in reference_distributions(small_set.problem, text)]
    possible = [INDEX[tok] for tok in small_set.problem.next_tokens]
    uniform = [math.fsum(p[x] * math.log(p[x] * len(possible)) for x in possible if p[x] > 0) for p in rows]
    mean = [math.fsum(p[x] for p in rows) / len(rows) for x in range(D_VOCAB)]
    best_fixed = [math.fsum(p[x] * math.log(p[x] / mean[x]) for x in range(D_VOCAB) if p[x] > 0) for p in rows]
    result = Scorer(small_set)(Weights(small_set.problem.name))
    assert result.baselines["uniform"] == pytest.approx(math.fsum(uniform) / len(rows), rel=1e-12)
    assert result.baselines["best_fixed"] == pytest.approx(math.fsum(best_fixed) / len(rows), rel=1e-12)
    assert 0 < result.baselines["best_fixed"] <= result.baselines["uniform"]


@pytest.mark.parametrize(
    ("name", "texts", "uniform"),
    [
        ("problem2", ["bcd", "xyz", "qrst"], math.log(28 / 26)),  # only consonants: every target is 1/26 per letter
        ("problem1", ["ba", "bab", "kae"], None),  # uniform over the 26 letters, not over this set's support
        ("problem1", ["ab", "ob", "ubx"], None),
    ],
)
def test_baselines_belong_to_the_problem_not_to_the_set(name, texts, uniform):
    problem = get_problem(name)
    result = score(Weights(name), eval_set_from_texts(problem, texts))
    rows = [p for text in texts for p in reference_distributions(problem, text)]
    n = len(problem.next_tokens)
    expected = math.fsum(math.fsum(x * math.log(x * n) for x in p if x > 0) for p in rows) / len(rows)
    assert result.baselines["uniform"] == pytest.approx(expected, rel=1e-12)
    if uniform is not None:
        assert result.baselines["uniform"] == pytest.approx(uniform, rel=1e-12)
        assert result.baselines["best_fixed"] == 0.0  # the mean target is every target: never -4e-16
    assert all(kl >= 0 for kl in result.baselines.values())
    assert all(c.kl >= 0 for c in result.by_context if c.n_positions)


@pytest.mark.parametrize("name", problem_names())
def test_targets_never_put_mass_outside_the_problems_next_tokens(name):
    problem = get_problem(name)
    eval_set = sample_eval_set(problem, 256, 48, seed=9)
    outside = torch.tensor([tok not in problem.next_tokens for tok in TOKENS])
    assert (eval_set.target_rows[:, outside] == 0).all()  # so the uniform baseline is finite
    assert math.isfinite(Scorer(eval_set).baselines["uniform"])


def test_kl_bits_threshold_and_standard_error(small_set):
    result = Scorer(small_set)(
        random_weights(5, small_set.problem.name, features=6, widths=((2, 3), (1, 1)), n_pos=5, scale=0.5)
    )
    assert result.kl_bits == result.kl / math.log(2)
    assert result.threshold == small_set.problem.threshold
    assert result.passed == (result.kl <= result.threshold)
    # standard error with texts as the units: a ratio estimator over per-text sums
    sums = result.per_position.sum(-1).tolist()
    n, total = len(sums), 11 * len(sums)
    mean = math.fsum(sums) / total
    se = math.sqrt(math.fsum((s - 11 * mean) ** 2 for s in sums) * n / (n - 1)) / total
    assert result.kl_se == pytest.approx(se, rel=1e-10)


def test_to_dict_is_json(small_set):
    result = Scorer(small_set)(
        random_weights(6, small_set.problem.name, features=6, widths=((2, 3), (1, 1)), n_pos=5, scale=0.5)
    )
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert {"problem", "kl", "kl_se", "passed", "threshold", "n_positions", "eval_fingerprint"} <= data.keys()
    assert data["problem"] == small_set.problem.name and data["kl"] == result.kl and data["passed"] is result.passed
    assert data["n_positions"] == 220 and data["eval_fingerprint"] == small_set.fingerprint
    assert data["eval_source"] == "seed 0" and data["seed"] == 0


# -- evaluation sets from texts and files ----------------------------------------------------------------


@pytest.mark.parametrize("name", PROBLEMS)
def test_texts_of_different_lengths_score_as_their_length_groups(name):
    problem = get_problem(name)
    sampled = sample_eval_set(problem, 12, 10).texts()
    lengths = [2, 10, 5, 2, 7, 10, 5, 3, 7, 9, 2, 5]
    texts = [text[:n] for text, n in zip(sampled, lengths, strict=True)]  # prefixes of possible texts are possible
    weights = random_weights(7, name, features=6, widths=((2, 3), (1, 1)), n_pos=5, scale=0.5)
    mixed = eval_set_from_texts(problem, texts)
    assert mixed.texts() == texts and mixed.n_positions == sum(n - 1 for n in lengths)
    assert mixed.mask.sum() == mixed.n_positions
    result = score(weights, mixed)
    parts = []
    for n in sorted(set(lengths)):
        rows = [i for i, length in enumerate(lengths) if length == n]
        part = score(weights, eval_set_from_texts(problem, [texts[i] for i in rows]))
        parts.append(part)
        for j, i in enumerate(rows):
            torch.testing.assert_close(result.per_position[i, : n - 1], part.per_position[j], rtol=1e-12, atol=1e-15)
            assert (result.per_position[i, n - 1 :] == 0).all()
    weighted = math.fsum(part.kl * part.n_positions for part in parts) / result.n_positions
    assert result.kl == pytest.approx(weighted, rel=1e-12)
    assert result.kl == pytest.approx(flat_mean(reference_kls(problem, weights, texts)), rel=1e-10)


@pytest.mark.parametrize(
    ("name", "texts", "problems"),
    [
        (
            "problem2",
            ["ba1", "ba1b0", "1ab"],
            [("line 2", "'0' cannot follow 'ba1b' in problem2"), ("line 3", "starts with a digit")],
        ),
        ("problem2", ["a1"], [("line 1", "'1' cannot follow 'a' in problem2")]),  # no consonant earlier: 0, not 1
        ("problem2", ["ba", "bae"], [("line 2", "'e' cannot follow 'ba' in problem2")]),
        ("problem1", ["ba", "b0"], [("line 2", "'0' cannot follow 'b' in problem1")]),
        ("problem1", ["aa"], [("line 1", "'a' cannot follow 'a' in problem1")]),  # no consonant yet: no vowel next
        ("problem2", ["ba1", "abC", "b"], [("line 2", "'C' is not a token"), ("line 3", "has 1 token")]),
        ("problem2", [], [("", "holds no texts")]),
    ],
)
def test_impossible_texts_are_refused_naming_the_line(name, texts, problems):
    with pytest.raises(EvalFileError) as info:
        eval_set_from_texts(get_problem(name), texts, "mine.txt")
    assert [(issue.where, issue.message) for issue in info.value.issues] == problems
    assert info.value.source == "mine.txt" and "mine.txt: " in str(info.value)


def test_read_eval_file_skips_comments_and_blank_lines(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("# my texts\nba1ke1\n\n   # indented comment\n  a0bo1  \nyyyy\n")
    eval_set = read_eval_file(get_problem("problem2"), path)
    assert eval_set.texts() == ["ba1ke1", "a0bo1", "yyyy"]
    assert eval_set.source == str(path) and eval_set.seed is None
    assert eval_set.fingerprint == eval_set_from_texts(get_problem("problem2"), eval_set.texts()).fingerprint


def test_read_eval_file_reports_the_files_own_line_numbers(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("# header\n\nba1\n# note\nba1b0\n\nb!\n")
    with pytest.raises(EvalFileError) as info:
        read_eval_file(get_problem("problem2"), path)
    assert [issue.where for issue in info.value.issues] == ["line 7"]  # character issues come first
    path.write_text("# header\n\nba1\n# note\nba1b0\n\n1ab\n")
    with pytest.raises(EvalFileError) as info:
        read_eval_file(get_problem("problem2"), path)
    assert [issue.where for issue in info.value.issues] == ["line 5", "line 7"]
    assert f"{path}: line 5: '0' cannot follow 'ba1b' in problem2" in str(info.value)


def test_read_eval_file_of_only_comments_holds_no_texts(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("# nothing here\n\n")
    with pytest.raises(EvalFileError, match="holds no texts"):
        read_eval_file(get_problem("problem1"), path)
