"""`python -m handattn.new`: a starter file that loads, scores, and explains itself."""

import pytest

from handattn import get_problem, load, problem_names, problems
from handattn.check import main as check_main
from handattn.new import main as new_main
from handattn.problems import register
from handattn.problems.problem2 import Problem2
from handattn.vocab import INDEX, LETTERS


@pytest.mark.parametrize("problem", problem_names())
def test_starter_loads_and_scores_but_does_not_pass(problem, tmp_path, capsys):
    path = tmp_path / f"{problem}.toml"
    assert new_main([problem, "-o", str(path)]) == 0
    assert f"python -m handattn.check {problem} {path}" in capsys.readouterr().out
    text = path.read_text()
    assert get_problem(problem).statement.split()[0] in text and f'problem = "{problem}"' in text
    assert get_problem(problem).starter_hint in text
    weights = load(path, problem=problem)
    assert weights.heads[0].name == "head1" and not weights.warnings
    assert check_main([problem, str(path)]) == 1
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("problem", "features"),
    [
        ("problem2", ("vowel", "consonant", "digit")),  # the generic starter
        ("problem3", ("vowel", "consonant", "digit", "first")),  # a feature for the position embedding
        ("problem4", (*LETTERS, "cos", "sin")),  # letters to copy, and a point on the circle
    ],
)
def test_starter_declares_the_features_the_problem_needs(problem, features, tmp_path):
    path = tmp_path / "starter.toml"
    assert new_main([problem, "-o", str(path)]) == 0
    assert load(path).features == features


class Braces(Problem2):
    """problem2 under another name, with a hint that TOML's braces would break were it formatted."""

    name = "braces"
    starter_hint = '[[heads]]\nname = "head1"\ndims = ["c"]\nvalues = ["seen"]\nW_V = { a = { seen = 1 } }\n'


def test_a_hint_is_written_as_given_even_with_toml_braces(monkeypatch, tmp_path):
    monkeypatch.setattr(problems, "_REGISTRY", dict(problems._REGISTRY))
    register(Braces())
    path = tmp_path / "braces.toml"
    assert new_main(["braces", "-o", str(path)]) == 0
    assert Braces.starter_hint in path.read_text()
    assert load(path).heads[0].W_V[INDEX["a"]].tolist() == [1.0]
    assert check_main(["braces", str(path)]) == 1


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


class BrokenHint(Problem2):
    name = "broken-hint"
    starter_hint = '[embed]\nfeatures = "vowel"\n'


def test_a_hint_that_does_not_load_is_refused_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(problems, "_REGISTRY", dict(problems._REGISTRY))
    register(BrokenHint())
    path = tmp_path / "broken.toml"
    assert new_main(["broken-hint", "-o", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("the starter of broken-hint (its starter_hint): embed.features: must be a list of names")
    assert not path.exists()
