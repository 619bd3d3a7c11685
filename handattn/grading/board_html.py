"""The leaderboard as one self-contained static HTML page: no network, no external files.

Every student-controlled string (folder names, error messages that quote a file) goes through
`errors.escape` (control and bidi characters become visible escapes) and then `html.escape`.
A Content-Security-Policy allows only this page's own style and script (by hash), so even a
string that escaped escaping could not run. Columns sort when their header is clicked.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math

from handattn import __version__
from handattn.errors import escape
from handattn.grading.board import Board, ProblemBoard
from handattn.grading.ranking import BASELINE, REFERENCE, Entry
from handattn.grading.submissions import format_time
from handattn.render import fmt

STYLE = """
body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1d1d1f; }
h1 { margin-bottom: 0.2rem; } .meta { color: #555; margin-top: 0; }
.note { background: #fff4d6; border-left: 4px solid #e0a800; padding: 0.5rem 0.8rem; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0 2rem; }
th, td { padding: 0.3rem 0.6rem; border-bottom: 1px solid #ddd; text-align: right; vertical-align: top; }
th { background: #f3f3f5; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " ▲"; } th[aria-sort="descending"]::after { content: " ▼"; }
td.name, th.name, td.msg { text-align: left; } td.name { overflow-wrap: anywhere; }
td.msg { font: 12px/1.3 ui-monospace, monospace; white-space: pre-wrap; overflow-wrap: anywhere; max-width: 32rem; }
.badge { display: inline-block; padding: 0 0.4rem; border-radius: 0.6rem; font-size: 12px; white-space: nowrap; }
tr.passed .badge { background: #d9f2dd; } tr.failed .badge { background: #fde2c8; }
tr.error .badge { background: #f8c9c9; } tr.error { background: #fff1f1; }
tr.failed { background: #fffaf3; } tr.reference, tr.baseline { background: #eef3fb; font-style: italic; }
tr.reference .badge, tr.baseline .badge { background: #cfdcf3; }
"""

SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function value(row) {
        var cell = row.cells[column];
        var v = cell.getAttribute("data-v");
        return v === null ? cell.textContent.trim().toLowerCase() : (v === "" ? null : parseFloat(v));
      }
      rows.sort(function (a, b) {
        var x = value(a), y = value(b);
        if (x === y) return 0;
        if (x === null) return 1;
        if (y === null) return -1;
        return (x < y ? -1 : 1) * (ascending ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

STATUS = {"passed": "passed", "failed": "not passed", "error": "error", REFERENCE: "reference", BASELINE: "baseline"}


def render_html(board: Board, generated_at: str) -> str:
    """The whole page as text."""
    csp = f"default-src 'none'; style-src {_sha(STYLE)}; script-src {_sha(SCRIPT)}"
    ranked_on = "the hidden set (the instructor's secret seed)" if board.hidden else "the public set"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>handattn leaderboard</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Leaderboard</h1>",
        f'<p class="meta">Ranked on {ranked_on} · policy: {_e(board.policy)} submission per student · '
        f"generated {_e(generated_at)} by handattn {_e(__version__)}</p>",
    ]
    if not board.hidden:
        parts.append(
            '<p class="note" id="public-only">No secret seed was given, so this board ranks on the public texts, '
            "which every student can score against. Give the instructor's seed (--secret-seed or "
            "HANDATTN_SECRET_SEED) to rank on hidden texts.</p>"
        )
    parts += _overall(board)
    for problem in board.problems:
        parts += _problem(problem, board.hidden)
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def _overall(board: Board) -> list[str]:
    names = [p.problem for p in board.problems]
    head = ["rank", "student", "passed", *(f"{n} rank" for n in names), "rank sum"]
    rows = []
    for row in board.overall:
        cells = [_num(row.rank, row.rank), f'<td class="name">{_name(row.student)}</td>']
        cells.append(_num(row.passed, f"{row.passed} of {len(names)}"))
        cells += [_num(row.ranks[n], "" if row.ranks[n] is None else row.ranks[n]) for n in names]
        cells.append(_num(row.rank_sum, row.rank_sum))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    intro = (
        "<p>By problems passed, then by the sum of the per-problem ranks; a problem without a ranked "
        "entry counts as one place below its last ranked entry.</p>"
    )
    return ['<section id="overall"><h2>Overall</h2>', intro, *_table("overall", head, rows), "</section>"]


def _problem(p: ProblemBoard, hidden: bool) -> list[str]:
    sets = p.sets or {}
    described = []
    for name in ("public", "hidden"):
        info = sets.get(name)
        if info:
            seed = "the secret seed" if name == "hidden" else f"fingerprint {_e(info['fingerprint'])}"
            described.append(f"{name}: {info['texts']:,} texts of {info['length']} tokens ({seed})")
    head = ["rank", "student", "status"]
    head += (["hidden KL", "public KL"] if hidden else ["public KL"]) + ["max |weight|", "submitted", "note"]
    rows = [_entry_row(e, hidden, p.threshold) for e in p.entries]
    intro = f"<p>Pass: KL ≤ {p.threshold:g} nats. Evaluation sets: {'; '.join(described) or 'none'}.</p>"
    section = _e(p.problem)
    return [f'<section id="problem-{section}"><h2>{section}</h2>', intro, *_table(p.problem, head, rows), "</section>"]


def _entry_row(e: Entry, hidden: bool, threshold: float) -> str:
    status = e.kind if e.kind in (REFERENCE, BASELINE) else "error" if e.error else "passed" if e.passed else "failed"
    cells = [_num(e.rank, "" if e.rank is None else e.rank), f'<td class="name">{_name(e.name)}</td>']
    cells.append(f'<td class="name"><span class="badge">{STATUS[status]}</span></td>')
    kls = [e.kl_hidden, e.kl_public] if hidden else [e.kl_public]
    cells += [_num(kl, "" if kl is None else fmt(kl)) for kl in kls]
    weight = e.max_abs_weight
    cells.append(_num(weight, "" if weight is None else f"{weight:g}"))
    cells.append(_num(e.submitted_at, format_time(e.submitted_at).replace("T", " ")))
    note = e.error or (f"{e.submissions} submissions" if e.submissions > 1 else "")
    cells.append(f'<td class="msg">{_e(escape_lines(note))}</td>')
    return f'<tr class="{status}">' + "".join(cells) + "</tr>"


def _table(name: str, head: list[str], rows: list[str]) -> list[str]:
    header = "".join(f"<th{' class=name' if h in ('student', 'status', 'note') else ''}>{_e(h)}</th>" for h in head)
    return [
        f'<table class="sortable" id="table-{_e(name)}"><thead><tr>{header}</tr></thead><tbody>',
        *rows,
        "</tbody></table>",
    ]


def escape_lines(text: str) -> str:
    """Each line made terminal-safe (control and bidi characters shown as escapes), newlines kept."""
    return "\n".join(escape(line) for line in text.split("\n"))


def _name(text: str) -> str:
    return _e(escape(text))


def _num(value: float | int | None, shown: object) -> str:
    """A right-aligned cell that sorts by `value` (blank when there is none)."""
    v = "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else repr(value)
    return f'<td data-v="{v}">{_e(str(shown))}</td>'


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
