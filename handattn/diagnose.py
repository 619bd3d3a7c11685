"""What a layer does on one text: the data behind `python -m handattn.show` and the notebook views.

For each position of a text: its token, the exact next-token distribution (from the
problem's rule, never from an evaluation set's stored targets), the model's top tokens
and the KL between them; for each head, the attention pattern. Distributions are
compacted where a group of tokens shares one probability ("26 letters × 0.0385").
Nothing here prints; `views/` turns a `TextView` into text, a figure or HTML.

Shapes: T tokens in the text, V = 28.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from handattn.errors import Issue, TextError, escape, shown
from handattn.evalset import EvalSet, sample_eval_set
from handattn.model import AttentionModel
from handattn.problems import Problem, get_problem
from handattn.score import Scorer, kl_divergence
from handattn.vocab import GROUPS, INDEX, IS_LETTER, TOKENS
from handattn.weights import Weights, load
from handattn.weights.core import MAX_POSITIONS

N_WORST = 3  # positions that stand out in a text


@dataclass(frozen=True)
class Entry:
    """Tokens that share one probability: one token, or a uniform group ("26 letters")."""

    label: str  # "1", "26 letters", "20 consonants (not b)"
    tokens: tuple[str, ...]
    prob: float  # each token's probability

    def to_dict(self) -> dict:
        return {"tokens": self.label, "each": self.prob}

    def text(self) -> str:
        return (
            f"{self.label}: {prob_text(self.prob)}"
            if len(self.tokens) == 1
            else f"{self.label} × {prob_text(self.prob)}"
        )


def distributions(true: Sequence[Entry], model: Sequence[Entry], kl: float) -> dict:
    """The JSON of a position's true distribution, the model's top tokens and the KL between them."""
    return {"true": [e.to_dict() for e in true], "model_top": [e.to_dict() for e in model], "kl": kl}


def prob_text(p: float) -> str:
    """A probability in 3 significant digits; "≈1" for one that is not quite 1."""
    if p == 1:
        return "1"
    if p >= 0.9995:
        return "≈1"
    return f"{p:.3g}" if p >= 1e-3 else f"{p:.1e}"


def compact(probs: torch.Tensor | Sequence[float], top: int | None = None, mass: float = 1.0) -> tuple[Entry, ...]:
    """[V] probabilities → entries, most likely first, tokens of equal (3-digit) probability together.

    Zero probabilities are left out. `top` keeps at most that many entries and `mass` stops
    once the entries kept hold that much probability (for a model's top tokens).
    """
    values = [float(p) for p in probs]
    by_value: dict[str, list[int]] = {}
    for i, p in enumerate(values):
        if p > 0:
            by_value.setdefault(f"{p:.3g}", []).append(i)
    entries: list[Entry] = []
    for ids in sorted(by_value.values(), key=lambda ids: -values[ids[0]]):
        p = math.fsum(values[i] for i in ids) / len(ids)
        names = tuple(TOKENS[i] for i in ids)
        if len(names) <= 3:
            entries += [Entry(name, (name,), values[i]) for name, i in zip(names, ids, strict=True)]
        else:
            entries.append(Entry(group_label(names), names, p))
    kept: list[Entry] = []
    for entry in entries:
        if (top is not None and len(kept) >= top) or math.fsum(e.prob * len(e.tokens) for e in kept) >= mass:
            break
        kept.append(entry)
    return tuple(kept)


def group_label(names: Sequence[str]) -> str:
    """ "26 letters", "20 consonants (not b)", or "6 tokens" for a set of tokens."""
    chosen = set(names)
    for group, members in sorted(GROUPS.items(), key=lambda kv: len(kv[1])):  # the smallest group that fits
        if chosen <= set(members) and len(members) - len(chosen) <= 2:
            missing = [m for m in members if m not in chosen]
            name = "tokens" if group == "all" else group
            return f"{len(chosen)} {name}" + (f" (not {' '.join(missing)})" if missing else "")
    return f"{len(chosen)} tokens"


@dataclass(frozen=True)
class Position:
    pos: int  # 1-based; this position predicts token pos + 1
    token: str
    next: str | None  # the token that follows in the text (None after the last)
    true: tuple[Entry, ...]
    model: tuple[Entry, ...]
    kl: float  # KL(true ‖ model) in nats

    def to_dict(self) -> dict:
        return {
            "pos": self.pos,
            "token": self.token,
            "next": self.next,
            **distributions(self.true, self.model, self.kl),
        }


@dataclass(frozen=True)
class TextView:
    """One text through one layer: per-position distributions and KL, and every head's pattern."""

    problem: str
    file: str  # where the weights came from, "" for weights made in Python (untrusted: escape before showing)
    text: str
    why: str  # how the text was chosen, e.g. "the worst of 2,048 public texts (seed 0)"
    kl: float  # mean KL over the scored positions (1 … T−1), as check counts them
    positions: tuple[Position, ...]
    heads: tuple[str, ...]  # head names (untrusted)
    patterns: tuple[torch.Tensor, ...] = field(repr=False)  # [T, T] per head, [query_pos, key_pos]
    true_probs: torch.Tensor = field(repr=False)  # [T, V]
    model_probs: torch.Tensor = field(repr=False)  # [T, V]
    worst: tuple[int, ...] = ()  # 1-based positions that stand out (KL over the pass threshold), worst first
    params: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "problem": self.problem,
            "file": self.file,
            "text": self.text,
            "why": self.why,
            "kl": self.kl,
            "params": self.params,
            "worst_positions": list(self.worst),
            "positions": [p.to_dict() for p in self.positions],
            "heads": [{"name": h, "pattern": p.tolist()} for h, p in zip(self.heads, self.patterns, strict=True)],
        }

    def _repr_html_(self) -> str:
        from handattn.views.html import text_view_html

        return text_view_html(self)

    def __str__(self) -> str:
        from handattn.views.terminal import text_view_text

        return text_view_text(self, colour=False)


def as_weights(weights: Weights | str | Path, params: dict[str, float] | None = None) -> tuple[Weights, str]:
    """Weights and a name for them: loaded from a path (with `params` overrides), or as given."""
    if isinstance(weights, Weights):
        if params:
            raise TypeError("params= needs a weight file to re-evaluate; pass its path instead of Weights")
        return weights, ""
    return load(weights, params=params), str(weights)


def check_text(problem: Problem, text: str) -> torch.Tensor:
    """[T] token ids of a text the problem can produce; otherwise a TextError naming the first bad token."""

    def refuse(where: str, message: str, fix: str) -> TextError:
        return TextError("text", [Issue(where, message, fix)])

    if not text:
        raise refuse("", "is empty", f"give a text of 1 to {MAX_POSITIONS} tokens, e.g. ba1ke1")
    if len(text) > MAX_POSITIONS:
        raise refuse(
            "", f"has {len(text):,} tokens, over the model's context of {MAX_POSITIONS}", "show a shorter text"
        )
    for pos, ch in enumerate(text, start=1):
        if ch not in INDEX:
            raise refuse(f"position {pos}", f"{shown(ch)} is not a token", "texts use only a-z, 0 and 1")
    tokens = torch.tensor([INDEX[ch] for ch in text])
    if not IS_LETTER[tokens[0]]:
        raise refuse(
            "position 1", f"{text[0]!r} cannot start a text", f"every {problem.name} text starts with a letter"
        )
    probs = problem.exact_probs(tokens[None])[0]  # [T, V]: the distribution after each prefix
    follows = probs[:-1].gather(-1, tokens[1:, None])[:, 0]  # [T-1] probability of each next token
    impossible = (follows == 0).nonzero()
    if len(impossible):
        t = int(impossible[0]) + 1  # index of the first impossible token
        prefix = escape(text[max(0, t - 30) : t])
        raise refuse(
            f"position {t + 1}",
            f"{text[t]!r} cannot follow {'…' if t > 30 else ''}{prefix!r} in {problem.name}",
            "show a text the problem can produce",
        )
    return tokens


def worst_text(scorer_or_set: Scorer | EvalSet, weights: Weights) -> tuple[int, float]:
    """(index, mean KL) of the text of an evaluation set on which the weights do worst."""
    scorer = scorer_or_set if isinstance(scorer_or_set, Scorer) else Scorer(scorer_or_set)
    result = scorer(weights)
    lengths = scorer.eval_set.lengths
    per_text = result.per_position.sum(-1) / (lengths - 1).clamp(min=1)  # [N]
    index = int(per_text.argmax())
    return index, float(per_text[index])


def inspect_text(
    weights: Weights | str | Path,
    text: str | None = None,
    *,
    eval_set: EvalSet | None = None,
    params: dict[str, float] | None = None,
    file: str | None = None,
) -> TextView:
    """One text through the layer (by default the public evaluation text it does worst on).

    `weights` is a `Weights` or a weight-file path (then `params` may override its [params]);
    `file` names the weights in headers and titles.
    """
    weights, name = as_weights(weights, params)
    file = file or name
    problem = get_problem(weights.problem)
    if text is None:
        eval_set = eval_set or sample_eval_set(problem)
        index, _ = worst_text(eval_set, weights)
        text = eval_set.texts()[index]
        why = f"the worst of {len(eval_set.tokens):,} texts from {eval_set.source} (text {index + 1})"
    else:
        why = "given"
    tokens = check_text(problem, text)  # [T]
    with torch.no_grad():
        trace = AttentionModel(weights)(tokens[None])
        true = problem.exact_probs(tokens[None])[0]  # [T, V]
        log_q = trace.log_probs[0]  # [T, V]
        kl = kl_divergence(true, log_q).clamp(min=0.0)  # [T]
        model = log_q.exp()
        patterns = tuple(p[0] for p in trace.pattern)
    positions = tuple(
        Position(
            pos=t + 1,
            token=text[t],
            next=text[t + 1] if t + 1 < len(text) else None,
            true=compact(true[t]),
            model=compact(model[t], top=3, mass=0.99),
            kl=float(kl[t]),
        )
        for t in range(len(text))
    )
    scored = kl[:-1].tolist()
    order = sorted(range(len(scored)), key=lambda t: -scored[t])
    worst = tuple(t + 1 for t in order[:N_WORST] if scored[t] > problem.threshold)
    return TextView(
        problem=problem.name,
        file=file,
        text=text,
        why=why,
        kl=math.fsum(scored) / len(scored) if scored else math.nan,
        positions=positions,
        heads=tuple(h.name for h in weights.heads),
        patterns=patterns,
        true_probs=true,
        model_probs=model,
        worst=worst,
        params=dict(weights.params),
    )
