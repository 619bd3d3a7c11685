"""The problem registry: every command looks problems up here by name.

The registry is open: `register(problem)` adds any `handattn.problems.base.Problem`.
Instructors' problems come in through it: a Python file (`load_problem_file`, which the
commands' `--problem-file` calls) or a package's entry point in the group
`handattn.problems`, found the first time the registry is read.
"""

from __future__ import annotations

from handattn.errors import UnknownProblemError
from handattn.problems.base import Problem, draw, reference_sample, uniforms
from handattn.problems.problem1 import Problem1
from handattn.problems.problem2 import Problem2
from handattn.problems.problem3 import Problem3
from handattn.problems.problem4 import Problem4
from handattn.problems.problem5 import Problem5
from handattn.problems.problem_file import check_problem, discover_entry_points, load_problem_file

_REGISTRY: dict[str, Problem] = {}
_PLUGINS: dict[str, list] = {}  # filled once: "errors", the lines for entry points that failed to load


def register(problem: Problem) -> Problem:
    """Add a problem under its name (replacing one of the same name) and return it."""
    _REGISTRY[problem.name] = problem
    return problem


def get_problem(name: str) -> Problem:
    """The registered problem called `name`; raises UnknownProblemError listing the known ones.
    Entry points never replace a registered name, so they are read only for another name."""
    if name not in _REGISTRY:
        _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownProblemError(name, problem_names()) from None


def problem_names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def plugin_errors() -> list[str]:
    """One line for each installed entry point that could not be loaded as a problem."""
    _discover()
    return list(_PLUGINS["errors"])


def _discover() -> None:
    if "errors" in _PLUGINS:
        return
    _PLUGINS["errors"] = []  # set first: checking a plug-in samples texts, which reads the registry
    found, _PLUGINS["errors"] = discover_entry_points()
    for problem in found:
        _REGISTRY.setdefault(problem.name, problem)  # a built-in keeps its name


register(Problem1())
register(Problem2())
register(Problem3())
register(Problem4())
register(Problem5())

__all__ = [
    "Problem",
    "check_problem",
    "draw",
    "get_problem",
    "load_problem_file",
    "plugin_errors",
    "problem_names",
    "reference_sample",
    "register",
    "uniforms",
]
