"""`python -m handattn.check` and the `handattn` entry point, through main(argv) and once as a process."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from handattn import check, cli, get_problem, load, problem_names, sample_eval_set, score
from handattn.new import main as new_main

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"


def run(capsys, *argv):
    code = check.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_reference_solution_passes_with_exit_0(capsys):
    code, out, err = run(capsys, "problem2", str(SOLUTIONS / "problem2.toml"))
    assert code == 0 and err == ""
    assert "PASSED" in out and "NOT PASSED" not in out
    assert "63,488 predicted positions" in out
    for context in get_problem("problem2").contexts:
        assert context in out


def test_scored_but_not_passed_exits_1_and_points_at_the_gap(capsys, tmp_path):
    starter = tmp_path / "start.toml"
    assert new_main(["problem2", "-o", str(starter)]) == 0
    capsys.readouterr()
    code, out, err = run(capsys, "problem2", str(starter))
    assert code == 1 and err == ""
    assert "NOT PASSED" in out and "most of the gap: after a vowel, consonant earlier" in out


def test_json_reports_the_library_score(capsys):
    path = SOLUTIONS / "problem1.toml"
    code, out, _ = run(capsys, "problem1", str(path), "--json")
    data = json.loads(out)
    expected = score(load(path), sample_eval_set(get_problem("problem1")))
    assert code == 0
    assert data["problem"] == "problem1" and data["passed"] is True
    assert data["kl"] == expected.kl and data["kl_se"] == expected.kl_se
    assert data["threshold"] == 0.005 and data["n_positions"] == 2048 * 31
    assert data["eval_fingerprint"] == expected.eval_fingerprint
    assert data["file"] == str(path)
    assert math.isclose(data["kl_bits"], data["kl"] / math.log(2))


def test_same_file_same_options_same_output(capsys):
    argv = ["problem1", str(SOLUTIONS / "problem1.toml"), "--json", "--seed", "7"]
    assert run(capsys, *argv)[1] == run(capsys, *argv)[1]


def test_file_defaults_to_problem_toml_in_the_current_folder(capsys, tmp_path, monkeypatch):
    shutil.copy(SOLUTIONS / "problem2.toml", tmp_path / "problem2.toml")
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "problem2")[0] == 0
    code, out, err = run(capsys, "problem1")
    assert code == 2 and out == ""
    assert err.startswith("problem1.toml: does not exist")


def test_options_choose_the_evaluation_set(capsys):
    path = str(SOLUTIONS / "problem2.toml")
    default = json.loads(run(capsys, "problem2", path, "--json")[1])
    other = json.loads(run(capsys, "problem2", path, "--json", "--seed", "1", "--texts", "100", "--length", "10")[1])
    assert other["n_positions"] == 100 * 9 and other["n_texts"] == 100
    assert other["seed"] == 1 and other["eval_fingerprint"] != default["eval_fingerprint"]


def test_eval_file_is_scored_as_given(capsys, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("# my texts\nba1ke1\n\na0ba1\nzzzzzz\n")
    code, out, _ = run(capsys, "problem2", str(SOLUTIONS / "problem2.toml"), "--json", "--eval-file", str(texts))
    data = json.loads(out)
    assert code == 0 and data["n_texts"] == 3 and data["n_positions"] == 5 + 4 + 5
    assert data["seed"] is None and data["eval_source"] == str(texts)


def test_bad_eval_file_is_unusable_input(capsys, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("ba1\nba0\n")  # after "ba" the digit must be 1
    code, out, err = run(capsys, "problem2", str(SOLUTIONS / "problem2.toml"), "--eval-file", str(texts))
    assert code == 2 and out == ""
    assert err.strip() == f"{texts}: line 2: '0' cannot follow 'ba' in problem2; use texts the problem can produce"


def test_unknown_problem_is_unusable_input(capsys):
    code, out, err = run(capsys, "problem9", str(SOLUTIONS / "problem2.toml"))
    assert code == 2 and out == ""
    known = ", ".join(problem_names())
    assert err.strip() == f"python -m handattn.check: unknown problem 'problem9'; choose one of: {known}"


def test_file_for_another_problem_is_unusable_input(capsys):
    code, _, err = run(capsys, "problem1", str(SOLUTIONS / "problem2.toml"))
    assert code == 2
    assert "problem: this file is written for problem2, not problem1" in err


def test_json_error_is_still_json(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('problem = "problem2"\nscale = [\n')
    code, out, err = run(capsys, "problem2", str(bad), "--json")
    assert code == 2
    data = json.loads(out)
    assert data["error"] == err.strip().splitlines() and "end of file" in err


def test_list_and_usage(capsys):
    code, out, _ = run(capsys, "--list")
    assert code == 0 and out.splitlines()[:2] == [
        "problem1  (pass: KL ≤ 0.005 nats)",
        f"  {get_problem('problem1').summary}",
    ]
    assert "problem2" in out and max(map(len, out.splitlines())) <= 80  # a terminal's width
    code, out, err = run(capsys)
    assert code == 2 and "name a problem" in err
    code, _, err = run(capsys, "problem2", "x.toml", "--length", "1")
    assert code == 2 and "--length" in err


def test_handattn_entry_point_dispatches(capsys, tmp_path):
    assert cli.main(["check", "problem2", str(SOLUTIONS / "problem2.toml")]) == 0
    assert "PASSED" in capsys.readouterr().out
    assert cli.main(["list"]) == 0 and "problem1" in capsys.readouterr().out
    assert cli.main(["new", "problem1", "-o", str(tmp_path / "p1.toml")]) == 0
    assert (tmp_path / "p1.toml").exists()
    capsys.readouterr()
    assert cli.main(["frobnicate"]) == 2 and "unknown command" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["handattn.check", "handattn"])
def test_real_process(module, tmp_path):
    argv = [sys.executable, "-m", module] + (["check"] if module == "handattn" else [])
    good = subprocess.run(
        [*argv, "problem2", "solutions/problem2.toml", "--json"], cwd=ROOT, capture_output=True, text=True
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["passed"] is True
    bad_file = tmp_path / "bad.toml"
    bad_file.write_text("problem = \"problem2\"\n[[heads]]\nW_Q.vowels.q = \"__import__('os').system('true')\"\n")
    bad = subprocess.run([*argv, "problem2", str(bad_file)], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "Traceback" not in bad.stderr
    assert bad.stderr.startswith(f"{bad_file}: heads[0]")


def test_an_oversized_evaluation_set_is_refused_before_any_work(capsys):
    code, out, err = run(capsys, "problem2", str(SOLUTIONS / "problem2.toml"), "--texts", "100000", "--length", "100")
    assert code == 2 and out == ""
    assert "100,000 texts × 100 tokens is over 4,194,304 tokens" in err


def test_eval_file_and_sampling_options_do_not_mix(capsys, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("ba1\n")
    code, out, err = run(capsys, "problem2", str(SOLUTIONS / "problem2.toml"), "--eval-file", str(texts), "--seed", "3")
    assert code == 2 and out == ""
    assert "--eval-file gives the texts; drop --seed, --texts and --length" in err


def test_a_miscapitalised_problem_gets_a_suggestion(capsys):
    code, _, err = run(capsys, "Problem2", str(SOLUTIONS / "problem2.toml"))
    assert code == 2 and "unknown problem 'Problem2'; did you mean 'problem2'?" in err


def test_json_is_strict_even_when_a_number_is_undefined(capsys, tmp_path):
    texts = tmp_path / "one.txt"
    texts.write_text("ba1ke1\n")  # one text: no standard error across texts
    code, out, _ = run(capsys, "problem2", str(SOLUTIONS / "problem2.toml"), "--json", "--eval-file", str(texts))
    data = json.loads(out, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))
    assert code == 0 and data["kl_se"] is None
