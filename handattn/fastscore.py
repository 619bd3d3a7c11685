"""The fast paths of the Scorer: the model's prediction at every predicted position, without
running the layer text by text, paired with the exact targets into a `Tally`.

- "states" (no position embedding): a position's residual is its token's row of W_E, so the
  layer's output there depends only on the current token and on how many keys of each key class
  its prefix holds (itself included), where a key class is a set of tokens with the same k and v
  rows in every head. Each position gets a 62-bit key of that state and of its target row; the
  layer runs once per distinct key. Hand-written files have a few hundred to a few thousand.
- "counts" (no position embedding, but too many key classes for a 62-bit key, e.g. a dense
  one-hot file): the same arithmetic once per position, in cache-sized blocks.
- "positions" (a position embedding): the layer on every text minus its last token (which predicts
  nothing), in cache-sized blocks, from token and position tables, with an additive causal mask.

Every path is held to the plain path (`handattn.score.plain_tally`: AttentionModel on whole
texts, dense targets) by the tests. Shapes: N texts, P predicted positions, V = 28, Q query
classes, K key classes, S states or positions evaluated at once.
"""

from __future__ import annotations

import torch
from torch.nn.functional import linear

from handattn.evalset import EvalSet
from handattn.tally import Tally, Targets
from handattn.weights import Weights

PATHS = ("states", "counts", "positions")
KEY_BITS = 62  # (state, target row) keys are int64; one bit spare
BLOCK = 2048  # rows of per-position arithmetic at once: a [2048, 28] float64 block is 448 KiB (cache-sized)
KEY_POSITIONS = 1 << 16  # positions whose state keys are computed at once
EXP_TABLE_RANGE = 600.0  # a row of attention scores spanning ≤ 600 nats: e^-600 is a normal float64


class CountModel:
    """A layer without position embedding, as tables over token classes.

    At a position of query class a (its W_E row) whose prefix holds n_c keys of class c, head h gives
        z = Σ_c n_c e_c v_c / Σ_c n_c e_c,   e_c = exp(scale · q_a · k_c − m)
    the softmax over the prefix with equal keys gathered; m is the largest present score, or the
    largest of the row when the row spans ≤ EXP_TABLE_RANGE nats (then e comes from a table: no
    present term can underflow, and the common factor cancels).
    """

    def __init__(self, weights: Weights):
        self.residual, self.query_class = torch.unique(weights.W_E, dim=0, return_inverse=True)  # [Q, d], [V]
        parts = [self.residual @ m for h in weights.heads for m in (h.W_K, h.W_V)]
        kv = torch.cat(parts, dim=-1) if parts else torch.zeros(len(self.residual), 1, dtype=torch.float64)
        kv_rows, key_of_query = torch.unique(kv, dim=0, return_inverse=True)  # [K, Σ (d_head + d_value)], [Q]
        self.key_class = key_of_query[self.query_class]  # [V]
        self.n_query, self.n_key = len(self.residual), len(kv_rows)
        self.heads = []  # per head: scores [Q, K], exp table [Q, K] or None, [v | 1]ᵀ [d_value + 1, K]
        at = 0
        for h in weights.heads:
            k, v = kv_rows[:, at : at + h.d_head], kv_rows[:, at + h.d_head : at + h.d_head + h.d_value]
            at += h.d_head + h.d_value
            scores = weights.scale * ((self.residual @ h.W_Q) @ k.T)  # [Q, K]
            top = scores.max(-1, keepdim=True).values  # [Q, 1]
            narrow = bool((top - scores).max() <= EXP_TABLE_RANGE)
            ones = torch.ones(len(v), 1, dtype=torch.float64)  # the last output column is Σ_c e_c
            self.heads.append(
                (scores, (scores - top).exp() if narrow else None, torch.cat([v, ones], 1).T.contiguous())
            )
        d_model = weights.d_model
        self.direct = self.residual @ weights.W_U[:d_model] + weights.b_U  # [Q, V] the direct path's logits
        self.W_U_heads_T = weights.W_U[d_model:].T.contiguous()  # [V, Σ d_value]

    def log_probs(self, query: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """query [S] class, counts [S, K] float64 keys of each class so far → [S, V] log-probabilities.
        (linear(x, Wᵀ) is x @ W; MKL runs these thin products fastest with the weight transposed.)"""
        zs = []
        for scores, table, values_T in self.heads:
            if table is not None:
                e = table.index_select(0, query) * counts  # [S, K]
            else:
                s = scores.index_select(0, query).masked_fill(counts == 0, float("-inf"))  # [S, K]
                e = (s - s.max(-1, keepdim=True).values).exp() * counts  # [S, K]
            weighted = linear(e, values_T)  # [S, d_value + 1]: Σ_c e_c v_c, then Σ_c e_c
            zs.append(weighted[:, :-1] / weighted[:, -1:])  # [S, d_value]
        logits = self.direct.index_select(0, query)  # [S, V]
        if zs:  # + [z_1 | … | z_H] W_U's head rows, as linear() computes it
            logits = torch.addmm(logits, torch.cat(zs, dim=-1), self.W_U_heads_T.t())
        return logits.log_softmax(dim=-1)  # [S, V]


class PositionModel:
    """A layer with a position embedding, as token and position tables: the residual is
    W_E[x] + W_P[i], so r M = (W_E M)[x] + (W_P M)[i] for every matrix M applied to it."""

    def __init__(self, weights: Weights, P: int):
        W_P = torch.zeros(P, weights.d_model, dtype=torch.float64)  # rows past W_P's last are zero
        if weights.W_P is not None:
            n = min(P, len(weights.W_P))
            W_P[:n] = weights.W_P[:n]
        d_model, at = weights.d_model, weights.d_model

        def tables(M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return weights.W_E @ M, W_P @ M  # [V, ·], [P, ·]

        token_logits, position_logits = tables(weights.W_U[:d_model])
        self.logits = (token_logits + weights.b_U, position_logits)  # the direct path's logits
        self.heads = []  # per head: q, k and v tables, the head's rows of W_U [d_value, V]
        for h in weights.heads:
            self.heads.append((tables(h.W_Q), tables(h.W_K), tables(h.W_V), weights.W_U[at : at + h.d_value]))
            at += h.d_value
        self.causal = torch.full((P, P), float("-inf"), dtype=torch.float64).triu(1)  # [P, P] 0 where key ≤ query
        self.scale = weights.scale

    def log_probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [n, P] → [n, P, V] log-probabilities at every position."""
        flat = tokens.flatten()

        def rows(table: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:  # [n, P, ·]
            return table[0].index_select(0, flat).view(*tokens.shape, -1) + table[1]

        logits = rows(self.logits)  # [n, P, V]
        for q_table, k_table, v_table, W_U_head in self.heads:
            q, k = rows(q_table), rows(k_table)  # [n, P, d_head]
            scores = self.causal + self.scale * (q @ k.transpose(1, 2))  # [n, P, P]
            logits = logits + (scores.softmax(dim=-1) @ rows(v_table)) @ W_U_head  # [n, P, V]
        return logits.log_softmax(dim=-1)


def choose_path(weights: Weights, eval_set: EvalSet, model: CountModel | None = None) -> str:
    """The path `fast_tally` takes: positions if W_P reaches a predicted position, else states if a
    (state, target row) key fits in KEY_BITS, else counts."""
    P = eval_set.tokens.shape[1] - 1
    if weights.W_P is not None and bool(weights.W_P[:P].any()):
        return "positions"
    return "states" if _key_space(model or CountModel(weights), eval_set) < 2**KEY_BITS else "counts"


def fast_tally(weights: Weights, eval_set: EvalSet, targets: Targets, path: str = "auto") -> tuple[str, Tally]:
    """The Tally of these weights on the set through `path` (default: `choose_path`), and the path."""
    model = None if path == "positions" else CountModel(weights)
    if path == "auto":
        path = choose_path(weights, eval_set, model)
    if path == "states":
        return path, _states_tally(model, eval_set, targets)
    if path == "counts":
        return path, _counts_tally(model, eval_set, targets)
    return path, _positions_tally(PositionModel(weights, eval_set.row_index.shape[1]), eval_set, targets)


def _key_space(model: CountModel, eval_set: EvalSet) -> int:
    """How many (state, target row) keys there can be: Q · P · (P + 1)^(K − 1) · R."""
    P = eval_set.tokens.shape[1] - 1
    return model.n_query * P * (P + 1) ** (model.n_key - 1) * len(eval_set.target_rows)


def _states_tally(model: CountModel, eval_set: EvalSet, targets: Targets) -> Tally:
    N, P = eval_set.row_index.shape
    Q, K, R = model.n_query, model.n_key, len(eval_set.target_rows)
    space = _key_space(model, eval_set)
    if space >= 2**KEY_BITS:
        raise ValueError(f"{Q} query and {K} key classes over {P} positions need more than {KEY_BITS}-bit keys")
    step = max(1, KEY_POSITIONS // P)
    keys = torch.cat([_state_keys(model, eval_set.tokens[i : i + step, :P]) for i in range(0, N, step)])  # [N, P]
    mask = eval_set.mask
    keys = keys * R + eval_set.row_index  # [N, P]
    every = bool(mask.all())  # texts of equal length: no padding to drop
    pairs, inverse, count = _unique(keys.flatten() if every else keys[mask], space)  # [G], [M], [G]
    row, state = pairs % R, pairs // R
    query, state = state % Q, state // Q
    position, state = state % P, state // P
    counts = []
    for _ in range(K - 1):
        counts.append(state % (P + 1))
        state = state // (P + 1)
    counts.append(position + 1 - sum(counts))  # the last class: whatever the others leave of the prefix
    kl, hit = _evaluate(model, targets, query, torch.stack(counts, dim=-1).double(), row)
    if every:
        per_position = kl[inverse].view(N, P)
    else:
        per_position = torch.zeros(N, P, dtype=torch.float64)
        per_position[mask] = kl[inverse]
    return Tally(per_position, kl, hit, count, row)


def _state_keys(model: CountModel, tokens: torch.Tensor) -> torch.Tensor:
    """tokens [n, P] → [n, P] int64: query class + Q·(position + P·(n_0 + (P+1)·(n_1 + …))), where n_c
    counts keys of class c so far; the last class's count follows from the others and the position."""
    P = tokens.shape[1]
    keys = model.query_class[tokens] + model.n_query * torch.arange(P)  # [n, P]
    key_class = model.key_class[tokens]  # [n, P]
    radix = model.n_query * P
    for c in range(model.n_key - 1):
        keys += radix * (key_class == c).cumsum(1)
        radix *= P + 1
    return keys


def _unique(keys: torch.Tensor, space: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """torch.unique(keys, return_inverse=True, return_counts=True) for keys in [0, space): by counting
    when the space is small next to the keys (no sort), else by sorting. Both give sorted keys."""
    if space > 4 * len(keys) + (1 << 16):
        return torch.unique(keys, return_inverse=True, return_counts=True)
    count = torch.bincount(keys, minlength=space)  # [space]
    present = count > 0
    index = present.cumsum(0) - 1  # [space] position of each present key among the present ones
    return present.nonzero()[:, 0], index[keys], count[present]


def _counts_tally(model: CountModel, eval_set: EvalSet, targets: Targets) -> Tally:
    P = eval_set.row_index.shape[1]
    eye = torch.eye(model.n_key, dtype=torch.float64)

    def predict(tokens: torch.Tensor) -> torch.Tensor:  # [n, P] → [n, P, V]
        flat = tokens.flatten()
        counts = eye.index_select(0, model.key_class[flat]).view(*tokens.shape, -1).cumsum(1)  # [n, P, K]
        return model.log_probs(model.query_class[flat], counts.flatten(0, 1)).view(*tokens.shape, -1)

    return _per_position(eval_set, targets, max(1, BLOCK // P), predict)


def _positions_tally(model: PositionModel, eval_set: EvalSet, targets: Targets) -> Tally:
    P = eval_set.row_index.shape[1]
    return _per_position(eval_set, targets, max(1, BLOCK * 32 // (P * max(P, 28))), model.log_probs)


def _per_position(eval_set: EvalSet, targets: Targets, step: int, predict) -> Tally:
    """Every real position its own group; `predict` maps blocks of `step` texts to log-probabilities."""
    N, P = eval_set.row_index.shape
    mask, row_index = eval_set.mask, eval_set.row_index
    per_position = torch.zeros(N, P, dtype=torch.float64)
    kls, hits = [], []
    with torch.no_grad():
        for i in range(0, N, step):
            real, rows, log_q = mask[i : i + step], row_index[i : i + step], predict(eval_set.tokens[i : i + step, :P])
            if real.all():  # texts of equal length: no padding to drop
                kl, hit = targets.kl_and_hits(rows.flatten(), log_q.flatten(0, 1))
                per_position[i : i + step] = kl.view(rows.shape)
            else:
                kl, hit = targets.kl_and_hits(rows[real], log_q[real])
                per_position[i : i + step][real] = kl
            kls.append(kl)
            hits.append(hit)
    M = int(mask.sum())
    return Tally(per_position, torch.cat(kls), torch.cat(hits), torch.ones(M, dtype=torch.long), row_index[mask])


def _evaluate(
    model: CountModel, targets: Targets, query: torch.Tensor, counts: torch.Tensor, rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """KL and hits of G (state, target row) pairs, BLOCK at a time."""
    kls, hits = [], []
    for b in range(0, len(rows), BLOCK):
        log_q = model.log_probs(query[b : b + BLOCK], counts[b : b + BLOCK])  # [BLOCK, V]
        kl, hit = targets.kl_and_hits(rows[b : b + BLOCK], log_q)
        kls.append(kl)
        hits.append(hit)
    if not kls:
        return torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.bool)
    return torch.cat(kls), torch.cat(hits)
