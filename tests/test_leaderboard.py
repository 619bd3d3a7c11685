"""The leaderboard's library: a hostile class folder graded, ranked and written; history and re-runs."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import pytest
from class_folder import (
    BAD,
    CONTROL,
    FORMULA,
    INJECTED,
    RANKS_P2,
    SOLUTION2,
    SPECIAL_ERRORS,
    T0,
    UNIFORM,
    make_class,
    write,
)

from handattn import get_problem, load, sample_eval_set, score
from handattn.grading.board import grade_folder
from handattn.grading.board_files import CSV_COLUMNS, md_cell, render_markdown, write_atomic, write_board
from handattn.grading.history import History
from handattn.grading.options import GradingOptions, Limits
from handattn.grading.ranking import BASELINE, REFERENCE, STUDENT

ROOT = Path(__file__).resolve().parent.parent
SEED = 424242
SMALL = dict(public_texts=128, hidden_texts=64)  # small sets keep the tests quick; the rules are the same


def small(**kw) -> GradingOptions:
    return GradingOptions(**{"secret_seed": SEED, **SMALL, **kw})


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = make_class(tmp_path_factory.mktemp("class"))
    out = tmp_path_factory.mktemp("out")
    history = History(out / "history.sqlite")
    problems = ["problem1", "problem2"]  # the class below submits these two
    board = grade_folder(root, history, small(), references=ROOT / "solutions", workers=2, problems=problems)
    history.close()
    written = write_board(board, out)
    return board, root, out, written


def table(board, problem):
    return next(p for p in board.problems if p.problem == problem).entries


def students(entries):
    return {e.name: e for e in entries if e.kind == STUDENT}


def test_ranks_follow_the_rules_with_competition_ranking(graded):
    board = graded[0]
    p2 = students(table(board, "problem2"))
    assert {name: p2[name].rank for name in RANKS_P2} == RANKS_P2
    assert p2["dan"].max_abs_weight == 120 and p2["ann"].max_abs_weight == 90
    assert not p2[FORMULA].passed and p2[FORMULA].kl_hidden > 0.5
    assert students(table(board, "problem1"))["ann"].rank == 1


def test_scores_are_the_library_scores_on_both_sets(graded):
    p2 = students(table(graded[0], "problem2"))
    problem = get_problem("problem2")
    weights = load(ROOT / "solutions" / "problem2.toml")
    public = score(weights, sample_eval_set(problem, SMALL["public_texts"]))
    hidden = score(weights, sample_eval_set(problem, SMALL["hidden_texts"], 2 * problem.length, SEED))
    assert p2["ann"].kl_public == public.kl and p2["ann"].kl_hidden == hidden.kl


def test_every_broken_or_hostile_file_is_an_unranked_error_row(graded):
    board = graded[0]
    p2 = students(table(board, "problem2"))
    for fixture in BAD.glob("*.toml"):
        entry = p2[f"bad-{fixture.stem}"]
        assert entry.rank is None and entry.error and entry.error.startswith("problem2.toml: "), fixture.name
    for student, fragment in SPECIAL_ERRORS.items():
        assert p2[student].rank is None and fragment in p2[student].error, student
    assert "\x1b" not in p2[CONTROL].error  # messages are terminal-safe text
    ranked = [e for e in table(board, "problem2") if e.rank is not None]
    assert [e.rank for e in ranked] == sorted(e.rank for e in ranked)  # errors come after the ranked rows


def test_reference_rows_are_marked_and_take_no_rank(graded):
    entries = table(graded[0], "problem2")
    refs = [e for e in entries if e.kind != STUDENT]
    assert {e.kind for e in refs} == {REFERENCE, BASELINE}
    assert all(e.rank is None for e in refs)
    solution = next(e for e in refs if e.kind == REFERENCE)
    assert solution.name == "solutions/problem2.toml" and solution.passed and solution.kl_hidden < 1e-12
    uniform = next(e for e in refs if e.name.startswith("uniform"))
    assert uniform.kl_hidden > 0.5 and not uniform.passed


def test_overall_ranks_by_problems_passed_then_rank_sum(graded):
    overall = {row.student: row for row in graded[0].overall}
    assert overall["ann"].rank == 1 and overall["ann"].passed == 2 and overall["ann"].rank_sum == 2
    # ben and cat tie on problem2 and have no problem1 entry: one below problem1's last ranked (1) = 2
    assert overall["ben"].rank == overall["cat"].rank == 2 and overall["ben"].rank_sum == 2 + 2
    assert overall[INJECTED].rank == 4
    assert overall[FORMULA].passed == 0 and overall[FORMULA].rank > overall["dan"].rank


def test_csv_has_exactly_the_columns_and_the_names_as_data(graded):
    _, _, out, _ = graded
    text = (out / "leaderboard.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert text.splitlines()[0] == ",".join(CSV_COLUMNS)
    by_name = {(r["student"], r["problem"]): r for r in rows}
    assert by_name[("ann", "problem2")]["rank"] == "1" and by_name[("ann", "problem2")]["passed"] == "true"
    assert by_name[(INJECTED, "problem2")]["rank"] == "4"
    assert ("'" + FORMULA, "problem2") in by_name  # a spreadsheet shows it as text, never runs it
    assert (CONTROL, "problem2") in by_name  # newline and all, quoted as CSV data
    assert float(by_name[("ann", "problem2")]["kl_hidden"]) == students(table(graded[0], "problem2"))["ann"].kl_hidden
    assert (
        by_name[("fifo", "problem2")]["rank"] == "" and "not a regular file" in by_name[("fifo", "problem2")]["error"]
    )
    assert by_name[("ann", "problem2")]["submitted_at"] == "2023-11-14T22:15:00Z"  # T0 + 100
    assert not any(r["student"].endswith(".toml") for r in rows)  # reference rows stay out of the gradebook


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.rows = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append(dict(attrs).get("class"))


def test_html_is_self_contained_and_shows_injected_names_as_text(graded):
    _, _, out, _ = graded
    page = (out / "leaderboard.html").read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(page)
    assert "img" not in parser.tags and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert not any(word in page for word in ("http://", "https://", 'src="', "href=")), "no network, no links"
    assert "Content-Security-Policy" in page and "unsafe-inline" not in page
    assert {"passed", "failed", "error", "reference", "baseline"} <= set(parser.rows)
    assert "\\x1b[31m" in page and "\x1b" not in page and "\\u202e" in page  # control and bidi shown as escapes


def test_markdown_cells_cannot_break_the_table(graded):
    board = graded[0]
    text = render_markdown(board, "now")
    assert md_cell("a|b\nc<img>") == "a\\|b\\\\nc\\<img\\>"
    section = text.split("## problem2")[1].split("\n## ")[0]
    p2_lines = [line for line in section.splitlines() if line.startswith("| ")]
    assert len(p2_lines) == 2 + len(table(board, "problem2"))  # header, rule, one line per entry
    assert all(line.count("|") - line.count("\\|") == 9 for line in p2_lines)


def test_outputs_are_written_atomically(graded, tmp_path, monkeypatch):
    _, _, out, written = graded
    assert sorted(p.name for p in out.iterdir()) == ["history.sqlite", *sorted(p.name for p in written)]
    target = write_atomic(tmp_path / "board.csv", "old\n")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["board.csv"]


def test_history_keeps_every_grade_with_its_options(graded):
    _, _, out, _ = graded
    db = sqlite3.connect(out / "history.sqlite")
    columns = [row[1] for row in db.execute("PRAGMA table_info(results)")]
    for column in (
        "student",
        "problem",
        "file_hash",
        "submitted_at",
        "kl_public",
        "kl_hidden",
        "error",
        "options",
        "sets",
    ):
        assert column in columns
    options, sets = db.execute(
        "SELECT options, sets FROM results WHERE student = 'ann' AND problem = 'problem2'"
    ).fetchone()
    assert str(SEED) not in options  # the secret seed is stored hashed
    assert '"fingerprint"' in sets and '"hidden"' in sets


def test_rerun_grades_only_new_or_changed_files_and_policy_chooses(tmp_path):
    root = tmp_path / "class"
    write(root / "ann" / "problem2.toml", SOLUTION2, T0)
    write(root / "bob" / "problem2.toml", UNIFORM, T0)
    history = History(tmp_path / "history.sqlite")
    first = grade_folder(root, history, small(), problems=["problem2"])
    assert first.stats.graded == 2 and first.stats.reused == 0
    again = grade_folder(root, history, small(), problems=["problem2"])
    assert again.stats.graded == 0 and again.stats.reused == 2

    write(root / "ann" / "problem2.toml", UNIFORM, T0 + 60)  # ann replaces her solution with a worse file
    changed = grade_folder(root, history, small(), problems=["problem2"])
    assert changed.stats.graded == 0  # the same bytes as bob's: already graded, by content
    best = students(table(changed, "problem2"))["ann"]
    assert best.passed and best.submissions == 2 and best.submitted_at == T0
    latest = students(table(grade_folder(root, history, small(), problems=["problem2"], policy="latest"), "problem2"))
    assert not latest["ann"].passed and latest["ann"].submitted_at == T0 + 60

    regraded = grade_folder(root, history, small(hidden_length=40), problems=["problem2"])
    assert regraded.stats.graded == 2  # new options: both contents again, the old one from the history
    assert students(table(regraded, "problem2"))["ann"].passed
    n_scores = history.db.execute("SELECT count(*) FROM scores").fetchone()[0]
    assert n_scores == 4  # every earlier grade kept
    history.close()


def test_without_a_secret_seed_the_public_set_ranks(tmp_path):
    root = tmp_path / "class"
    write(root / "ann" / "problem2.toml", SOLUTION2, T0 + 5)
    write(root / "bob" / "problem2.toml", SOLUTION2, T0)
    board = grade_folder(root, History(tmp_path / "h.sqlite"), small(secret_seed=None), problems=["problem2"])
    p2 = students(table(board, "problem2"))
    assert not board.hidden and p2["ann"].kl_hidden is None and p2["bob"].rank == 1 and p2["ann"].rank == 2
    assert 'id="public-only"' in (write_board(board, tmp_path / "out")[0]).read_text()


def test_manifest_lists_submissions_with_times(tmp_path):
    root = tmp_path / "export"
    write(root / "files" / "a1.toml", UNIFORM)
    write(root / "files" / "a2.toml", SOLUTION2)
    write(root / "files" / "b.toml", SOLUTION2)
    (root / "manifest.csv").write_text(
        "student,problem,path,submitted_at\n"
        "Zoë Ångström,problem2,files/a1.toml,2025-03-01T10:00:00Z\n"
        "Zoë Ångström,problem2,files/a2.toml,2025-03-02T10:00:00+01:00\n"
        "bob,problem2,files/b.toml,2025-03-01T12:00:00\n",
        encoding="utf-8",
    )
    board = grade_folder(root, History(tmp_path / "h.sqlite"), small(), problems=["problem2"], policy="latest")
    p2 = students(table(board, "problem2"))
    assert p2["Zoë Ångström"].submissions == 2 and p2["Zoë Ångström"].passed
    assert p2["bob"].rank == 1 and p2["Zoë Ångström"].rank == 2  # bob handed in first (12:00Z < 09:00Z next day)


def test_a_bad_manifest_is_refused_with_every_issue(tmp_path):
    from handattn.grading.submissions import ManifestError

    root = tmp_path / "export"
    write(root / "manifest.csv", "student,problem,path,submitted_at\nann,problem9,../x.toml,yesterday\n")
    with pytest.raises(ManifestError) as e:
        grade_folder(root, History(tmp_path / "h.sqlite"), small())
    text = str(e.value)
    assert "line 2" in text and "problem9" in text and "not inside" in text and "ISO 8601" in text


def test_registered_problems_are_graded_and_workers_see_them(tmp_path, monkeypatch):
    import handattn.problems as problems
    from handattn.problems.problem2 import Problem2

    class Twin(Problem2):
        name = "twin"

    monkeypatch.setitem(problems._REGISTRY, "twin", Twin())
    root = tmp_path / "class"
    write(root / "ann" / "twin.toml", SOLUTION2.replace('problem = "problem2"', 'problem = "twin"'))
    board = grade_folder(root, History(tmp_path / "h.sqlite"), small())
    assert [p.problem for p in board.problems] == sorted(problems.problem_names())
    assert students(table(board, "twin"))["ann"].rank == 1


def _patched(monkeypatch, tmp_path, behaviour):
    """Make grade_bytes misbehave for files holding a marker; the forked workers inherit the patch."""
    import handattn.grading.board as board_module

    real = board_module.grade_bytes
    pids = tmp_path / "pids"

    def grade_bytes(data, problem, sets):
        with open(pids, "a") as f:
            f.write(f"{os.getpid()}\n")
        if b"# misbehave" in data:
            behaviour()
        return real(data, problem, sets)

    monkeypatch.setattr(board_module, "grade_bytes", grade_bytes)
    root = tmp_path / "class"
    for name in ("a", "b", "c", "d", "e"):
        write(root / name / "problem2.toml", SOLUTION2 + f"# {name}\n")
    write(root / "bad" / "problem2.toml", SOLUTION2 + "# misbehave\n")
    return root, pids


@pytest.mark.parametrize(
    "behaviour, message",
    [
        (lambda: __import__("time").sleep(60), "stopped after the 1 s time limit"),
        (lambda: __import__("torch").empty(1 << 30, dtype=__import__("torch").float64), "256 MiB memory limit"),
        (lambda: os.kill(os.getpid(), 9), "stopped by SIGKILL"),
        (lambda: 1 / 0, "internal error while grading (ZeroDivisionError)"),
    ],
    ids=["slow", "memory", "killed", "bug"],
)
def test_a_pathological_file_costs_its_limit_and_the_rest_are_graded(tmp_path, monkeypatch, behaviour, message):
    root, pids = _patched(monkeypatch, tmp_path, behaviour)
    limits = Limits(seconds=1.0 if "time" in message else 30.0, memory_mib=256)
    board = grade_folder(root, History(tmp_path / "h.sqlite"), small(limits=limits), problems=["problem2"], workers=2)
    p2 = students(table(board, "problem2"))
    assert message in p2["bad"].error and p2["bad"].rank is None
    assert all(p2[name].passed for name in "abcde")
    assert len(set(pids.read_text().split())) <= 3  # two long-lived workers, and one fork to replace a dead one


def test_editing_an_instructors_problem_file_changes_the_grading_key(tmp_path):
    from class_folder import TWIN_PY

    from handattn.problems import load_problem_file

    path = write(tmp_path / "twin.py", TWIN_PY)
    before = small().key(load_problem_file(path))
    write(path, TWIN_PY + "# the rule is the same, but the file changed: grades are made again\n")
    assert small().key(load_problem_file(path)) != before
