"""`explore(file)`: a slider per [params] entry; moving one re-scores the file and redraws the pattern.

The work is done by `Explorer.update`, which needs no browser and no ipywidgets, so it is
tested directly; `explore` only wraps it in sliders (ipywidgets, the optional extra
`handattn[notebook]`). A slider that is moved overrides its parameter, exactly as
`--param` does; parameters declared from it (L = "3*M") follow until moved themselves.
A dict (the structure a file parses to, as the notebook builds) works like a file.
In-memory `Weights` carry no formulas to re-evaluate, so for them the one slider is `scale`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from html import escape
from pathlib import Path

from handattn.diagnose import TextView, inspect_text
from handattn.errors import MissingExtraError
from handattn.evalset import EvalSet, sample_eval_set
from handattn.problems import get_problem
from handattn.score import Score, Scorer
from handattn.views.html import score_html, text_view_html
from handattn.weights import Weights, from_dict, load

SCALE = "scale"  # the slider of in-memory weights


@dataclass(frozen=True)
class ExploreState:
    """What the sliders show: the values in force, the score on the evaluation set, the text view."""

    values: dict[str, float]
    score: Score
    view: TextView

    def _repr_html_(self) -> str:
        return score_html(self.score) + text_view_html(self.view)


class Explorer:
    """Re-score a weight file (or weights) as its parameters change; one `update` per slider move."""

    def __init__(self, source: Weights | dict | str | Path, text: str | None = None, eval_set: EvalSet | None = None):
        self.source = source
        self.overrides: dict[str, float] = {}
        base = self._weights()
        self.scorer = Scorer(eval_set or sample_eval_set(get_problem(base.problem)))
        self.text = text if text is not None else inspect_text(base, eval_set=self.scorer.eval_set).text
        self.initial = self._values(base)

    def _weights(self) -> Weights:
        if isinstance(self.source, Weights):
            scale = self.overrides.get(SCALE)
            return self.source if scale is None else dataclasses.replace(self.source, scale=scale)
        if isinstance(self.source, dict):
            return from_dict(self.source, params=self.overrides or None)
        return load(self.source, params=self.overrides or None)

    def _values(self, weights: Weights) -> dict[str, float]:
        return {SCALE: weights.scale} if isinstance(self.source, Weights) else dict(weights.params)

    def update(self, **values: float) -> ExploreState:
        """Set some parameters (the rest keep their values, or follow the ones they are declared from),
        then re-score and redraw. A bad value raises WeightFileError and changes nothing."""
        unknown = set(values) - set(self.initial)
        if unknown:
            raise KeyError(f"no parameter {sorted(unknown)[0]!r}; the parameters are: {', '.join(self.initial)}")
        before = dict(self.overrides)
        self.overrides.update({k: float(v) for k, v in values.items()})
        try:
            weights = self._weights()
        except Exception:
            self.overrides = before
            raise
        view = inspect_text(weights, self.text)
        return ExploreState(self._values(weights), self.scorer(weights), view)


def slider_range(value: float) -> tuple[float, float, float]:
    """(min, max, step) of a slider around a declared value: 0 to twice it (or ±1 around 0)."""
    low, high = (min(0.0, 2 * value), max(0.0, 2 * value)) if value else (-1.0, 1.0)
    return low, high, (high - low) / 200


def explore(source: Weights | dict | str | Path, text: str | None = None, eval_set: EvalSet | None = None):
    """Sliders for the parameters of a weight file (a path, or the dict a file parses to), ipywidgets;
    returns the widget to display. `text` is the text whose pattern is drawn (default: the worst)."""
    try:
        import ipywidgets as widgets
    except ImportError:
        raise MissingExtraError("explore()", "notebook") from None
    explorer = Explorer(source, text, eval_set)
    output = widgets.HTML()
    sliders = {}
    for name, value in explorer.initial.items():
        low, high, step = slider_range(value)
        sliders[name] = widgets.FloatSlider(
            value=value, min=low, max=high, step=step, description=name, continuous_update=False
        )
    syncing = False

    def redraw(change=None) -> None:
        nonlocal syncing
        if syncing:
            return
        moved = {change["owner"].description: change["new"]} if change else {}
        try:
            state = explorer.update(**moved)
        except Exception as e:  # a value the file cannot take: say so, keep the last picture
            output.value = f"<b>cannot use that value</b>: {escape(str(e))}"
            return
        syncing = True  # parameters that follow the moved one move their sliders too
        for name, slider in sliders.items():
            slider.value = state.values[name]
        syncing = False
        output.value = state._repr_html_()

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([*sliders.values(), output])
    box.explorer = explorer  # for tests and for the curious: the object doing the work
    return box
