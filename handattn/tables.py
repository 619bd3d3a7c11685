"""The layer as tables, for the fast scoring paths (`handattn.fastscore`).

- `CountModel`: when W_P reaches no predicted position (or only the first few), a position's
  output depends only on its own kind and on how many keys of each kind its prefix holds. The
  layer becomes tables over token classes, and `GroupedLayer` evaluates it for many positions of
  one query class with two matrix products.
- `PositionModel`: a layer with a position embedding, as token and position tables.

Same bits on any thread count: MKL's dgemm gives the same result whatever the number of threads
when the product's rows come in multiples of 4 (its AVX2 kernels take 4 rows at a time and share
out a remainder by thread count), so every product here has a multiple of ROWS rows, padded with
zero rows where needed; `tests/test_fastscore.py` checks the scores on 1, 2 and 3 threads.

Shapes: V = 28, X kinds, Q query classes, K key classes, C key columns (classes or kinds),
S positions evaluated at once, D Σ d_value.
"""

from __future__ import annotations

import torch

from handattn.tally import exp_
from handattn.vocab import D_VOCAB
from handattn.weights import Weights

EXP_TABLE_RANGE = 600.0  # a row of attention scores spanning ≤ 600 nats: e^-600 is a normal float64
ROWS = 8  # products have a multiple of this many rows (see the module docstring)
_MINUS_INF = torch.tensor(float("-inf"), dtype=torch.float64)


def pad_rows(m: torch.Tensor) -> torch.Tensor:
    """m [r, …] with zero rows added up to a multiple of ROWS."""
    extra = round_up(len(m)) - len(m)
    return torch.cat([m, m.new_zeros(extra, *m.shape[1:])]) if extra else m


def round_up(n: int) -> int:
    """n rounded up to a multiple of ROWS."""
    return -(-n // ROWS) * ROWS


def logit_span(tables: list[torch.Tensor]) -> float:
    """A bound in nats on the span (largest − smallest) of any row of logits that is a sum of one row
    of each table, or of a convex combination of its rows (a head's values weighted by a softmax):
    the sum of the tables' own spans, plus an allowance for rounding (`handattn.tally.SoftmaxTerms.add`
    skips a pass where it is small)."""
    spans = sum(float(t.max() - t.min()) for t in tables if t.numel())
    return spans + 1e-12 * sum(float(t.abs().max()) for t in tables if t.numel())


def kinds(tokens: torch.Tensor, leading: int) -> torch.Tensor:
    """tokens [n, P] from position 0 → [n, P] int64 kind: token + V · min(position, leading)."""
    return tokens + D_VOCAB * torch.arange(tokens.shape[1]).clamp(max=leading)


class CountModel:
    """A layer as tables over kinds, when W_P reaches only the `leading` first positions (often none).

    Kind x is token x, or token x % V at position x // V when that is one of the `leading` first.
    Its residual is W_E[x] (+ W_P at those positions); a query class is a distinct residual, a key
    class a set of kinds with the same k and v rows in every head. At a position of query class a
    whose prefix holds n_c keys of class c, head h gives
        z = Σ_c n_c e_c v_c / Σ_c n_c e_c,   e_c = exp(scale · q_a · k_c − m)
    the softmax over the prefix with equal keys gathered; m is the largest present score, or the
    largest of the row when the row spans ≤ EXP_TABLE_RANGE nats (a "narrow" head: then e comes
    from a table, no present term can underflow, and the common factor cancels).
    """

    def __init__(self, weights: Weights, leading: int = 0):
        rows = [weights.W_E + weights.W_P[i] for i in range(leading)] + [weights.W_E]  # as the model adds them
        self.leading = leading
        self.residual, self.query_class = torch.unique(torch.cat(rows), dim=0, return_inverse=True)  # [Q, d], [X]
        parts = [self.residual @ m for h in weights.heads for m in (h.W_K, h.W_V)]
        constant = torch.zeros(len(self.residual), 1, dtype=torch.float64)  # keeps kv wide when every head is empty
        kv = torch.cat([*parts, constant], dim=-1)
        kv_rows, key_of_query = torch.unique(kv, dim=0, return_inverse=True)  # [K, Σ (d_head + d_value)], [Q]
        self.key_class = key_of_query[self.query_class]  # [X]
        self.n_query, self.n_key = len(self.residual), len(kv_rows)
        self.heads = []  # per head: scores [Q, K], exp table [Q, K] or None, [v | 1] [K, d_value + 1]
        d_model = weights.d_model
        self.direct = self.residual @ weights.W_U[:d_model] + weights.b_U  # [Q, V] the direct path's logits
        self.W_U_heads = weights.W_U[d_model:]  # [D, V]
        spans, at, first = [self.direct], 0, 0  # tables whose spans bound a row of logits' (as PositionModel's)
        for h in weights.heads:
            k, v = kv_rows[:, at : at + h.d_head], kv_rows[:, at + h.d_head : at + h.d_head + h.d_value]
            at += h.d_head + h.d_value
            spans.append(v @ self.W_U_heads[first : first + h.d_value])  # [K, V] each key class's logits
            first += h.d_value
            scores = weights.scale * ((self.residual @ h.W_Q) @ k.T)  # [Q, K]
            top = scores.max(-1, keepdim=True).values  # [Q, 1]
            narrow = bool((top - scores).max() <= EXP_TABLE_RANGE)
            ones = torch.ones(len(v), 1, dtype=torch.float64)  # the last output column is Σ_c e_c
            self.heads.append((scores, (scores - top).exp() if narrow else None, torch.cat([v, ones], 1)))
        self.span = logit_span(spans)  # nats: at least the span of any row of logits

    def grouped(self, columns: torch.Tensor) -> GroupedLayer:
        """The layer over key columns of the given key classes [C] (e.g. every class, or every kind)."""
        return GroupedLayer(self, columns)


class Workspace:
    """Buffers kept from chunk to chunk: a tally's chunks write their products and KL terms into the
    same few tensors instead of allocating new ones each time."""

    def __init__(self):
        self._flat: dict[str, tuple[torch.Tensor, int]] = {}  # name → (storage, its length)

    def take(self, name: str, rows: int, S: int) -> torch.Tensor:
        """A [rows, S] float64 buffer (contents undefined), the same storage on every call."""
        flat, size = self._flat.get(name, (None, 0))
        if size < rows * S:
            flat, size = self._flat[name] = torch.empty(rows * S, dtype=torch.float64), rows * S
        return flat.as_strided((rows, S), (S, 1))  # one call: this runs several times per kind of position


class GroupedLayer:
    """A CountModel evaluated for S positions of one query class a at once, from their counts over
    C key columns, positions along the columns. The narrow heads are one product
        W[a] [H·(d + 1) → ×8, C] @ counts [C, S] → per head d numerators Σ n e v and the denominator Σ n e
    (heads padded with zero values to the widest d), one division of each head's block by its
    denominator, which leaves z and a 1 (x / x is exactly 1) per head, and one product for the logits
        U[a] [V → 32, H·(d + 1)] @ z: each head's rows of W_U, the direct logits in head 0's 1 column.
    A wide head adds its own z (exponentiated against the largest present key) to that."""

    def __init__(self, model: CountModel, columns: torch.Tensor):
        narrow, wide, at = [], [], 0  # (scores, table, values of the columns, first row of W_U's head part)
        for scores, table, values in model.heads:
            head = (scores[:, columns], None if table is None else table[:, columns], values[columns], at)
            (narrow if table is not None else wide).append(head)
            at += values.shape[1] - 1
        self.wide = [  # per wide head: scores [Q, C], [v | 1]ᵀ [d_value + 1 → ×8, C], its rows of W_U [V → 32, d_value]
            (
                scores,
                pad_rows(values.T.contiguous()),
                pad_rows(model.W_U_heads[first : first + values.shape[1] - 1].T.contiguous()),
            )
            for scores, _, values, first in wide
        ]
        Q, V = model.n_query, D_VOCAB
        self.n_narrow, self.d = len(narrow), max((values.shape[1] - 1 for _, _, values, _ in narrow), default=0)
        block = self.d + 1
        W = torch.zeros(Q, round_up(self.n_narrow * block), len(columns), dtype=torch.float64)  # [Q, ·→ ×8, C]
        U = torch.zeros(Q, round_up(V), self.n_narrow * block, dtype=torch.float64)  # [Q, V → 32, H·(d + 1)]
        for i, (_, table, values, first) in enumerate(narrow):
            d = values.shape[1] - 1
            W[:, i * block : i * block + d] = values[:, :-1].T[None] * table[:, None]  # e(a, column) · v of the column
            W[:, i * block + self.d] = table  # e(a, column): the denominator
            U[:, :V, i * block : i * block + d] = model.W_U_heads[first : first + d].T
        if narrow:
            U[:, :V, self.d] = model.direct  # times head 0's 1
        self.W, self.U = W, U
        self.span = model.span
        self.direct_T = pad_rows(model.direct.T.contiguous())  # [V → 32, Q], for a layer without narrow heads

    def logits_T(self, a: int, counts_T: torch.Tensor, work: Workspace) -> torch.Tensor:
        """query class a, counts_T [C, S] float64 keys of each column so far → [V, S] logits (a view of a work buffer)."""
        S = counts_T.shape[1]
        logits = work.take("logits", len(self.direct_T), S)  # [V → 32, S]
        if self.n_narrow:
            weighted = work.take("weighted", self.W.shape[1], S)
            torch.mm(self.W[a], counts_T, out=weighted)  # [H·(d + 1) → ×8, S]
            blocks = weighted[: self.n_narrow * (self.d + 1)].view(self.n_narrow, self.d + 1, S)
            z = work.take("z", self.n_narrow * (self.d + 1), S)
            torch.div(blocks, blocks[:, self.d :], out=z.view_as(blocks))  # [H, d + 1, S]: z, then 1
            torch.mm(self.U[a], z, out=logits)
        else:
            logits.copy_(self.direct_T[:, a : a + 1].expand(-1, S))
        present = counts_T > 0 if self.wide else None  # [C, S]
        for scores, values_T, U_head in self.wide:  # exponentiate against the largest present key
            s = torch.where(present, scores[a][:, None], _MINUS_INF, out=work.take("scores", *counts_T.shape))
            e = exp_(s.sub_(s.amax(0))).mul_(counts_T)  # [C, S]: absent keys e^-700 · 0 = 0
            weighted = torch.mm(values_T, e, out=work.take("wide", len(values_T), S))  # [d_value + 1 → ×8, S]
            d_value = U_head.shape[1]
            logits.addmm_(U_head, weighted[:d_value] / weighted[d_value])
        return logits[:D_VOCAB]


class PositionModel:
    """A layer with a position embedding, as token and position tables: the residual is
    W_E[x] + W_P[i], so r M = (W_E M)[x] + (W_P M)[i] for every matrix M applied to it.

    Logits come position-major, [P, n, V]: a token table's rows for every text's tokens at once
    are then a [P, n · V] matrix with no transposing. A head whose queries and keys read only
    position features (W_E W_Q and W_E W_K have equal rows, e.g. problem4's "attend to the previous
    position") has the same pattern in every text: it is computed once, its values' position part
    joins the bias every text shares, and its token part is one product pattern @ (v W_U)[x] for
    all texts. Other heads run text by text, batched, with their scores key-major ([n, key, query]),
    so the sums over keys run down columns, across queries at once; the softmax is e^(score − top)
    (`handattn.tally.exp_`), times the causal mask, its sum coming from a 1 appended to the values:
    about twice the speed of torch's softmax along rows of P, and the same bits on any thread count
    (torch's softmax over a non-last dim is not).

    `span` bounds every row of logits' span (`logit_span`): each logit is a sum of one row of each
    table (the direct path's, the bias's) and of convex combinations of rows (a head's values,
    weighted by its pattern)."""

    def __init__(self, weights: Weights, P: int):
        W_P = torch.zeros(P, weights.d_model, dtype=torch.float64)  # rows past W_P's last are zero
        if weights.W_P is not None:
            n = min(P, len(weights.W_P))
            W_P[:n] = weights.W_P[:n]
        d_model, at = weights.d_model, weights.d_model

        def tables(M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return weights.W_E @ M, W_P @ M  # [V, ·], [P, ·]

        token_logits, position_logits = tables(weights.W_U[:d_model])
        self.token_direct = token_logits + weights.b_U  # [V, V] the direct path's logits of each token
        bias = position_logits.clone()  # [P, V] logits every text shares at a position
        self.causal = torch.full((P, P), float("-inf"), dtype=torch.float64).triu(1)  # [P, P] 0 where key ≤ query
        self.causal_T = self.causal.T.contiguous()  # [P, P] keys along the rows
        self.causal_ones_T = torch.isfinite(self.causal_T).double()  # [P, P] 1 where key ≤ query
        self.scale = weights.scale
        spans = [self.token_direct]  # tables whose spans bound a row of logits'
        self.heads = []  # per head run text by text: q and k tables, v table, the head's rows of W_U [d_value, V]
        self.fixed = []  # per head with a fixed pattern: the pattern's `_pieces`, its token values' logits (v W_U) [V, V]
        for h in weights.heads:
            q, k, W_U_head = tables(h.W_Q), tables(h.W_K), weights.W_U[at : at + h.d_value]
            at += h.d_value
            if bool((q[0] == q[0][:1]).all() and (k[0] == k[0][:1]).all()):  # no token changes q or k
                scores = self.causal + self.scale * ((q[0][:1] + q[1]) @ (k[0][:1] + k[1]).T)  # [P, P]
                pattern = scores.softmax(dim=-1)
                token_values, position_values = tables(h.W_V @ W_U_head)  # [V, V], [P, V]
                bias += pattern @ position_values  # Σ_j pattern[t, j] (W_P v W_U)[j]
                self.fixed.append((_pieces(pattern), token_values))
                spans.append(token_values)
            else:
                v_token, v_position = tables(h.W_V)  # [V, d_value], [P, d_value]
                zeros, ones = v_token.new_zeros(len(v_token), 1), v_position.new_ones(P, 1)
                v = torch.cat([v_token, zeros], 1), torch.cat([v_position, ones], 1)  # rows sum to [v | 1]
                self.heads.append((q, k, v, W_U_head))
                spans += tables(h.W_V @ W_U_head)
        self.bias = bias
        spans.append(bias)
        self.span = logit_span(spans)  # nats: at least the span of any row of logits

    def logits(self, tokens: torch.Tensor, work: Workspace | None = None) -> torch.Tensor:
        """tokens [n, P] → [P, n, V] logits at every position, position-major (in a buffer of work,
        when given: block after block, the same memory)."""
        n, P = tokens.shape
        work = work or Workspace()
        by_position = tokens.T.flatten()  # [P · n]
        logits = torch.index_select(self.token_direct, 0, by_position, out=work.take("logits", P * n, D_VOCAB))
        logits = logits.view(P, n * D_VOCAB)  # [P, n · V]
        for pieces, token_values in self.fixed:  # Σ_j pattern[t, j] (v W_U)[x_j], every text at once
            values = torch.index_select(token_values, 0, by_position, out=work.take("values", P * n, D_VOCAB))
            values = values.view(P, n * D_VOCAB)
            for queries, keys, piece in pieces:
                logits[queries].addmm_(piece, values[keys])
        logits = logits.view(P, n, D_VOCAB).add_(self.bias[:, None])  # [P, n, V]
        if self.heads:
            flat = tokens.flatten()

            def rows(table: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:  # [n, P, ·]
                return table[0].index_select(0, flat).view(n, P, -1) + table[1]

            for q_table, k_table, v_table, W_U_head in self.heads:
                q, k = rows(q_table), rows(k_table)  # [n, P, d_head]
                scores_T = torch.baddbmm(self.causal_T.expand(n, -1, -1), k, q.transpose(1, 2), alpha=self.scale)
                weights_T = exp_(scores_T.sub_(scores_T.amax(1, keepdim=True))).mul_(self.causal_ones_T)
                summed = weights_T.transpose(1, 2) @ rows(v_table)  # [n, query, d_value + 1]: Σ e v, then Σ e
                z = summed[..., :-1] / summed[..., -1:]  # the softmax-weighted values
                logits += (z @ W_U_head).transpose(0, 1)  # [P, n, V]
        return logits


PIECE_ROWS = 16  # a fixed pattern's product is taken this many query positions at a time (a multiple of ROWS)
PIECE_GAP = 8  # key columns of zeros narrower than this inside a piece are multiplied anyway


def _pieces(pattern: torch.Tensor) -> list[tuple[slice, slice, torch.Tensor]]:
    """A fixed pattern [P, P] as the pieces that hold its nonzero weights: PIECE_ROWS query rows at a
    time, each row block's runs of key columns with a nonzero weight (runs closer than PIECE_GAP
    joined). Causal attention leaves every key after the last query out, and a sharp pattern (a
    softmax whose far weights round to exactly 0) leaves out the far keys: pattern @ values is the
    sum of piece @ values[keys] over the pieces, the zero weights' exact 0 terms left out."""
    pieces = []
    for i in range(0, len(pattern), PIECE_ROWS):
        queries = slice(i, min(i + PIECE_ROWS, len(pattern)))
        used = pattern[queries].ne(0).any(0).nonzero()[:, 0].tolist()  # key columns with a weight
        runs: list[list[int]] = []
        for key in used:
            if runs and key - runs[-1][1] < PIECE_GAP:
                runs[-1][1] = key + 1
            else:
                runs.append([key, key + 1])
        pieces += [(queries, slice(a, b), pattern[queries, a:b].contiguous()) for a, b in runs]
    return pieces
