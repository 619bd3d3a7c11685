"""`python -m handattn.solve`: through main(argv), and once as a real process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from handattn import check, cli, load, solve
from handattn.descent import Progress

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
FAST = ["--max-steps", "3", "--restarts", "1"]


def run(capsys, *argv):
    code = solve.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_writes_a_labelled_file_that_check_accepts_unchanged(capsys, tmp_path):
    out_file = tmp_path / "gd.toml"
    code, out, err = run(capsys, "problem1", "--heads", 2, "--d-head", 1, "--out", out_file, *FAST)
    assert code == 0, err
    assert out.startswith("problem1 · 2 heads of width 1 · used the step budget\n  1 start · 3 steps in ")
    assert max(len(line) for line in out.splitlines() if str(out_file) not in line) <= 80  # a terminal's width
    assert "training KL" in out and "public KL" in out and f"wrote {out_file}" in out
    text = out_file.read_text()
    assert text.startswith("# written by: python -m handattn.solve problem1 --heads 2 --d-head 1")
    assert 'name = "h1"' in text and 'values = ["h1_v0"]' in text  # heads' dims and values named
    assert check.main(["problem1", str(out_file)]) in (0, 1)  # scored: not refused
    checked = capsys.readouterr().out
    public = out.split("public KL ")[1].split()[0]
    assert f"KL {float(public):.4f}" in checked or f"KL {float(public):.2e}" in checked


def test_the_same_command_writes_the_same_file(capsys, tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    assert run(capsys, "problem2", "--heads", 1, "--d-head", 1, "--out", a, *FAST)[0] == 0
    assert run(capsys, "problem2", "--heads", 1, "--d-head", 1, "--out", b, *FAST)[0] == 0
    assert a.read_bytes() == b.read_bytes()


def test_init_improves_a_hand_built_file(capsys, tmp_path):
    out_file = tmp_path / "better.toml"
    code, out, err = run(capsys, "problem1", "--init", SOLUTIONS / "problem1.toml", "--out", out_file, "--max-steps", 5)
    assert code == 0, err
    assert load(out_file).features == ("vowel", "consonant")
    assert check.main(["problem1", str(out_file), "--json"]) == 0
    capsys.readouterr()


def test_target_not_reached_exits_1_after_writing(capsys, tmp_path):
    out_file = tmp_path / "gd.toml"
    code, out, _ = run(capsys, "problem1", "--out", out_file, "--target-kl", 1e-9, *FAST)
    assert code == 1 and out_file.exists() and "used the step budget" in out


def test_ctrl_c_writes_the_best_weights_so_far_and_exits_130(capsys, tmp_path, monkeypatch):
    def interrupt(self, p: Progress) -> None:
        if p.steps >= 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(solve._ProgressBar, "update", interrupt)
    out_file = tmp_path / "gd.toml"
    code, out, _ = run(capsys, "problem1", "--out", out_file, "--restarts", 2)
    assert code == 130
    assert "interrupted (Ctrl-C): the best weights so far" in out and "1 of 2 starts" in out
    assert load(out_file).problem == "problem1"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--heads", "17"], "python -m handattn.solve: heads must be 0…16 (weight files allow at most 16), not 17"),
        (["--d-head", "65"], "python -m handattn.solve: d_head must be 0…64"),
        (["--heads", "2", "--init", "solutions/problem1.toml"], "give either the file or heads/d_head/d_value"),
        (["--init", "solutions/problem2.toml"], "solutions/problem2.toml: problem: this file is written for problem2"),
    ],
)
def test_impossible_shapes_and_starts_are_refused_with_one_line(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(ROOT)
    out_file = tmp_path / "gd.toml"
    code, out, err = run(capsys, "problem1", "--out", out_file, *argv)
    assert code == 2 and out == "" and not out_file.exists()
    assert err.count("\n") == 1 and message in err


def test_an_existing_file_is_kept_unless_forced(capsys, tmp_path):
    out_file = tmp_path / "mine.toml"
    out_file.write_text("my hand-built answer")
    code, _, err = run(capsys, "problem1", "--out", out_file, *FAST)
    assert code == 2 and "exists; use --force to overwrite it" in err and out_file.read_text() == "my hand-built answer"
    assert run(capsys, "problem1", "--out", out_file, "--force", *FAST)[0] == 0


def test_unknown_problem_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "problem9", "--out", tmp_path / "x.toml")
    assert code == 2 and "unknown problem 'problem9'" in err


def test_the_handattn_entry_point_has_solve(capsys, tmp_path):
    assert cli.main(["solve", "problem2", "--out", str(tmp_path / "x.toml"), *FAST]) == 0
    assert "handattn check" not in capsys.readouterr().err


def test_a_real_process_writes_a_file_check_passes(tmp_path):
    out_file = tmp_path / "p2.toml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "handattn.solve", "problem2", "--heads", "1", "--d-head", "1", "--out", str(out_file)]
    done = subprocess.run([*argv, "--target-kl", "0.0005", "--restarts", "1"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "reached the target" in done.stdout
    checked = subprocess.run(
        [sys.executable, "-m", "handattn.check", "problem2", str(out_file)], capture_output=True, text=True, env=env
    )
    assert checked.returncode == 0 and "PASSED" in checked.stdout
