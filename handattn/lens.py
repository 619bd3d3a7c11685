"""Export a layer to TransformerLens, the library the field uses to study such layers.

`to_transformer_lens(weights)` builds a TransformerLens (4.x) model of the same layer: called on
token ids [N, T] it returns logits [N, T, 28] equal to handattn's (float64, to rounding), and its
cache holds the same attention pattern under `blocks.0.attn.hook_pattern` ([N, head, T, T]).
It needs the optional extra: pip install "handattn[lens]" (with torch pinned, e.g. `-c constraints.txt`).

How the layer maps onto TransformerLens's one attention-only block (no LayerNorm, float64):
    residual   d_model_TL = d_model + Σ d_value: the features, then one block per head
    W_E, W_pos the embedding and W_P, zero on the heads' blocks (W_pos zero past W_P's rows)
    W_Q        scale · attn_scale · W_Q: TransformerLens divides the scores by attn_scale where
               handattn multiplies by scale, so the scale is folded in and attn_scale kept safe
               (1 when d_head is 1, else 2: 4.x refuses 1 with wider heads, and reads ≤ 0 as √d_head)
    W_K, W_V   as they are, every head padded with zeros to a common d_head
    W_O        each head writes its value dimensions into its own block of the residual
    W_U, b_U   as they are; every other bias is zero
"""

from __future__ import annotations

import torch

from handattn.errors import MissingExtraError
from handattn.vocab import D_VOCAB
from handattn.weights import Weights
from handattn.weights.core import MAX_POSITIONS


def to_transformer_lens(weights: Weights, n_ctx: int = MAX_POSITIONS):
    """A TransformerLens `TransformerBridge` computing the same layer; texts up to n_ctx tokens."""
    try:
        from transformer_lens.config import TransformerBridgeConfig
        from transformer_lens.model_bridge import TransformerBridge
        from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint
    except ImportError:
        raise MissingExtraError("the TransformerLens export", "lens") from None
    state, d_model, d_head, attn_scale = hooked_state_dict(weights, n_ctx)
    cfg = TransformerBridgeConfig(
        d_model=d_model,
        d_head=d_head,
        n_heads=max(1, len(weights.heads)),
        n_layers=1,
        n_ctx=n_ctx,
        d_vocab=D_VOCAB,
        attn_only=True,
        positional_embedding_type="standard",
        normalization_type=None,
        attn_scale=attn_scale,
        dtype=torch.float64,
        seed=0,  # booting initialises weights (overwritten below) under a forked RNG: the caller's RNG is untouched
    )
    model = TransformerBridge.boot_native(cfg, dtype=torch.float64)
    model.load_state_dict(convert_tl_checkpoint(state, cfg), strict=True)
    return model.eval()


def hooked_state_dict(weights: Weights, n_ctx: int = MAX_POSITIONS) -> tuple[dict[str, torch.Tensor], int, int, float]:
    """The layer as a HookedTransformer-format state dict, with its d_model, d_head and attn_scale.

    Keys and shapes as TransformerLens names them: embed.W_E [d_vocab, d_model],
    pos_embed.W_pos [n_ctx, d_model], blocks.0.attn.W_Q/W_K/W_V [n_heads, d_model, d_head],
    W_O [n_heads, d_head, d_model], b_Q/b_K/b_V [n_heads, d_head], b_O [d_model],
    unembed.W_U [d_model, d_vocab], unembed.b_U [d_vocab].
    """
    w = weights
    n_features, heads = w.d_model, list(w.heads)
    d_model = n_features + sum(h.d_value for h in heads)
    d_head = max([1] + [max(h.d_head, h.d_value) for h in heads])
    attn_scale = 1.0 if d_head == 1 else 2.0
    n_heads = max(1, len(heads))  # a layer without heads gets one that writes nothing

    def zeros(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, dtype=torch.float64)

    W_E = zeros(D_VOCAB, d_model)
    W_E[:, :n_features] = w.W_E
    W_pos = zeros(n_ctx, d_model)
    if w.W_P is not None:
        n = min(n_ctx, len(w.W_P))
        W_pos[:n, :n_features] = w.W_P[:n]
    W_Q, W_K, W_V = zeros(n_heads, d_model, d_head), zeros(n_heads, d_model, d_head), zeros(n_heads, d_model, d_head)
    W_O = zeros(n_heads, d_head, d_model)
    block = n_features  # where this head's values start in the residual
    for i, h in enumerate(heads):
        W_Q[i, :n_features, : h.d_head] = h.W_Q * (w.scale * attn_scale)
        W_K[i, :n_features, : h.d_head] = h.W_K
        W_V[i, :n_features, : h.d_value] = h.W_V
        W_O[i, : h.d_value, block : block + h.d_value] = torch.eye(h.d_value, dtype=torch.float64)
        block += h.d_value
    state = {
        "embed.W_E": W_E,
        "pos_embed.W_pos": W_pos,
        "blocks.0.attn.W_Q": W_Q,
        "blocks.0.attn.W_K": W_K,
        "blocks.0.attn.W_V": W_V,
        "blocks.0.attn.W_O": W_O,
        "blocks.0.attn.b_Q": zeros(n_heads, d_head),
        "blocks.0.attn.b_K": zeros(n_heads, d_head),
        "blocks.0.attn.b_V": zeros(n_heads, d_head),
        "blocks.0.attn.b_O": zeros(d_model),
        "unembed.W_U": w.W_U.clone(),
        "unembed.b_U": w.b_U.clone(),
    }
    return state, d_model, d_head, attn_scale
