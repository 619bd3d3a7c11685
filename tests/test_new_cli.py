"""`python -m handattn.new`: a starter file that loads, scores, and explains itself."""

import pytest

from handattn import get_problem, load, problem_names
from handattn.check import main as check_main
from handattn.new import main as new_main


@pytest.mark.parametrize("problem", problem_names())
def test_starter_loads_and_scores_but_does_not_pass(problem, tmp_path, capsys):
    path = tmp_path / f"{problem}.toml"
    assert new_main([problem, "-o", str(path)]) == 0
    assert f"python -m handattn.check {problem} {path}" in capsys.readouterr().out
    text = path.read_text()
    assert get_problem(problem).statement.split()[0] in text and f'problem = "{problem}"' in text
    weights = load(path, problem=problem)
    assert weights.features == ("vowel", "consonant", "digit") and weights.heads[0].name == "head1"
    assert check_main([problem, str(path)]) == 1


def test_starter_goes_to_problem_toml_and_never_overwrites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert new_main(["problem2"]) == 0
    (tmp_path / "problem2.toml").write_text("my work")
    assert new_main(["problem2"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "problem2.toml").read_text() == "my work"
    assert new_main(["problem2", "--force"]) == 0
    assert (tmp_path / "problem2.toml").read_text() != "my work"


def test_starter_to_stdout_and_unknown_problem(capsys):
    assert new_main(["problem1", "-o", "-"]) == 0
    assert 'problem = "problem1"' in capsys.readouterr().out
    assert new_main(["problem7"]) == 2
    assert "unknown problem 'problem7'" in capsys.readouterr().err
