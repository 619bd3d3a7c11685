"""The fast paths of the Scorer: the model's prediction at every predicted position, without
running the layer text by text, paired with the exact targets into a `Tally`.

A position's residual is W_E[x] + W_P[i]. When W_P reaches none of the predicted positions, or
only the MAX_LEADING first ones, a position's "kind" is its token, or its (token, position) at
those first positions, and the layer's output there depends only on its own kind and on how many
keys of each kind its prefix holds, itself included (`handattn.tables.CountModel`):

- "states": kinds with equal residuals form query classes, kinds with equal k and v rows in every
  head key classes. Each position gets a 62-bit key of its (query class, key-class counts) state
  and its target row, and the layer runs once per distinct key: a few hundred to a few thousand
  for hand-written files.
- "counts": too many classes for a 62-bit key (a dense one-hot file, what `solve` writes). The
  same arithmetic once per position: positions sorted by kind, so each kind's positions share one
  table, CHUNK at a time into buffers kept from chunk to chunk. The sorting, the counts and the
  targets' columns are the same for every file, so `FastScorer` keeps them (up to CACHE_BYTES)
  for the next file.
- "positions" (a position embedding further in): the layer on every text minus its last token
  (which predicts nothing), in cache-sized blocks of texts, from token and position tables, with
  an additive causal mask; a head whose pattern is the same in every text is computed once. The
  blocks' tokens and position-major target rows are kept for the next file.

Every path is held to the plain path (`handattn.score.plain_tally`: AttentionModel on whole
texts, dense targets) by the tests. Shapes: N texts, P predicted positions, V = 28, X kinds,
Q query classes, K key classes, G distinct states, S positions evaluated at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from handattn.evalset import EvalSet
from handattn.tables import CountModel, GroupedLayer, PositionModel, Workspace, kinds, round_up
from handattn.tally import SoftmaxTerms, Tally, Targets
from handattn.vocab import D_VOCAB
from handattn.weights import Weights

KEY_BITS = 62  # (state, target row) keys are int64; one bit spare
MAX_LEADING = 4  # a W_P reaching only this many first positions still goes by kinds
KEY_POSITIONS = 1 << 16  # states: positions whose keys are computed at once
KIND_BLOCK = 1 << 16  # counts: positions sorted together (their [65536, 28] float64 counts take 14 MiB)
CACHE_BYTES = 128 << 20  # counts: the weight-free blocks kept for the next file
CHUNK = 4096  # states and counts: positions evaluated at once (their [32, 4096] float64 logits take 1 MiB)
POSITION_BLOCK = 1 << 16  # positions: attention scores evaluated at once ([n, P, P] float64: 512 KiB)
POSITION_ROWS = 2048  # positions, every head of a fixed pattern: positions at once ([2048, 28] logits)


def leading_positions(weights: Weights, eval_set: EvalSet) -> int:
    """How many first positions W_P reaches: up to its last nonzero row among the predicted positions."""
    if weights.W_P is None:
        return 0
    nonzero = weights.W_P[: eval_set.tokens.shape[1] - 1].any(-1).nonzero()
    return int(nonzero[-1]) + 1 if len(nonzero) else 0


def choose_path(weights: Weights, eval_set: EvalSet, model: CountModel | None = None) -> str:
    """The path `FastScorer.tally` takes: positions if W_P reaches past the MAX_LEADING first
    positions, else states if a (state, target row) key fits in KEY_BITS, else counts."""
    leading = leading_positions(weights, eval_set)
    if leading > MAX_LEADING:
        return "positions"
    model = model or CountModel(weights, leading)
    return "states" if _key_space(model, eval_set) < 2**KEY_BITS else "counts"


class FastScorer:
    """The fast paths over one evaluation set; keeps the counts and positions paths' weight-free blocks."""

    def __init__(self, eval_set: EvalSet, targets: Targets):
        self.eval_set, self.targets = eval_set, targets
        self._blocks: dict[int, list[KindBlock]] = {}  # leading → the first blocks, as many as fit
        self._kept_bytes = 0
        self._position_blocks: dict[int, PositionBlocks] = {}  # texts per block → the blocks

    def tally(self, weights: Weights, path: str = "auto") -> tuple[str, Tally]:
        """The Tally of these weights through `path` (default: `choose_path`), and the path taken."""
        es = self.eval_set
        leading = leading_positions(weights, es)
        model = CountModel(weights, leading) if path != "positions" and leading <= MAX_LEADING else None
        if path == "auto":
            path = choose_path(weights, es, model)
        if path in ("states", "counts") and model is None:
            raise ValueError(f"the {path} path needs W_P to reach at most the first {MAX_LEADING} positions")
        if path == "states":
            return path, _states_tally(model, es, self.targets)
        if path == "counts":
            return path, _counts_tally(model, self._kind_blocks(leading), es)
        model = PositionModel(weights, round_up(es.row_index.shape[1]))
        return path, _positions_tally(model, self._position_blocks_for(model), es, self.targets)

    def _position_blocks_for(self, model: PositionModel) -> PositionBlocks:
        """The positions path's blocks, kept: a head run text by text bounds a block by its [n, P, P]
        scores (POSITION_BLOCK); when every pattern is fixed, only the logits do (POSITION_ROWS)."""
        P_padded = len(model.causal)
        step = max(1, POSITION_BLOCK // P_padded**2 if model.heads else POSITION_ROWS // P_padded)
        if step not in self._position_blocks:
            self._position_blocks[step] = PositionBlocks.split(self.eval_set, self.targets, step)
        return self._position_blocks[step]

    def _kind_blocks(self, leading: int) -> Iterator[KindBlock]:
        """The counts path's blocks in order: the kept ones, then the rest built (and kept while they fit)."""
        kept = self._blocks.setdefault(leading, [])
        yield from kept
        N, P = self.eval_set.row_index.shape
        step = max(1, KIND_BLOCK // P)
        for i in range(len(kept) * step, N, step):
            block = KindBlock.build(self.eval_set, self.targets, slice(i, i + step), leading)
            if len(kept) * step == i and self._kept_bytes + block.nbytes <= CACHE_BYTES:
                kept.append(block)
                self._kept_bytes += block.nbytes
            yield block


# -- states --------------------------------------------------------------------------------------------------


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
    counts = torch.stack(counts).double()  # [K, G]
    layer, work = model.grouped(torch.arange(K)), Workspace()
    order = torch.argsort(query, stable=True)  # [G] states of one query class together
    sizes = torch.bincount(query, minlength=Q).tolist()
    terms, start = SoftmaxTerms(len(row)), 0  # in that order
    for a, size in enumerate(sizes):
        if size:
            here = order[start : start + size]
            _columns(layer, a, counts[:, here], targets.p[row[here]].T.contiguous(), terms, work, offset=start)
            start += size
    rows = row[order]
    kl_sorted, hit_sorted = terms.kl_and_hits(targets.plogp[rows], targets.mass[rows], targets.best[rows])
    kl, hit = torch.empty_like(kl_sorted), torch.empty_like(hit_sorted)
    kl[order], hit[order] = kl_sorted, hit_sorted
    if every:
        per_position = kl[inverse].view(N, P)
    else:
        per_position = torch.zeros(N, P, dtype=torch.float64)
        per_position[mask] = kl[inverse]
    return Tally(per_position, kl, hit, count, row)


def _state_keys(model: CountModel, tokens: torch.Tensor) -> torch.Tensor:
    """tokens [n, P] → [n, P] int64: query class + Q·(position + P·(n_0 + (P+1)·(n_1 + …))), where n_c
    counts keys of class c so far; the last class's count follows from the others and the position."""
    P, kind = tokens.shape[1], kinds(tokens, model.leading)
    keys = model.query_class[kind] + model.n_query * torch.arange(P)  # [n, P]
    key_class = model.key_class[kind]  # [n, P]
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


# -- counts --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindBlock:
    """The weight-free half of the counts path for some texts: their real positions sorted by kind
    (stable), how many there are of each kind, and per position, in that order, the keys of each
    kind so far and its target, as columns (positions along the columns, as GroupedLayer's logits)."""

    position: torch.Tensor  # [S] int64 index into the set's N · P positions
    sizes: list[int]  # [X] positions of each kind
    counts_T: torch.Tensor  # [X, S] uint8 (int16 past 255 positions) keys of each kind up to and including the position
    p_T: torch.Tensor  # [V, S] the exact next-token distribution
    plogp: torch.Tensor  # [S] its Σ p log p
    mass: torch.Tensor  # [S] its Σ p
    best: torch.Tensor  # [S] probability of a most-likely token
    row: torch.Tensor  # [S] target row

    @property
    def nbytes(self) -> int:
        tensors = (self.position, self.counts_T, self.p_T, self.plogp, self.mass, self.best, self.row)
        return sum(t.element_size() * t.nelement() for t in tensors)

    @staticmethod
    def build(eval_set: EvalSet, targets: Targets, texts: slice, leading: int) -> KindBlock:
        P = eval_set.row_index.shape[1]
        X = D_VOCAB * (leading + 1)
        kind = kinds(eval_set.tokens[texts, :P], leading).flatten()  # [n · P]
        real = eval_set.mask[texts].flatten().nonzero()[:, 0]  # [S]
        order = real[torch.argsort(kind[real], stable=True)]  # [S] real positions, sorted by kind
        counts = torch.nn.functional.one_hot(kind, X).view(-1, P, X).cumsum(1).view(-1, X)  # [n · P, X] int64
        row = eval_set.row_index[texts].flatten()[order]  # [S]
        return KindBlock(
            position=order + texts.start * P,
            sizes=torch.bincount(kind[order], minlength=X).tolist(),
            counts_T=counts.index_select(0, order).T.to(torch.uint8 if P < 256 else torch.int16),
            p_T=targets.p.index_select(0, row).T.contiguous(),
            plogp=targets.plogp[row],
            mass=targets.mass[row],
            best=targets.best[row],
            row=row,
        )


def _counts_tally(model: CountModel, blocks: Iterator[KindBlock], eval_set: EvalSet) -> Tally:
    """Every real position its own group, one kind at a time through `GroupedLayer`."""
    layer, work = model.grouped(model.key_class), Workspace()  # key columns: the kinds
    query_class = model.query_class.tolist()  # [X]
    kls, hits, rows, positions = [], [], [], []
    for block in blocks:
        terms, start = SoftmaxTerms(len(block.row)), 0
        for x, size in enumerate(block.sizes):
            if size:
                _columns(layer, query_class[x], block.counts_T, block.p_T, terms, work, start, start + size)
                start += size
        kl, hit = terms.kl_and_hits(block.plogp, block.mass, block.best)
        kls.append(kl)
        hits.append(hit)
        rows.append(block.row)
        positions.append(block.position)
    N, P = eval_set.row_index.shape
    kl = torch.cat(kls)
    per_position = torch.zeros(N * P, dtype=torch.float64)
    per_position[torch.cat(positions)] = kl
    return Tally(per_position.view(N, P), kl, torch.cat(hits), None, torch.cat(rows))


def _columns(
    layer: GroupedLayer,
    a: int,
    counts_T: torch.Tensor,
    p_T: torch.Tensor,
    terms: SoftmaxTerms,
    work: Workspace,
    start: int = 0,
    stop: int | None = None,
    offset: int = 0,
) -> None:
    """The softmax terms of positions start:stop (default: all S) of query class a, from their
    counts_T [C, S] and targets p_T [V, S], CHUNK positions at a time, into terms at offset + i for
    position i."""
    C, S = counts_T.shape
    stop = S if stop is None else stop
    with torch.no_grad():
        for i in range(start, stop, CHUNK):
            j = min(i + CHUNK, stop)
            counts = work.take("counts", C, j - i).copy_(counts_T[:, i:j])  # [C, n] float64
            logits_T = layer.logits_T(a, counts, work)  # [V, n]
            scratch = work.take("counts", D_VOCAB, j - i)  # the counts are spent: their buffer is the scratch
            terms.add(logits_T, p_T[:, i:j], scratch, offset + i, dim=0, span=layer.span)


# -- positions -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PositionBlocks:
    """The weight-free half of the positions path: the set in blocks of texts, each block's tokens
    ROWS-padded past the last predicted position, and per predicted position, position-major
    within each block (the order of the layer's logits), blocks one after another: its target
    row, the row's Σ p log p, Σ p and most-likely probability, and whether it is real."""

    blocks: list[tuple[slice, torch.Tensor]]  # texts, and their tokens [n, P_padded] int64, padding 0
    row: torch.Tensor  # [L] int64 target row
    plogp: torch.Tensor  # [L]
    mass: torch.Tensor  # [L]
    best: torch.Tensor  # [L]
    real: torch.Tensor | None  # [L] bool; None: every position is (texts of equal length)
    at: torch.Tensor  # [N · P] int64 where each (text, position) of the set comes in the L

    @staticmethod
    def split(eval_set: EvalSet, targets: Targets, step: int) -> PositionBlocks:
        """The set in blocks of `step` texts."""
        N, P = eval_set.row_index.shape
        tokens = torch.nn.functional.pad(eval_set.tokens[:, :P], (0, round_up(P) - P))  # [N, P_padded]
        texts = [slice(i, min(i + step, N)) for i in range(0, N, step)]
        row = torch.cat([eval_set.row_index[t].T.flatten() for t in texts])
        every = bool(eval_set.mask.all())
        real = None if every else torch.cat([eval_set.mask[t].T.flatten() for t in texts])
        per = targets.plogp[row], targets.mass[row], targets.best[row]
        at = torch.empty(N, P, dtype=torch.long)
        for t in texts:  # a block of n texts from `start` on holds text i's position j at start · P + j · n + i
            n = t.stop - t.start
            at[t] = t.start * P + torch.arange(P) * n + torch.arange(n)[:, None]
        return PositionBlocks([(t, tokens[t]) for t in texts], row, *per, real, at.flatten())


def _positions_tally(model: PositionModel, layout: PositionBlocks, eval_set: EvalSet, targets: Targets) -> Tally:
    """Every real position its own group, the layer on blocks of texts, position-major. The model's
    tables are ROWS-padded past the last predicted position (causal attention keeps the padding
    out); the KL of padding is computed with the rest and dropped. The groups come position-major
    within each block."""
    N, P = eval_set.row_index.shape
    terms, work, at = SoftmaxTerms(len(layout.row)), Workspace(), 0
    with torch.no_grad():
        for _, tokens in layout.blocks:
            S = P * len(tokens)
            logits = model.logits(tokens, work)[:P].view(S, D_VOCAB)  # [P · n, V]
            p = torch.index_select(targets.p, 0, layout.row[at : at + S], out=work.take("p", S, D_VOCAB))
            terms.add(logits, p, work.take("scratch", S, D_VOCAB), at, span=model.span)
            at += S
    kl, hit = terms.kl_and_hits(layout.plogp, layout.mass, layout.best)
    per_position = kl.index_select(0, layout.at).view(N, P)
    if layout.real is None:
        return Tally(per_position, kl, hit, None, layout.row)
    per_position.masked_fill_(~eval_set.mask, 0.0)
    return Tally(per_position, kl[layout.real], hit[layout.real], None, layout.row[layout.real])
