"""The exceptions handattn raises. Library code raises them; only the command line prints.

Every error about a file carries a list of `Issue`s: where in the
file, what is wrong, and how to fix it, so the command line can print one clear
line per issue and never a traceback.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    """One thing wrong with an input: where it is, what is wrong, and the fix."""

    where: str  # "line 3", "heads[1].W_K.consonantz", "" for the whole file
    message: str
    fix: str = ""

    def format(self, source: str) -> str:
        place = f"{source}: {self.where}" if self.where else source
        line = f"{place}: {self.message}"
        return f"{line}; {self.fix}" if self.fix else line


class HandattnError(Exception):
    """Base class of every error handattn raises on purpose."""


class UnknownProblemError(HandattnError, KeyError):
    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, known
        super().__init__(name)

    def __str__(self) -> str:
        close = difflib.get_close_matches(self.name.lower(), self.known, n=1, cutoff=0.9)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown problem {self.name!r}; {hint}choose one of: {', '.join(self.known)}"


class EvalSetError(HandattnError, ValueError):
    """Options that do not describe a usable evaluation set (too many texts, too long, …)."""


class InputError(HandattnError, ValueError):
    """A file (weights or evaluation texts) that cannot be used, with every issue found."""

    def __init__(self, source: str, issues: list[Issue]):
        self.source = source
        self.issues = list(issues)
        super().__init__(self.lines()[0] if self.issues else source)

    def lines(self, limit: int | None = None) -> list[str]:
        shown = self.issues if limit is None else self.issues[:limit]
        lines = [issue.format(self.source) for issue in shown]
        if len(self.issues) > len(shown):
            lines.append(f"{self.source}: … and {len(self.issues) - len(shown)} more issues")
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())


class WeightFileError(InputError):
    """A weight file (or in-memory weights) that cannot be loaded into the model."""


class EvalFileError(InputError):
    """An evaluation-text file that cannot be scored against."""
