"""notebooks/attention_by_hand.ipynb: committed without outputs, calls only the package, runs top to bottom."""

import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

from handattn import get_problem, load, sample_eval_set, score

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "attention_by_hand.ipynb"


def code_cells():
    return [c for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


def test_committed_without_outputs():
    for cell in code_cells():
        assert cell["outputs"] == [] and cell["execution_count"] is None


def test_first_cell_installs_handattn_only_when_it_is_missing():
    source = "".join(code_cells()[0]["source"])
    assert 'if importlib.util.find_spec("handattn") is None:' in source
    assert '%pip install --quiet "handattn[plot,notebook]"' in source


def test_it_imports_nothing_but_the_package_and_torch():
    for cell in code_cells()[1:]:
        for line in "".join(cell["source"]).splitlines():
            if line.startswith(("import ", "from ")):
                assert line.split()[1].split(".")[0] in ("handattn", "torch"), line


def test_it_runs_top_to_bottom(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first cell that fails
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o.text for o in outputs if o.get("name") == "stderr"]  # no warnings for a student to puzzle over
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the figure of the weak key
    assert any("handattn-pattern" in o.get("data", {}).get("text/html", "") for o in outputs)
    text = "".join(o.get("text", "") for o in outputs)
    assert "S = 5 gives" in text and "PASSED" in text
    if importlib.util.find_spec("transformer_lens"):  # the optional cell: the same layer in TransformerLens
        difference = re.search(r"logits differ by at most (\S+)\n", text)
        assert difference and float(difference.group(1)) <= 1e-9 and "the pattern of head 0" in text
    else:
        assert 'the TransformerLens export needs the optional extra "lens"' in text
    saved = load(tmp_path / "problem2.toml")  # step 4 wrote the file to hand in, and it passes
    assert score(saved, sample_eval_set(get_problem("problem2"))).passed
