"""Circuit tables agree with the model: a QK entry is the attention score the layer computes for that
query and key, an OV entry what attending to that row adds to each logit."""

from pathlib import Path

import torch
from conftest import random_weights

from handattn import AttentionModel, Head, Weights, circuits, load
from handattn.vocab import INDEX, TOKENS

ROOT = Path(__file__).resolve().parent.parent


def test_feature_rows_for_a_file_that_declares_features():
    w = load(ROOT / "solutions" / "problem2.toml")
    (c,) = circuits(w)
    assert c.qk.rows == ("vowel", "consonant", "digit") and c.qk.cols == c.qk.rows
    assert c.qk["digit", "consonant"] == 20.0 and c.qk["consonant", "vowel"] == 0.0  # W_K.consonant.c = "S"
    assert c.ov.cols == ("letters", "0", "1")  # every letter column is equal, so they collapse
    assert c.ov["consonant", "1"] == 60.0 and c.ov["consonant", "0"] == -60.0 and c.ov["vowel", "q"] == 0.0


def test_token_rows_collapse_groups_where_rows_are_equal():
    w = load(ROOT / "solutions" / "problem2.toml")
    h = w.heads[0]
    one_hot = Weights(
        "problem2",
        [Head(w.W_E @ h.W_Q, w.W_E @ h.W_K, w.W_E @ h.W_V, h.name, h.dims, h.values)],
        torch.cat([w.W_E @ w.W_U[:3], w.W_U[3:]]),
        w.b_U,
    )
    (c,) = circuits(one_hot)
    assert c.qk.rows == ("all",) and c.qk.cols == ("vowels", "consonants", "digits")
    assert c.qk.row_members == (TOKENS,) and c.qk["b", "x"] == 20.0
    assert c.ov.rows == ("vowels", "consonants", "digits")


def test_qk_entries_are_the_models_attention_scores():
    w = random_weights(3, one_hot=True, n_pos=None, scale=None)
    (c, _) = circuits(w)
    model = AttentionModel(w)
    pairs = torch.tensor([[x, y] for x in range(len(TOKENS)) for y in range(len(TOKENS))])  # key x, query y
    scores = model(pairs).attn_scores[0][:, 1, 0]  # [V·V] query at position 2 against the key at 1
    for (x, y), s in zip(pairs.tolist(), scores.tolist(), strict=True):
        assert abs(c.qk[TOKENS[y], TOKENS[x]] - s) <= 1e-12 * max(1.0, abs(s))


def test_ov_entries_are_what_attending_adds_to_the_logits():
    w = random_weights(4, one_hot=True, n_pos=None)
    model = AttentionModel(w)
    trace = model(torch.arange(len(TOKENS))[:, None])  # one-token texts: each attends only to itself
    start = w.d_model
    for h, head in enumerate(w.heads):
        W_U_h = w.W_U[start : start + head.d_value]
        start += head.d_value
        added = (trace.z[h][:, 0] @ W_U_h).detach()  # [V, V] what the head adds to each logit
        ov = circuits(w)[h].ov
        for x in TOKENS:
            for out in TOKENS:
                assert abs(ov[x, out] - float(added[INDEX[x], INDEX[out]])) <= 1e-12


def test_tables_are_labelled_data():
    data = circuits(load(ROOT / "solutions" / "problem2.toml"))[0].to_dict()
    assert data["head"] == "seen_consonant"
    assert data["ov"]["cols"][0] == {"label": "letters", "members": list(TOKENS[:26])}
    assert data["qk"]["values"][0] == [0.0, 20.0, 0.0]
