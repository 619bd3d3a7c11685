"""Untrusted weight files: every bad one gives exit code 2 and one clear line per issue, never a traceback."""

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handattn.check import main
from handattn.errors import WeightFileError
from handattn.weights import Weights, dumps, from_dict, load, loads

BAD = Path(__file__).parent / "fixtures" / "bad"
HEADER = 'problem = "problem2"\n'

# fixture file (tests/fixtures/bad/NAME.toml) -> a fragment the message must hold
FIXTURES = {
    "malformed_toml": "line 3, column 11: is not valid TOML",
    "dense_row_count": "heads[0].W_Q: has 3 rows, expected 28",
    "dense_row_length": "heads[0].W_Q[5]: has 2 entries, expected 1",
    "b_U_length": "unembed.b_U: has 27 entries, expected 28",
    "W_U_dense_rows": "unembed.W_U: has 28 rows, expected 29",
    "unknown_token": "unembed.W_U.a.zz: 'zz' is not a token; did you mean 'z'?",
    "unknown_group": "heads[0].W_K.consonantz: is not a residual feature; did you mean 'consonants'?",
    "unknown_feature": "heads[0].W_Q.vowl: is not a residual feature; did you mean 'vowel'?",
    "unknown_head_dim": "heads[0].W_K.consonants.cc: 'cc' is not a dimension of seen.dims; did you mean 'c'?",
    "unknown_value_dim": "heads[0].W_V.consonants.sen: 'sen' is not a dimension of seen.values; did you mean 'seen'?",
    "other_problem": "problem: this file is written for problem1, not problem2",
    "unknown_problem": "problem: 'problem9' is not a problem; use one of: problem1, problem2, problem3, problem4, problem5",
    "missing_problem": "problem: is missing",
    "blank": "problem: is missing",
    "empty": ": is empty; start from `python -m handattn.new PROBLEM`",
    "nan": "unembed.W_U.a.b: value nan is not finite",
    "inf": "unembed.b_U.a: value -inf is not finite",
    "huge_number": "unembed.W_U.a.b: value 10000000 is larger than 1e+06",
    "huge_integer": "scale: value 1e+22 is larger than 1e+06",
    "huge_expression_value": "params.S: a step of the expression overflows",
    "power_tower": "unembed.W_U.a.b: a step of the expression overflows",
    "long_expression": "unembed.W_U.a.b: expression is 317 characters long (at most 200)",
    "many_parts_expression": "unembed.W_U.a.b: expression has 149 parts (at most 64); declare a parameter",
    "deep_expression": "unembed.W_U.a.b: expression is nested more than 16 deep",
    "import": "unembed.b_U.a: calling __import__() is not allowed",
    "attribute": "scale: attribute syntax is not allowed",
    "boolean_entry": "heads[0].W_Q.a.c: is the boolean true, not a number",
    "string_entry": "unembed.W_U.a.b: unknown name 'twenty'",
    "date_entry": "unembed.W_U.a.b: is the date or time 2024-01-01, not a number",
    "overlapping_groups": "heads[0].W_K.vowels.c: sets [a, c], which heads[0].W_K.all.c already set",
    "missing_dims": 'heads[0].dims: is missing; name the columns of W_Q and W_K, e.g. dims = ["c"]',
    "missing_values": "heads[0].values: is missing",
    "duplicate_features": "embed.features: names 'vowel' twice",
    "value_collides_with_feature": "W_U rows: the name 'consonant' is used twice",
    "value_collides_with_token": "W_U rows: the name 'v' is used twice",
    "typo_top_key": "unembd: is not a known key; did you mean 'unembed'?",
    "typo_head_key": "heads[0].W_k: is not a known key; did you mean 'W_K'?",
    "head_name_with_dot": "heads[0].name: 'seen.c' holds a dot; use a short printable name without dots",
    "too_many_heads": "heads: has 17 heads; at most 16 are allowed",
    "reserved_param": "params.pi: is not a usable parameter name",
    "param_used_before_declared": "params.L: unknown name 'M'",
    "position_zero": "embed.W_P.0: is not a position",
    "position_unicode_digit": "embed.W_P.²: is not a position",
    "group_row_over_custom_features": "unembed.W_U.vowels: is not a W_U row",
    "features_not_names": "embed.features: must be a list of names in quotes",
    "heads_not_tables": "heads: must be one [[heads]] table per head",
    "row_without_column": "unembed.W_U.a: is 1; name the column too",
}

DOTS = 50_000  # tomllib takes minutes over a key this long; the prescan refuses it at once
# name -> (bytes of a file made on the spot, a fragment the message must hold)
GENERATED = {
    "non_utf8": (HEADER.encode() + b"# caf\xe9\n", "line 2: byte 27 is not UTF-8 text"),
    "utf16": (HEADER.encode("utf-16"), "line 1: byte 1 is not UTF-8 text"),
    "binary": (bytes(range(256)) * 4, "is not UTF-8 text"),
    "nul_byte": (HEADER.encode() + b"scale = 1\x00\n", "line 2, column 10: is not valid TOML"),
    "over_1_mib": (HEADER.encode() + b"#" * (1 << 20), "over the 1 MiB limit"),
    "dotted_key": ((HEADER + "a" + ".a" * DOTS + " = 1\n").encode(), "line 2: a key with more than 8 dotted parts"),
    "dotted_key_in_inline_table": ((HEADER + "x = { " + "a." * DOTS + "a = 1 }\n").encode(), "line 2: a key with more"),
    "dotted_key_after_quoted_equals": (
        (HEADER + '"a=".b' + " . b" * DOTS + " = 1\n").encode(),
        "line 2: a key with more",
    ),
    "dotted_header_with_comma": ((HEADER + '["a,".b' + ".b" * DOTS + "]\n").encode(), "line 2: a key with more"),
    "nested_arrays": ((HEADER + "x = " + "[" * 5000 + "]" * 5000 + "\n").encode(), "nests arrays or tables too deeply"),
    "nested_inline_tables": ((HEADER + "x = " + "{a = " * 3000 + "1" + " }" * 3000).encode(), "nests arrays or tables"),
}


@pytest.mark.parametrize("name", sorted(FIXTURES) + sorted(GENERATED))
def test_bad_file_gives_exit_2_and_one_line_per_issue(name, tmp_path, capsys):
    if name in FIXTURES:
        path, fragment = BAD / f"{name}.toml", FIXTURES[name]
    else:
        content, fragment = GENERATED[name]
        path = tmp_path / f"{name}.toml"
        path.write_bytes(content)
    code = main(["problem2", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.strip(), "an unusable file must say why"
    assert "Traceback" not in err
    lines = err.rstrip("\n").split("\n")
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    assert len(lines) <= 21  # at most 20 issues, then "… and N more"
    assert fragment in err, err
    with pytest.raises(WeightFileError) as info:  # the library raises what the command printed
        load(path, problem="problem2")
    assert info.value.issues and all(issue.message and issue.fix for issue in info.value.issues)


def test_every_fixture_is_in_the_table():
    assert {p.stem for p in BAD.glob("*.toml")} == set(FIXTURES)


# -- properties: random documents and dicts load or raise WeightFileError, nothing else -------------------------

NAMES = st.sampled_from(
    ["vowel", "consonant", "first", "c", "seen", "h", "a", "z", "0", "1", "vowels", "all", "x.y", ""]
)
KEYS = st.one_of(
    NAMES,
    st.sampled_from(["problem", "scale", "params", "embed", "heads", "unembed", "features", "W_E", "W_P", "W_Q"]),
    st.sampled_from(["W_K", "W_V", "W_U", "b_U", "name", "dims", "values", "S", "2", "512", "513", "²", "unembd"]),
    st.text(max_size=6),
    st.integers(0, 600),  # a dict from Python may have them; a TOML file writes them as text
)
SCALARS = st.one_of(
    st.integers(-(10**30), 10**30),
    st.floats(),
    st.booleans(),
    st.sampled_from(["problem2", "problem1", "S", "-S/2", "log(0)", "9**9**9", "__import__('os')", "", "c", "all"]),
    st.text(max_size=10),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)
# shaped like a weight file, so that most documents get past the first check and into the matrices
LABELLED = st.dictionaries(KEYS, st.dictionaries(KEYS, SCALARS, max_size=3) | SCALARS, max_size=4)
DENSE = st.builds(
    lambda rows, cols, x: [[x] * cols for _ in range(rows)],
    st.sampled_from([0, 1, 3, 28, 29, 31]),
    st.sampled_from([0, 1, 2, 3, 28]),
    SCALARS,
)
MATRICES = st.one_of(LABELLED, DENSE, TREES)
NAME_LISTS = st.lists(NAMES, max_size=4) | TREES
HEADS = st.fixed_dictionaries(
    {},
    optional={"name": NAMES | SCALARS, "dims": NAME_LISTS, "values": NAME_LISTS}
    | {m: MATRICES for m in ("W_Q", "W_K", "W_V")},
)
SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "problem": st.sampled_from(["problem2", "problem1"]) | SCALARS,
        "scale": SCALARS,
        "params": st.dictionaries(KEYS, SCALARS, max_size=3) | TREES,
        "embed": st.fixed_dictionaries({}, optional={"features": NAME_LISTS, "W_E": MATRICES, "W_P": MATRICES}),
        "heads": st.lists(HEADS, max_size=3) | TREES,
        "unembed": st.fixed_dictionaries({}, optional={"W_U": MATRICES, "b_U": MATRICES}),
    },
)
DOCUMENTS = SHAPED | st.dictionaries(KEYS, TREES, max_size=6)


def _toml_value(value) -> str:
    """TOML text of a value where TOML can say it; what it cannot (nan keys, odd text) TOML may refuse."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value)  # inf, -inf and nan are TOML too
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _toml_key(key) -> str:
    key = str(key)
    return key if key and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in key) else _toml_value(key)


def _toml_document(data: dict) -> str:
    """Written as a student would: top-level values, then [tables] and [[arrays of tables]] with dotted keys."""
    out, sections = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            sections.append((f"[{_toml_key(key)}]", value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            sections += [(f"[[{_toml_key(key)}]]", v) for v in value]
        else:
            out.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for header, table in sections:
        out.append(header)
        for key, value in table.items():
            if isinstance(value, dict):
                out += [f"{_toml_key(key)}.{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()]
            else:
                out.append(f"{_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(out) + "\n"


def _loads_or_refuses(read) -> None:
    """`read()` gives Weights that save and load back unchanged, or raises a WeightFileError with issues."""
    try:
        weights = read()
    except WeightFileError as e:
        assert e.issues and all(isinstance(line, str) and line for line in e.lines())
        return
    assert isinstance(weights, Weights)
    text = dumps(weights)
    assert dumps(loads(text)) == text


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(DOCUMENTS)
def test_random_dicts_load_or_raise_weight_file_error(data):
    _loads_or_refuses(lambda: from_dict(data))


@PROPERTY
@given(DOCUMENTS)
def test_random_toml_documents_load_or_raise_weight_file_error(data):
    _loads_or_refuses(lambda: loads(_toml_document(data)))


@PROPERTY
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_random_text_and_bytes_load_or_raise_weight_file_error(text):
    _loads_or_refuses(lambda: loads(text))


def issues_of(text):
    with pytest.raises(WeightFileError) as caught:
        loads(text, source="t.toml")
    return [f"{i.where}: {i.message}" for i in caught.value.issues]


def test_overlapping_groups_give_one_issue_per_key_not_per_token():
    assert issues_of(HEADER + '[[heads]]\ndims = ["c"]\nvalues = ["v"]\nW_K.all.c = 1\nW_K.vowels.c = 2\n') == [
        "heads[0].W_K.vowels.c: sets [a, c], which heads[0].W_K.all.c already set"
    ]


def test_missing_dims_is_one_issue_not_a_cascade():
    assert issues_of(HEADER + '[[heads]]\nvalues = ["v"]\nW_K.consonants.c = 20\nW_Q.all.c = 1\n') == [
        "heads[0].dims: is missing"
    ]


def test_a_file_of_endless_mistakes_stops_after_50():
    text = HEADER + "[unembed]\n" + "".join(f"W_U.nope{i}.a = 1\n" for i in range(5000))
    found = issues_of(text)
    assert len(found) == 51 and found[-1] == ": stopped reading after 50 problems"


def test_an_integer_too_large_for_a_float_is_a_clear_issue():
    assert issues_of(HEADER + "scale = " + "9" * 400 + "\n") == ["scale: is too large a number"]


def test_a_byte_order_mark_is_accepted():
    weights = loads(b"\xef\xbb\xbf" + HEADER.encode())
    assert weights.problem == "problem2"
