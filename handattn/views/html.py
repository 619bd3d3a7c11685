"""HTML for notebooks: how `Trace`, `Score`, `TextView` and circuit tables show in Jupyter.

Attention patterns are tables whose cells are shaded with viridis and carry their weight,
query rows and key columns labelled by token; masked cells (later keys) are empty. Every
name that came from a file (paths, head names) goes through `html.escape`. Styles are
inline, so the HTML reads the same in Jupyter, Colab, VS Code and a saved page.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import torch

from handattn.circuits import HeadCircuits, Table
from handattn.diagnose import TextView
from handattn.render import fmt
from handattn.score import Score
from handattn.views.palette import is_light, viridis

TABLE = "border-collapse:collapse;font-family:monospace;font-size:12px;margin:4px 0"
CELL = "padding:2px 5px;text-align:right;border:1px solid #ddd"
HEAD = "padding:2px 5px;text-align:center;background:#f4f4f4;border:1px solid #ddd"
MAX_TEXTS = 4  # texts of a batch shown by a Trace
MAX_TABLE = 64  # tokens up to which a pattern is drawn as a table


def _cell(value: float) -> str:
    rgb = viridis(value)
    fg = "#000" if is_light(rgb) else "#fff"
    text = f"{value:.2f}" if value >= 0.005 else "·"
    return f'<td style="{CELL};background:rgb{rgb};color:{fg}" title="{value:.6g}">{text}</td>'


def pattern_html(pattern: torch.Tensor, tokens: Sequence[str], title: str = "") -> str:
    """[T, T] attention pattern → a table: query rows, key columns, token labels, masked cells empty."""
    T = len(tokens)
    rows = [
        f'<tr><th style="{HEAD}">query ↓ key →</th>'
        + "".join(f'<th style="{HEAD}">{escape(t)}</th>' for t in tokens)
        + "</tr>"
    ]
    values = pattern.tolist()
    for i in range(T):
        cells = "".join(_cell(values[i][j]) if j <= i else f'<td class="masked" style="{CELL}"></td>' for j in range(T))
        rows.append(f'<tr><th style="{HEAD}">{i + 1} {escape(tokens[i])}</th>{cells}</tr>')
    caption = f'<caption style="text-align:left;font-weight:bold">{escape(title)}</caption>' if title else ""
    return f'<table class="handattn-pattern" style="{TABLE}">{caption}{"".join(rows)}</table>'


def _rows(header: Sequence[str], rows: Sequence[Sequence[str]], marked: Sequence[bool] = (), left: int = 1) -> str:
    """A table of text cells: the first `left` columns left-aligned, numbers after them right-aligned."""
    head = "<tr>" + "".join(f'<th style="{HEAD}">{escape(h)}</th>' for h in header) + "</tr>"
    body = []
    for k, row in enumerate(rows):
        style = ";background:#fde0c5;font-weight:bold" if k < len(marked) and marked[k] else ""
        cells = [
            f'<td style="{CELL}{";text-align:left" if j < left else ""}{style}">{escape(c)}</td>'
            for j, c in enumerate(row)
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table style="{TABLE}">{head}{"".join(body)}</table>'


def text_view_html(view: TextView) -> str:
    """A text through the layer: header, the per-position table (worst rows marked), every head's pattern."""
    rows = [
        (p.token, ", ".join(e.text() for e in p.true), ", ".join(e.text() for e in p.model), fmt(p.kl), str(p.pos))
        for p in view.positions
    ]
    marked = [p.pos in view.worst for p in view.positions]
    header = (
        f"<div><b>{escape(view.problem)}{' · ' + escape(view.file) if view.file else ''}</b><br>text <code>{escape(view.text)}</code> "
        f"({escape(view.why)}) · mean KL <b>{fmt(view.kl)}</b> nats over {len(view.text) - 1} scored positions</div>"
    )
    table = _rows(("token", "true next token", "model's top tokens", "KL", "position"), rows, marked, left=3)
    if len(view.text) <= MAX_TABLE:
        patterns = "".join(
            pattern_html(p, view.text, f"head {name}: attention pattern")
            for name, p in zip(view.heads, view.patterns, strict=True)
        )
    else:
        patterns = f"<div>({len(view.text)} tokens: too many for pattern tables; figure(view) draws them)</div>"
    return f'<div class="handattn">{header}{table}{patterns}</div>'


def score_html(s: Score) -> str:
    """A score: the verdict and KL, the evaluation set, the breakdown by context and the baselines."""
    verdict = "PASSED" if s.passed else "NOT PASSED"
    colour = "#009E73" if s.passed else "#D55E00"
    rows = [(c.name, f"{c.n_positions:,}", fmt(c.kl)) for c in s.by_context]
    base = s.baselines
    return (
        f'<div class="handattn"><b>{escape(s.problem)}</b> · <b style="color:{colour}">{verdict}</b> · '
        f"KL <b>{fmt(s.kl)}</b> nats per position (± {fmt(s.kl_se)}), threshold {s.threshold:g}<br>"
        f"argmax is a most-likely token at {s.argmax_accuracy:.2%} of positions · "
        f"{s.n_texts:,} texts from {escape(s.eval_source)}, {s.n_positions:,} positions "
        f"(fingerprint {escape(s.eval_fingerprint)})"
        + _rows(("context", "positions", "mean KL"), rows)
        + f"baselines: uniform {fmt(base['uniform'])} · best fixed distribution {fmt(base['best_fixed'])} nats</div>"
    )


def trace_html(trace) -> str:
    """A Trace: each head's pattern for the first few texts of the batch, token labels if known."""
    parts = []
    n_texts = trace.logits.shape[0]
    for n in range(min(n_texts, MAX_TEXTS)):
        if trace.tokens is not None:
            from handattn.vocab import decode

            labels = list(decode(trace.tokens[n]))
        else:
            labels = [str(i + 1) for i in range(trace.logits.shape[1])]
        for h, pattern in enumerate(trace.pattern):
            parts.append(pattern_html(pattern[n].detach(), labels, f"text {n + 1}, head {h}: attention pattern"))
    more = f"<div>… and {n_texts - MAX_TEXTS} more texts</div>" if n_texts > MAX_TEXTS else ""
    return f'<div class="handattn"><div>{escape(repr(trace))}</div>{"".join(parts)}{more}</div>'


def table_html(t: Table) -> str:
    """A circuit table with its axes named; group labels carry their members as a tooltip."""
    head = (
        f'<tr><th style="{HEAD}">{escape(t.row_axis)} ↓ / {escape(t.col_axis)} →</th>'
        + "".join(
            f'<th style="{HEAD}" title="{escape(" ".join(m))}">{escape(c)}</th>'
            for c, m in zip(t.cols, t.col_members, strict=True)
        )
        + "</tr>"
    )
    body = "".join(
        f'<tr><th style="{HEAD}" title="{escape(" ".join(m))}">{escape(r)}</th>'
        + "".join(f'<td style="{CELL}">{x:.4g}</td>' for x in row)
        + "</tr>"
        for r, m, row in zip(t.rows, t.row_members, t.values.tolist(), strict=True)
    )
    caption = f'<caption style="text-align:left;font-weight:bold">{escape(t.title)}</caption>'
    return f'<table style="{TABLE}">{caption}{head}{body}</table>'


def circuits_html(c: HeadCircuits) -> str:
    return f'<div class="handattn">{table_html(c.qk)}{table_html(c.ov)}</div>'
