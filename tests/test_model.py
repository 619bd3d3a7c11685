"""The attention model agrees with a plain loop and with torch's own causal attention."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import random_tokens, random_weights

from handattn import AttentionModel, Head, Trace, Weights, load
from handattn.vocab import D_VOCAB, TOKENS

FIXTURES = Path(__file__).parent / "fixtures"


def naive_forward(w: Weights, ids: list[int]) -> tuple[list[list[float]], list[list[list[float]]]]:
    """One text, position by position in plain Python: (logits [T][V], per head pattern rows [H][T][≤T])."""
    T = len(ids)
    residual = []
    for i, x in enumerate(ids):
        row = w.W_E[x].tolist()
        if w.W_P is not None and i < w.W_P.shape[0]:
            row = [a + b for a, b in zip(row, w.W_P[i].tolist(), strict=True)]
        residual.append(row)

    def times(row, matrix):  # row vector @ matrix
        columns = matrix.T.tolist()
        return [sum(a * b for a, b in zip(row, col, strict=True)) for col in columns]

    stream = [list(row) for row in residual]
    patterns = []
    for head in w.heads:
        q = [times(r, head.W_Q) for r in residual]
        k = [times(r, head.W_K) for r in residual]
        v = [times(r, head.W_V) for r in residual]
        rows = []
        for i in range(T):
            scores = [w.scale * sum(a * b for a, b in zip(q[i], k[j], strict=True)) for j in range(i + 1)]
            top = max(scores)
            exps = [math.exp(s - top) for s in scores]
            weights = [e / sum(exps) for e in exps]
            rows.append(weights)
            z = [sum(weights[j] * v[j][d] for j in range(i + 1)) for d in range(head.d_value)]
            stream[i] += z
        patterns.append(rows)
    logits = [[a + b for a, b in zip(times(s, w.W_U), w.b_U.tolist(), strict=True)] for s in stream]
    return logits, patterns


# -- agreement with independent implementations ------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_model_agrees_with_a_plain_loop(seed):
    w = random_weights(seed)
    tokens = random_tokens(seed, 3, 7)
    trace = AttentionModel(w)(tokens)
    for n, ids in enumerate(tokens.tolist()):
        logits, patterns = naive_forward(w, ids)
        torch.testing.assert_close(trace.logits[n], torch.tensor(logits, dtype=torch.float64), rtol=1e-12, atol=1e-12)
        for h, rows in enumerate(patterns):
            for i, row in enumerate(rows):
                expected = torch.tensor(row, dtype=torch.float64)
                torch.testing.assert_close(trace.pattern[h][n, i, : i + 1], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scale", [0.7, 1.0, 3.0])
def test_each_head_agrees_with_torch_causal_attention(scale):
    w = random_weights(3, scale=scale)
    trace = AttentionModel(w)(random_tokens(3, 4, 9))
    for q, k, v, z in zip(trace.q, trace.k, trace.v, trace.z, strict=True):
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=w.scale)
        torch.testing.assert_close(z, expected, rtol=1e-12, atol=1e-12)


def test_scale_one_over_sqrt_d_head_is_torchs_default():
    w = random_weights(4, widths=((4, 3),), scale=1 / math.sqrt(4))
    trace = AttentionModel(w)(random_tokens(4, 2, 8))
    expected = F.scaled_dot_product_attention(trace.q[0], trace.k[0], trace.v[0], is_causal=True)  # 1/sqrt(d_head)
    torch.testing.assert_close(trace.z[0], expected, rtol=1e-12, atol=1e-12)


def test_scale_multiplies_the_scores_and_defaults_to_one():
    base = random_weights(5, scale=1.0)
    tokens = random_tokens(5, 2, 6)
    assert Weights("problem2").scale == 1.0  # no hidden 1/sqrt(d_head)
    plain = AttentionModel(base)(tokens)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    for h in range(len(base.heads)):
        qk = plain.q[h] @ plain.k[h].transpose(-1, -2)
        assert torch.equal(plain.attn_scores[h][:, causal], qk[:, causal])
    # scale 2 is the same as doubling W_Q
    doubled = Weights(
        "problem2",
        [Head(2 * h.W_Q, h.W_K, h.W_V) for h in base.heads],
        base.W_U,
        base.b_U,
        base.W_E,
        base.W_P,
    )
    scaled = Weights("problem2", base.heads, base.W_U, base.b_U, base.W_E, base.W_P, scale=2.0)
    torch.testing.assert_close(
        AttentionModel(scaled)(tokens).logits, AttentionModel(doubled)(tokens).logits, rtol=1e-14, atol=1e-14
    )


# -- causality -----------------------------------------------------------------------------------------


def test_later_tokens_never_change_earlier_positions():
    model = AttentionModel(random_weights(6))
    tokens = random_tokens(6, 4, 10)
    before = model(tokens)
    for j in range(1, 10):
        changed = tokens.clone()
        changed[:, j:] = (tokens[:, j:] + 1 + random_tokens(j, 4, 10 - j) % (D_VOCAB - 1)) % D_VOCAB
        assert (changed[:, j:] != tokens[:, j:]).all()
        after = model(changed)
        assert torch.equal(after.logits[:, :j], before.logits[:, :j])
        for h in range(2):
            assert torch.equal(after.z[h][:, :j], before.z[h][:, :j])
            assert torch.equal(after.pattern[h][:, :j], before.pattern[h][:, :j])


def test_one_text_alone_equals_the_same_text_in_a_batch():
    model = AttentionModel(random_weights(7))
    tokens = random_tokens(7, 5, 8)
    batch = model(tokens).logits
    for n in range(5):
        torch.testing.assert_close(model(tokens[n : n + 1]).logits[0], batch[n], rtol=1e-13, atol=1e-13)


# -- the trace -----------------------------------------------------------------------------------------


def test_trace_fields_shapes_and_dtypes():
    w = random_weights(8, features=5, widths=((3, 2), (1, 4)))
    trace = AttentionModel(w)(random_tokens(8, 2, 7))
    assert isinstance(trace, Trace)
    assert trace.residual.shape == (2, 7, 5)
    for h, (d_head, d_value) in enumerate([(3, 2), (1, 4)]):
        assert trace.q[h].shape == trace.k[h].shape == (2, 7, d_head)
        assert trace.v[h].shape == trace.z[h].shape == (2, 7, d_value)
        assert trace.attn_scores[h].shape == trace.pattern[h].shape == (2, 7, 7)
    assert trace.logits.shape == trace.log_probs.shape == trace.probs.shape == (2, 7, D_VOCAB)
    tensors = [trace.residual, trace.logits, trace.log_probs, trace.probs]
    tensors += trace.q + trace.k + trace.v + trace.attn_scores + trace.pattern + trace.z
    assert all(t.dtype == torch.float64 for t in tensors)
    assert all(p.dtype == torch.float64 for p in AttentionModel(w).parameters())
    torch.testing.assert_close(trace.log_probs, trace.logits.log_softmax(-1), rtol=0, atol=1e-15)
    torch.testing.assert_close(trace.probs.sum(-1), torch.ones(2, 7, dtype=torch.float64), rtol=0, atol=1e-14)


def test_pattern_rows_sum_to_one_and_are_zero_above_the_diagonal():
    trace = AttentionModel(random_weights(9, scale=4.0))(random_tokens(9, 3, 12))
    above = torch.ones(12, 12, dtype=torch.bool).triu(1)
    for scores, pattern in zip(trace.attn_scores, trace.pattern, strict=True):
        assert (scores[:, above] == float("-inf")).all() and torch.isfinite(scores[:, ~above]).all()
        assert (pattern[:, above] == 0).all() and (pattern >= 0).all()
        torch.testing.assert_close(pattern.sum(-1), torch.ones(3, 12, dtype=torch.float64), rtol=0, atol=1e-14)
        assert (pattern[:, 0, 0] == 1).all()  # the first position can only attend to itself


# -- embeddings, heads, and the direct path ------------------------------------------------------------


def test_positions_add_W_P_rows_and_nothing_past_its_end():
    w = random_weights(10, n_pos=3)
    tokens = random_tokens(10, 2, 6)
    residual = AttentionModel(w)(tokens).residual
    assert torch.equal(residual[:, :3], w.W_E[tokens[:, :3]] + w.W_P)
    assert torch.equal(residual[:, 3:], w.W_E[tokens[:, 3:]])
    short = AttentionModel(w)(tokens[:, :2]).residual  # texts shorter than W_P use its first rows
    assert torch.equal(short, w.W_E[tokens[:, :2]] + w.W_P[:2])
    no_positions = random_weights(10, n_pos=None)
    assert torch.equal(AttentionModel(no_positions)(tokens).residual, no_positions.W_E[tokens])


def test_zero_heads_is_the_direct_path():
    g = torch.Generator().manual_seed(11)
    W_E, W_U, b_U = (torch.randn(*s, generator=g, dtype=torch.float64) for s in [(28, 4), (4, 28), (28,)])
    w = Weights("problem1", W_E=W_E, W_U=W_U, b_U=b_U)
    tokens = random_tokens(11, 3, 5)
    trace = AttentionModel(w)(tokens)
    assert trace.q == trace.k == trace.v == trace.attn_scores == trace.pattern == trace.z == []
    torch.testing.assert_close(trace.logits, W_E[tokens] @ W_U + b_U, rtol=0, atol=0)


def test_default_weights_give_the_uniform_distribution():
    w = Weights("problem2")  # one-hot embedding named by tokens, zero unembedding
    assert w.features == TOKENS and torch.equal(w.W_E, torch.eye(D_VOCAB, dtype=torch.float64))
    trace = AttentionModel(w)(random_tokens(12, 2, 4))
    assert torch.equal(trace.residual, F.one_hot(random_tokens(12, 2, 4), D_VOCAB).double())
    torch.testing.assert_close(trace.log_probs, torch.full((2, 4, D_VOCAB), -math.log(28), dtype=torch.float64))


def test_each_head_writes_its_own_unembedding_rows():
    w = random_weights(13, features=3, widths=((2, 1), (2, 2)))
    tokens = random_tokens(13, 2, 5)
    trace = AttentionModel(w)(tokens)
    stream = torch.cat([trace.residual, trace.z[0], trace.z[1]], dim=-1)  # [N, T, 3 + 1 + 2]
    torch.testing.assert_close(trace.logits, stream @ w.W_U + w.b_U, rtol=1e-14, atol=1e-14)
    assert w.unembed_rows == ("f0", "f1", "f2", "h0_v0", "h1_v0", "h1_v1")


# -- training and round trips --------------------------------------------------------------------------


def test_gradients_flow_to_every_parameter():
    model = AttentionModel(random_weights(14))
    tokens = random_tokens(14, 3, 8)
    log_probs = model(tokens).log_probs[:, :-1]  # [N, T-1, V]
    loss = F.nll_loss(log_probs.reshape(-1, D_VOCAB), tokens[:, 1:].reshape(-1))
    loss.backward()
    names = {name for name, _ in model.named_parameters()}
    assert {"W_E", "W_P", "W_U", "b_U", "heads.0.W_Q", "heads.0.W_K", "heads.1.W_V"} <= names
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # and the gradient is the true derivative (central difference on one entry)
    eps = 1e-6
    grad = float(model.heads[0].W_Q.grad[1, 2])

    def loss_at(delta):
        with torch.no_grad():
            model.heads[0].W_Q[1, 2] += delta
            out = F.nll_loss(model(tokens).log_probs[:, :-1].reshape(-1, D_VOCAB), tokens[:, 1:].reshape(-1))
            model.heads[0].W_Q[1, 2] -= delta
        return float(out)

    assert (loss_at(eps) - loss_at(-eps)) / (2 * eps) == pytest.approx(grad, rel=1e-6, abs=1e-9)


def assert_same_weights(a: Weights, b: Weights) -> None:
    assert (a.problem, a.features, a.scale, a.params) == (b.problem, b.features, b.scale, b.params)
    assert a.matrices().keys() == b.matrices().keys()
    for place, matrix in a.matrices().items():
        assert torch.equal(matrix, b.matrices()[place]), place
    assert [(h.name, h.dims, h.values) for h in a.heads] == [(h.name, h.dims, h.values) for h in b.heads]


@pytest.mark.parametrize("make", [lambda: random_weights(15), lambda: load(FIXTURES / "p2_exact.toml")])
def test_to_weights_round_trip(make):
    w = make()
    model = AttentionModel(w)
    assert_same_weights(model.to_weights(), w)
    # the model owns copies: training it changes to_weights() but never the weights it came from
    with torch.no_grad():
        model.W_U += 1.0
    assert torch.equal(model.to_weights().W_U, w.W_U + 1.0)
    assert_same_weights(make(), w)
    assert not model.to_weights().W_U.requires_grad


def test_fixture_solution_names_survive_the_round_trip():
    w = AttentionModel(load(FIXTURES / "p2_exact.toml")).to_weights()
    assert w.features == ("vowel", "consonant", "digit")
    assert [(h.name, h.dims, h.values) for h in w.heads] == [("seen", ("c",), ("seen",))]
    assert w.params == {"S": 20, "M": 30, "L": 90}
