"""`python -m handattn.show`: through main(argv), and once as a real process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from handattn import get_problem, inspect_text, load
from handattn.show import main

ROOT = Path(__file__).resolve().parent.parent
P2 = ROOT / "solutions" / "problem2.toml"
P1 = ROOT / "solutions" / "problem1.toml"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_default_is_the_worst_public_text_and_the_header_says_so(capsys):
    code, out, err = run(capsys, "problem1", P1)
    expected = inspect_text(load(P1))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "problem1 · " + str(P1) + " · params: B = 5, L = 30"
    assert lines[1] == f"text: {expected.text}"
    assert "the worst of 2,048 texts from seed 0" in lines[2]
    assert "pos  token  true next token" in out and "head share · attention pattern" in out


def test_given_text_per_position_rows_and_marks(capsys):
    text = "ba1e1i1o1u1a1e1i1a1e1i1o1u1a1e1"
    code, out, _ = run(capsys, "problem2", P2, "--text", text, "--param", "S=3")
    assert code == 0
    rows = [line for line in out.splitlines() if line[:3].strip().isdigit() and "letters" in line or "1: 1" in line]
    assert len(rows) == len(text)
    marked = [line for line in out.splitlines() if line.endswith("◀")]
    assert [int(line.split()[0]) for line in marked] == [26, 28, 30]
    assert "  2  a      1: 1                  1: 1" in out


@pytest.mark.parametrize(
    "text, message",
    [
        ("ba0", "text: position 3: '0' cannot follow 'ba' in problem2"),
        ("", "text: is empty"),
        ("bA", "text: position 2: 'A' is not a token"),
        ("b" * 600, "text: has 600 tokens, over the model's context of 512"),
    ],
)
def test_an_impossible_text_is_one_line_and_exit_2(capsys, text, message):
    code, out, err = run(capsys, "problem2", P2, "--text", text)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(message)


def test_json_for_tools(capsys):
    code, out, _ = run(capsys, "problem2", P2, "--text", "ba1ke1", "--json", "--circuits")
    data = json.loads(out)
    assert code == 0 and data["problem"] == "problem2" and data["text"] == "ba1ke1"
    assert data["file"] == str(P2) and data["why"] == "given"
    assert [p["token"] for p in data["positions"]] == list("ba1ke1")
    assert len(data["heads"][0]["pattern"]) == 6 and data["heads"][0]["pattern"][0][1] == 0.0
    assert data["circuits"][0]["qk"]["values"][0] == [0.0, 20.0, 0.0]
    code, out, _ = run(capsys, "problem2", P2, "--text", "ba0", "--json")
    assert code == 2 and json.loads(out)["error"][0].startswith("text: position 3")


def test_circuits_print_qk_and_ov_tables(capsys):
    code, out, _ = run(capsys, "problem2", P2, "--text", "ba1", "--circuits")
    assert code == 0
    assert "QK circuit of head seen_consonant: scale · x W_Q W_Kᵀ yᵀ (scale 1)" in out
    assert "  digit                                0         20      0" in out
    assert "OV circuit → logits of head seen_consonant" in out
    assert "  consonant                                  0  -60  60" in out


def test_no_colour_off_a_terminal_and_lines_fit_80_columns(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    code, out, _ = run(capsys, "problem1", P1, "--circuits")
    assert code == 0 and "\x1b" not in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_png_without_matplotlib_is_one_line_and_exit_2(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails as if not installed
    code, out, err = run(capsys, "problem2", P2, "--png", tmp_path / "x.png")
    assert code == 2 and out == "" and not (tmp_path / "x.png").exists()
    assert (
        err
        == 'python -m handattn.show: drawing a figure (--png) needs the optional extra "plot": pip install "handattn[plot]"\n'
    )


def test_png_is_written(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    path = tmp_path / "show.png"
    code, out, _ = run(capsys, "problem2", P2, "--text", "ba1e1", "--png", path)
    assert code == 0 and out.rstrip().endswith(f"wrote {path}")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 600 and image.height > 600


def test_unknown_problem_and_missing_file(capsys, tmp_path):
    assert run(capsys, "problem9", P2)[0] == 2
    code, _, err = run(capsys, "problem2", tmp_path / "nope.toml")
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys)
    assert code == 2 and "name a problem" in err


def test_untrusted_names_are_escaped(capsys, tmp_path):
    path = tmp_path / "odd\x1b[31m.toml"
    path.write_text(P2.read_text())
    code, out, _ = run(capsys, "problem2", path, "--text", "ba1")
    assert code == 0 and "\x1b" not in out and "odd\\x1b[31m.toml" in out


def test_real_process():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "handattn.show", "problem2", "solutions/problem2.toml", "--text", "ba1ke1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("problem2 · solutions/problem2.toml") and "attention pattern" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "handattn", "show", "problem2", "solutions/problem2.toml", "--text", "b0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert (
        bad.stderr.strip() == "text: position 2: '0' cannot follow 'b' in problem2; show a text the problem can produce"
    )
    assert get_problem("problem2")  # the problem the process used is the registered one


def test_the_readme_example_is_what_show_prints(capsys):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ python -m handattn.show ", 1)[1].split("```", 1)[0]
    command, *shown = block.splitlines()
    argv = command.split()
    assert argv[:2] == ["problem2", "solutions/problem2.toml"]
    code, out, _ = run(capsys, *argv[:1], ROOT / argv[1], *argv[2:])
    out = out.replace(str(ROOT / argv[1]), argv[1])
    assert code == 0
    for line in shown:
        if line.strip() != "…":
            assert line in out.splitlines(), line


def test_an_instructors_problem_is_shown_and_hinted(capsys, monkeypatch, tmp_path):
    from handattn import check, new, problems

    monkeypatch.setattr(problems, "_REGISTRY", dict(problems._REGISTRY))  # registering is global: undo it after
    echo = ROOT / "tests" / "fixtures" / "problems" / "echo.py"
    starter = tmp_path / "echo.toml"
    assert new.main(["echo", "--problem-file", str(echo), "-o", str(starter)]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "echo", starter, "--problem-file", echo, "--text", "bacaeb", "--circuits")
    assert code == 0 and err == "" and out.startswith(f"echo · {starter}") and "attention pattern" in out
    assert check.main(["echo", str(starter), "--problem-file", str(echo), "--texts", "64", "--length", "8"]) == 1
    out = capsys.readouterr().out
    assert "  hint: " in out and "where to look, the 5 worst contexts:" in out
    assert out.splitlines()[-1] == f"  see one text: python -m handattn.show echo {starter} --problem-file {echo}"
