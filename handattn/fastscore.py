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
  (which predicts nothing), in cache-sized blocks, from token and position tables, with an
  additive causal mask. Its targets, position-major columns, are also kept for the next file.

Every path ends in the same tail, `kl_and_hits_T` on the logits of a whole block as columns,
CHUNK positions at a time.

Every path is held to the plain path (`handattn.score.plain_tally`: AttentionModel on whole
texts, dense targets) by the tests. Shapes: N texts, P predicted positions, V = 28, X kinds,
Q query classes, K key classes, G distinct states, S positions evaluated at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import torch

from handattn.evalset import EvalSet
from handattn.tables import CountModel, GroupedLayer, PositionModel, Workspace, kinds, round_up
from handattn.tally import Tally, TargetColumns, Targets, kl_and_hits_T
from handattn.vocab import D_VOCAB
from handattn.weights import Weights

KEY_BITS = 62  # (state, target row) keys are int64; one bit spare
MAX_LEADING = 4  # a W_P reaching only this many first positions still goes by kinds
KEY_POSITIONS = 1 << 16  # states: positions whose keys are computed at once
KIND_BLOCK = 1 << 16  # counts: positions sorted together (their [65536, 28] float64 counts take 14 MiB)
CACHE_BYTES = 128 << 20  # counts: the weight-free blocks kept for the next file
CHUNK = 4096  # positions evaluated at once (their [32, 4096] float64 logits take 1 MiB)
POSITION_BLOCK = 1 << 16  # positions: attention scores evaluated at once ([n, P, P] float64: 512 KiB)
FIXED_BLOCK = 1 << 13  # positions, when every head has a fixed pattern: positions evaluated at once

Block = TypeVar("Block", bound="KindBlock | TargetColumns")


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
    """The fast paths over one evaluation set; keeps the weight-free blocks of the counts and positions paths."""

    def __init__(self, eval_set: EvalSet, targets: Targets):
        self.eval_set, self.targets = eval_set, targets
        self._kept: dict[tuple, list] = {}  # (path, …) → its first weight-free blocks, as many as fit
        self._kept_bytes = 0

    @torch.no_grad()
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
            step = max(1, KIND_BLOCK // es.row_index.shape[1])
            blocks = self._blocks(
                ("kinds", leading), step, lambda texts: KindBlock.build(es, self.targets, texts, leading)
            )
            return path, _counts_tally(model, blocks, es)
        model = PositionModel(weights, round_up(es.row_index.shape[1]))
        step = _position_step(model)
        blocks = self._blocks(("positions", step), step, lambda texts: _position_targets(es, self.targets, texts))
        return path, _positions_tally(model, blocks, step, es)

    def _blocks(self, key: tuple, step: int, build: Callable[[slice], Block]) -> Iterator[Block]:
        """The weight-free blocks of `step` texts each, in order: the kept ones, then the rest built
        (and kept while they fit in CACHE_BYTES)."""
        kept = self._kept.setdefault(key, [])
        yield from kept
        for i in range(len(kept) * step, len(self.eval_set.tokens), step):
            block = build(slice(i, i + step))
            if len(kept) * step == i and self._kept_bytes + block.nbytes <= CACHE_BYTES:
                kept.append(block)
                self._kept_bytes += block.nbytes
            yield block


def _group_logits(layer: GroupedLayer, a: int, counts_T: torch.Tensor, logits: torch.Tensor, work: Workspace) -> None:
    """The logits [V → 32, S] of S positions of query class a from their counts_T [C, S], CHUNK at a time."""
    C, S = counts_T.shape
    for i in range(0, S, CHUNK):
        here = slice(i, min(i + CHUNK, S))
        counts = work.take("counts", C, here.stop - here.start).copy_(counts_T[:, here])  # float64
        layer.logits_T(a, counts, logits[:, here], work)


def _kl_and_hits(logits_T: torch.Tensor, targets: TargetColumns, work: Workspace) -> tuple[torch.Tensor, torch.Tensor]:
    """`kl_and_hits_T` on S positions' logits_T [V, S] (overwritten), CHUNK at a time → kl [S], hit [S]."""
    V, S = logits_T.shape
    kl, hit = torch.empty(S, dtype=torch.float64), torch.empty(S, dtype=torch.bool)
    for i in range(0, S, CHUNK):
        here = slice(i, min(i + CHUNK, S))
        scratch = work.take("scratch", V, here.stop - here.start)
        part = targets[here]
        kl_and_hits_T(logits_T[:, here], part.p_T, part.log_p_T, part.best, scratch, kl[here], hit[here])
    return kl, hit


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
    order = torch.argsort(query, stable=True)  # [G] states of one query class together
    counts, sizes = counts[:, order], torch.bincount(query, minlength=Q).tolist()
    layer, work = model.grouped(torch.arange(K)), Workspace()
    logits = work.take("logits", round_up(D_VOCAB), len(row))  # [V → 32, G]
    start = 0
    for a, size in enumerate(sizes):
        if size:
            _group_logits(layer, a, counts[:, start : start + size], logits[:, start : start + size], work)
            start += size
    kl, hit = torch.empty(len(row), dtype=torch.float64), torch.empty(len(row), dtype=torch.bool)
    kl[order], hit[order] = _kl_and_hits(logits[:D_VOCAB], targets.columns(row[order]), work)
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
    targets: TargetColumns  # [V, S] and [S]
    row: torch.Tensor  # [S] target row

    @property
    def nbytes(self) -> int:
        tensors = (self.position, self.counts_T, self.row)
        return self.targets.nbytes + sum(t.element_size() * t.nelement() for t in tensors)

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
            targets=targets.columns(row),
            row=row,
        )


def _counts_tally(model: CountModel, blocks: Iterator[KindBlock], eval_set: EvalSet) -> Tally:
    """Every real position its own group: the logits one kind at a time through `GroupedLayer`,
    then the KL of the whole block."""
    layer, work = model.grouped(model.key_class), Workspace()  # key columns: the kinds
    kls, hits, rows, positions = [], [], [], []
    for block in blocks:
        logits = work.take("logits", round_up(D_VOCAB), len(block.row))  # [V → 32, S]
        start = 0
        for x, size in enumerate(block.sizes):
            if size:
                here = slice(start, start + size)
                start += size
                _group_logits(layer, int(model.query_class[x]), block.counts_T[:, here], logits[:, here], work)
        kl, hit = _kl_and_hits(logits[:D_VOCAB], block.targets, work)
        kls.append(kl)
        hits.append(hit)
        rows.append(block.row)
        positions.append(block.position)
    N, P = eval_set.row_index.shape
    kl = torch.cat(kls)
    per_position = torch.zeros(N * P, dtype=torch.float64)
    per_position[torch.cat(positions)] = kl
    return Tally(per_position.view(N, P), kl, torch.cat(hits), None, torch.cat(rows))


# -- positions -----------------------------------------------------------------------------------------------


def _position_step(model: PositionModel) -> int:
    """Texts per block: as many as fill POSITION_BLOCK with attention scores, or FIXED_BLOCK positions
    when every head has a fixed pattern (no scores per text)."""
    P_padded = len(model.causal)
    return max(1, POSITION_BLOCK // (P_padded * P_padded) if model.heads else FIXED_BLOCK // P_padded)


def _position_targets(eval_set: EvalSet, targets: Targets, texts: slice) -> TargetColumns:
    """The positions path's weight-free half for some texts: their targets, position-major [V, P · n]."""
    return targets.columns(eval_set.row_index[texts].T.flatten())


def _positions_tally(model: PositionModel, blocks: Iterator[TargetColumns], step: int, eval_set: EvalSet) -> Tally:
    """Every real position its own group, the layer on blocks of `step` texts, position-major. The
    model's tables are ROWS-padded past the last predicted position (causal attention keeps the
    padding out); the KL of padding is computed with the rest and dropped."""
    N, P = eval_set.row_index.shape
    tokens = torch.nn.functional.pad(eval_set.tokens[:, :P], (0, len(model.causal) - P))  # [N, P_padded]
    mask = eval_set.mask
    per_position = torch.zeros(N, P, dtype=torch.float64)
    kls, hits, work = [], [], Workspace()
    for i, targets in zip(range(0, N, step), blocks, strict=True):
        real = mask[i : i + step]  # [n, P]
        logits = model.logits(tokens[i : i + step])[:P]  # [P, n, V]
        n = logits.shape[1]
        logits_T = work.take("logits", D_VOCAB, P * n)
        logits_T.view(D_VOCAB, P, n).copy_(logits.permute(2, 0, 1))  # [V, P · n] positions along the columns
        kl, hit = _kl_and_hits(logits_T, targets, work)  # [P · n]
        kl, hit = kl.view(P, n).T, hit.view(P, n).T  # [n, P]
        if real.all():  # texts of equal length: no padding to drop
            per_position[i : i + step] = kl
            kl, hit = kl.flatten(), hit.flatten()  # mask order
        else:
            per_position[i : i + step] = torch.where(real, kl, 0.0)
            kl, hit = kl[real], hit[real]
        kls.append(kl)
        hits.append(hit)
    return Tally(per_position, torch.cat(kls), torch.cat(hits), None, eval_set.row_index[mask])
