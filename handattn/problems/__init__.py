"""The problem registry: every command looks problems up here by name.

The registry is open: `register(problem)` adds any object that follows
`handattn.problems.base.Problem` (instructor-defined problems use the same door).
"""

from __future__ import annotations

from handattn.errors import UnknownProblemError
from handattn.problems.base import Problem, draw, reference_sample, uniforms
from handattn.problems.problem1 import Problem1
from handattn.problems.problem2 import Problem2

_REGISTRY: dict[str, Problem] = {}


def register(problem: Problem) -> Problem:
    """Add a problem under its name (replacing one of the same name) and return it."""
    _REGISTRY[problem.name] = problem
    return problem


def get_problem(name: str) -> Problem:
    """The registered problem called `name`; raises UnknownProblemError listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownProblemError(name, problem_names()) from None


def problem_names() -> list[str]:
    return sorted(_REGISTRY)


register(Problem1())
register(Problem2())

__all__ = ["Problem", "draw", "get_problem", "problem_names", "reference_sample", "register", "uniforms"]
