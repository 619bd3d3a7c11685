"""The training objective of gradient descent: mean KL over a set's predicted positions, differentiable.

Two ways to compute the same number (and gradient), up to float64 rounding:

- "plain": the model as defined (`AttentionModel` on whole texts) against dense targets. The
  reference, and the path for a layer with a position embedding.
- "counts" (no position embedding): a position's residual is its token's row of W_E, so every
  query, key and value is a per-token table, and the softmax over a prefix is a sum over token
  counts: at a position with token x whose prefix holds n_b tokens b (itself included), head h gives
        z = Σ_b n_b e_xb v_b / Σ_b n_b e_xb,   e_xb = exp(scale · q_x · k_b − m_x)
  with m_x the largest score of row x over every key token seen in the set (the common factor
  cancels). Only the predicted positions are computed, from a [tokens × tokens] table per head
  instead of a [T × T] pattern per text: about 4× less work per step on the reference shapes.
  Used while every row of scores spans ≤ EXP_RANGE nats, so no present term can underflow
  (e^-600 is a normal float64); past that, the plain path.

`tests/test_objective.py` holds the two paths to each other, value and gradient.
Shapes: N texts, T tokens, P = T − 1 predicted positions, M real ones, V = 28, U key tokens seen.
"""

from __future__ import annotations

import math

import torch

from handattn.evalset import EvalSet
from handattn.model import AttentionModel
from handattn.tables import EXP_TABLE_RANGE as EXP_RANGE  # a row of scores spanning ≤ this cannot underflow exp
from handattn.vocab import D_VOCAB


class Objective:
    """Mean KL over the training set's predicted positions, differentiable in the model's weights."""

    def __init__(self, eval_set: EvalSet):
        real = eval_set.mask  # [N, P]
        self.n = int(real.sum())
        self.tokens = eval_set.tokens  # [N, T] for the plain path
        p = eval_set.dense_target() * real[..., None]  # [N, P, V], padding rows 0
        self.p_texts = p
        plogp = torch.where(p > 0, p * torch.where(p > 0, p, 1.0).log(), 0.0)  # [N, P, V]
        self.neg_entropy = math.fsum(plogp.sum(-1).flatten().tolist()) / self.n  # mean Σ p log p
        x = eval_set.tokens[:, :-1][real]  # [M] token at each predicted position
        order = torch.argsort(x, stable=True)  # positions grouped by their token
        self.x = x[order]  # [M]
        self.row = eval_set.row_index[real][order]  # [M] target row of each position
        self.target_rows = eval_set.target_rows  # [R, V]
        self.p_by_token = torch.zeros(D_VOCAB, D_VOCAB, dtype=torch.float64).index_add_(0, x, p[real])  # [V, V] Σ p
        counts = torch.nn.functional.one_hot(eval_set.tokens, D_VOCAB).cumsum(1)[:, :-1][real][order]  # [M, V]
        self.seen = counts.any(0)  # [V] tokens that occur as keys
        self.counts = counts[:, self.seen].T.double().contiguous()  # [U, M] n_b: tokens b up to each position
        tokens, sizes = torch.unique_consecutive(self.x, return_counts=True)
        ends = sizes.cumsum(0).tolist()
        self.runs = [(x, end - size, end) for x, size, end in zip(tokens.tolist(), sizes.tolist(), ends, strict=True)]

    def __call__(self, model: AttentionModel, path: str = "auto") -> torch.Tensor:
        """The mean KL (a 0-d tensor with a graph back to the model's parameters). `path` is
        "auto" (counts where it applies), "counts" or "plain" (for tests)."""
        if path == "plain" or (path == "auto" and not self._counts_apply(model)):
            log_q = model(self.tokens).log_probs[:, :-1]  # [N, P, V]
            return self.neg_entropy - (self.p_texts * log_q).sum() / self.n  # KL = Σ p log p − Σ p log q
        if model.W_P is not None:
            raise ValueError("the counts path needs a layer without position embedding")
        return self._count_kl(model)

    def _counts_apply(self, model: AttentionModel) -> bool:
        """No position embedding, and no row of scores spanning more than EXP_RANGE nats."""
        if model.W_P is not None:
            return False
        with torch.no_grad():
            spans = [self._scores(head, model) for head in model.heads]  # [V, U] per head
            return all(float((s.amax(-1) - s.amin(-1)).max()) <= EXP_RANGE for s in spans)

    def _scores(self, head, model: AttentionModel) -> torch.Tensor:
        keys = model.W_E[self.seen]  # [U, d_model]
        return model.scale * ((model.W_E @ head.W_Q) @ (keys @ head.W_K).T)  # [V, U] query token × key token

    def _count_kl(self, model: AttentionModel) -> torch.Tensor:
        d_model = model.W_E.shape[1]
        direct = model.W_E @ model.W_U[:d_model] + model.b_U  # [V, V] logits of the residual alone, per token
        keys = model.W_E[self.seen]  # [U, d_model]
        ones = torch.ones(1, len(keys), dtype=torch.float64)
        z = []
        for head in model.heads:
            scores = self._scores(head, model)  # [V, U]
            e = (scores - scores.amax(-1, keepdim=True).detach()).exp()  # [V, U] ≤ 1, ≥ e^-600
            per_query = e[:, None, :] * torch.cat([(keys @ head.W_V).T, ones])  # [V, d_value + 1, U] e_xb [v_b | 1]
            # Σ_b n_b e_xb [v_b | 1], a matrix product per query token over the positions holding it
            weighted = torch.cat([per_query[x] @ self.counts[:, start:end] for x, start, end in self.runs], 1)
            z.append(weighted[:-1] / weighted[-1:])  # [d_value, M]
        z = torch.cat(z) if z else torch.zeros(0, self.n, dtype=torch.float64)  # [Σ d_value, M]
        W_Uz = model.W_U[d_model:]  # [Σ d_value, V]
        logits = direct[self.x] + z.T @ W_Uz  # [M, V]
        # Σ p·logits without a pass over [M, V]: per token for the direct path, per target row for the heads
        cross = (self.p_by_token * direct).sum() + (z * (W_Uz @ self.target_rows.T)[:, self.row]).sum()
        return self.neg_entropy - (cross - _log_sum_exp(logits).sum()) / self.n


def _log_sum_exp(logits: torch.Tensor) -> torch.Tensor:
    """[M, V] → [M] log Σ exp over the last dim, with one exp (torch's logsumexp takes a second in backward)."""
    top = logits.amax(-1, keepdim=True).detach()  # [M, 1] the result does not depend on it
    return (logits - top).exp().sum(-1).log() + top[:, 0]
