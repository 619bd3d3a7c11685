"""The Gradescope autograder: results.json for good, broken and hostile uploads, and the zip itself."""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from class_folder import BAD, SOLUTION1, SOLUTION2, TWIN_PY, TWIN_SOLUTION, UNIFORM, heads_300, write

from handattn import get_problem, gradescope, problems
from handattn.grading.autograder import CONFIG_NAME, AutograderConfig, grade_upload
from handattn.grading.options import build_sets

ROOT = Path(__file__).resolve().parent.parent
SEED = 8675309123  # long enough that finding its digits anywhere would mean a leak
CONFIG = AutograderConfig({"problem2": 2.0}, secret_seed=SEED)
# passes on the public texts (32 tokens) but not on longer hidden ones: a feature that only positions 1…32 have
SHORT_ONLY = (
    SOLUTION2.replace(
        'features = ["vowel", "consonant", "digit"]', 'features = ["vowel", "consonant", "digit", "early"]'
    ).replace("[[heads]]", "".join(f"W_P.{i}.early = 1\n" for i in range(1, 33)) + "[[heads]]", 1)
    + "b_U.a = 50\nW_U.early.a = -50\n"
)


def check_results(results: dict) -> dict:
    """Gradescope's format: the fields we write, with their types; strict JSON (no NaN)."""
    json.loads(json.dumps(results, allow_nan=False))
    assert set(results) <= {"score", "execution_time", "output", "stdout_visibility", "tests", "leaderboard"}
    assert isinstance(results["score"], float) and isinstance(results["execution_time"], float)
    for test in results["tests"]:
        assert set(test) <= {"name", "score", "max_score", "status", "output", "visibility"}
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert test["status"] in ("passed", "failed") and 0 <= test["score"] <= test["max_score"]
    for entry in results["leaderboard"]:
        assert set(entry) == {"name", "value", "order"} and entry["order"] == "asc"
        assert isinstance(entry["value"], float) and math.isfinite(entry["value"])
    assert str(SEED) not in json.dumps(results)
    return results


@pytest.fixture(scope="module")
def sets():
    """Built once: every upload below is graded on the same sets, as a server would."""
    return {"problem2": build_sets(get_problem("problem2"), CONFIG.options())}


def grade(tmp_path, files: dict[str, str | bytes], sets, config=CONFIG) -> dict:
    root = tmp_path / "submission"
    root.mkdir(exist_ok=True)
    for name, text in files.items():
        write(root / name, text)
    return check_results(grade_upload(root, config, sets))


def test_a_good_file_anywhere_in_the_upload_passes(tmp_path, sets):
    results = grade(tmp_path, {"my work/week 12/problem2.toml": SOLUTION2}, sets)
    (test,) = results["tests"]
    assert test["name"] == "problem2" and test["status"] == "passed" and test["score"] == 2.0
    assert results["score"] == 2.0
    assert "PASSED: hidden KL" in test["output"] and "public (what `check` scores)" in test["output"]
    assert "2,048 × 32 tokens, seed 0" in test["output"] and "secret seed" in test["output"]
    (entry,) = results["leaderboard"]
    assert entry["name"] == "problem2 KL (hidden)" and entry["value"] < 1e-12


def test_a_failing_file_names_its_costliest_contexts(tmp_path, sets):
    results = grade(tmp_path, {"problem2.toml": UNIFORM}, sets)
    (test,) = results["tests"]
    assert test["status"] == "failed" and test["score"] == 0.0 and "NOT PASSED: hidden KL" in test["output"]
    assert "the costliest contexts" in test["output"] and "after a vowel" in test["output"]
    assert results["leaderboard"][0]["value"] > 0.5


def test_public_pass_hidden_fail_says_the_hidden_texts_are_longer(tmp_path, sets):
    (test,) = grade(tmp_path, {"problem2.toml": SHORT_ONLY}, sets)["tests"]
    assert test["status"] == "failed"
    assert "Passes on the public texts but not on the hidden ones, which are longer (64 tokens)" in test["output"]


@pytest.mark.parametrize("fixture", sorted(p.name for p in BAD.glob("*.toml")))
def test_every_bad_input_is_a_failing_test_with_its_message(tmp_path, sets, fixture):
    results = grade(tmp_path, {"problem2.toml": (BAD / fixture).read_bytes()}, sets)
    (test,) = results["tests"]
    assert test["status"] == "failed" and test["output"].startswith("NOT GRADED: problem2.toml: ")
    assert results["leaderboard"] == []


def test_hostile_uploads_get_valid_results(tmp_path, sets):
    cases = {
        "fifo": (lambda root: os.mkfifo(root / "problem2.toml"), "is not a regular file (a pipe"),
        "device": (
            lambda root: (root / "problem2.toml").symlink_to("/dev/zero"),
            "is not a regular file (a pipe, device",
        ),
        "folder": (lambda root: (root / "problem2.toml").mkdir(), "no file named problem2.toml"),
        "huge": (lambda root: write(root / "problem2.toml", b"#" * (2 << 20)), "over the 1 MiB limit"),
        "heads": (lambda root: write(root / "problem2.toml", heads_300()), "has 300 heads"),
        "two": (lambda root: [write(root / d / "problem2.toml", SOLUTION2) for d in "ab"], "found 2 files"),
        "misnamed": (lambda root: write(root / "Problem2.toml", SOLUTION2), "(found: Problem2.toml)"),
        "nothing": (lambda root: None, "no file named problem2.toml in your upload"),
    }
    for name, (make, message) in cases.items():
        root = tmp_path / name
        root.mkdir()
        make(root)
        (test,) = check_results(grade_upload(root, CONFIG, sets))["tests"]
        assert test["status"] == "failed" and message in test["output"], name


def run_main(capsys, *argv):
    code = gradescope.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_command_writes_results_from_options(capsys, tmp_path):
    write(tmp_path / "sub" / "problem1.toml", SOLUTION1)
    write(tmp_path / "sub" / "problem2.toml", "problem = 'problem2'\n[embed\n")
    argv = ["--submission", tmp_path / "sub", "--results", tmp_path / "res", "--problems", "problem1:3,problem2"]
    code, out, err = run_main(capsys, *argv, "--secret-seed", SEED)
    assert code == 0 and out == "" and err == ""
    text = (tmp_path / "res" / "results.json").read_text()
    results = check_results(json.loads(text))
    assert [(t["name"], t["status"], t["score"], t["max_score"]) for t in results["tests"]] == [
        ("problem1", "passed", 3.0, 3.0),
        ("problem2", "failed", 0.0, 1.0),
    ]
    assert [e["name"] for e in results["leaderboard"]] == ["problem1 KL (hidden)"]


def test_an_internal_error_is_still_a_valid_failing_result(capsys, tmp_path, monkeypatch):
    def broken(*args, **kw):
        raise RuntimeError(f"something inside broke near seed {SEED}")

    monkeypatch.setattr(gradescope, "grade_upload", broken)
    config = tmp_path / CONFIG_NAME
    config.write_text(CONFIG.to_json())
    code, _, err = run_main(capsys, "--config", config, "--submission", tmp_path, "--results", tmp_path / "res")
    assert code == 0 and "internal error" in err  # the instructor's log (stdout is hidden from students)
    results = check_results(json.loads((tmp_path / "res" / "results.json").read_text()))
    assert (
        results["tests"][0]["status"] == "failed" and "internal error (RuntimeError)" in results["tests"][0]["output"]
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--config", "{tmp}/missing.json"], "cannot read the config"),
        (["--config", "{tmp}/text_seed.json"], "must be whole numbers"),
        (["--problems", "problem9"], "unknown problem 'problem9'"),
        (["--problems", "problem2:many"], "'many' is not a number of points"),
        (["--results", "{tmp}/file/sub"], "cannot write"),
    ],
)
def test_unusable_options_exit_2(capsys, tmp_path, argv, message):
    (tmp_path / "file").write_text("a file, not a folder")
    (tmp_path / "text_seed.json").write_text('{"problems": {"problem2": 1}, "secret_seed": "123"}')
    argv = [a.format(tmp=tmp_path) for a in argv] + ["--submission", str(tmp_path)]
    code, _, err = run_main(capsys, *argv)
    assert code == 2 and message in err


def test_the_zip_runs_against_a_fake_autograder_tree(capsys, tmp_path, monkeypatch):
    """Build the zip, install its wheel into a fresh virtual environment and run its run_autograder."""
    monkeypatch.setattr(problems, "_REGISTRY", dict(problems._REGISTRY))  # registering is global: undo it
    zip_path = tmp_path / "autograder.zip"
    twin = write(tmp_path / "twin.py", TWIN_PY)  # an instructor's problem goes into the zip too
    argv = ["--build-zip", zip_path, "--problems", "problem2:5,twin", "--problem-file", twin, "--secret-seed", SEED]
    code, out, _ = run_main(capsys, *argv)
    assert code == 0 and "wrote" in out
    tree = tmp_path / "autograder"
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        modes = {info.filename: info.external_attr >> 16 for info in zf.infolist()}
        zf.extractall(tree / "source")
    wheel = next(n for n in names if n.endswith(".whl"))
    assert {"setup.sh", "run_autograder", CONFIG_NAME, "problems/twin.py"} <= set(names) and wheel.startswith(
        "handattn-"
    )
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    source = tree / "source"
    setup = (source / "setup.sh").read_text()
    assert "https://download.pytorch.org/whl/cpu" in setup and f"./{wheel}" in setup and '"torch==' in setup
    assert (source / "run_autograder").read_text().startswith("#!/usr/bin/env bash\n")
    config = json.loads((source / CONFIG_NAME).read_text())
    assert config["problems"] == {"problem2": 5.0, "twin": 1.0} and config["problem_files"] == ["problems/twin.py"]
    for name in ("run_autograder", "setup.sh"):
        (source / name).chmod(modes[name] & 0o777)

    venv = tmp_path / "venv"  # torch comes from this interpreter's site-packages; handattn only from the wheel
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        "--ignore-installed",
    ]
    subprocess.run([*pip, str(source / wheel)], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [python, "-c", "import handattn; print(handattn.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert str(venv) in where.stdout

    write(tree / "submission" / "hw" / "problem2.toml", SOLUTION2)
    write(tree / "submission" / "twin.toml", TWIN_SOLUTION)
    env |= {"AUTOGRADER_ROOT": str(tree), "HANDATTN_PYTHON": str(python)}
    proc = subprocess.run([source / "run_autograder"], env=env, capture_output=True, text=True, cwd=tree)
    assert proc.returncode == 0, proc.stderr
    results = check_results(json.loads((tree / "results" / "results.json").read_text()))
    assert results["score"] == 6.0 and [t["status"] for t in results["tests"]] == ["passed", "passed"]

    env["HANDATTN_PYTHON"] = "/nonexistent/python"  # handattn cannot even start: still valid results
    subprocess.run([source / "run_autograder"], env=env, capture_output=True, cwd=tree)
    results = json.loads((tree / "results" / "results.json").read_text())
    assert results["tests"] == [] and "could not start" in results["output"]
