"""The attention layer students fill by hand: one causal self-attention layer, written out.

Steps (TransformerLens names and orientation, weights on the right, x @ W):
    1. residual  r_i = W_E[x_i] + W_P[i]                       [N, T, d_model]
    2. per head  q = r W_Q, k = r W_K, v = r W_V
                 attn_scores = scale · q kᵀ, causal mask         [N, T, T]  (query_pos, key_pos)
                 pattern = softmax(attn_scores), z = pattern v   [N, T, d_value]
    3. logits = [r | z_1 | … | z_H] W_U + b_U                    [N, T, d_vocab]

Convention: no hidden 1/sqrt(d_head) (scale defaults to 1, as in the course's worked
examples); a position attends to itself and earlier positions; W_P rows past its
last are zero. Step 3 is a residual stream in which each head's W_O writes into
dimensions of its own. Everything runs in float64.

Shapes: N texts, T positions, d_model residual features, d_head query/key width,
d_value value width, d_vocab = 28.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from handattn.weights import Head, Weights


@dataclass
class Trace:
    """Every intermediate of one forward pass; per-head entries are lists in head order."""

    residual: torch.Tensor  # [N, T, d_model]
    q: list[torch.Tensor]  # [N, T, d_head] per head
    k: list[torch.Tensor]  # [N, T, d_head] per head
    v: list[torch.Tensor]  # [N, T, d_value] per head
    attn_scores: list[torch.Tensor]  # [N, T, T] per head, -inf above the diagonal
    pattern: list[torch.Tensor]  # [N, T, T] per head, rows sum to 1
    z: list[torch.Tensor]  # [N, T, d_value] per head
    logits: torch.Tensor  # [N, T, d_vocab]
    log_probs: torch.Tensor  # [N, T, d_vocab]
    tokens: torch.Tensor | None = None  # [N, T] the input, so views can label positions by token

    @property
    def probs(self) -> torch.Tensor:
        return self.log_probs.exp()  # [N, T, d_vocab]

    def __repr__(self) -> str:  # a summary: the tensors themselves are a print(trace.pattern[0]) away
        N, T, d_model = self.residual.shape
        return f"Trace({N} texts × {T} positions, d_model {d_model}, {len(self.q)} heads)"

    def _repr_html_(self) -> str:  # Jupyter: every head's pattern as a shaded table
        from handattn.views.html import trace_html

        return trace_html(self)


class AttentionHead(nn.Module):
    """One causal attention head: each position asks with its query, every position up to it
    answers with its key, and the head returns the softmax-weighted sum of their values.

    Written out step by step (scores, mask, softmax, weighted sum): this is the readable
    reference that faster scoring paths are tested against.
    """

    def __init__(self, head: Head, scale: float):
        super().__init__()
        self.name, self.dims, self.values, self.scale = head.name, head.dims, head.values, scale
        self.W_Q = nn.Parameter(head.W_Q.clone())  # [d_model, d_head]
        self.W_K = nn.Parameter(head.W_K.clone())  # [d_model, d_head]
        self.W_V = nn.Parameter(head.W_V.clone())  # [d_model, d_value]

    def forward(self, r: torch.Tensor) -> tuple[torch.Tensor, ...]:
        T = r.shape[-2]
        q = r @ self.W_Q  # [N, T, d_head]
        k = r @ self.W_K  # [N, T, d_head]
        v = r @ self.W_V  # [N, T, d_value]
        attn_scores = self.scale * (q @ k.transpose(-1, -2))  # [N, T, T]
        causal = torch.ones(T, T, dtype=torch.bool, device=r.device).tril()  # [T, T] key_pos ≤ query_pos
        attn_scores = attn_scores.masked_fill(~causal, float("-inf"))
        pattern = attn_scores.softmax(dim=-1)  # [N, T, T]
        z = pattern @ v  # [N, T, d_value]
        return q, k, v, attn_scores, pattern, z


class AttentionModel(nn.Module):
    """One causal self-attention layer with a direct path, built from (and back into) `Weights`."""

    def __init__(self, weights: Weights):
        super().__init__()
        self.problem, self.features, self.scale = weights.problem, weights.features, weights.scale
        self.params = dict(weights.params)
        self.W_E = nn.Parameter(weights.W_E.clone())  # [d_vocab, d_model]
        self.W_P = None if weights.W_P is None else nn.Parameter(weights.W_P.clone())  # [n_pos, d_model]
        self.heads = nn.ModuleList(AttentionHead(h, weights.scale) for h in weights.heads)
        self.W_U = nn.Parameter(weights.W_U.clone())  # [d_model + Σ d_value, d_vocab]
        self.b_U = nn.Parameter(weights.b_U.clone())  # [d_vocab]

    def forward(self, tokens: torch.Tensor) -> Trace:
        """tokens [N, T] int64 → the Trace of the forward pass."""
        r = self.W_E[tokens]  # [N, T, d_model]
        if self.W_P is not None:
            n = min(tokens.shape[-1], self.W_P.shape[0])
            r = torch.cat([r[..., :n, :] + self.W_P[:n], r[..., n:, :]], dim=-2)  # rows past W_P get nothing
        q, k, v, attn_scores, pattern, z = [], [], [], [], [], []
        for head in self.heads:
            q_h, k_h, v_h, attn_scores_h, pattern_h, z_h = head(r)
            q.append(q_h)
            k.append(k_h)
            v.append(v_h)
            attn_scores.append(attn_scores_h)
            pattern.append(pattern_h)
            z.append(z_h)
        stream = torch.cat([r, *z], dim=-1)  # [N, T, d_model + Σ d_value]
        logits = stream @ self.W_U + self.b_U  # [N, T, d_vocab]
        log_probs = logits.log_softmax(dim=-1)  # [N, T, d_vocab]
        return Trace(
            residual=r,
            q=q,
            k=k,
            v=v,
            attn_scores=attn_scores,
            pattern=pattern,
            z=z,
            logits=logits,
            log_probs=log_probs,
            tokens=tokens,
        )

    def to_weights(self) -> Weights:
        """The current parameters as `Weights` (e.g. after gradient descent), ready to save."""
        heads = [
            Head(W_Q=h.W_Q.detach(), W_K=h.W_K.detach(), W_V=h.W_V.detach(), name=h.name, dims=h.dims, values=h.values)
            for h in self.heads
        ]
        return Weights(
            problem=self.problem,
            heads=heads,
            W_U=self.W_U.detach(),
            b_U=self.b_U.detach(),
            W_E=self.W_E.detach(),
            W_P=None if self.W_P is None else self.W_P.detach(),
            features=self.features,
            scale=self.scale,
            params=self.params,
        )
