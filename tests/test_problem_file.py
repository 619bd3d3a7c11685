"""Instructors' problems: a Python file (or an entry point) with PROBLEM, checked when loaded, usable by name."""

import importlib.metadata
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from handattn import check, new, problems
from handattn.errors import RuleError
from handattn.evalset import sample_eval_set
from handattn.problems import load_problem_file, reference_sample, uniforms
from handattn.problems.base import rule_weights

ECHO = Path(__file__).parent / "fixtures" / "problems" / "echo.py"


@pytest.fixture
def registry(monkeypatch):
    """The registry as it is, restored after the test (registering is global, on purpose)."""
    monkeypatch.setattr(problems, "_REGISTRY", dict(problems._REGISTRY))
    monkeypatch.setattr(problems, "_PLUGINS", {})
    return problems._REGISTRY


def test_a_problem_file_gives_a_checked_problem_with_every_default():
    echo = load_problem_file(ECHO)
    assert (echo.name, echo.length, echo.contexts, echo.n_ctx) == ("echo", 32, ("all positions",), 64)
    tokens = echo.sample(uniforms(3, 20, 9))
    assert torch.equal(tokens, reference_sample(echo, uniforms(3, 20, 9)))  # the row sampler is the convention
    numerators, denominators = echo.exact_weights(tokens)
    for n, t in [(0, 0), (5, 4), (19, 8)]:
        expected = echo.reference_rule(tokens[n, : t + 1].tolist())
        assert [int(x) for x in numerators[n, t]] == [int(p * int(denominators[n, t])) for p in expected]
    assert torch.equal(echo.context_kind(tokens), torch.zeros_like(tokens))


def test_problem_file_on_check_new_and_list(registry, capsys, tmp_path):
    assert check.main(["--problem-file", str(ECHO), "--list"]) == 0
    assert "echo  (pass: KL ≤ 0.01 nats)\n  after a vowel, that vowel again half the time" in capsys.readouterr().out
    starter = tmp_path / "echo.toml"
    assert new.main(["echo", "--problem-file", str(ECHO), "-o", str(starter)]) == 0
    capsys.readouterr()
    assert check.main(["echo", str(starter), "--problem-file", str(ECHO), "--texts", "64", "--length", "8"]) == 1
    out, err = capsys.readouterr()
    assert err == "" and "echo · " in out and "all positions" in out


def test_without_the_problem_file_the_name_is_unknown(registry, capsys, tmp_path):
    assert check.main(["echo", str(tmp_path / "x.toml")]) == 2
    assert "unknown problem 'echo'" in capsys.readouterr().err


RULE = "    def reference_rule(self, prefix):\n        return {rule}\n"
HEADER = """\
from fractions import Fraction
from handattn.problems import Problem

class P(Problem):
    name = "p"
    summary = "s"
    statement = "s"
    threshold = 0.01
"""
UNIFORM = "[Fraction(0) if i >= 26 else Fraction(1, 26) for i in range(28)]"


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("def f(:\n", "line 1: is not valid Python"),
        (
            "import no_such_module_here\n",
            "raised ModuleNotFoundError: No module named 'no_such_module_here' while importing",
        ),
        (HEADER + RULE.format(rule=UNIFORM), "defines no PROBLEM"),
        (
            HEADER + RULE.format(rule=UNIFORM) + "PROBLEM = P\n",
            "PROBLEM: is a class, not an instance; write PROBLEM = P()",
        ),
        ("PROBLEM = 3\n", "PROBLEM: is int"),
        (
            HEADER.replace("    threshold = 0.01\n", "") + RULE.format(rule=UNIFORM) + "PROBLEM = P()\n",
            "threshold: is missing",
        ),
        (
            HEADER.replace('name = "p"', 'name = "a b"') + RULE.format(rule=UNIFORM) + "PROBLEM = P()\n",
            "name: 'a b' is not a usable problem name",
        ),
        (
            HEADER + RULE.format(rule="[1 / 26] * 26 + [0, 0]") + "PROBLEM = P()\n",
            "P(a) is 0.038461538461538464, not an exact rational",
        ),
        (HEADER + RULE.format(rule="[Fraction(1, 26)] * 27") + "PROBLEM = P()\n", "returned 27, not a list of 28"),
        (HEADER + RULE.format(rule="[Fraction(1, 27)] * 26 + [0, 0]") + "PROBLEM = P()\n", "sum to 26/27, not 1"),
        (
            HEADER
            + RULE.format(rule="[Fraction(2, 26), Fraction(-1, 26)] + [Fraction(1, 26)] * 24 + [0, 0]")
            + "PROBLEM = P()\n",
            "P(b) is negative",
        ),
        (
            HEADER + RULE.format(rule=f"{UNIFORM} if len(prefix) < 5 else 1 / 0") + "PROBLEM = P()\n",
            "reference_rule raised ZeroDivisionError after",
        ),
        (
            HEADER
            + RULE.format(rule=UNIFORM)
            + "    def context_kind(self, tokens):\n        return tokens\n"
            + "PROBLEM = P()\n",
            "context_kind: gives",
        ),
        (
            HEADER
            + RULE.format(rule=UNIFORM)
            + "    def exact_weights(self, tokens):\n        import torch\n        n, d = super().exact_weights(tokens)\n"
            + "        return n.flip(-1), d\n"
            + "PROBLEM = P()\n",
            "exact_weights: disagrees with reference_rule after",
        ),
        (
            HEADER
            + RULE.format(rule=UNIFORM)
            + "    def sample(self, u):\n        return (u * 25).long()\n"
            + "PROBLEM = P()\n",
            "sample: does not give the texts reference_sample draws",
        ),
        (
            HEADER + "    starter_hint = None\n" + RULE.format(rule=UNIFORM) + "PROBLEM = P()\n",
            "starter_hint: is NoneType, not text",
        ),
    ],
    ids=[
        "syntax",
        "import error",
        "no PROBLEM",
        "a class",
        "not a problem",
        "no threshold",
        "bad name",
        "floats",
        "27 entries",
        "sum",
        "negative",
        "rule raises",
        "contexts",
        "vectorised rule",
        "sampler",
        "starter hint",
    ],
)
def test_a_wrong_problem_file_is_one_line_and_exit_2(body, fragment, tmp_path, capsys, registry):
    path = tmp_path / "bad.py"
    path.write_text(body)
    assert check.main(["--problem-file", str(path), "--list"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"{path}: ") and fragment in err, err


def test_a_missing_problem_file_is_one_line(tmp_path, capsys):
    assert check.main(["--problem-file", str(tmp_path / "nope.py"), "--list"]) == 2
    assert (
        capsys.readouterr().err
        == f"{tmp_path / 'nope.py'}: is not a Python file; name the .py file that defines PROBLEM\n"
    )


def test_a_rule_that_fails_later_is_a_typed_error_not_a_traceback():
    echo = load_problem_file(ECHO)

    class Late(type(echo)):
        name = "late"

        def reference_rule(self, prefix):
            if len(prefix) > 40:
                raise KeyError("too long")
            return super().reference_rule(prefix)

    with pytest.raises(RuleError, match="late: reference_rule raised KeyError after"):
        sample_eval_set(Late(), 4, 50)


def test_the_default_vectorised_rule_asks_each_prefix_once(monkeypatch):
    echo = load_problem_file(ECHO)
    calls = []
    original = type(echo).reference_rule
    monkeypatch.setattr(type(echo), "reference_rule", lambda self, prefix: calls.append(1) or original(self, prefix))
    tokens = torch.tensor([[0, 1, 2], [0, 1, 3]])
    rule_weights(echo, tokens)
    rule_weights(echo, tokens)
    assert len(calls) == 4  # (a), (a, b), (a, b, c), (a, b, d): each once, the second call all cached


def test_installed_entry_points_are_found_and_a_broken_one_is_reported(registry, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ECHO.parent))
    monkeypatch.delitem(sys.modules, "echo", raising=False)
    entries = [
        importlib.metadata.EntryPoint("echo", "echo:PROBLEM", "handattn.problems"),
        importlib.metadata.EntryPoint("broken", "no_such_package_here:P", "handattn.problems"),
    ]
    monkeypatch.setattr(
        importlib.metadata, "entry_points", lambda group: entries if group == "handattn.problems" else []
    )
    assert "echo" in problems.problem_names()
    assert check.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "echo  (pass: KL ≤ 0.01 nats)\n  after a vowel" in out
    assert "not loaded: entry point broken (no_such_package_here:P): raised ModuleNotFoundError" in out


def test_the_example_file_is_short():
    # what an instructor must write: name, summary, statement, threshold and reference_rule; nothing else
    source = textwrap.dedent(ECHO.read_text())
    assert "def exact_weights" not in source and "def sample" not in source and "contexts" not in source
