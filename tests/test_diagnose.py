"""`inspect_text` and its parts: which text, per-position distributions and KL, patterns, refusals."""

import math
from pathlib import Path

import pytest
import torch

from handattn import (
    AttentionModel,
    Scorer,
    TextView,
    eval_set_from_texts,
    get_problem,
    inspect_text,
    load,
    sample_eval_set,
    score,
)
from handattn.diagnose import check_text, compact, group_label
from handattn.errors import TextError
from handattn.vocab import INDEX, TOKENS

ROOT = Path(__file__).resolve().parent.parent
P2 = ROOT / "solutions" / "problem2.toml"
P1 = ROOT / "solutions" / "problem1.toml"


def probs(**by_token):
    p = torch.zeros(len(TOKENS), dtype=torch.float64)
    for tokens, value in by_token.items():
        for t in tokens.replace("zero", "0").replace("one", "1").split("_"):
            p[INDEX[t]] = value
    return p


def test_uniform_groups_are_compacted_and_named():
    letters = torch.tensor([1 / 26] * 26 + [0, 0], dtype=torch.float64)
    (entry,) = compact(letters)
    assert entry.text() == "26 letters × 0.0385" and len(entry.tokens) == 26
    p1 = torch.tensor([0.1 if t in "aeiou" else 0.5 / 21 if t.isalpha() else 0 for t in TOKENS], dtype=torch.float64)
    assert [e.text() for e in compact(p1)] == ["5 vowels × 0.1", "21 consonants × 0.0238"]
    assert [e.text() for e in compact(probs(one=0.75, zero=0.25))] == ["1: 0.75", "0: 0.25"]


def test_a_models_top_tokens_stop_at_the_mass_or_the_count():
    p = probs(a=0.9, b=0.095, c=0.005)
    assert [e.label for e in compact(p, top=3, mass=0.99)] == ["a", "b"]
    assert [e.label for e in compact(p, top=1)] == ["a"]


@pytest.mark.parametrize(
    "names, label",
    [
        (tuple("abcdefghijklmnopqrstuvwxyz01"), "28 tokens"),
        (tuple("abcdefghijklmnopqrstuvwxyz0"), "27 tokens (not 1)"),
        (tuple("cdfghjklmnpqrstvwxyz"), "20 consonants (not b)"),
        (tuple("abcd"), "4 tokens"),
    ],
)
def test_group_labels(names, label):
    assert group_label(names) == label


@pytest.mark.parametrize(
    "text, line",
    [
        ("", "text: is empty; give a text of 1 to 512 tokens, e.g. ba1ke1"),
        ("baX1", "text: position 3: 'X' is not a token; texts use only a-z, 0 and 1"),
        ("ba\x1b[2J", "text: position 3: '\\x1b' is not a token; texts use only a-z, 0 and 1"),
        ("1ba", "text: position 1: '1' cannot start a text; every problem2 text starts with a letter"),
        ("ba0", "text: position 3: '0' cannot follow 'ba' in problem2; show a text the problem can produce"),
        ("b" * 513, "text: has 513 tokens, over the model's context of 512; show a shorter text"),
    ],
)
def test_texts_the_problem_cannot_produce_are_refused_in_one_line(text, line):
    with pytest.raises(TextError) as e:
        check_text(get_problem("problem2"), text)
    assert e.value.lines() == [line]


def test_a_text_of_one_token_is_shown():
    view = inspect_text(load(P2), "b")
    assert len(view.positions) == 1 and view.positions[0].next is None and math.isnan(view.kl)


def test_per_position_numbers_are_the_models_and_the_exact_rules():
    weights = load(P1)
    text = "bacadefgho"
    view = inspect_text(weights, text)
    tokens = torch.tensor([[INDEX[c] for c in text]])
    trace = AttentionModel(weights)(tokens)
    exact = get_problem("problem1").exact_probs(tokens)[0]
    assert torch.equal(view.true_probs, exact) and torch.equal(view.model_probs, trace.probs[0].detach())
    assert torch.equal(view.patterns[0], trace.pattern[0][0].detach())
    scored = score(weights, eval_set_from_texts(get_problem("problem1"), [text]))
    assert math.isclose(view.kl, scored.kl, rel_tol=1e-12)  # the same mean KL check would report
    for p, kl in zip(view.positions, scored.per_position[0].tolist(), strict=False):
        assert math.isclose(p.kl, kl, rel_tol=1e-12, abs_tol=1e-18)
    assert view.positions[2].token == "c" and view.positions[2].next == "a"
    assert view.positions[0].true[0].text() == "5 vowels × 0.2"  # after "b": c/(5t) = 1/5 on each vowel


def test_by_default_the_worst_public_text_is_shown():
    weights = load(P2, params={"M": 2})
    public = sample_eval_set(get_problem("problem2"))
    per_text = Scorer(public)(weights).per_position.mean(-1)
    view = inspect_text(weights)
    assert view.text == public.texts()[int(per_text.argmax())]
    assert view.why == f"the worst of 2,048 texts from seed 0 (text {int(per_text.argmax()) + 1})"
    assert math.isclose(view.kl, float(per_text.max()), rel_tol=1e-12)


def test_the_worst_positions_stand_out_only_above_the_pass_threshold():
    weak = inspect_text(load(P2, params={"S": 3}), "ba1e1i1o1u1a1e1i1a1e1i1o1u1a1e1")
    kls = [p.kl for p in weak.positions[:-1]]
    assert list(weak.worst) == sorted(range(1, len(kls) + 1), key=lambda t: -kls[t - 1])[:3]
    assert inspect_text(load(P2), "ba1e1").worst == ()


def test_a_view_is_plain_data_for_json():
    view = inspect_text(load(P2), "ba1")
    data = view.to_dict()
    assert isinstance(view, TextView) and data["text"] == "ba1" and len(data["heads"][0]["pattern"]) == 3
    assert data["positions"][1]["true"] == [{"tokens": "1", "each": 1.0}]
