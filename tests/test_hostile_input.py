"""Hostile input, class by class: no traceback, hang, unbounded read, forged line or silent misreading."""

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from handattn import check
from handattn.errors import EvalFileError, WeightFileError
from handattn.evalset import MAX_EVAL_FILE_BYTES
from handattn.untrusted import read_capped
from handattn.weights import loads
from handattn.weights import read as weight_read

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = str(ROOT / "solutions" / "problem2.toml")
HEADER = 'problem = "problem2"\n'
HEAD = '[[heads]]\ndims = ["c"]\nvalues = ["v"]\n'


def run(capsys, *argv):
    code = check.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, tmp_path, text: str | bytes, *extra) -> list[str]:
    """Check a file holding `text`; it must exit 2 with terminal-safe lines only. Returns the lines."""
    path = tmp_path / "w.toml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    code, out, err = run(capsys, "problem2", str(path), *extra)
    assert code == 2 and out == "" and "Traceback" not in err
    lines = err.rstrip("\n").split("\n")
    assert all(line.isprintable() and len(line) < 1200 for line in lines), lines
    return lines


def in_subprocess(*argv, timeout=120, **env):
    """A real `python -m handattn.check` process; the timeout only keeps a regression from hanging the suite."""
    return subprocess.run(
        [sys.executable, "-m", "handattn.check", *argv],
        capture_output=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


# -- 1. tracebacks -------------------------------------------------------------------------------------------


def test_an_integer_of_thousands_of_digits_is_one_line(capsys, tmp_path):
    lines = refused(capsys, tmp_path, HEADER + "x = " + "9" * 5000 + "\n")
    assert len(lines) == 1 and "a number with thousands of digits" in lines[0]


def test_a_head_with_no_dims_and_no_values_scores_as_the_layer_without_it(capsys, tmp_path):
    body = '[embed]\nfeatures = ["vowel"]\nW_E.a.vowel = 1\n[unembed]\nW_U.vowel.a = 2\n'
    scores = []
    for head in ("", "[[heads]]\ndims = []\nvalues = []\n"):
        path = tmp_path / f"w{len(scores)}.toml"
        path.write_text(HEADER + body.replace("[unembed]", head + "[unembed]"))
        code, out, err = run(capsys, "problem2", str(path), "--json")
        assert code == 1 and "Traceback" not in err
        scores.append(json.loads(out)["kl"])
    assert scores[0] == scores[1]


def test_a_symlink_to_dev_zero_is_not_a_regular_file(capsys, tmp_path):
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    code, out, err = run(capsys, "problem2", str(link))
    assert code == 2 and err == f"{link}: is not a regular file (a pipe, device or socket); name a file saved on disk\n"


def test_loads_of_more_than_a_mebibyte_is_refused():
    with pytest.raises(WeightFileError, match="over the 1 MiB limit"):
        loads("#" * ((1 << 20) + 1))


def test_a_path_that_is_not_utf8_is_printed_escaped(tmp_path):
    path = os.fsencode(tmp_path) + b"/caf\xe9.toml"
    result = subprocess.run(
        [sys.executable, "-m", "handattn.check", "problem2", path],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode == 2 and b"Traceback" not in result.stderr
    assert b"caf\\udce9.toml: does not exist" in result.stderr


# -- 2. hangs and unbounded reads ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["weights", "eval file"])
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path, role):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    argv = ["problem2", str(fifo)] if role == "weights" else ["problem2", SOLUTION, "--eval-file", str(fifo)]
    result = in_subprocess(*argv)
    assert result.returncode == 2
    assert (
        result.stderr.decode()
        == f"{fifo}: is not a regular file (a pipe, device or socket); name a file saved on disk\n"
    )


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_an_endless_device_as_eval_file_is_refused(capsys, device):
    code, out, err = run(capsys, "problem2", SOLUTION, "--eval-file", device)
    assert code == 2 and "is not a regular file" in err


def test_a_read_stops_one_byte_past_the_cap(tmp_path, monkeypatch):
    big = tmp_path / "big.txt"
    big.write_bytes(b"ab\n" * 10_000)
    real_read, taken = os.read, []

    def counting_read(fd, n):
        chunk = real_read(fd, n)
        taken.append(len(chunk))
        return chunk

    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(EvalFileError, match="over the 1,000 bytes limit"):
        read_capped(big, 1000, EvalFileError, missing_fix="", large_fix="")
    assert sum(taken) == 1001


def test_the_eval_file_cap_is_what_the_reader_enforces():
    assert MAX_EVAL_FILE_BYTES == 64 << 20  # the README states it


# -- 3. terminal injection -----------------------------------------------------------------------------------


def test_a_quoted_key_cannot_forge_a_line_or_send_an_escape(capsys, tmp_path):
    forged = HEADER + '[unembed]\nW_U."x\\nw.toml: all good\\u001b[31m".a = 1\n'
    lines = refused(capsys, tmp_path, forged)
    assert len(lines) == 1 and "\x1b" not in lines[0]
    assert "x\\nw.toml: all good\\x1b[31m" in lines[0]


def test_a_feature_name_with_an_escape_sequence_is_refused_and_shown_escaped(capsys, tmp_path):
    lines = refused(capsys, tmp_path, HEADER + '[embed]\nfeatures = ["\\u001b[2J", "v"]\nW_E.a.v = 1\n')
    assert lines == [
        f"{tmp_path / 'w.toml'}: embed.features[0]: the name '\\x1b[2J' holds a control or invisible character; "
        "use a short printable name without dots (at most 40 characters)"
    ]


def test_a_huge_key_and_hundreds_of_parameters_make_short_lines(capsys, tmp_path):
    lines = refused(capsys, tmp_path, HEADER + f"[unembed]\nW_U.{'k' * 100_000}.a = 1\n")
    assert len(lines) == 1 and len(lines[0]) < 600
    params = "".join(f"parameter_number_{i} = {i}\n" for i in range(250))
    lines = refused(capsys, tmp_path, HEADER + "[params]\n" + params + "[unembed]\nb_U.a = 'nope'\n")
    assert len(lines) == 1 and "… (250 in all)" in lines[0] and len(lines[0]) < 600


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_any_name_in_any_place_is_shown_on_one_printable_line(name):
    quoted = json.dumps(name)  # a TOML basic string with the same escapes
    for text in (
        HEADER + f"[unembed]\nW_U.{quoted}.a = 1\n",
        HEADER + f"[embed]\nfeatures = [{quoted}]\n",
        HEADER + f"[params]\n{quoted} = 1\n",
        HEADER + f"[[heads]]\nname = {quoted}\n",
    ):
        try:
            loads(text, source="w.toml")
        except WeightFileError as e:
            assert all(line.isprintable() and len(line) < 1200 for line in e.lines())


# -- 4. --json answers every exit 2 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "--texts", "0"],
        ["--json"],
        ["--json", "problem2", SOLUTION, "--eval-file", SOLUTION, "--seed", "3"],
        ["--json", "problem9", SOLUTION],
        ["--json", "--no-such-option"],
        ["problem2", SOLUTION, "--js", "--length", "1"],
    ],
)
def test_json_prints_the_error_object_on_every_unusable_command_line(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and err
    data = json.loads(out)
    assert set(data) == {"problem", "file", "error"} and data["error"] and all(data["error"])


# -- 5. silent misreadings -----------------------------------------------------------------------------------


def test_an_empty_eval_file_name_is_refused(capsys):
    code, out, err = run(capsys, "problem2", SOLUTION, "--eval-file", "")
    assert code == 2 and "is an empty file name" in err


def test_a_top_level_setting_written_under_params_is_refused(capsys, tmp_path):
    for name in ("scale", "problem"):
        lines = refused(capsys, tmp_path, HEADER + f"[params]\nS = 2\n{name} = 0\n[unembed]\nb_U.a = 'S'\n")
        assert lines == [
            f"{tmp_path / 'w.toml'}: params.{name}: '{name}' is a top-level setting, not a parameter; "
            f"move the line `{name} = …` above [params]"
        ]


def test_unused_parameters_are_one_warning_and_leave_the_score_alone(capsys, tmp_path):
    body = "[unembed]\nb_U.a = 'L'\n"
    used = tmp_path / "used.toml"
    used.write_text(HEADER + "[params]\nS = 2\nL = '3*S'\n" + body)
    unused = tmp_path / "unused.toml"
    unused.write_text(HEADER + "[params]\nS = 2\nL = '3*S'\nT = 1\nU = 'T'\n" + body)
    code, out, err = run(capsys, "problem2", str(used), "--json")
    assert err == ""  # S is used through L
    kl = json.loads(out)["kl"]
    code, out, err = run(capsys, "problem2", str(unused), "--json")
    assert err.count("\n") == 1 and "params: warning: T, U declared, but no entry uses them" in err
    assert json.loads(out)["kl"] == kl and json.loads(out)["warnings"] == [err.strip()]


def test_token_features_stay_one_hot_in_every_column_the_file_does_not_write():
    w = loads(HEADER + '[embed]\nfeatures = ["all", "first"]\nW_E.a.first = 1\nW_E.b.b = 2\n')
    expected = torch.eye(28, dtype=torch.float64)
    expected[1, 1] = 2.0  # column b is written, so it is the file's alone
    assert torch.equal(w.W_E[:, :28], expected)
    assert w.W_E[:, 28].tolist() == [1.0] + [0.0] * 27


@pytest.mark.parametrize("missing", ["dims", "values", "both"])
def test_a_labelled_head_needs_dims_and_values(missing):
    head = "[[heads]]\n" + ("" if missing in ("dims", "both") else 'dims = ["c"]\n')
    head += "" if missing in ("values", "both") else 'values = ["v"]\n'
    with pytest.raises(WeightFileError) as info:
        loads(HEADER + head)
    wanted = {"dims", "values"} if missing == "both" else {missing}
    assert {i.where for i in info.value.issues} == {f"heads[0].{key}" for key in wanted}


# -- 6. one cause, one line ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, where",
    [
        (
            HEADER
            + "[params]\nS = 'log(0)'\n[unembed]\n"
            + "".join(f"W_U.{t}.a = 'S'\n" for t in "bcdfghjklmnpqrstvwxyz"),
            "params.S",
        ),
        (HEADER + '[params]\nS = "9**9**9"\nL = "2*S"\n[unembed]\nb_U.a = "L"\nb_U.b = "S"\n', "params.S"),
        (
            HEADER
            + '[embed]\nfeatures = ["", "v", "c"]\nW_E.a.v = 1\nW_E.b.c = 1\n'
            + HEAD
            + "W_Q.v.c = 1\nW_K.c.c = 1\n[unembed]\nW_U.v.a = 1\n",
            "embed.features[0]",
        ),
        (
            HEADER + "[[embed]]\nfeatures = ['v']\nW_E.a.v = 1\n" + HEAD + "W_Q.v.c = 1\n[unembed]\nW_U.v.a = 1\n",
            "embed",
        ),
        (HEADER + "embed = 3\n" + HEAD + "W_Q.v.c = 1\nW_K.v.c = 1\nW_V.v.v = 1\n[unembed]\nW_U.v.a = 1\n", "embed"),
        (
            HEADER
            + "[[params]]\nS = 1\n"
            + HEAD
            + "W_Q.a.c = 'S'\nW_K.b.c = 'S'\n[unembed]\nW_U.v.a = 'S'\nb_U.a = 'S'\n",
            "params",
        ),
        (
            HEADER + "[[heads]]\ndims = ['c', 'c']\nvalues = ['v']\nW_Q.a.c = 1\nW_K.b.c = 1\nW_V.a.v = 1\n",
            "heads[0].dims",
        ),
    ],
)
def test_one_cause_gives_one_line(text, where):
    with pytest.raises(WeightFileError) as info:
        loads(text)
    assert [i.where for i in info.value.issues] == [where]


# -- 7. slow refusals are cut off before tomllib ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text, fragment",
    [
        (HEADER + "".join(f"[t{i}]\n" for i in range(300)), "has 300 table headers"),
        (HEADER + "".join(f"[{i}]\n" for i in range(20_001)), "has 20,001 lines that start with \\["),
        (HEADER + "x = [" + ",".join("1" for _ in range(120_000)) + "]\n", "has about 120,001 entries"),
        (HEADER + "".join(f"k{i} = 1\n" for i in range(12_000)), "has about 12,001 keys"),
        (HEADER + "x = [" + ",".join('"1"' for _ in range(11_000)) + "]\n", "has about 22,002 quote marks"),
        (HEADER + "".join(f"a.b.c.d.e.f.g.h{i} = 1\n" for i in range(9_500)), "has about 66,500 dotted key parts"),
        (HEADER + "a.b.c.d.e.f.g.h.i = 1\n", "line 2: a key with more than 8 dotted parts"),
        (HEADER + "[a.b.c.d.e.f.g.h.i]\n", "line 2: a key with more than 8 dotted parts"),
    ],
    ids=["headers", "numbered headers", "array items", "keys", "strings", "dotted parts", "long key", "long header"],
)
def test_files_that_would_make_tomllib_slow_are_refused_before_it_runs(text, fragment, monkeypatch):
    def never(_text):
        raise AssertionError("tomllib must not see this file")

    monkeypatch.setattr(weight_read.tomllib, "loads", never)
    with pytest.raises(WeightFileError, match=fragment):
        loads(text)


def test_more_than_256_parameters_are_one_line():
    with pytest.raises(WeightFileError) as info:
        loads(
            HEADER
            + "[params]\n"
            + "".join(f"p{i} = 'log({i + 1})'\n" for i in range(300))
            + "[unembed]\nb_U.a = 'p1'\n"
        )
    assert [(i.where, i.message) for i in info.value.issues] == [("params", "declares 300 parameters")]


def test_the_largest_real_shapes_fit_under_the_prescan_limits():
    # the biggest dense file a student could mean: 128 features, a 64-wide head, 512 positions
    rows = lambda n, w: "[" + ",".join("[" + ",".join("0" for _ in range(w)) + "]" for _ in range(n)) + "]"  # noqa: E731
    text = HEADER + f"[embed]\nW_E = {rows(28, 128)}\nW_P = {rows(512, 128)}\n"
    text += f"[[heads]]\nW_Q = {rows(128, 8)}\nW_K = {rows(128, 8)}\nW_V = {rows(128, 8)}\n"
    assert weight_read._prescan(text) == []
    tomllib.loads(text)  # and it is valid TOML: the limits, not the text, are what is tested


def test_an_eval_file_of_endless_bad_lines_stops_at_the_issue_limit(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"B\n" * 2_000_000)
    with pytest.raises(EvalFileError) as info:
        check.read_eval_file(check.get_problem("problem2"), bad)
    assert len(info.value.issues) == 51 and info.value.issues[-1].message == "stopped reading after 50 problems"


# -- 10. numbers in the report -------------------------------------------------------------------------------


def test_columns_stay_apart_at_any_magnitude(capsys, tmp_path):
    path = tmp_path / "w.toml"
    path.write_text(HEADER + "[unembed]\nb_U.a = 1000000\n")
    code, out, err = run(capsys, "problem2", str(path))
    assert code == 1
    table = out.split("\n\n")[1].split("\n")
    for row in table[1:]:
        name, positions, kl = re.split(r"\s{2,}", row.strip())
        assert float(kl) > 9e5 and int(positions.replace(",", "")) > 0, row


def test_a_dense_head_too_wide_names_the_limit():
    row = "[" + ", ".join(["0"] * 65) + "]"
    with pytest.raises(WeightFileError) as info:
        loads(HEADER + "[[heads]]\nW_Q = [" + ", ".join([row] * 28) + "]\n")
    assert [str(i.message) + "; " + i.fix for i in info.value.issues] == [
        "has rows of 65 entries; a head has at most 64 dims"
    ]


# -- 11. smaller ---------------------------------------------------------------------------------------------


def test_a_closed_pipe_exits_quietly_with_a_code_that_is_no_verdict():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before check writes a word
    result = subprocess.run(
        [sys.executable, "-m", "handattn.check", "problem2", SOLUTION],
        stdout=write,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    os.close(write)
    assert result.returncode == 141 and result.stderr == b""


@pytest.mark.parametrize("name", ["True", "None", "lambda", "if", "_private", "pi"])
def test_keywords_and_reserved_words_are_refused_as_parameter_names(name):
    with pytest.raises(WeightFileError) as info:
        loads(HEADER + f"[params]\n{name} = 1\n")
    assert [i.where for i in info.value.issues] == [f"params.{name}"]


def test_one_text_and_one_position_are_singular(capsys):
    code, out, err = run(capsys, "problem2", SOLUTION, "--texts", "1", "--length", "2")
    assert "scored on 1 text from seed 0: 1 predicted position\n" in out
