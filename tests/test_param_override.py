"""`params=` on load/loads/from_dict and `--param NAME=VALUE` on check and show: an override replaces
the declared value before anything is evaluated, so entries and later parameters follow."""

import json
import math
from pathlib import Path

import pytest

from handattn import WeightFileError, check, from_dict, get_problem, load, loads, sample_eval_set, score
from handattn.show import main as show_main

ROOT = Path(__file__).resolve().parent.parent
DERIVED = ROOT / "tests" / "fixtures" / "p2_exact.toml"  # declares L = "3*M"
P1 = ROOT / "solutions" / "problem1.toml"


def test_an_override_replaces_the_declared_value_and_dependent_params_follow():
    w = load(DERIVED, params={"M": 10})
    assert w.params == {"S": 20.0, "M": 10.0, "L": 30.0}
    assert w.W_U[w.unembed_rows.index("seen")].tolist()[26:] == [-20.0, 20.0]  # "-2*M", "2*M"
    assert w.W_U[w.unembed_rows.index("vowel")].tolist()[:3] == [-30.0, -30.0, -30.0]  # letters = "-L"


def test_the_same_override_through_loads_and_from_dict():
    text = DERIVED.read_text()
    assert loads(text, params={"S": 5}).heads[0].W_K.tolist() == [[0.0], [5.0], [0.0]]
    data = {"problem": "problem2", "params": {"S": 2, "T": "S*3"}, "scale": "T"}
    assert from_dict(data, params={"S": 0.5}).scale == 1.5


def test_an_unknown_name_is_refused_naming_the_declared_ones():
    with pytest.raises(WeightFileError) as e:
        load(DERIVED, params={"Q": 1.0})
    assert str(e.value) == f"{DERIVED}: params: has no parameter 'Q' to set; declared: S, M, L"
    with pytest.raises(WeightFileError, match="declared: none"):
        from_dict({"problem": "problem2"}, params={"S": 1.0})


@pytest.mark.parametrize("value", [math.nan, math.inf, 1e7])
def test_an_override_is_checked_like_an_entry_and_reported_at_the_option(value):
    with pytest.raises(WeightFileError) as e:
        load(DERIVED, params={"S": value})
    assert [i.where for i in e.value.issues] == ["--param S"]  # once: the entries that use S stay quiet


def test_check_param_changes_the_score_as_the_files_arithmetic_says(capsys, tmp_path):
    code = check.main(["problem1", str(P1), "--json", "--param", "B=4"])
    overridden = json.loads(capsys.readouterr().out)
    edited = tmp_path / "b4.toml"
    edited.write_text(P1.read_text().replace("B = 5 ", "B = 4 "))
    expected = score(load(edited), sample_eval_set(get_problem("problem1")))
    assert code == 0 and overridden["kl"] == expected.kl  # b_U.vowels = log(21/5) - B/2 followed B too
    assert round(overridden["kl"], 4) == 0.0041  # the tangent slope, as the file's comment says


def test_check_param_value_may_be_arithmetic_but_never_code(capsys):
    assert check.main(["problem1", str(P1), "--json", "--param", "B=sqrt(16)"]) == 0
    assert (
        json.loads(capsys.readouterr().out)["kl"]
        == score(load(P1, params={"B": 4.0}), sample_eval_set(get_problem("problem1"))).kl
    )
    code = check.main(["problem1", str(P1), "--param", "B=__import__('os')"])
    assert code == 2 and "argument --param" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--param", "B=4", "--param", "B=5"], "--param 'B' is given twice"),
        (["--param", "B"], "'B' is not NAME=VALUE"),
        (["--param", "X=1"], "params: has no parameter 'X' to set; declared: B, L"),
    ],
)
def test_bad_param_options_are_unusable_input(capsys, argv, message):
    assert check.main(["problem1", str(P1), *argv]) == 2
    assert message in capsys.readouterr().err


def test_show_takes_param_too(capsys):
    assert show_main(["problem2", str(DERIVED), "--text", "ba1e1", "--param", "M=10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == {"S": 20.0, "M": 10.0, "L": 30.0}
