"""The leaderboard page in a real browser (headless Chromium): rows, injected names as text, sorting, no errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from chromium import Page, find_chromium
from class_folder import CONTROL, FORMULA, INJECTED, RANKS_P2, make_class

from handattn.grading.board import grade_folder
from handattn.grading.board_files import write_board
from handattn.grading.history import History
from handattn.grading.options import GradingOptions

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install chromium)"
)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    browser = Page(CHROMIUM, tmp_path_factory.mktemp("profile"))
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def board_page(tmp_path_factory):
    root = make_class(tmp_path_factory.mktemp("class"), bad_fixtures=False)
    out = tmp_path_factory.mktemp("out")
    options = GradingOptions(secret_seed=31337, public_texts=128, hidden_texts=64)
    board = grade_folder(root, History(out / "history.sqlite"), options, references=ROOT / "solutions")
    write_board(board, out)
    return board, out / "leaderboard.html"


def column(page, table, n):
    return page.evaluate(
        f"[...document.querySelectorAll('#table-{table} tbody tr')].map(r => r.cells[{n}].textContent)"
    )


def test_the_page_shows_every_row_with_names_as_text_and_no_errors(page, board_page):
    board, html = board_page
    page.errors.clear()
    page.open(html.as_uri())
    assert page.errors == []
    for p in board.problems:
        assert page.evaluate(f"document.querySelectorAll('#table-{p.problem} tbody tr').length") == len(p.entries)
    assert page.evaluate("document.querySelectorAll('#table-overall tbody tr').length") == len(board.overall)
    assert page.evaluate("document.querySelectorAll('img, script[src], link, iframe').length") == 0
    names = column(page, "problem2", 1)
    assert INJECTED in names and FORMULA in names  # shown as text, exactly as the folder is named
    assert CONTROL.replace("\n", "\\n").replace("\x1b", "\\x1b").replace("\u202e", "\\u202e") in names
    ranks = dict(zip(names, column(page, "problem2", 0), strict=True))
    assert {name: ranks[name] for name in RANKS_P2 if name in ranks} == {n: str(r) for n, r in RANKS_P2.items()}
    statuses = page.evaluate("[...document.querySelectorAll('#table-problem2 tbody tr')].map(r => r.className)")
    assert {"passed", "failed", "error", "reference", "baseline"} <= set(statuses)


def test_clicking_a_header_sorts_its_column(page, board_page):
    _, html = board_page
    page.open(html.as_uri())
    page.evaluate("document.querySelectorAll('#table-problem2 th')[5].click()")  # max |weight|, ascending
    weights = [w for w in column(page, "problem2", 5) if w]
    assert [float(w) for w in weights] == sorted(float(w) for w in weights)
    assert column(page, "problem2", 5)[-1] == ""  # rows without a value go last
    page.evaluate("document.querySelectorAll('#table-problem2 th')[5].click()")  # again: descending
    assert [float(w) for w in column(page, "problem2", 5) if w] == sorted((float(w) for w in weights), reverse=True)
    page.evaluate("document.querySelectorAll('#table-problem2 th')[1].click()")  # names, as text
    names = column(page, "problem2", 1)
    assert names == sorted(names, key=str.lower)
    assert page.errors == []


def test_the_browser_check_does_see_errors(page, tmp_path):
    """The collector is not blind: a page with a failing script reports it."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>console.error('seen'); missing();</script>")
    page.errors.clear()
    page.open(bad.as_uri())
    assert any("seen" in e for e in page.errors) and any("missing" in e for e in page.errors)
    page.errors.clear()
    blocked = tmp_path / "blocked.html"  # a script the page's own Content-Security-Policy refuses
    blocked.write_text(
        "<!DOCTYPE html><meta http-equiv='Content-Security-Policy' content=\"script-src 'none'\"><script>1</script>"
    )
    page.open(blocked.as_uri())
    assert any("Content Security Policy" in e for e in page.errors)
    page.errors.clear()
