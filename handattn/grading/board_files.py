"""The leaderboard's files: CSV and Markdown renderings, and writing all three atomically.

CSV is data for a gradebook: UTF-8, the exact columns in CSV_COLUMNS, one row per student and
problem (the submission the policy chose), numbers at full precision. Reference rows are not in
it. A student-controlled cell that a spreadsheet would read as a formula (it starts with = + - @,
a tab or a carriage return) gets a leading apostrophe. Markdown cells have every ASCII
punctuation character backslash-escaped (so `|`, `<` and `*` are text) and newlines shown as \\n.
Each file is written to a temporary file beside it and renamed over the old one: a reader sees
the old board or the new one, never half of one.
"""

from __future__ import annotations

import csv
import datetime
import io
import os
import re
import tempfile
from pathlib import Path

from handattn.grading.board import Board
from handattn.grading.board_html import escape_lines, render_html
from handattn.grading.ranking import STUDENT
from handattn.grading.submissions import format_time
from handattn.render import fmt

CSV_COLUMNS = (
    "student",
    "problem",
    "rank",
    "kl_hidden",
    "kl_public",
    "max_abs_weight",
    "passed",
    "error",
    "submitted_at",
)
FILES = ("leaderboard.html", "leaderboard.csv", "leaderboard.md")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_MD_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def render_csv(board: Board) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for problem in board.problems:
        for e in problem.entries:
            if e.kind != STUDENT:
                continue
            writer.writerow(
                [
                    _cell(e.name),
                    e.problem,
                    "" if e.rank is None else e.rank,
                    _number(e.kl_hidden),
                    _number(e.kl_public),
                    _number(e.max_abs_weight),
                    "true" if e.scored and e.passed else "false",
                    _cell(e.error or ""),
                    format_time(e.submitted_at),
                ]
            )
    return out.getvalue()


def render_markdown(board: Board, generated_at: str) -> str:
    ranked_on = "the hidden set (the instructor's secret seed)" if board.hidden else "the public set"
    lines = [
        "# Leaderboard",
        "",
        f"Ranked on {ranked_on}; {board.policy} submission per student; generated {generated_at}.",
    ]
    if not board.hidden:
        lines += ["", "**No secret seed was given: this board ranks on the public texts, which students can see.**"]
    names = [p.problem for p in board.problems]
    lines += ["", "## Overall", "", _row(["rank", "student", "passed", *(f"{n} rank" for n in names), "rank sum"])]
    lines.append(_row(["---:", "---", "---:", *("---:" for _ in names), "---:"]))
    for r in board.overall:
        ranks = ["" if r.ranks[n] is None else str(r.ranks[n]) for n in names]
        lines.append(_row([str(r.rank), md_cell(r.student), f"{r.passed} of {len(names)}", *ranks, str(r.rank_sum)]))
    for p in board.problems:
        kl_head = ["hidden KL", "public KL"] if board.hidden else ["public KL"]
        lines += ["", f"## {md_cell(p.problem)}", "", f"Pass: KL ≤ {p.threshold:g} nats.", ""]
        lines.append(_row(["rank", "student", "status", *kl_head, "max abs weight", "submitted", "note"]))
        lines.append(_row(["---:", "---", "---", *("---:" for _ in kl_head), "---:", "---", "---"]))
        for e in p.entries:
            status = e.kind if e.kind != STUDENT else "error" if e.error else "passed" if e.passed else "NOT PASSED"
            kls = [e.kl_hidden, e.kl_public] if board.hidden else [e.kl_public]
            cells = ["" if e.rank is None else str(e.rank), md_cell(e.name), f"**{status}**" if e.error else status]
            cells += ["" if kl is None else fmt(kl) for kl in kls]
            cells.append("" if e.max_abs_weight is None else f"{e.max_abs_weight:g}")
            cells += [format_time(e.submitted_at), md_cell(e.error or "")]
            lines.append(_row(cells))
    return "\n".join(lines) + "\n"


def md_cell(text: str) -> str:
    """Untrusted text as one Markdown table cell that renders as itself."""
    return _MD_PUNCTUATION.sub(r"\\\1", escape_lines(text).replace("\n", "\\n"))


def write_board(board: Board, out: str | Path) -> list[Path]:
    """Write leaderboard.html, .csv and .md into `out` (created if needed), each atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    texts = dict(zip(FILES, (render_html(board, now), render_csv(board), render_markdown(board, now)), strict=True))
    return [write_atomic(out / name, text) for name, text in texts.items()]


def write_atomic(path: Path, text: str) -> Path:
    """Write UTF-8 text to a temporary file in the same folder, then rename it over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA) else text


def _number(x: float | None) -> str:
    return "" if x is None else repr(x)
