"""`python -m handattn.leaderboard`: through main(argv), and once as a real process."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from class_folder import INJECTED, SOLUTION2, T0, TWIN_PY, TWIN_SOLUTION, UNIFORM, write

from handattn import cli, leaderboard, problems

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    code = leaderboard.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "class"
    write(root / "ann" / "problem2.toml", SOLUTION2, T0)
    write(root / INJECTED / "problem2.toml", SOLUTION2, T0 + 1)
    write(root / "bob" / "problem2.toml", UNIFORM, T0)
    write(root / "bob" / "problem2.TOML", UNIFORM, T0)  # misnamed: reported, not graded
    return root


def test_writes_the_board_and_exits_0_whatever_the_students_scored(capsys, folder, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = run(capsys, folder, "--out", out, "--secret-seed", 99, "--problems", "problem2")
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "history.sqlite",
        "leaderboard.csv",
        "leaderboard.html",
        "leaderboard.md",
    ]
    assert "3 submissions, 3 students" in stdout and "graded 2 distinct files" in stdout  # identical bytes once
    assert all(len(line) <= 80 for line in stdout.splitlines() if str(tmp_path) not in line)
    assert "not graded, as not <problem>.toml inside a student folder (1 entry): bob/problem2.TOML" in err
    assert "file/s" not in err and "s/file" not in err  # no progress bar when stderr is not a terminal
    rows = list(csv.DictReader(io.StringIO((out / "leaderboard.csv").read_text(encoding="utf-8"), newline="")))
    assert [(r["student"], r["rank"], r["passed"]) for r in rows] == [
        ("ann", "1", "true"),
        (INJECTED, "2", "true"),
        ("bob", "3", "false"),
    ]
    code, stdout, _ = run(capsys, folder, "--out", out, "--secret-seed", 99, "--problems", "problem2")
    assert code == 0 and "graded 0 distinct files" in stdout and "2 grades reused from the history" in stdout


def test_the_secret_seed_may_come_from_the_environment(capsys, folder, tmp_path, monkeypatch):
    argv = [folder, "--out", tmp_path / "out", "--problems", "problem2", "--no-reference"]
    assert run(capsys, *argv, "--secret-seed", 1234)[0] == 0
    monkeypatch.setenv("HANDATTN_SECRET_SEED", "1234")
    code, stdout, err = run(capsys, *argv)
    assert code == 0 and "public texts only" not in err
    assert "graded 0 distinct files" in stdout  # the same seed: the same options, every grade reused
    monkeypatch.setenv("HANDATTN_SECRET_SEED", "not a number")
    code, _, err = run(capsys, *argv)
    assert code == 2 and "HANDATTN_SECRET_SEED must be a whole number" in err


def test_without_a_seed_it_says_it_ranks_on_public_texts(capsys, folder, tmp_path, monkeypatch):
    monkeypatch.delenv("HANDATTN_SECRET_SEED", raising=False)
    code, _, err = run(capsys, folder, "--out", tmp_path / "out", "--problems", "problem2", "--no-reference")
    assert code == 0 and "no secret seed" in err and "public texts only" in err
    assert "No secret seed was given" in (tmp_path / "out" / "leaderboard.html").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{tmp}/nowhere", "--out", "{tmp}/out"], "nowhere: is not a folder"),
        (["{folder}", "--out", "{tmp}/out", "--problems", "problem9"], "unknown problem 'problem9'"),
        (["{folder}", "--out", "{tmp}/out", "--time-limit", "0"], "--time-limit must be a positive"),
        (["{folder}", "--out", "{tmp}/out", "--hidden-length", "1"], "1 is outside 2…512"),
        (["{folder}"], "the following arguments are required: --out"),
    ],
)
def test_unusable_input_exits_2_with_one_clear_line(capsys, folder, tmp_path, argv, message):
    argv = [a.format(tmp=tmp_path, folder=folder) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and message in err and "Traceback" not in err


def test_a_broken_manifest_exits_2_naming_the_line(capsys, tmp_path):
    root = tmp_path / "export"
    write(root / "manifest.csv", "student,problem,path\nann,problem2,ann.toml\n")
    code, _, err = run(capsys, root, "--out", tmp_path / "out")
    assert code == 2 and "manifest.csv: line 1: has no column submitted_at" in err


def test_a_progress_bar_on_a_terminal(folder, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    argv = [str(folder), "--out", str(tmp_path / "out"), "--problems", "problem2", "--secret-seed", "5"]
    assert leaderboard.main(argv) == 0
    assert "2/2" in sys.stderr.getvalue() and "file/s" in sys.stderr.getvalue()  # tqdm's bar, at its end


def test_the_handattn_command_runs_it(capsys):
    assert cli.main(["leaderboard", "--help"]) == 0 and "usage: handattn leaderboard" in capsys.readouterr().out


def test_as_a_real_process(folder, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HANDATTN_SECRET_SEED": "77"}
    argv = [sys.executable, "-m", "handattn.leaderboard", str(folder), "--out", str(tmp_path / "out")]
    argv += ["--problems", "problem2"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "graded 2 distinct files" in proc.stdout  # two contents; the reference solution is one of them
    assert INJECTED in (tmp_path / "out" / "leaderboard.csv").read_text(encoding="utf-8")


def test_a_history_that_is_not_a_database_exits_2(capsys, folder, tmp_path):
    write(tmp_path / "out" / "history.sqlite", "my notes, not a database")
    code, _, err = run(capsys, folder, "--out", tmp_path / "out")
    assert code == 2 and "cannot be used as a grading history (file is not a database)" in err


def test_an_instructors_problem_file_is_graded_like_a_built_in(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(problems, "_REGISTRY", dict(problems._REGISTRY))  # registering is global: undo it
    twin = write(tmp_path / "twin.py", TWIN_PY)
    write(tmp_path / "class" / "ann" / "twin.toml", TWIN_SOLUTION)
    argv = [tmp_path / "class", "--out", tmp_path / "out", "--problem-file", twin, "--problems", "twin"]
    code, _, err = run(capsys, *argv, "--secret-seed", 3, "--no-reference")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "leaderboard.csv").read_text(), newline="")))
    assert [(r["student"], r["problem"], r["rank"], r["passed"]) for r in rows] == [("ann", "twin", "1", "true")]
