"""The exceptions handattn raises. Library code raises them; only the command line prints.

Every error about a file carries a list of `Issue`s: where in the
file, what is wrong, and how to fix it, so the command line can print one clear
line per issue and never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

MAX_SHOWN = 40  # characters of an untrusted name shown in a message
MAX_WHERE = 120  # characters of a place ("heads[0].W_K.<key>") shown
MAX_LINE = 400  # characters of a message or a fix
MAX_ISSUES = 50  # past this many issues, a file is not worth reading further


def escape(text: str) -> str:
    """Text safe for a terminal line: every non-printable character (newline, ESC, a lone surrogate
    from an undecodable path, U+2028, bidi overrides) becomes its Python escape; the rest is kept."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(name: object, limit: int = MAX_SHOWN) -> str:
    """An untrusted name as it appears in a message: quoted, escaped, truncated ('x\\n…')."""
    text = str(name)
    return repr(text[:limit]) + ("…" if len(text) > limit else "")


def listing(names: Iterable[object], limit: int = 12) -> str:
    """ "a, b, c, … (40 in all)": the first `limit` names, each escaped and truncated."""
    names = list(names)
    shown_names = ", ".join(escape(clip(str(n), MAX_SHOWN)) for n in names[:limit])
    return shown_names + (f", … ({len(names):,} in all)" if len(names) > limit else "")


def plural(n: int, word: str, words: str | None = None) -> str:
    """ "1 text", "2,048 texts"."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"


@dataclass(frozen=True)
class Issue:
    """One thing wrong with an input: where it is, what is wrong, and the fix."""

    where: str  # "line 3", "heads[1].W_K.consonantz", "" for the whole file
    message: str
    fix: str = ""

    def format(self, source: str) -> str:
        """One terminal-safe line: the file, the place, the message and the fix, each escaped and capped."""
        parts = [escape(source), escape(clip(self.where, MAX_WHERE)) if self.where else ""]
        line = ": ".join([p for p in parts if p] + [escape(clip(self.message, MAX_LINE))])
        return f"{line}; {escape(clip(self.fix, MAX_LINE))}" if self.fix else line


class HandattnError(Exception):
    """Base class of every error handattn raises on purpose."""


class UnknownProblemError(HandattnError, KeyError):
    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, known
        super().__init__(name)

    def __str__(self) -> str:
        close = difflib.get_close_matches(self.name.lower(), self.known, n=1, cutoff=0.9)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown problem {shown(self.name)}; {hint}choose one of: {listing(self.known, 40)}"


class UsageError(HandattnError, ValueError):
    """Command-line options that cannot be used together or at all; the command prints its usage."""


class RuleError(HandattnError, ValueError):
    """A problem's rule that failed or broke its contract at some prefix (instructor code, not input)."""


class ProblemMismatchError(HandattnError, ValueError):
    """Weights written for one problem, scored against another problem's evaluation set."""


class EvalSetError(HandattnError, ValueError):
    """Options that do not describe a usable evaluation set (too many texts, too long, …)."""


class InputError(HandattnError, ValueError):
    """A file (weights or evaluation texts) that cannot be used, with every issue found."""

    def __init__(self, source: str, issues: list[Issue]):
        self.source = source
        self.issues = list(issues)
        super().__init__(self.lines()[0] if self.issues else source)

    def lines(self, limit: int | None = None) -> list[str]:
        kept = self.issues if limit is None else self.issues[:limit]
        lines = [issue.format(self.source) for issue in kept]
        if len(self.issues) > len(kept):
            lines.append(f"{escape(self.source)}: … and {plural(len(self.issues) - len(kept), 'more issue')}")
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())


class WeightFileError(InputError):
    """A weight file (or in-memory weights) that cannot be loaded into the model."""


class EvalFileError(InputError):
    """An evaluation-text file that cannot be scored against."""


class ProblemFileError(InputError):
    """An instructor's problem (a Python file or an installed entry point) that cannot be used."""


class TextError(InputError):
    """A text to show (`show --text`) that the problem cannot produce, or that is no text at all."""


class MissingExtraError(HandattnError, ImportError):
    """An optional extra (matplotlib, ipywidgets, transformer-lens) that a feature needs is not installed."""

    def __init__(self, what: str, extra: str):
        self.what, self.extra = what, extra
        super().__init__(f'{what} needs the optional extra "{extra}": pip install "handattn[{extra}]"')


class SolveError(HandattnError, ValueError):
    """Options gradient descent cannot use: an impossible shape, a starting file for another problem, …"""
