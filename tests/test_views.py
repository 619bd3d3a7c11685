"""Views of a layer: the terminal heat map, HTML in a real browser, the figure, the sliders."""

import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch

from handattn import AttentionModel, get_problem, inspect_text, load, sample_eval_set, score
from handattn.errors import MissingExtraError, WeightFileError
from handattn.views.explore import Explorer, slider_range
from handattn.views.html import pattern_html
from handattn.views.terminal import heat_map, wants_colour
from handattn.vocab import INDEX

ROOT = Path(__file__).resolve().parent.parent
P2 = ROOT / "solutions" / "problem2.toml"
DERIVED = ROOT / "tests" / "fixtures" / "p2_exact.toml"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Tty:
    def isatty(self):
        return True


def test_colour_only_on_a_terminal_without_no_color():
    assert wants_colour(Tty(), {}) is True
    assert wants_colour(Tty(), {"NO_COLOR": "1"}) is False
    assert wants_colour(Tty(), {"TERM": "dumb"}) is False
    assert wants_colour(open(__file__), {}) is False


def test_heat_map_rows_columns_masked_cells_and_numbers():
    view = inspect_text(load(P2, params={"S": 3}), "ba1e1")
    lines = heat_map(view.patterns[0], view.text, "title", colour=False, width=80)
    assert lines[1] == "         b   a   1   e   1"  # key columns labelled by token
    assert lines[2] == "  1 b █100"  # a query sees only itself: the rest of the row is masked, blank
    assert lines[3] == "  2 a █ 95░  5"  # e^3/(e^3 + 1) = 95%
    assert lines[6].startswith("  5 1 █ 83░  4")
    assert len(lines[6]) == 6 + 5 * 4


def test_a_long_text_gets_narrow_cells_and_each_rows_strongest_key():
    text = "ba1e1i1o1u1a1e1i1a1e1i1o1u1a1e1"
    view = inspect_text(load(P2, params={"S": 3}), text)
    lines = heat_map(view.patterns[0], text, "title", colour=False, width=80)
    assert max(len(line) for line in lines) <= 80
    assert lines[2] == "  1 b ██" + " " * 60 + "  b@1 100%"
    assert lines[-4].startswith(" 31 1 ▒▒░░") and lines[-4].endswith("b@1 40%")


def test_colour_heat_map_carries_the_same_cells():
    view = inspect_text(load(P2, params={"S": 3}), "ba1e1")
    plain = heat_map(view.patterns[0], view.text, "t", colour=False)
    coloured = heat_map(view.patterns[0], view.text, "t", colour=True)
    assert "\x1b[48;5;" in coloured[2]
    stripped = [ANSI.sub("", line).rstrip() for line in coloured]
    assert stripped[3] == "  2 a   95   5" and plain[3] == "  2 a █ 95░  5"  # shade as colour, same numbers


class Cells(HTMLParser):
    """The cells of every table in a page: (tag, text, style) in order."""

    def __init__(self):
        super().__init__()
        self.cells, self.current = [], None

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self.current = [tag, "", dict(attrs).get("style", "")]

    def handle_data(self, data):
        if self.current is not None:
            self.current[1] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.current is not None:
            self.cells.append(tuple(self.current))
            self.current = None


def test_pattern_html_has_token_labels_shaded_cells_and_empty_masked_cells():
    view = inspect_text(load(P2, params={"S": 3}), "ba1e1")
    parser = Cells()
    parser.feed(pattern_html(view.patterns[0], view.text, "head <seen>"))
    tds = [c for c in parser.cells if c[0] == "td"]
    headers = [c[1] for c in parser.cells if c[0] == "th"]
    assert headers[:6] == ["query ↓ key →", "b", "a", "1", "e", "1"] and headers[6] == "1 b"
    assert len(tds) == 25 and sum(1 for c in tds if c[1] == "") == 10  # 5×5, the 10 later keys masked
    assert [c[1] for c in tds[5:7]] == ["0.95", "0.05"]  # row 2: e^3/(e^3+1) on b
    assert "background:rgb" in tds[5][2]


def test_score_trace_and_view_show_as_html():
    weights = load(P2)
    s = score(weights, sample_eval_set(get_problem("problem2"), 64))
    html = s._repr_html_()
    assert "PASSED" in html and "after a vowel, consonant earlier" in html
    trace = AttentionModel(weights)(torch.tensor([[INDEX[c] for c in "ba1"]]))
    assert "Trace(1 texts × 3 positions" in trace._repr_html_() and ">b</th>" in trace._repr_html_()
    assert repr(trace) == "Trace(1 texts × 3 positions, d_model 3, 1 heads)"
    view_html = inspect_text(weights, "ba1")._repr_html_()
    assert "26 letters × 0.0385" in view_html and "seen_consonant" in view_html


def test_untrusted_names_are_escaped_in_html(tmp_path):
    path = tmp_path / "<script>alert(1)<.toml"
    path.write_text(P2.read_text())
    html = inspect_text(path, "ba1")._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;.toml" in html


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs headless Chromium (.ci/run installs it)")
def test_html_renders_in_headless_chromium(tmp_path):
    view = inspect_text(load(P2, params={"S": 3}), "ba1e1")
    page = tmp_path / "view.html"
    page.write_text(f"<!doctype html><meta charset=utf-8><body>{view._repr_html_()}</body>", encoding="utf-8")
    done = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    parser = Cells()
    parser.feed(done.stdout)
    texts = [c[1] for c in parser.cells]
    assert "26 letters × 0.0385" in texts and "1: 1" in texts  # the per-position table, as the browser built it
    tds = [c for c in parser.cells if c[0] == "td" and "background:rgb" in c[2]]
    assert [c[1] for c in tds[:3]] == ["1.00", "0.95", "0.05"]


def test_the_figure_has_a_panel_per_head_and_the_distributions():
    pytest.importorskip("matplotlib")
    from handattn import figure
    from handattn.views.figure import series

    view = inspect_text(load(ROOT / "solutions" / "problem1.toml"), "bacadefgho")
    fig = figure(view)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == "head share: attention pattern"
    assert "true (rings) vs predicted (dots) probability of the next token" in titles
    assert any(t.startswith("KL(true ‖ model) per position") for t in titles)
    assert fig.get_suptitle().startswith("problem1 · mean KL")  # weights made in Python: no file to name
    assert [label for label, _ in series(view)] == ["vowels", "consonants"]  # digits never matter here
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"  # shows in Jupyter without pyplot


def test_the_figure_without_matplotlib(monkeypatch):
    import sys

    from handattn import figure

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingExtraError, match=r'pip install "handattn\[plot\]"'):
        figure(inspect_text(load(P2), "ba1"))


def test_explorer_update_rescores_and_dependent_params_follow():
    explorer = Explorer(DERIVED, text="ba1e1i1")
    assert explorer.initial == {"S": 20.0, "M": 30.0, "L": 90.0}
    state = explorer.update(M=10)
    assert state.values == {"S": 20.0, "M": 10.0, "L": 30.0}  # L = "3*M" follows
    public = sample_eval_set(get_problem("problem2"))
    assert state.score.kl == score(load(DERIVED, params={"M": 10}), public).kl
    state = explorer.update(S=3)  # M stays where it was moved
    assert state.values["M"] == 10.0 and state.view.text == "ba1e1i1"
    assert math.isclose(float(state.view.patterns[0][1, 0]), math.exp(3) / (math.exp(3) + 1))
    with pytest.raises(KeyError):
        explorer.update(Q=1)
    with pytest.raises(WeightFileError, match="not finite"):
        explorer.update(S=math.inf)
    assert explorer.overrides == {"M": 10.0, "S": 3.0}  # a refused value changes nothing


def test_explorer_on_weights_offers_scale():
    explorer = Explorer(load(P2), text="ba1")
    assert explorer.initial == {"scale": 1.0}
    assert explorer.update(scale=0.1).view.patterns[0][1, 0] < 0.9


def test_slider_ranges():
    assert slider_range(20.0) == (0.0, 40.0, 0.2)
    assert slider_range(-2.0) == (-4.0, 0.0, 0.02)
    assert slider_range(0.0) == (-1.0, 1.0, 0.01)


def test_explore_widget_moves_and_redraws():
    pytest.importorskip("ipywidgets")
    from handattn import explore

    box = explore(DERIVED, text="ba1e1")
    sliders = {w.description: w for w in box.children[:-1]}
    output = box.children[-1]
    assert set(sliders) == {"S", "M", "L"} and "PASSED" in output.value
    sliders["M"].value = 0.5
    assert sliders["L"].value == 1.5 and "NOT PASSED" in output.value  # L followed, and the score too


def test_explore_without_ipywidgets(monkeypatch):
    import sys

    from handattn import explore

    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(MissingExtraError, match=r'pip install "handattn\[notebook\]"'):
        explore(DERIVED)
