"""Weight files: the labelled and dense forms, `Weights` built in Python, and saving that loads back exactly."""

import math
import re
import tomllib

import pytest
import torch
from conftest import random_weights
from hypothesis import given, settings
from hypothesis import strategies as st

from handattn.errors import WeightFileError
from handattn.vocab import D_VOCAB, GROUPS, INDEX, TOKENS
from handattn.weights import Head, Weights, dumps, from_dict, load, loads, save

# the worked problem-2 answer: "is there a consonant before me?", in the labelled form
P2 = """\
problem = "problem2"
[params]
S = 20
M = 30
L = "3*M"
[embed]
features = ["vowel", "consonant", "digit"]
W_E.vowels.vowel = 1
W_E.consonants.consonant = 1
W_E.digits.digit = 1
[[heads]]
name = "seen"
dims = ["c"]
values = ["seen"]
W_Q.vowel.c = 1
W_Q.consonant.c = 1
W_Q.digit.c = 1
W_K.consonant.c = "S"
W_V.consonant.seen = 1
[unembed]
W_U.vowel = { letters = "-L", 0 = "M", 1 = "-M" }
W_U.seen = { 0 = "-2*M", 1 = "2*M" }
W_U.consonant.digits = "-L"
W_U.digit.digits = "-L"
"""

F64 = torch.float64


def ids(names) -> list[int]:
    return [INDEX[t] for t in names]


def assert_same(a: Weights, b: Weights, saved: bool = False) -> None:
    """Equal in every name and, exactly, in every tensor. Once `saved`, [params] are only a comment
    (every entry is written as a number), so the loaded weights declare none."""
    assert (a.problem, a.scale, a.features) == (b.problem, b.scale, b.features)
    assert b.params == ({} if saved else a.params)
    assert [(h.name, h.dims, h.values) for h in a.heads] == [(h.name, h.dims, h.values) for h in b.heads]
    ma, mb = a.matrices(), b.matrices()
    assert ma.keys() == mb.keys()
    for place in ma:
        assert ma[place].dtype == mb[place].dtype == F64, place
        assert torch.equal(ma[place], mb[place]), place


def test_worked_example_loads_with_every_entry_where_it_was_written():
    w = loads(P2)
    assert w.problem == "problem2"
    assert w.params == {"S": 20.0, "M": 30.0, "L": 90.0}
    assert w.features == ("vowel", "consonant", "digit")
    assert w.scale == 1.0 and w.W_P is None
    for tok in TOKENS:
        kind = "vowel" if tok in GROUPS["vowels"] else "digit" if tok in GROUPS["digits"] else "consonant"
        assert w.W_E[INDEX[tok]].tolist() == [float(kind == f) for f in w.features], tok
    (head,) = w.heads
    assert (head.name, head.dims, head.values) == ("seen", ("c",), ("seen",))
    assert head.W_Q.tolist() == [[1.0], [1.0], [1.0]]
    assert head.W_K.tolist() == [[0.0], [20.0], [0.0]]
    assert head.W_V.tolist() == [[0.0], [1.0], [0.0]]
    assert w.unembed_rows == ("vowel", "consonant", "digit", "seen")
    expected_U = torch.zeros(4, D_VOCAB, dtype=F64)
    expected_U[0, :26], expected_U[0, 26], expected_U[0, 27] = -90, 30, -30
    expected_U[1, 26:] = expected_U[2, 26:] = -90
    expected_U[3, 26], expected_U[3, 27] = -60, 60
    assert torch.equal(w.W_U, expected_U)
    assert torch.equal(w.b_U, torch.zeros(D_VOCAB, dtype=F64))
    assert w.max_abs() == 90.0


def test_tokens_name_rows_and_columns_of_the_default_one_hot_embedding():
    w = loads(
        """
        problem = "problem2"
        [[heads]]
        dims = ["c"]
        values = ["seen"]
        W_Q.a.c = 1
        W_K.0.c = 2
        W_V.z.seen = 3
        [unembed]
        W_U.seen.b = 4
        W_U.a.1 = 5
        b_U.y = -6
        """
    )
    assert w.features == TOKENS and torch.equal(w.W_E, torch.eye(D_VOCAB, dtype=F64))
    h = w.heads[0]
    assert (h.name, h.W_Q.shape, h.W_V.shape) == ("h0", (28, 1), (28, 1))
    assert h.W_Q[INDEX["a"], 0] == 1 and h.W_Q.abs().sum() == 1
    assert h.W_K[INDEX["0"], 0] == 2 and h.W_K.abs().sum() == 2
    assert h.W_V[INDEX["z"], 0] == 3 and h.W_V.abs().sum() == 3
    assert w.unembed_rows == (*TOKENS, "seen")
    assert w.W_U[28, INDEX["b"]] == 4 and w.W_U[INDEX["a"], INDEX["1"]] == 5 and w.W_U.abs().sum() == 9
    assert w.b_U[INDEX["y"]] == -6 and w.b_U.abs().sum() == 6


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_a_group_stands_for_its_tokens_as_rows_and_as_columns(group):
    w = loads(
        f"""
        problem = "problem2"
        [[heads]]
        dims = ["c"]
        values = ["seen"]
        W_Q.{group}.c = 2
        [unembed]
        W_U.a.{group} = 3
        b_U.{group} = 4
        """
    )
    members = ids(GROUPS[group])
    assert torch.nonzero(w.heads[0].W_Q[:, 0]).flatten().tolist() == members
    assert set(w.heads[0].W_Q[members, 0].tolist()) == {2.0}
    assert torch.nonzero(w.W_U[INDEX["a"]]).flatten().tolist() == members
    assert torch.nonzero(w.W_U).shape[0] == len(members)
    assert torch.nonzero(w.b_U).flatten().tolist() == members


def test_all_in_features_expands_to_one_hot_plus_named_features_and_positions():
    w = loads(
        """
        problem = "problem2"
        [embed]
        features = ["all", "first"]
        W_P.1.first = 1
        W_P.3.first = "-1/2"
        [[heads]]
        dims = ["c"]
        values = ["seen"]
        W_Q.vowels.c = 1
        W_K.first.c = 5
        """
    )
    assert w.features == (*TOKENS, "first")
    expected_E = torch.cat([torch.eye(D_VOCAB, dtype=F64), torch.zeros(D_VOCAB, 1, dtype=F64)], dim=1)
    assert torch.equal(w.W_E, expected_E)
    assert w.W_P.shape == (3, 29)  # positions 1…3, the highest one named
    assert w.W_P[:, 28].tolist() == [1.0, 0.0, -0.5] and w.W_P[:, :28].abs().sum() == 0
    assert w.heads[0].W_Q[ids(GROUPS["vowels"]), 0].tolist() == [1.0] * 5
    assert w.heads[0].W_K[28, 0] == 5


def test_dense_positions_and_embedding_with_named_features():
    rows = ", ".join("[1, 0]" if tok in GROUPS["vowels"] else "[0, 1]" for tok in TOKENS)
    w = loads(
        f"""
        problem = "problem2"
        [embed]
        features = ["vowel", "other"]
        W_E = [{rows}]
        W_P = [[0.5, 0], [0, "2**-2"]]
        """
    )
    assert w.W_E[INDEX["e"]].tolist() == [1.0, 0.0] and w.W_E[INDEX["1"]].tolist() == [0.0, 1.0]
    assert w.W_P.tolist() == [[0.5, 0.0], [0.0, 0.25]]


def test_params_may_use_earlier_params_and_entries_may_be_expressions_anywhere():
    w = loads(
        """
        problem = "problem2"
        scale = "1/sqrt(D)"
        [params]
        D = 4
        S = "log(21/5)"
        T = "2*S - D"
        [[heads]]
        dims = ["c"]
        values = ["seen"]
        W_K.b.c = "T"
        W_Q = [["-S"], ["exp(0)"], [0], [0], [0], [0], [0], [0], [0], [0], [0], [0], [0], [0],
               [0], [0], [0], [0], [0], [0], [0], [0], [0], [0], [0], [0], [0], ["pi"]]
        [unembed]
        b_U = ["D", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, "-e"]
        """
    )
    S = torch.log(torch.tensor(21 / 5, dtype=F64)).item()
    assert w.params == pytest.approx({"D": 4.0, "S": S, "T": 2 * S - 4}, rel=1e-15)
    assert w.scale == 0.5
    assert w.heads[0].W_K[INDEX["b"], 0] == w.params["T"]
    assert w.heads[0].W_Q[[0, 1, 27], 0].tolist() == pytest.approx([-S, 1.0, torch.pi], rel=1e-15)
    assert w.b_U[0] == 4 and w.b_U[27] == pytest.approx(-torch.e) and w.b_U[5] == 5


def test_omitted_matrices_and_entries_are_zero():
    w = loads(
        """
        problem = "problem2"
        [[heads]]
        name = "idle"
        dims = ["x", "y"]
        values = ["hold", "keep", "drop"]
        """
    )
    h = w.heads[0]
    for matrix, shape in ((h.W_Q, (28, 2)), (h.W_K, (28, 2)), (h.W_V, (28, 3)), (w.W_U, (31, 28)), (w.b_U, (28,))):
        assert matrix.shape == shape and matrix.dtype == F64 and not matrix.any()
    assert w.unembed_rows[-3:] == ("hold", "keep", "drop")


SPELLINGS = [
    'W_U.vowel.letters = "-L"\nW_U.vowel.0 = 7',
    'W_U.vowel = { letters = "-L", 0 = 7 }',
    'W_U = { vowel = { letters = "-L", 0 = 7 } }',
    '[unembed.W_U.vowel]\nletters = "-L"\n"0" = 7',
    "W_U.vowel.a = -90\nW_U.vowel.e = -90\nW_U.vowel.i = -90\nW_U.vowel.o = -90\nW_U.vowel.u = -90\n"
    'W_U.vowel.consonants = "-3*M"\nW_U.vowel."0" = 7.0',
]


@pytest.mark.parametrize("spelling", SPELLINGS[1:])
def test_inline_tables_dotted_keys_subtables_and_groups_are_equivalent(spelling):
    head, _, _ = P2.partition("W_U.vowel = ")
    base = loads(head + SPELLINGS[0])
    other = loads(head + spelling)
    assert_same(base, other)
    assert base.W_U[0].tolist() == [-90.0] * 26 + [7.0, 0.0]


def _rows(m: torch.Tensor) -> str:
    return "[" + ", ".join("[" + ", ".join(repr(x) for x in row) + "]" for row in m.tolist()) + "]"


def test_dense_form_as_specified_with_heads_of_different_widths():
    g = torch.Generator().manual_seed(1)
    shapes = [(1, 2), (3, 1)]  # (d_head, d_value) per head
    mats = [tuple(torch.randn(28, d, generator=g, dtype=F64) for d in (dh, dh, dv)) for dh, dv in shapes]
    W_U = torch.randn(28 + 3, 28, generator=g, dtype=F64)
    b_U = torch.randn(28, generator=g, dtype=F64)
    lines = ['problem = "problem2"', "scale = 0.125"]
    for W_Q, W_K, W_V in mats:
        lines += ["[[heads]]", f"W_Q = {_rows(W_Q)}", f"W_K = {_rows(W_K)}", f"W_V = {_rows(W_V)}"]
    lines += ["[unembed]", f"W_U = {_rows(W_U)}", f"b_U = {b_U.tolist()!r}"]
    w = loads("\n".join(lines))
    assert w.scale == 0.125 and w.features == TOKENS and torch.equal(w.W_E, torch.eye(28, dtype=F64))
    assert [(h.name, h.dims, h.values) for h in w.heads] == [
        ("h0", ("d0",), ("h0_v0", "h0_v1")),
        ("h1", ("d0", "d1", "d2"), ("h1_v0",)),
    ]
    for head, (W_Q, W_K, W_V) in zip(w.heads, mats, strict=True):
        assert torch.equal(head.W_Q, W_Q) and torch.equal(head.W_K, W_K) and torch.equal(head.W_V, W_V)
    # W_U rows: the 28 residual features, then head 0's two value dims, then head 1's one
    assert w.unembed_rows[28:] == ("h0_v0", "h0_v1", "h1_v0")
    assert torch.equal(w.W_U, W_U) and torch.equal(w.b_U, b_U)


def test_dense_form_without_b_U_has_zero_bias():
    W_U = torch.arange(28 * 28, dtype=F64).reshape(28, 28) / 1000
    w = loads(f'problem = "problem2"\n[unembed]\nW_U = {_rows(W_U)}\n')
    assert w.heads == () and torch.equal(w.W_U, W_U) and not w.b_U.any()


def test_labelled_and_dense_matrices_mix_in_one_file():
    W_V = "[" + ", ".join(["[0.5]"] * 28) + "]"
    w = loads(f'problem = "problem2"\n[[heads]]\ndims = ["c"]\nvalues = ["seen"]\nW_Q.a.c = 1\nW_V = {W_V}\n')
    assert w.heads[0].W_Q.abs().sum() == 1 and torch.equal(w.heads[0].W_V, torch.full((28, 1), 0.5, dtype=F64))


# -- Weights built in Python --------------------------------------------------------------------------------


def p2_in_python() -> Weights:
    """The worked example again, from float32 tensors and nested lists."""
    W_E = torch.zeros(28, 3)  # [d_vocab, d_model]: vowel, consonant, digit
    W_E[ids(GROUPS["vowels"]), 0] = W_E[ids(GROUPS["consonants"]), 1] = W_E[ids(GROUPS["digits"]), 2] = 1
    head = Head(
        W_Q=[[1], [1], [1]], W_K=[[0], [20], [0]], W_V=[[0], [1], [0]], name="seen", dims=("c",), values=("seen",)
    )
    W_U = torch.zeros(4, 28)  # rows: vowel, consonant, digit, seen
    W_U[0, :26], W_U[0, 26], W_U[0, 27] = -90, 30, -30
    W_U[1, 26:] = W_U[2, 26:] = -90
    W_U[3, 26], W_U[3, 27] = -60, 60
    features = ("vowel", "consonant", "digit")
    return Weights("problem2", [head], W_U, W_E=W_E, features=features, params={"S": 20.0, "M": 30.0, "L": 90.0})


def test_weights_built_from_tensors_equal_the_same_weights_loaded_from_a_file():
    assert_same(p2_in_python(), loads(P2))


def test_weights_fill_in_defaults_and_convert_to_float64_copies():
    W_Q = torch.ones(28, 2, dtype=torch.float32)
    w = Weights("problem2", [Head(W_Q, torch.zeros(28, 2), torch.zeros(28, 1))])
    W_Q[0, 0] = 99  # the caller's tensor is copied, not shared
    h = w.heads[0]
    assert (h.name, h.dims, h.values) == ("h0", ("d0", "d1"), ("h0_v0",))
    assert h.W_Q.dtype == F64 and h.W_Q.max() == 1
    assert w.features == TOKENS and torch.equal(w.W_E, torch.eye(28, dtype=F64))
    assert w.W_U.shape == (29, 28) and not w.W_U.any() and not w.b_U.any()
    assert w.W_P is None and w.scale == 1.0 and w.params == {} and w.d_model == 28


@pytest.mark.parametrize(
    "kwargs, place, fragment",
    [
        ({"heads": [Head(torch.zeros(28, 1), torch.zeros(28, 2), torch.zeros(28, 1))]}, "heads[0].W_K", "[28, 1]"),
        ({"W_U": torch.zeros(28, 27)}, "W_U", "expected [28, 28]"),
        ({"b_U": torch.zeros(29)}, "b_U", "one entry per token"),
        ({"W_P": torch.zeros(4, 3)}, "W_P", "expected [4, 28]"),
        ({"b_U": torch.full((28,), float("nan"))}, "b_U", "holds NaN or infinity"),
        ({"W_U": torch.full((28, 28), 2e6)}, "W_U", "within ±1e+06"),
        ({"scale": float("inf")}, "scale", "finite"),
        ({"W_U": [[1, 2], [3]]}, "W_U", "not a rectangular array"),
        ({"features": ("x",) * 28, "W_E": torch.eye(28)}, "features", "'x' is used twice"),
        ({"W_P": torch.zeros(513, 28)}, "W_P positions", "at most 512"),
        (
            {"heads": [Head(torch.zeros(28, 1), torch.zeros(28, 1), torch.zeros(28, 1), name="h")] * 2},
            "head names",
            "'h' is used twice",
        ),
    ],
)
def test_weights_refuse_what_cannot_run_with_place_and_fix(kwargs, place, fragment):
    with pytest.raises(WeightFileError) as info:
        Weights("problem2", **kwargs)
    issues = [i for i in info.value.issues if i.where == place]
    assert issues, info.value.issues
    assert all(i.message and i.fix for i in info.value.issues)
    assert any(fragment in f"{i.message}; {i.fix}" for i in issues)


# -- from_dict ----------------------------------------------------------------------------------------------


def test_from_dict_reads_what_a_toml_file_parses_to():
    assert_same(from_dict(tomllib.loads(P2)), loads(P2))


@pytest.mark.parametrize(
    "data, where, fragment",
    [
        (["problem2"], "", "is a list"),
        (None, "", "is None"),
        ({"problem": "problem2", 1: 2}, "top level", "the key 1"),
        ({"problem": "problem2", "embed": {"W_P": {1: {"a": 1.0}}}}, "embed.W_P", 'write it as text: "1"'),
        ({"problem": "problem2", "heads": [{"dims": ["c"], "W_Q": {"a": {0: 1}}}]}, "heads[0].W_Q.a", "the key 0"),
        ({"problem": "problem2", "scale": float("nan")}, "scale", "not finite"),
        ({"problem": "problem2", "params": {"S": [1]}}, "params.S", "a list, not a number"),
    ],
)
def test_from_dict_refuses_what_no_toml_file_could_say(data, where, fragment):
    with pytest.raises(WeightFileError) as info:
        from_dict(data, source="notebook")
    assert info.value.source == "notebook"
    assert any(i.where == where and fragment in f"{i.message}; {i.fix}" for i in info.value.issues), info.value.issues


# -- saving -------------------------------------------------------------------------------------------------


def file_like_weights(seed: int, one_hot: bool = False, density: float = 1.0, n_pos: int = 7) -> Weights:
    """Two named heads of different widths, named features, positions, params and a scale; large entries."""
    features = TOKENS if one_hot else ("vowel", "consonant", "digit", "first token", "é")
    return random_weights(
        seed,
        features=features,
        one_hot=one_hot,
        widths=((2, 1), (3, 2)),
        n_pos=n_pos or None,
        scale=None,
        magnitude=100.0,
        density=density,
        named=True,
    )


def sparse_weights() -> Weights:
    """Mostly zeros, with a zero last position and a zero embedding: what only the labelled form drops."""
    W_P = torch.zeros(4, 2, dtype=F64)
    W_P[1, 0] = 1.0  # positions 3 and 4 are zero, but still part of the weights
    head = Head(torch.zeros(2, 1), torch.ones(2, 1), torch.zeros(2, 1), "pos", ("k",), ("v",))
    return Weights("problem2", [head], W_E=torch.zeros(28, 2), W_P=W_P, features=("first", "second"))


WEIGHTS = {
    "worked example": lambda: loads(P2),
    "random named features": lambda: file_like_weights(0),
    "random one-hot": lambda: file_like_weights(1, one_hot=True, n_pos=0),
    "random one-hot with positions": lambda: file_like_weights(2, one_hot=True, density=0.3),
    "awkward names": lambda: from_dict(
        {
            "problem": "problem2",
            "embed": {
                "features": ["all", "first token", 'q"uote', "back\\slash", "[new] line", "größe", "'single'", "#"]
            },
            "heads": [{"name": "tab here", "dims": ["x = 1", "[y]"], "values": ["é"], "W_Q": {"#": {"[y]": 2}}}],
            "unembed": {"W_U": {"é": {"a": 1}, "[new] line": {"b": -1}}},
        }
    ),
    "all plus first": lambda: loads(
        'problem = "problem2"\n[embed]\nfeatures = ["all", "first"]\nW_P.2.first = 1\nW_E.vowels.first = 0.5\n'
    ),
    "no heads": lambda: Weights("problem1"),
    "sparse": sparse_weights,
    "grouped": lambda: loads('problem = "problem2"\n[unembed]\nW_U.all.all = 1\nb_U.letters = "-1/3"\n'),
}


@pytest.mark.parametrize("form", ["labelled", "dense"])
@pytest.mark.parametrize("name", sorted(WEIGHTS))
def test_save_then_load_gives_the_same_weights_exactly(name, form, tmp_path):
    w = WEIGHTS[name]()
    path = tmp_path / "w.toml"
    save(w, path, form)
    again = load(path)
    assert_same(w, again, saved=True)
    entries = lambda text: [line for line in text.splitlines() if line and not line.startswith("#")]  # noqa: E731
    assert entries(dumps(again, form)) == entries(path.read_text(encoding="utf-8"))  # saving again: same entries


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    one_hot=st.booleans(),
    density=st.sampled_from([0.0, 0.05, 0.5, 1.0]),
    n_pos=st.integers(0, 5),
    form=st.sampled_from(["labelled", "dense"]),
)
def test_any_weights_survive_dumps_then_loads_exactly(seed, one_hot, density, n_pos, form):
    w = file_like_weights(seed, one_hot, density, n_pos)
    assert_same(w, loads(dumps(w, form)), saved=True)


@pytest.mark.parametrize("form", ["labelled", "dense"])
def test_a_trained_size_file_reads_back_in_either_form(form):
    # one-hot, four heads of 4, 64 positions: a dense file has about 500 matrix rows, one per line,
    # as trained weights are pasted (each row must not count as a [table] header)
    w = random_weights(3, features=TOKENS, one_hot=True, widths=((4, 4),) * 4, n_pos=64, magnitude=3.0, named=True)
    text = dumps(w, form)
    assert form == "labelled" or text.count("\n  [") > 400
    assert_same(w, loads(text), saved=True)


def test_labelled_form_writes_names_groups_and_nonzero_entries_only():
    text = dumps(loads(P2), "labelled")
    assert "W_E.vowels = { vowel = 1.0 }" in text
    assert "W_K.consonant = { c = 20.0 }" in text
    assert "W_U.consonant = { digits = -90.0 }" in text
    assert "W_K.vowel" not in text and "b_U" not in text


def test_dense_form_writes_every_matrix_as_rows():
    text = dumps(loads(P2), "dense")
    assert "W_Q = [  # columns: c" in text and "W_U = [" in text
    assert "W_K." not in text and text.count("[[heads]]") == 1
    assert "b_U = [" + ", ".join(["0.0"] * 28) + "]" in text


def test_dumps_names_the_forms_it_knows():
    with pytest.raises(ValueError, match="labelled' or 'dense'"):
        dumps(loads(P2), "json")


# -- max_abs and load(problem=...) ----------------------------------------------------------------------------


def test_max_abs_is_the_largest_weight_in_size_scale_included():
    assert loads(P2).max_abs() == 90.0
    assert Weights("problem2", W_U=torch.full((28, 28), -500.0)).max_abs() == 500.0
    assert Weights("problem2", scale=-2000.0).max_abs() == 2000.0
    assert Weights("problem2").max_abs() == 1.0  # the one-hot embedding


def test_load_insists_on_the_problem_it_is_asked_for(tmp_path):
    path = tmp_path / "p2.toml"
    path.write_text(P2, encoding="utf-8")
    assert load(path, problem="problem2").problem == "problem2"
    with pytest.raises(WeightFileError) as info:
        load(path, problem="problem1")
    assert info.value.source == str(path)
    (issue,) = info.value.issues
    assert issue.where == "problem" and "written for problem2, not problem1" in issue.message
    assert "python -m handattn.check problem2" in issue.fix


@pytest.mark.parametrize("make, fragment", [(lambda p: p, "does not exist"), (lambda p: p.mkdir() or p, "folder")])
def test_load_reports_a_missing_path_or_a_folder(tmp_path, make, fragment):
    path = make(tmp_path / "w.toml")
    with pytest.raises(WeightFileError, match=fragment):
        load(path)


def test_loads_accepts_utf8_bytes():
    assert_same(loads(P2.encode("utf-8")), loads(P2))


def test_weights_built_in_python_check_names_like_files_do():
    from handattn import WeightFileError

    with pytest.raises(WeightFileError, match="'a.b' holds a dot"):
        Weights("problem2", W_E=torch.zeros(28, 2), features=("a.b", "c"))


def test_a_scale_that_is_not_a_number_is_a_weight_file_error():
    from handattn import WeightFileError

    with pytest.raises(WeightFileError, match="scale: is 'x'; use a number"):
        Weights("problem2", scale="x")


# -- W_P written once for every position ------------------------------------------------------------------


def test_a_position_row_for_all_positions_is_evaluated_at_each_position():
    w = loads(
        'problem = "problem2"\n[params]\nTHETA = "pi/64"\n[embed]\nfeatures = ["all", "cos", "sin", "first"]\n'
        'W_P.all.cos = "cos(THETA*pos)"\nW_P.all.sin = "sin(THETA*pos)"\nW_P.1.first = 1\n'
    )
    n_ctx = 2 * 32  # problem2's context: twice its text length, as the hidden set uses
    assert w.W_P.shape == (n_ctx, 31) and not w.warnings  # THETA counts as used
    for pos in (1, 2, 17, n_ctx):
        assert w.W_P[pos - 1, 28:].tolist() == [math.cos(math.pi / 64 * pos), math.sin(math.pi / 64 * pos), pos == 1]


def test_a_position_row_keeps_every_bound_and_names_the_position():
    for text, fragment in [
        ('W_P.all.pp = "log(pos - 3)"', "at pos = 1: log is undefined for -2.0"),
        ('W_P.all.pp = "exp(pos)"', "at pos = 14: value 1202604.28 is larger than 1e+06"),
        ('W_P.all.pp = "1/(pos - 5)"', "at pos = 5: division by zero"),
        ("W_P.all.pp = 1\nW_P.3.pp = 2", "sets a column that a numbered row sets too"),
        ("W_P.all = 3", "is 3"),
        ('W_P.2.pp = "pos"', "unknown name 'pos'"),
    ]:
        with pytest.raises(WeightFileError, match=re.escape(fragment)):
            loads(f'problem = "problem2"\n[embed]\nfeatures = ["all", "pp"]\n{text}\n')


def test_pos_cannot_be_a_parameter():
    with pytest.raises(WeightFileError, match="params.pos: is not a usable parameter name"):
        loads('problem = "problem2"\n[params]\npos = 1\n')
