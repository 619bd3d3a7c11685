"""Evaluation sets: sampled or read from a file, the same texts everywhere, every bad line named."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import handattn
from handattn import check
from handattn.errors import EvalFileError
from handattn.evalset import eval_set_from_texts, fingerprint, read_eval_file, sample_eval_set
from handattn.problems import get_problem, problem_names

ROOT = Path(__file__).resolve().parent.parent
P2 = get_problem("problem2")


def read(tmp_path, data: bytes):
    path = tmp_path / "texts.txt"
    path.write_bytes(data)
    return read_eval_file(P2, path)


def issues(tmp_path, data: bytes) -> list[tuple[str, str]]:
    with pytest.raises(EvalFileError) as info:
        read(tmp_path, data)
    return [(i.where, i.message) for i in info.value.issues]


def test_lines_split_on_newline_only(tmp_path):
    # str.splitlines would cut at \x0c, \x1c-\x1e, \x85, U+2028 and U+2029 and shift every line number after
    data = "ba1\nbc\x0cba1\nxy\u2028z\nbe1\x85\n".encode()
    assert issues(tmp_path, data) == [
        ("line 2", "'\\x0c' is not a token"),
        ("line 3", "'\\u2028' is not a token"),
        ("line 4", "'\\x85' is not a token"),
    ]


def test_a_byte_order_mark_and_windows_line_ends_are_accepted(tmp_path):
    eval_set = read(tmp_path, b"\xef\xbb\xbfba1\r\nbe1\r\n")
    assert eval_set.texts() == ["ba1", "be1"]


def test_blank_lines_and_comments_are_skipped_and_line_numbers_are_the_files(tmp_path):
    data = b"# my texts\n\nba1\n  \nbe1\nb\n#x\nBA\n"
    assert issues(tmp_path, data) == [("line 6", "has 1 token"), ("line 8", "'B' is not a token")]


def test_every_bad_line_is_reported_not_only_the_first(tmp_path):
    data = b"".join(b"ba1\nbad!\n" for _ in range(10))
    assert [where for where, _ in issues(tmp_path, data)] == [f"line {2 * i}" for i in range(1, 11)]


def test_impossible_texts_are_named_by_their_file_line(tmp_path):
    assert issues(tmp_path, b"# header\nba1\nba0\n0ab\n") == [
        ("line 3", "'0' cannot follow 'ba' in problem2"),
        ("line 4", "starts with a digit"),
    ]


def test_a_long_prefix_is_shown_by_its_end(tmp_path):
    text = "b" * 100 + "a0"
    ((where, message),) = issues(tmp_path, text.encode() + b"\n")
    assert message == f"'0' cannot follow …{'b' * 29 + 'a'!r} in problem2"


def test_not_utf8_is_one_line_naming_it(tmp_path):
    assert issues(tmp_path, b"ba1\nb\xe9\n") == [("line 2", "is not UTF-8 text")]


def test_a_folder_and_a_missing_file_are_refused(tmp_path):
    for path, fragment in [(tmp_path, "is a folder"), (tmp_path / "nope.txt", "does not exist")]:
        with pytest.raises(EvalFileError, match=fragment):
            read_eval_file(P2, path)


@pytest.mark.parametrize("name", problem_names())
def test_a_file_of_sampled_texts_gives_the_sampled_set(tmp_path, name):
    problem = get_problem(name)
    sampled = sample_eval_set(problem, 50, 9, seed=4)
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(sampled.texts()) + "\n")
    from_file = read_eval_file(problem, path)
    assert from_file.fingerprint == sampled.fingerprint == fingerprint(sampled.texts())
    assert torch.equal(from_file.tokens, sampled.tokens)


@pytest.mark.parametrize("name", problem_names())
def test_the_first_texts_of_a_larger_set_are_the_smaller_set(name):
    problem = get_problem(name)
    small, large = sample_eval_set(problem, 10, 12, seed=7), sample_eval_set(problem, 30, 12, seed=7)
    assert large.texts()[:10] == small.texts()


def test_texts_of_different_lengths_are_padded_and_masked():
    eval_set = eval_set_from_texts(P2, ["ba1", "be1ka1ko"])
    assert eval_set.texts() == ["ba1", "be1ka1ko"]
    assert eval_set.n_positions == 2 + 7
    assert eval_set.mask.sum().item() == 9


def test_importing_the_library_leaves_warning_filters_and_threads_alone():
    code = (
        "import warnings, torch; torch.set_num_threads(2); before = list(warnings.filters); import handattn; "
        "assert warnings.filters == before and torch.get_num_threads() == 2"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_calling_the_library_leaves_global_state_alone(capsys):
    filters, threads = list(warnings.filters), torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert check.main(["problem2", str(ROOT / "solutions" / "problem2.toml")]) == 0
        assert torch.get_num_threads() == 2  # only the command layer's run() sets one thread
        assert warnings.filters == filters and handattn.__version__
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()


def test_an_eval_file_past_the_token_cap_is_refused_while_reading(tmp_path):
    from handattn.evalset import MAX_TOKENS

    line = b"b" * 511 + b"a\n"  # 512 tokens: a text the problem can produce is not needed to hit the cap first
    path = tmp_path / "big.txt"
    path.write_bytes(line * (MAX_TOKENS // 512 + 1))
    with pytest.raises(EvalFileError, match=f"holds more than {MAX_TOKENS:,} tokens"):
        read_eval_file(P2, path)
