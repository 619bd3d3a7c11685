"""Text every command shares: numbers, tables and the check report. Returns strings; prints nothing.

Untrusted text (paths, names from a file) goes through `errors.escape`/`shown` before it is
placed in a line, so a report can never carry a control character to the terminal.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from handattn.errors import clip, escape, plural
from handattn.gradient_references import Reference
from handattn.hints import WhereToLook
from handattn.problems import get_problem, plugin_errors, problem_names
from handattn.score import Score


def fmt(x: float) -> str:
    """A KL-sized number: 4 decimals, or 3 significant digits when small; "–" for undefined."""
    if x != x:
        return "–"
    if x == 0:
        return "0"
    return f"{x:.4f}" if abs(x) >= 1e-3 else f"{x:.2e}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Columns as wide as their widest cell, two spaces apart; the first left-aligned, the rest right."""
    widths = [max(len(str(row[j])) for row in [header, *rows]) for j in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return indent + "  ".join(
            [f"{first:<{widths[0]}}", *(f"{c:>{w}}" for c, w in zip(rest, widths[1:], strict=True))]
        )

    return [line(header).rstrip(), *(line(row).rstrip() for row in rows)]


def problem_list() -> str:
    """Two lines per registered problem: its name and pass threshold, then its summary (what --list
    prints); then a line for each installed problem package that could not be loaded."""
    lines = []
    for name in problem_names():
        p = get_problem(name)
        lines.append(f"{escape(name)}  (pass: KL ≤ {p.threshold:g} nats)")
        lines += textwrap.wrap(escape(p.summary), width=80, initial_indent="  ", subsequent_indent="  ")
    return "\n".join(lines + [f"not loaded: {line}" for line in plugin_errors()])


def verdict_lines(s: Score, path: str) -> list[str]:
    """The first two lines of a report: the problem and file, then the verdict (all --quiet prints)."""
    verdict = "PASSED" if s.passed else "NOT PASSED"
    relation = "≤" if s.passed else ">"
    return [
        f"{s.problem} · {escape(str(path))}",
        f"  {verdict}  KL {fmt(s.kl)} nats per position (± {fmt(s.kl_se)}), {relation} threshold {s.threshold:g}",
    ]


def report(
    s: Score,
    path: str,
    where: WhereToLook | None = None,
    problem_files: Sequence[str] = (),
    reference: Reference | None = None,
) -> str:
    """The human-readable result: verdict, evaluation set, breakdown by context, baselines, the
    gradient-descent reference for the same head shape (if stored), and for a file that does not
    pass, where to look (`hints.where_to_look`)."""
    lines = [
        *verdict_lines(s, path),
        f"  {fmt(s.kl_bits)} bits · argmax is a most-likely token at {s.argmax_accuracy:.2%} of positions",
        f"  scored on {plural(s.n_texts, 'text')} from {escape(s.eval_source)}: "
        f"{plural(s.n_positions, 'predicted position')}",
        f"  eval fingerprint {s.eval_fingerprint} · largest |weight| {s.max_abs_weight:g}",
        "",
    ]
    rows = [(c.name, f"{c.n_positions:,}", fmt(c.kl)) for c in s.by_context]
    lines += table(("context", "positions", "mean KL"), rows)
    lines += [
        "",
        f"  baselines: uniform over possible next tokens {fmt(s.baselines['uniform'])} nats",
        f"             best fixed distribution {fmt(s.baselines['best_fixed'])} nats",
    ]
    if reference is not None:
        lines.append(f"  gradient descent, {reference.shape}: {fmt(reference.public_kl)} nats on the public set")
    if not s.passed:
        worst = max((c for c in s.by_context if c.n_positions), key=lambda c: c.kl * c.n_positions)
        share = worst.kl * worst.n_positions / (s.kl * s.n_positions)
        lines.append(f"  most of the gap: {worst.name} ({share:.0%} of the total KL)")
    if where is not None:
        lines += where_lines(where, s.problem, path, problem_files)
    return "\n".join(lines)


def where_lines(
    w: WhereToLook, problem: str, path: str, problem_files: Sequence[str] = (), width: int = 80
) -> list[str]:
    """The hint for the costliest kind of context, then the worst contexts, one line each."""
    hint = w.hint
    for phrase in (w.leak_to, w.too_little, w.too_much):  # "27 tokens (not 1)" stays on one line
        hint = hint.replace(phrase, phrase.replace(" ", "\xa0")) if phrase else hint
    wrapped = textwrap.wrap(f"hint: {hint}", width - 2, initial_indent="  ", subsequent_indent="        ")
    lines = [line.replace("\xa0", " ") for line in wrapped]
    if w.worst:
        lines += ["", f"  where to look, the {plural(len(w.worst), 'worst context')}:"]
        header = ("text so far", "pos", "true next", "model's top", "KL")
        rows = [
            (
                clip_left(c.prefix, 22),
                str(len(c.prefix)),
                clip(", ".join(e.text() for e in c.true), 22),
                clip(", ".join(e.text() for e in c.model), 22),
                fmt(c.kl),
            )
            for c in w.worst
        ]
        widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
        for a, b, c, d, e in [header, *rows]:
            cells = f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d:<{widths[3]}}  {e:>{widths[4]}}"
            lines.append(f"  {cells}".rstrip())
    files = "".join(f" --problem-file {escape(str(f))}" for f in problem_files)
    lines.append(f"  see one text: python -m handattn.show {problem} {escape(str(path))}{files}")
    return lines


def clip_left(text: str, limit: int) -> str:
    """The end of a text, at most `limit` characters, an ellipsis marking a cut at the start."""
    return text if len(text) <= limit else "…" + text[len(text) - limit + 1 :]
