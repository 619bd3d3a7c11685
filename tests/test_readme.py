"""The README's examples are true: its weight file passes and its Python runs."""

import re
from pathlib import Path

from handattn import get_problem, load, loads, sample_eval_set, score

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_labelled_example_is_the_reference_solution():
    (example,) = [b for b in blocks("toml") if "…" not in b]
    weights = loads(example)
    reference = load(ROOT / "solutions" / "problem2.toml")
    for name, matrix in reference.matrices().items():
        assert weights.matrices()[name].equal(matrix), name
    assert score(weights, sample_eval_set(get_problem("problem2"))).kl < 1e-6


def test_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    for code in blocks("python"):
        if "PROBLEM = " in code:
            continue  # a problem file, not a snippet: tests/test_problem_file.py runs it
        code = code.replace('"mine.toml"', repr(str(tmp_path / "mine.toml")))
        exec(compile(code, "README.md", "exec"), {})


def test_layout_table_names_every_module_and_only_modules_that_exist():
    layout = README.split("## Layout", 1)[1]
    named = set(re.findall(r"`(?:[\w/]+/)?(\w+\.py)`", layout)) | set(re.findall(r"\b(\w+\.py)\b", layout))
    every = {p.name for p in (ROOT / "handattn").rglob("*.py")}
    modules = every - {"__init__.py", "__main__.py"}
    existing = (
        every | {p.name for p in (ROOT / "tests").glob("*.py")} | {p.name for p in (ROOT / "benchmarks").glob("*.py")}
    )
    assert modules <= named, f"modules the Layout table does not name: {sorted(modules - named)}"
    assert named <= existing, f"the Layout table names files that do not exist: {sorted(named - existing)}"


def test_the_problem_file_example_is_the_tested_fixture():
    (example,) = [b for b in blocks("python") if "PROBLEM = " in b]
    assert example == (ROOT / "tests" / "fixtures" / "problems" / "echo.py").read_text(encoding="utf-8")
