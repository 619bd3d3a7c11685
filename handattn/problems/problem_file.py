"""Problems an instructor writes: a Python file defining `PROBLEM`, or an installed entry point.

    # my_problem.py
    from fractions import Fraction
    from handattn.problems import Problem

    class Echo(Problem):
        name = "echo"
        ...
        def reference_rule(self, prefix):
            ...

    PROBLEM = Echo()

A problem file is the instructor's own trusted code, so it is imported and run (weight files,
by contrast, are untrusted data and never are). It is checked when loaded: its settings must
be usable, and on sampled prefixes every rule output must be 28 exact, non-negative
probabilities summing to exactly 1; a vectorised rule or contexts it writes must agree with
its reference rule. Anything wrong is one ProblemFileError line naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import re
import sys
import traceback
from pathlib import Path

import torch

from handattn.errors import Issue, ProblemFileError, RuleError, escape, shown
from handattn.problems.base import Problem, reference_sample, rule_row, uniforms
from handattn.vocab import decode

ENTRY_POINT_GROUP = "handattn.problems"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}\Z")
CHECK_TEXTS = 16  # sampled texts whose every prefix is checked when a problem is loaded


def load_problem_file(path: str | Path) -> Problem:
    """Import a problem file, check its PROBLEM, and return it (registering is the caller's choice)."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise _error(source, "", "is not a Python file", "name the .py file that defines PROBLEM")
    module_name = "handattn_problem_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise _error(source, "", "cannot be imported", "name a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so its classes pickle into worker processes
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(module_name, None)
        raise _error(source, f"line {e.lineno}", f"is not valid Python: {e.msg}", "fix the syntax") from None
    except Exception as e:  # the instructor's code failed while importing: say where, in one line
        sys.modules.pop(module_name, None)
        raise _error(source, _line_in(e, path), f"raised {_exception(e)} while importing", "fix the file") from None
    problem = getattr(module, "PROBLEM", None)
    if problem is None:
        raise _error(source, "", "defines no PROBLEM", "end the file with PROBLEM = MyProblem()")
    if isinstance(problem, type) and issubclass(problem, Problem):
        raise _error(source, "PROBLEM", "is a class, not an instance", f"write PROBLEM = {problem.__name__}()")
    check_problem(problem, source)
    return problem


def check_problem(problem: object, source: str) -> None:
    """Raise ProblemFileError unless `problem` is a usable Problem whose rules hold on sampled prefixes."""
    if not isinstance(problem, Problem):
        raise _error(
            source,
            "PROBLEM",
            f"is {type(problem).__name__}",
            "make it an instance of a subclass of handattn.problems.Problem",
        )
    issues = _setting_issues(problem)
    if issues:
        raise ProblemFileError(source, issues)
    try:
        tokens = problem.sample(uniforms(0, CHECK_TEXTS, problem.length))  # [N, T], through the rule itself
    except RuleError as e:
        raise _error(source, "", str(e), "return 28 exact probabilities for every prefix") from None
    except Exception as e:
        fix = "or delete it: the default samples from the rule"
        raise _error(source, "sample", f"raised {_exception(e)}", fix) from None
    issues = _agreement_issues(problem, tokens)
    if not issues and type(problem).sample is not Problem.sample:
        u = uniforms(1, CHECK_TEXTS, problem.length)
        if not torch.equal(problem.sample(u), reference_sample(problem, u)):
            fix = "draw by the convention of handattn.problems.base (or delete it: the default does)"
            issues = [Issue("sample", "does not give the texts reference_sample draws from the same uniforms", fix)]
    if issues:
        raise ProblemFileError(source, issues)


def discover_entry_points() -> tuple[list[Problem], list[str]]:
    """Problems installed under the entry-point group `handattn.problems`, each checked, and one line
    for each that could not be loaded (a broken plug-in must not stop the others)."""
    found, broken = [], []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        source = f"entry point {entry.name} ({entry.value})"
        try:
            obj = entry.load()
            problem = obj() if isinstance(obj, type) and issubclass(obj, Problem) else obj
            check_problem(problem, source)
            found.append(problem)
        except ProblemFileError as e:
            broken += e.lines()
        except Exception as e:
            broken.append(f"{escape(source)}: raised {_exception(e)} while loading; fix the package")
    return found, broken


def _setting_issues(problem: Problem) -> list[Issue]:
    issues = []
    for attribute, kind in [("name", str), ("summary", str), ("statement", str), ("threshold", (int, float))]:
        value = getattr(problem, attribute, None)
        if not isinstance(value, kind) or isinstance(value, bool):
            issues.append(
                Issue(
                    attribute,
                    "is missing" if value is None else f"is {shown(repr(value))}",
                    f"set the class attribute {attribute}",
                )
            )
    if issues:
        return issues
    if not NAME.match(problem.name):
        issues.append(
            Issue(
                "name",
                f"{shown(problem.name)} is not a usable problem name",
                "a letter, then letters, digits, - or _ (at most 40)",
            )
        )
    if not 0 < problem.threshold < float("inf"):
        issues.append(Issue("threshold", f"is {problem.threshold!r}", "a positive number of nats, e.g. 0.001"))
    length, contexts = problem.length, problem.contexts
    if not isinstance(length, int) or isinstance(length, bool) or not 2 <= length <= 512:
        issues.append(Issue("length", f"is {shown(repr(length))}", "a whole number of tokens from 2 to 512"))
    if (
        not isinstance(contexts, tuple)
        or not contexts
        or not all(isinstance(c, str) and c.isprintable() for c in contexts)
    ):
        issues.append(Issue("contexts", f"is {shown(repr(contexts))}", 'a tuple of names, e.g. ("all positions",)'))
    if not isinstance(problem.starter_hint, str):
        fix = "TOML text for the starter file, or delete it: the default declares vowel, consonant and digit"
        issues.append(Issue("starter_hint", f"is {type(problem.starter_hint).__name__}, not text", fix))
    return issues


def _agreement_issues(problem: Problem, tokens: torch.Tensor) -> list[Issue]:
    """The vectorised rule and the contexts, on every prefix of the sampled texts, against the rule."""
    texts = tokens.tolist()
    try:
        numerators, denominators = problem.exact_weights(tokens)
        kinds = problem.context_kind(tokens)
    except Exception as e:
        return [Issue("exact_weights", f"raised {_exception(e)}", "or delete it: the default asks reference_rule")]
    for n, text in enumerate(texts):
        for t in range(len(text)):
            prefix = text[: t + 1]
            expected = rule_row(problem, tuple(prefix))
            row = numerators[n, t].tolist()
            den = int(denominators[n, t])
            if den <= 0 or [x * expected[1] for x in row] != [x * den for x in expected[0]]:
                fix = "make it agree with reference_rule, or delete it: the default asks reference_rule"
                return [Issue("exact_weights", f"disagrees with reference_rule after {shown(decode(prefix))}", fix)]
            if not 0 <= int(kinds[n, t]) < len(problem.contexts):
                fix = f"return an index into contexts (0 to {len(problem.contexts) - 1})"
                return [Issue("context_kind", f"gives {int(kinds[n, t])} after {shown(decode(prefix))}", fix)]
    return []


def _exception(e: Exception) -> str:
    return f"{type(e).__name__}: {shown(str(e), 80)[1:-1]}" if str(e) else type(e).__name__


def _line_in(e: BaseException, path: Path) -> str:
    """The last line of the problem file in an exception's traceback ("" if none)."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename) == path]
    return f"line {frames[-1].lineno}" if frames else ""


def _error(source: str, where: str, message: str, fix: str) -> ProblemFileError:
    return ProblemFileError(source, [Issue(where, message, fix)])
