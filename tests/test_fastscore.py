"""Every fast scoring path agrees with the plain path (AttentionModel on whole texts, dense targets),
on every registered problem, on random weights of every kind, and to the last bit run after run."""

import dataclasses
import math
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from conftest import random_weights
from hypothesis import given, settings
from hypothesis import strategies as st

from handattn import (
    AttentionModel,
    Scorer,
    Weights,
    eval_set_from_texts,
    fastscore,
    get_problem,
    load,
    problem_names,
    sample_eval_set,
)
from handattn.fastscore import MAX_LEADING, _unique, choose_path, leading_positions
from handattn.tables import ROWS, CountModel, PositionModel, Workspace
from handattn.tally import exact_sum, exact_sums, exact_totals
from handattn.vocab import D_VOCAB

SOLUTIONS = Path(__file__).parent.parent / "solutions"


def classed(seed: int, problem: str, classes: int, **options) -> Weights:
    """conftest's random weights with the tokens sharing `classes` rows of W_E: few query and key
    classes, as hand-written files have (token i takes row i mod classes)."""
    weights = random_weights(seed, problem, n_pos=None, **options)
    return dataclasses.replace(weights, W_E=weights.W_E[torch.arange(D_VOCAB) % classes])


def first_rows(seed: int, n: int, d_model: int = 5) -> torch.Tensor:
    """A W_P whose first n rows are random and the rest zero (conftest's d_model is 5)."""
    W_P = torch.zeros(12, d_model, dtype=torch.float64)
    W_P[:n] = torch.randn(n, d_model, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return W_P


def position_only(seed: int, problem: str, heads: int = 1) -> Weights:
    """The first `heads` heads' queries and keys read only feature 4, which only W_P writes: their
    pattern is the same in every text (as problem4's previous-position head); any other head reads
    tokens as usual."""
    weights = random_weights(seed, problem, n_pos=12, scale=1.3)
    W_E = weights.W_E.clone()
    W_E[:, 4] = 0.0
    keep = torch.zeros(5, 1, dtype=torch.float64)
    keep[4] = 1.0
    fixed = [dataclasses.replace(h, W_Q=h.W_Q * keep, W_K=h.W_K * keep) for h in weights.heads[:heads]]
    return dataclasses.replace(weights, W_E=W_E, heads=[*fixed, *weights.heads[heads:]])


def integers(weights: Weights) -> Weights:
    """Every entry rounded to an integer, as hand-written files have: logits equal in exact
    arithmetic but summed in different orders by different paths (ties broken only by rounding)."""
    heads = [dataclasses.replace(h, W_Q=h.W_Q.round(), W_K=h.W_K.round(), W_V=h.W_V.round()) for h in weights.heads]
    W_E = None if weights.W_E is None else weights.W_E.round()
    return dataclasses.replace(weights, heads=heads, W_E=W_E, W_U=weights.W_U.round(), b_U=weights.b_U.round())


WEIGHTS = {  # label → (expected path on a 12-token set, weights for a problem)
    "features": ("states", lambda p: classed(1, p, 3, scale=0.5)),
    "features, wide scores": ("states", lambda p: classed(2, p, 4, scale=400.0)),
    "features, negative scale": ("states", lambda p: classed(3, p, 3, scale=-2.0)),
    "features, zero scale": ("states", lambda p: classed(4, p, 3, scale=0.0)),
    "no heads": ("states", lambda p: random_weights(5, p, widths=(), n_pos=None)),
    "heads without values or keys": ("states", lambda p: classed(13, p, 3, widths=((2, 0), (0, 2)))),
    "a head with no dims and no values": ("states", lambda p: classed(19, p, 3, widths=((0, 0),))),
    "every head empty, one-hot": (
        "states",
        lambda p: random_weights(20, p, one_hot=True, widths=((0, 0),) * 2, n_pos=None),
    ),
    "dense": ("counts", lambda p: random_weights(6, p, features=6, n_pos=None)),
    "dense one-hot, three heads": (
        "counts",
        lambda p: random_weights(7, p, one_hot=True, widths=((4, 4),) * 3, n_pos=None),
    ),
    "dense, large scale": ("counts", lambda p: random_weights(8, p, n_pos=None, scale=300.0)),
    "dense, some heads wide": (
        "counts",
        lambda p: random_weights(17, p, one_hot=True, widths=((2, 3), (1, 0), (0, 2)), n_pos=None, scale=150.0),
    ),
    "integers, uniform attention": (
        "counts",
        lambda p: integers(random_weights(21, p, one_hot=True, widths=((0, 0), (4, 4)), n_pos=None, scale=0.0)),
    ),
    "integers, sparse": (
        "counts",
        lambda p: integers(random_weights(22, p, one_hot=True, widths=((3, 3), (4, 1)), n_pos=None, density=0.5)),
    ),
    "integers, position embedding": (
        "positions",
        lambda p: integers(random_weights(23, p, widths=((1, 3), (2, 2)), n_pos=30, scale=0.0, density=0.5)),
    ),
    "W_P at the first position": ("states", lambda p: dataclasses.replace(classed(14, p, 3), W_P=first_rows(14, 1))),
    "W_P at the first four positions": (
        "states",
        lambda p: dataclasses.replace(classed(15, p, 2), W_P=first_rows(15, 4)),
    ),
    "dense, W_P at the first two positions": (
        "counts",
        lambda p: dataclasses.replace(random_weights(16, p, n_pos=None), W_P=first_rows(16, 2)),
    ),
    "position embedding": ("positions", lambda p: random_weights(9, p, n_pos=5)),
    "a head that attends by position only": ("positions", lambda p: position_only(18, p)),
    "every head attends by position only": ("positions", lambda p: position_only(24, p, heads=2)),
    "dense, position embedding": ("positions", lambda p: random_weights(10, p, one_hot=True, n_pos=40, scale=-0.7)),
}


def eval_sets(name: str) -> dict:
    problem = get_problem(name)
    sampled = sample_eval_set(problem, 24, 12, seed=5)
    lengths = [2, 12, 5, 3, 9, 12, 7, 2, 10, 4, 12, 6]  # prefixes of possible texts are possible
    ragged = eval_set_from_texts(problem, [t[:n] for t, n in zip(sampled.texts(), lengths, strict=False)])
    return {"sampled": sampled, "ragged": ragged}


CASES = [(name, kind) for name in problem_names() for kind in ("sampled", "ragged")]
_scorers: dict = {}


def scorer_for(name: str, kind: str) -> Scorer:
    if (name, kind) not in _scorers:
        _scorers[(name, kind)] = Scorer(eval_sets(name)[kind])
    return _scorers[(name, kind)]


def assert_agree(fast, plain) -> None:
    """The numbers a report shows agree: 1e-12 relative, or 1e-15 nats where both are near 0."""
    assert fast.kl == pytest.approx(plain.kl, rel=1e-12, abs=1e-15)
    assert fast.kl_se == pytest.approx(plain.kl_se, rel=1e-12, abs=1e-15, nan_ok=True)
    assert fast.argmax_accuracy == plain.argmax_accuracy
    assert fast.baselines == plain.baselines
    for a, b in zip(fast.by_context, plain.by_context, strict=True):
        assert (a.name, a.n_positions) == (b.name, b.n_positions)
        assert a.kl == pytest.approx(b.kl, rel=1e-12, abs=1e-15, nan_ok=True)
    torch.testing.assert_close(fast.per_position, plain.per_position, rtol=1e-11, atol=1e-14)
    assert (fast.n_positions, fast.n_texts, fast.max_abs_weight) == (
        plain.n_positions,
        plain.n_texts,
        plain.max_abs_weight,
    )


@pytest.mark.parametrize("label", list(WEIGHTS))
@pytest.mark.parametrize(("name", "kind"), CASES)
def test_every_path_agrees_with_the_plain_path(name, kind, label):
    expected_path, make = WEIGHTS[label]
    scorer, weights = scorer_for(name, kind), make(name)
    plain = scorer(weights, path="plain")
    auto = scorer(weights)
    assert (auto.path, plain.path) == (expected_path, "plain")
    assert_agree(auto, plain)
    others = {"positions"} if expected_path == "positions" else {"counts", "positions"}  # forced paths that apply
    for path in sorted(others - {expected_path}):  # counts and positions apply to any weights that states does
        assert_agree(scorer(weights, path=path), plain)


@pytest.mark.parametrize("name", problem_names())
def test_reference_solutions_agree_and_group_their_states_unless_positions_matter(name):
    path = SOLUTIONS / f"{name}.toml"
    if not path.exists():
        pytest.skip(f"no reference solution for {name}")
    eval_set = sample_eval_set(get_problem(name), 300)
    scorer, weights = Scorer(eval_set), load(path)
    fast, plain = scorer(weights), scorer(weights, path="plain")
    # hand-written: a few classes, so never per position; W_P only at the first positions keeps the states
    assert fast.path == ("states" if leading_positions(weights, eval_set) <= MAX_LEADING else "positions")
    assert_agree(fast, plain)


def test_a_first_position_feature_keeps_the_states_path():
    # problem3's worked answer marks position 1 with W_P (the course's third worked example)
    eval_set = sample_eval_set(get_problem("problem3"), 50)
    weights = load(SOLUTIONS / "problem3.toml")
    assert leading_positions(weights, eval_set) == 1 and choose_path(weights, eval_set) == "states"


def test_a_head_that_reads_only_positions_has_one_pattern_for_every_text():
    mixed = PositionModel(position_only(18, "problem2"), 16)
    assert (len(mixed.fixed), len(mixed.heads)) == (1, 1)
    previous = PositionModel(load(SOLUTIONS / "problem4.toml"), 32)
    ((pieces, _),) = previous.fixed
    pattern = whole(pieces, 32)
    assert not previous.heads and bool((pattern.diagonal(-1)[1:] > 0.99).all())  # attends to the previous position


def whole(pieces, P: int) -> torch.Tensor:
    """The [P, P] pattern a fixed head's pieces hold."""
    pattern = torch.zeros(P, P, dtype=torch.float64)
    for queries, keys, piece in pieces:
        assert bool((pattern[queries, keys] == 0).all())  # pieces never overlap
        pattern[queries, keys] = piece
    return pattern


@pytest.mark.parametrize("P", [8, 40, 64])
def test_a_fixed_pattern_is_multiplied_by_the_pieces_that_hold_its_weights(P):
    # problem4's head is causal (no key after the query) and sharp (far keys' weights round to 0):
    # its pieces hold every weight the plain model has, in blocks of whole ROWS, and at 64
    # positions under half the square
    weights = load(SOLUTIONS / "problem4.toml")
    ((pieces, _),) = PositionModel(weights, P).fixed
    plain = AttentionModel(weights)(torch.zeros(1, P, dtype=torch.long)).pattern[0][0]  # [P, P], every text's
    torch.testing.assert_close(whole(pieces, P), plain, rtol=1e-10, atol=1e-300)  # scores of 5,000 nats round
    assert all((q.stop - q.start) % ROWS == 0 for q, _, _ in pieces)
    held = sum(piece.numel() for _, _, piece in pieces)
    assert held <= P * (P + ROWS) / 2 and (P < 64 or held < P * P / 2)


@pytest.mark.parametrize("scale", [0.3, 3.0, 30.0])
@pytest.mark.parametrize("make", ["text by text", "fixed", "both"])
def test_a_position_models_span_bounds_every_row_of_its_logits(make, scale):
    # skipping the raised exponent before e^(logit − top) rests on this bound, for both table models
    weights = {
        "text by text": lambda: random_weights(31, "problem2", one_hot=True, n_pos=20, scale=scale),
        "fixed": lambda: position_only(32, "problem2", heads=2),
        "both": lambda: position_only(33, "problem2"),
    }[make]()
    weights = dataclasses.replace(weights, W_U=weights.W_U * scale, b_U=weights.b_U * scale)
    eval_set = sample_eval_set(get_problem("problem2"), 40, 20, seed=3)
    model = PositionModel(weights, 24)
    logits = model.logits(torch.nn.functional.pad(eval_set.tokens[:, :19], (0, 5)))[:19]  # [P, n, V]
    spread = float((logits.amax(-1) - logits.amin(-1)).max())
    assert spread <= model.span < 10 * spread + 50  # a bound, not a guess
    grouped = CountModel(weights)  # the same layer without W_P, as the states and counts paths see it
    layer, tokens = grouped.grouped(grouped.key_class), eval_set.tokens[:, :19].flatten()
    counts = torch.nn.functional.one_hot(eval_set.tokens[:, :19], D_VOCAB).cumsum(1).flatten(0, 1).double()  # [S, X]
    spread = 0.0
    for x in tokens.unique().tolist():
        logits_T = layer.logits_T(int(grouped.query_class[x]), counts[tokens == x].T.contiguous(), Workspace())
        spread = max(spread, float((logits_T.amax(0) - logits_T.amin(0)).max()))
    assert spread <= grouped.span < 10 * spread + 50


def test_problem2_solution_has_three_query_and_two_key_classes():
    model = CountModel(load(SOLUTIONS / "problem2.toml"))
    # residual rows: vowel, consonant, digit; keys: only consonants answer, vowels and digits alike
    assert (model.n_query, model.n_key) == (3, 2)
    assert model.key_class[1] != model.key_class[0] == model.key_class[26]  # b vs a and 0
    assert model.heads[0][1] is not None  # scores span 20 nats: softmax weights come from the table


def test_wide_scores_are_exponentiated_per_state():
    narrow, wide = CountModel(classed(2, "problem2", 4, scale=0.5)), CountModel(classed(2, "problem2", 4, scale=400.0))
    assert all(table is not None for _, table, _ in narrow.heads)
    assert all(table is None for _, table, _ in wide.heads)  # rows span over 600 nats


def test_a_position_embedding_that_never_reaches_a_predicted_position_is_ignored():
    problem = get_problem("problem2")
    eval_set = sample_eval_set(problem, 10, 8)  # 7 predicted positions
    weights = dataclasses.replace(classed(11, "problem2", 3), W_P=torch.randn(12, 5, dtype=torch.float64))
    far = dataclasses.replace(weights, W_P=torch.cat([torch.zeros(7, 5, dtype=torch.float64), weights.W_P[7:]]))
    assert choose_path(weights, eval_set) == "positions" and choose_path(far, eval_set) == "states"
    scorer = Scorer(eval_set)
    assert_agree(scorer(far), scorer(far, path="plain"))


def test_states_that_need_more_than_62_bits_go_per_position():
    # 28 key classes over 31 positions cannot be keyed in 62 bits; 3 classes can
    eval_set = sample_eval_set(get_problem("problem1"), 4)
    assert choose_path(random_weights(0, "problem1", one_hot=True, n_pos=None), eval_set) == "counts"
    assert choose_path(classed(0, "problem1", 3), eval_set) == "states"


# -- exact to the last bit ------------------------------------------------------------------------------


@pytest.mark.parametrize("label", list(WEIGHTS))
def test_scores_are_identical_on_any_number_of_threads(label):
    # MKL's dgemm shares out rows by thread count unless they come in fours: every path pads its products
    assert_same_on_every_thread_count(scorer_for("problem2", "sampled"), WEIGHTS[label][1]("problem2"))


@pytest.mark.parametrize("label", ["dense one-hot, three heads", "dense, position embedding"])
def test_scores_at_full_size_are_identical_on_any_number_of_threads(label):
    # the default set: chunks big enough that torch splits reductions and products between threads
    scorer = Scorer(sample_eval_set(get_problem("problem2")))
    result = assert_same_on_every_thread_count(scorer, WEIGHTS[label][1]("problem2"))
    assert result.path == WEIGHTS[label][0]


def test_problem4s_reference_is_identical_on_any_number_of_threads():
    # every pattern fixed: blocks of 2,048 positions, one product over all of a block's texts
    scorer = Scorer(sample_eval_set(get_problem("problem4")))
    result = assert_same_on_every_thread_count(scorer, load(SOLUTIONS / "problem4.toml", problem="problem4"))
    assert result.path == "positions"


def assert_same_on_every_thread_count(scorer: Scorer, weights: Weights):
    """The score on 1, 2 and 3 torch threads, bit for bit the same; the threads are restored after."""
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(scorer(weights))
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        assert other.to_dict() == results[0].to_dict()
        assert torch.equal(other.per_position, results[0].per_position)
    return results[0]


def test_scoring_leaves_torch_threads_alone():
    before = torch.get_num_threads()
    Scorer(sample_eval_set(get_problem("problem2"), 8))(random_weights(0, "problem2"))
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_grouped_means_equal_fsum_over_every_position(name, kind):
    scorer = scorer_for(name, kind)
    result = scorer(classed(12, name, 3))
    assert result.path == "states"
    es = scorer.eval_set
    mask, kinds = es.mask, es.context_kind()
    assert result.kl == math.fsum(result.per_position[mask].tolist()) / es.n_positions  # bit for bit
    for i, context in enumerate(result.by_context):
        here = mask & (kinds == i)
        assert context.n_positions == int(here.sum())
        if context.n_positions:
            assert context.kl == math.fsum(result.per_position[here].tolist()) / context.n_positions


def test_exact_sum_is_the_correctly_rounded_sum_of_every_copy():
    g = torch.Generator().manual_seed(0)
    values = torch.randn(300, generator=g, dtype=torch.float64) * torch.logspace(-30, 30, 300, dtype=torch.float64)
    values[::7] = 0.0
    counts = torch.randint(1, 1 << 40, (300,), generator=g)
    exact = sum((Fraction(v) * c for v, c in zip(values.tolist(), counts.tolist(), strict=True)), Fraction(0))
    assert exact_sum(values, counts) == float(exact)
    small = torch.randint(1, 5, (300,), generator=g)
    repeated = [v for v, c in zip(values.tolist(), small.tolist(), strict=True) for _ in range(c)]
    assert exact_sum(values, small) == math.fsum(repeated)
    assert exact_sum(values) == math.fsum(values.tolist())
    columns = torch.stack([values, values.flip(0) * 3], dim=1)  # [300, 2]: every column at once
    assert exact_sums(columns, counts) == [exact_sum(values, counts), exact_sum(values.flip(0) * 3, counts)]
    assert exact_sum(torch.tensor([math.inf, 1.0], dtype=torch.float64), torch.tensor([2, 3])) == math.inf


def test_exact_totals_round_each_label_and_the_whole_once():
    g = torch.Generator().manual_seed(2)
    values = torch.randn(500, generator=g, dtype=torch.float64) * torch.logspace(-300, 250, 500, dtype=torch.float64)
    values[::11] = 0.0
    values[::13] = 5e-324  # subnormals
    label = torch.randint(0, 4, (500,), generator=g)
    for count in (None, torch.randint(0, 1 << 41, (500,), generator=g)):
        copies = [1] * 500 if count is None else count.tolist()
        terms = [Fraction(v) * c for v, c in zip(values.tolist(), copies, strict=True)]
        per, total = exact_totals(values, count, label, 5)
        for i in range(5):
            assert per[i] == float(
                sum((t for t, lab in zip(terms, label.tolist(), strict=True) if lab == i), Fraction(0))
            )
        assert per[4] == 0.0 and total == float(sum(terms, Fraction(0)))


def test_exact_totals_of_finite_values_whose_float_sum_overflows():
    values = torch.tensor([1e308, 1e308, -1e308, 3.0], dtype=torch.float64)  # a float sum overflows on the way
    per, total = exact_totals(values, None, torch.tensor([0, 0, 0, 1]), 2)
    assert per == [1e308, 3.0] and total == float(sum(map(Fraction, values.tolist())))
    assert exact_totals(torch.tensor([1e308, 1e308], dtype=torch.float64))[1] == math.inf  # the total itself overflows


def test_the_counts_path_keeps_its_blocks_and_gives_the_same_bits(monkeypatch):
    # several blocks, only the first kept: kept, rebuilt and never-kept blocks must give the same score
    monkeypatch.setattr(fastscore, "KIND_BLOCK", 40)
    eval_set = eval_sets("problem2")["ragged"]
    weights = WEIGHTS["dense one-hot, three heads"][1]("problem2")
    scorer = Scorer(eval_set)
    one = fastscore.KindBlock.build(eval_set, scorer.targets, slice(0, 40 // 11), 0)  # the first block: 3 texts
    monkeypatch.setattr(fastscore, "CACHE_BYTES", one.nbytes)
    results = [scorer(weights), scorer(weights)]
    monkeypatch.setattr(fastscore, "CACHE_BYTES", 0)
    results.append(Scorer(eval_set)(weights))
    assert len(scorer.fast._blocks[0]) == 1 < len(eval_set.tokens) // 3
    for other in results[1:]:
        assert other.to_dict() == results[0].to_dict() and torch.equal(other.per_position, results[0].per_position)
    assert results[0].path == "counts"
    assert_agree(results[0], scorer(weights, path="plain"))


def test_unique_by_counting_equals_torch_unique():
    keys = torch.randint(0, 5000, (3000,), generator=torch.Generator().manual_seed(1))
    expected = torch.unique(keys, return_inverse=True, return_counts=True)
    for space in (5000, 10**12):  # counted, then sorted
        for got, want in zip(_unique(keys, space), expected, strict=True):
            assert torch.equal(got, want)


@pytest.mark.parametrize("label", ["features", "dense one-hot, three heads", "dense, some heads wide"])
def test_chunks_of_any_size_agree(label, monkeypatch):
    # states and counts go CHUNK positions at a time; a chunk of 3 splits every kind several times.
    # A position's last bit may depend on its place in a chunk (vectorised and tail loops), so the
    # chunked score agrees to rounding and is itself the same run after run.
    scorer, weights = scorer_for("problem1", "ragged"), WEIGHTS[label][1]("problem1")
    whole = scorer(weights)
    monkeypatch.setattr(fastscore, "CHUNK", 3)
    chunked, again = scorer(weights), scorer(weights)
    assert chunked.path == whole.path == WEIGHTS[label][0]
    assert_agree(chunked, whole)
    assert_agree(chunked, scorer(weights, path="plain"))
    assert chunked.to_dict() == again.to_dict() and torch.equal(chunked.per_position, again.per_position)


@pytest.mark.parametrize("label", ["position embedding", "every head attends by position only"])
def test_the_positions_path_in_blocks_of_any_size_agrees(label, monkeypatch):
    # text by text the [n, P, P] scores bound a block, with every pattern fixed only its positions:
    # blocks of 1 to 3 texts cut the ragged set everywhere, padding included
    scorer, weights = scorer_for("problem2", "ragged"), WEIGHTS[label][1]("problem2")
    whole = scorer(weights)
    monkeypatch.setattr(fastscore, "POSITION_BLOCK", 3 * 16 * 16)
    monkeypatch.setattr(fastscore, "POSITION_ROWS", 2 * 16)
    fresh = Scorer(scorer.eval_set)
    blocked, again = fresh(weights), fresh(weights)
    assert blocked.path == whole.path == "positions"
    assert len(fresh.fast._position_blocks) == 1 and len(next(iter(fresh.fast._position_blocks.values())).blocks) >= 4
    assert_agree(blocked, whole)
    assert_agree(blocked, scorer(weights, path="plain"))
    assert blocked.to_dict() == again.to_dict() and torch.equal(blocked.per_position, again.per_position)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    name=st.sampled_from(problem_names()),
    kind=st.sampled_from(["sampled", "ragged"]),
    widths=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=4),
    one_hot=st.booleans(),
    n_pos=st.sampled_from([None, 2, 12]),
    scale=st.sampled_from([0.0, 1.0, -3.0, 40.0]),
    density=st.sampled_from([1.0, 0.5, 0.1]),
    rounded=st.booleans(),
)
def test_any_layer_scores_the_same_on_every_path_that_applies(
    seed, name, kind, widths, one_hot, n_pos, scale, density, rounded
):
    # the class the fixed cases above sample: any shapes (empty heads too), scales, sparse and
    # integer entries (logits tied in exact arithmetic), W_P reaching the first positions or further
    weights = random_weights(
        seed % 10**6, name, one_hot=one_hot, widths=tuple(widths), n_pos=n_pos, scale=scale, density=density
    )
    weights = integers(weights) if rounded else weights
    scorer = scorer_for(name, kind)
    plain = scorer(weights, path="plain")
    auto = scorer(weights)
    assert_agree(auto, plain)
    near = leading_positions(weights, scorer.eval_set) <= MAX_LEADING
    for path in {"counts", "positions"} - {auto.path} if near else ():
        assert_agree(scorer(weights, path=path), plain)
