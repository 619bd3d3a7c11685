"""A failing check says where to look: the worst contexts, and a hint read from where the loss goes."""

import json
from pathlib import Path

import pytest

from handattn import check, eval_set_from_texts, get_problem, load, loads, sample_eval_set, score, where_to_look
from handattn.new import main as new_main

ROOT = Path(__file__).resolve().parent.parent
P2 = ROOT / "solutions" / "problem2.toml"


@pytest.fixture(scope="module")
def starter(tmp_path_factory):
    path = tmp_path_factory.mktemp("starter") / "start.toml"
    assert new_main(["problem2", "-o", str(path)]) == 0
    return path


def test_the_starter_loses_on_tokens_that_can_never_follow(starter):
    weights, public = load(starter), sample_eval_set(get_problem("problem2"))
    result = score(weights, public)
    where = where_to_look(weights, public, result)
    assert where.context == "after a vowel, consonant earlier"
    assert where.leak == pytest.approx(1.0) and where.leak_to == "27 tokens (not 1)"
    assert where.hint == "100% of its loss is probability on tokens that can never follow: 27 tokens (not 1)"
    assert len(where.worst) == 5 and len({c.prefix for c in where.worst}) == 5
    worst_kl = float(result.per_position.max())
    for c in where.worst:  # uniform over 28 tokens where only 1 can follow: KL log 28, the largest there is
        assert c.kl == worst_kl and c.true[0].text() == "1: 1" and c.model[0].text() == "28 tokens × 0.0357"
        assert c.prefix[-1] in "aeiou"


def test_a_weak_key_after_long_runs_of_vowels_reads_as_one():
    weights = load(P2, params={"S": 3})
    texts = eval_set_from_texts(get_problem("problem2"), ["b" + "a1" * k for k in range(1, 60)])
    where = where_to_look(weights, texts, score(weights, texts))
    assert where.context == "after a vowel, consonant earlier" and where.leak_to == "0"
    assert where.trend >= 3
    assert "grows along the text" in where.hint and "a key is too weak to stand out" in where.hint
    assert where.worst[0].prefix.endswith("a") and where.worst[0].model[0].label == "0"


def test_wrong_shares_among_tokens_that_can_follow_are_named():
    text = P2.read_text().replace('W_U.consonant.digits = "-L"', 'W_U.consonant = { digits = "-L", a = 2 }')
    weights, public = loads(text), sample_eval_set(get_problem("problem2"), 256)
    where = where_to_look(weights, public, score(weights, public))
    assert where.context == "after a consonant" and where.leak < 0.5
    assert where.too_much == "a" and where.too_little == "25 letters (not a)"
    assert where.hint.startswith("the tokens that can follow there get the wrong shares: too little on 25 letters")


def test_check_prints_where_to_look_when_a_file_does_not_pass(capsys, starter):
    assert check.main(["problem2", str(starter)]) == 1
    out = capsys.readouterr().out
    assert "  hint: 100% of its loss is probability on tokens that can never" in out
    lines = out.splitlines()
    start = lines.index("  where to look, the 5 worst contexts:")
    assert lines[start + 1].split() == ["text", "so", "far", "pos", "true", "next", "model's", "top", "KL"]
    assert all(line.rstrip().endswith("3.3322") for line in lines[start + 2 : start + 7])
    assert lines[-1] == f"  see one text: python -m handattn.show problem2 {starter}"
    assert max(len(line) for line in lines) <= 100


def test_quiet_prints_only_the_verdict(capsys, starter):
    assert check.main(["problem2", str(starter), "--quiet"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"problem2 · {starter}", out[1]] and out[1].startswith("  NOT PASSED  KL 0.6003")
    assert check.main(["problem2", str(P2), "--quiet"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_json_carries_where_to_look_only_when_failing(capsys, starter):
    check.main(["problem2", str(starter), "--json"])
    data = json.loads(capsys.readouterr().out)["where_to_look"]
    assert data["context"] == "after a vowel, consonant earlier" and len(data["worst_contexts"]) == 5
    assert data["worst_contexts"][0]["true"] == [{"tokens": "1", "each": 1.0}]
    check.main(["problem2", str(P2), "--json"])
    assert "where_to_look" not in json.loads(capsys.readouterr().out)


def test_a_passing_file_gets_no_hint(capsys):
    check.main(["problem2", str(P2)])
    out = capsys.readouterr().out
    assert "hint:" not in out and "where to look" not in out


def test_the_readme_example_is_what_check_prints(capsys, starter, monkeypatch, tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("For the starter file:\n\n```\n", 1)[1].split("```", 1)[0]
    (tmp_path / "problem2.toml").write_text(starter.read_text())
    monkeypatch.chdir(tmp_path)
    assert check.main(["problem2"]) == 1
    out = capsys.readouterr().out.splitlines()
    for line in block.splitlines():
        if line.strip() != "…":
            assert line in out, line
