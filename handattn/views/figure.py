"""One figure of a text through a layer (matplotlib, the optional extra `handattn[plot]`).

Panels: each head's attention pattern (query rows, key columns, token labels on both
axes, masked cells blank, numbers in the cells when the text is short); the true against
the predicted probability at every position for the tokens that matter; the KL per
position. Viridis for weights and Okabe–Ito for series, both safe for colour-blind eyes.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch

from handattn.diagnose import TextView
from handattn.errors import MissingExtraError, clip, escape
from handattn.render import fmt
from handattn.views.palette import OKABE_ITO
from handattn.vocab import GROUPS, TOKENS

MAX_SERIES = 5  # token series in the probability panel
ANNOTATE_UP_TO = 16  # tokens in a text for which pattern cells carry their numbers


def require_matplotlib():
    """matplotlib's Figure class, or a MissingExtraError with the install line.

    No pyplot and no backend: a bare Figure draws to a file by itself, and the caller's
    matplotlib settings (a notebook's inline backend) stay as they were."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError("drawing a figure (--png)", "plot") from None
    return Figure


def series(view: TextView) -> list[tuple[str, list[int]]]:
    """The tokens that matter, as (label, token ids), at most MAX_SERIES: tokens whose true or predicted
    probability is large somewhere; a named group is one series (its total) where its members' true
    and predicted probabilities agree at every position, so nothing is hidden inside a total."""
    true, model = view.true_probs, view.model_probs  # [T, V]
    weight = torch.maximum(true, model).max(0).values  # [V] the largest probability each token ever gets

    def alike(p: torch.Tensor, ids: list[int]) -> bool:
        return torch.allclose(p[:, ids], p[:, ids[:1]].expand(-1, len(ids)), rtol=1e-6, atol=1e-9)

    out: list[tuple[str, list[int]]] = []
    used: set[int] = set()
    for group, members in sorted(GROUPS.items(), key=lambda kv: -len(kv[1])):
        ids = [TOKENS.index(m) for m in members]
        if group != "all" and not used & set(ids) and alike(true, ids) and alike(model, ids):
            out.append((group, ids))
            used |= set(ids)
    out += [(TOKENS[i], [i]) for i in range(len(TOKENS)) if i not in used]
    size = {label: float(weight[ids].sum()) if len(ids) > 1 else float(weight[ids[0]]) for label, ids in out}
    kept = [s for s in out if size[s[0]] > 0.01]
    return sorted(kept, key=lambda s: -size[s[0]])[:MAX_SERIES]


def figure(view: TextView):
    """A matplotlib Figure of the text view: a panel per head, then probabilities and KL per position."""
    Figure = require_matplotlib()
    T, n_heads = len(view.text), len(view.heads)
    per_row = min(max(n_heads, 1), 3)
    head_rows = math.ceil(n_heads / per_row) if n_heads else 0
    side = min(3.2 + 0.12 * T, 9.0)
    every = max(1, math.ceil(T / 40)) if T <= 40 else math.ceil(T / 25)  # a tick per position up to 40
    fig = Figure(figsize=(max(side * per_row, 9.0 if T <= 40 else 11.0), side * head_rows + 5.2), layout="constrained")
    grid = fig.add_gridspec(head_rows + 2, per_row, height_ratios=[side] * head_rows + [3.0, 1.6])
    ticks = range(0, T, every)
    labels = [f"{view.text[i]}\n{i + 1}" if every > 1 or i == 0 or (i + 1) % 5 == 0 else view.text[i] for i in ticks]
    image = None
    for h, (name, pattern) in enumerate(zip(view.heads, view.patterns, strict=True)):
        ax = fig.add_subplot(grid[h // per_row, h % per_row])
        masked = torch.ones(T, T, dtype=torch.bool).triu(1)
        image = ax.imshow(pattern.masked_fill(masked, math.nan).tolist(), cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"head {_plain(name, 40)}: attention pattern", fontsize=10)
        ax.set_xticks(ticks, [view.text[i] for i in ticks], fontsize=7)
        ax.set_yticks(ticks, [f"{view.text[i]} {i + 1}" for i in ticks], fontsize=7)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
        ax.tick_params(length=0)
        if T <= ANNOTATE_UP_TO:
            for i in range(T):
                for j in range(i + 1):
                    v = float(pattern[i, j])
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}".lstrip("0") or "0",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="black" if v > 0.6 else "white",
                    )
    if image is not None:  # beside the last head, inside its row, so the panels below keep their width
        fig.colorbar(image, cax=fig.axes[n_heads - 1].inset_axes([1.04, 0.0, 0.04, 1.0]), label="attention weight")
    probs = fig.add_subplot(grid[head_rows, :])
    x = list(range(1, T + 1))
    for k, (label, ids) in enumerate(series(view)):
        colour = OKABE_ITO[k % len(OKABE_ITO)]
        name = label if len(ids) == 1 else f"{label} (total)"
        probs.plot(
            x,
            view.true_probs[:, ids].sum(-1).tolist(),
            color=colour,
            linestyle="none",
            marker="o",
            markersize=8,
            fillstyle="none",
            label=f"{name}, true",
        )
        probs.plot(
            x,
            view.model_probs[:, ids].sum(-1).tolist(),
            color=colour,
            linestyle="none",
            marker="o",
            markersize=3.5,
            label=f"{name}, model",
        )
    probs.set_title("true (rings) vs predicted (dots) probability of the next token", fontsize=10)
    probs.set_ylabel("probability")
    probs.set_ylim(-0.03, 1.03)
    probs.set_xticks([i + 1 for i in ticks], labels, fontsize=7)
    probs.legend(fontsize=7, ncols=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    kl = fig.add_subplot(grid[head_rows + 1, :], sharex=probs)
    values = [p.kl for p in view.positions]
    kl.bar(x, values, color=[OKABE_ITO[5] if p.pos in view.worst else OKABE_ITO[4] for p in view.positions])
    kl.set_title("KL(true ‖ model) per position, nats (worst in orange)", fontsize=10)
    kl.set_xlabel("position (and its token): the distribution of the token after it")
    kl.tick_params(labelbottom=True)
    fig.suptitle(
        f"{view.problem}{' · ' + _plain(view.file, 60) if view.file else ''} · mean KL {fmt(view.kl)} nats · text {clip(view.text, 40)}"
    )
    fig._repr_png_ = lambda: _png(fig)  # shows in Jupyter even where pyplot was never imported
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _plain(name: str, limit: int) -> str:
    """An untrusted name for a figure: escaped, clipped, and with no `$` to start matplotlib's math mode."""
    return clip(escape(name), limit).replace("$", r"\$")


def save_png(view: TextView, path: str | Path) -> None:
    """Write the figure of a text view as a PNG."""
    fig = figure(view)
    fig.savefig(path, dpi=110)
