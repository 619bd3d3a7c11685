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
        code = code.replace('"mine.toml"', repr(str(tmp_path / "mine.toml")))
        exec(compile(code, "README.md", "exec"), {})
