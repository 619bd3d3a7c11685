"""Terminal text for `show`: the per-position table, attention heat maps, circuit tables.

Every function returns lines or a string and prints nothing. Colour is a choice the
command makes (`wants_colour`: a terminal, and no NO_COLOR); without it, shades are block
characters, so the same map reads in a log file, through a pipe, or on paper.
Untrusted names (file paths, head names) are escaped before they are placed in a line.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from typing import TextIO

import torch

from handattn.circuits import HeadCircuits, Table
from handattn.diagnose import TextView
from handattn.errors import escape
from handattn.render import fmt, table
from handattn.views.palette import is_light, viridis, xterm256

SHADES = ((0.005, " "), (0.25, "░"), (0.5, "▒"), (0.75, "▓"), (2.0, "█"))  # (below this weight, glyph)
RESET, BOLD = "\x1b[0m", "\x1b[1m"
LABEL = 6  # "  1 b " before each row of a heat map


def wants_colour(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org) or TERM is dumb."""
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def terminal_width(stream: TextIO, environ: Mapping[str, str] = os.environ) -> int:
    """The terminal's width; for a file or a pipe, COLUMNS if set, else 80."""
    if getattr(stream, "isatty", lambda: False)():
        return shutil.get_terminal_size((80, 24)).columns
    columns = environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) >= 40 else 80


def _glyph(v: float) -> str:
    return next(g for limit, g in SHADES if v < limit)


def _percent(v: float) -> str:
    """A weight as a whole percent, "·" for a trace under 0.5%."""
    return "·" if v < 0.005 else str(round(100 * v))


def _paint(text: str, v: float) -> str:
    rgb = viridis(v)
    fg = 16 if is_light(rgb) else 231  # black on light shades, white on dark
    return f"\x1b[48;5;{xterm256(rgb)}m\x1b[38;5;{fg}m{text}{RESET}"


def heat_map(pattern: torch.Tensor, text: str, title: str, colour: bool = False, width: int = 80) -> list[str]:
    """[T, T] attention pattern → lines: rows are query positions, columns key positions, each
    labelled by its token; masked cells (later keys) blank; a shade in each cell, and the weight in
    percent where four columns per cell fit, else the strongest key of each row at the row's end."""
    T = len(text)
    cell = next((w for w in (4, 2) if LABEL + T * w + (0 if w == 4 else 10) <= width), 1)
    lines = [title]
    header = "".join(f"{tok:>4}" if cell == 4 else f"{tok:<{cell}}" for tok in text)
    lines.append(" " * LABEL + header.rstrip())
    for i in range(T):
        row = pattern[i].tolist()
        cells = []
        for j in range(T):
            if j > i:
                cells.append(" " * cell)
                continue
            v = row[j]
            content = f"{_percent(v):>3}" if cell == 4 else ""
            if colour:
                cells.append(_paint(" " * (cell - len(content)) + content, v))
            else:
                cells.append((_glyph(v) + content) if cell == 4 else _glyph(v) * cell)
        line = f"{i + 1:>3} {text[i]} " + "".join(cells)
        if cell < 4:
            j = max(range(i + 1), key=row.__getitem__)
            even = max(row[: i + 1]) - min(row[: i + 1]) <= 1e-9 * row[j]
            line += f"  even {_percent(row[j])}%" if even and i else f"  {text[j]}@{j + 1} {_percent(row[j])}%"
        lines.append(line.rstrip() if not colour else line)
    lines += _legend(colour, cell)
    return lines


def _legend(colour: bool, cell: int) -> list[str]:
    numbers = (
        "numbers: % of the row's attention"
        if cell == 4
        else "at the right: each row's strongest key (token@position), its %, or even"
    )
    if colour:
        ramp = "".join(_paint(" ", k / 8) for k in range(9))
        return [f"  0% {ramp} 100% of the row's attention; blank: masked (a later key)", f"  {numbers}"]
    return [
        "  shade: ░ under 25%  ▒ under 50%  ▓ under 75%  █ 75% or more of the attention",
        f"  {numbers}",
        "  · under 0.5%; blank: masked (a later key)",
    ]


def _pack(entries: Sequence[str], limit: int) -> list[str]:
    """Entries joined with ", " into lines of at most `limit` characters (an entry is never split)."""
    lines: list[str] = []
    for entry in entries:
        if lines and len(lines[-1]) + 2 + len(entry) <= limit:
            lines[-1] += ", " + entry
        else:
            lines.append(entry)
    return lines or ["–"]


def positions_table(view: TextView, colour: bool = False, width: int = 80) -> list[str]:
    """One row per position: token, true next-token distribution, the model's top tokens, KL;
    the worst positions marked "◀" (and bold in colour)."""
    true = [[e.text() for e in p.true] for p in view.positions]
    model = [[e.text() for e in p.model] for p in view.positions]
    kl_width = max(9, *(len(fmt(p.kl)) + 2 for p in view.positions))
    fixed = 3 + 2 + 5 + 2 + 2 + 2 + kl_width + 2  # pos, token, the gaps, KL and the marker
    natural = max(len(", ".join(c)) for c in true + model)
    column = max(20, min(natural, (width - fixed) // 2))

    def line(pos: str, token: str, t: str, m: str, kl: str) -> str:
        return f"{pos:>3}  {token:<5}  {t:<{column}}  {m:<{column}}  {kl:>{kl_width}}".rstrip()

    out = [line("pos", "token", "true next token", "model's top tokens", "KL")]
    for p, t, m in zip(view.positions, true, model, strict=True):
        t_lines, m_lines = _pack(t, column), _pack(m, column)
        kl = fmt(p.kl) if p.next is not None else f"({fmt(p.kl)})"
        for k in range(max(len(t_lines), len(m_lines))):
            first = k == 0
            text = line(
                str(p.pos) if first else "",
                p.token if first else "",
                t_lines[k] if k < len(t_lines) else "",
                m_lines[k] if k < len(m_lines) else "",
                kl if first else "",
            )
            if first and p.pos in view.worst:
                text = f"{BOLD}{text} ◀{RESET}" if colour else f"{text} ◀"
            out.append(text)
    return out


def text_view_text(view: TextView, colour: bool = False, width: int = 80) -> str:
    """Everything `show` prints for one text: header, per-position table, one heat map per head."""
    params = ", ".join(f"{k} = {v:g}" for k, v in view.params.items())
    lines = [
        view.problem
        + (f" · {escape(view.file)}" if view.file else "")
        + (f" · params: {escape(params)}" if params else ""),
        f"text: {view.text}",
        f"  {len(view.text)} tokens; {escape(view.why)}",
        f"  mean KL {fmt(view.kl)} nats over its {len(view.text) - 1} scored positions"
        + (f"; worst: {', '.join(map(str, view.worst))} (◀)" if view.worst else ""),
        "",
        *positions_table(view, colour, width),
        "  (the last KL, in brackets, is not scored: no token follows it in the text)",
    ]
    for name, pattern in zip(view.heads, view.patterns, strict=True):
        title = f"head {escape(name)} · attention pattern (rows: query, columns: key position)"
        lines += ["", *heat_map(pattern, view.text, title, colour, width)]
    return "\n".join(lines)


def _number(x: float) -> str:
    return "0" if x == 0 else f"{x:.4g}"


def circuit_table(t: Table, width: int = 80) -> list[str]:
    """A circuit table, its columns split into blocks that fit the width, rows repeated in each."""
    labels = [escape(r) for r in t.rows]
    cols = [escape(c) for c in t.cols]
    cells = [[_number(x) for x in row] for row in t.values.tolist()]
    first = max(len(x) for x in [t.row_axis + " ↓ / " + t.col_axis + " →", *labels])
    widths = [max(len(cols[j]), *(len(r[j]) for r in cells)) if cells else len(cols[j]) for j in range(len(cols))]
    blocks, current, used = [], [], first
    for j, w in enumerate(widths):
        if current and used + 2 + w > width - 2:
            blocks.append(current)
            current, used = [], first
        current.append(j)
        used += 2 + w
    blocks.append(current)
    lines = []
    for block in blocks:
        header = (f"{t.row_axis} ↓ / {t.col_axis} →", *(cols[j] for j in block))
        lines += [*table(header, [(labels[i], *(cells[i][j] for j in block)) for i in range(len(labels))]), ""]
    return lines[:-1]


def circuits_text(heads: Sequence[HeadCircuits], scale: float, width: int = 80) -> str:
    """The QK and OV→logits tables of every head, with what their entries mean."""
    if not heads:
        return "no heads: the layer is its direct path alone (W_E, then W_U)"
    lines = []
    for h in heads:
        lines += [
            f"QK circuit of head {escape(h.head)}: scale · x W_Q W_Kᵀ yᵀ (scale {scale:g})",
            "  the score of query row x for key row y; the larger, the more attention",
            *circuit_table(h.qk, width),
            "",
            f"OV circuit → logits of head {escape(h.head)}: y W_V W_U (its value rows of W_U)",
            "  what attending fully to key row y adds to each output token's logit",
            *circuit_table(h.ov, width),
            "",
        ]
    grouped = any(len(m) > 1 for h in heads for t in (h.qk, h.ov) for m in t.row_members + t.col_members)
    if grouped:
        lines.append("a group (vowels, …) stands for each of its tokens, whose entries are equal")
    return "\n".join(lines).rstrip()
