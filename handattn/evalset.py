"""Evaluation sets: texts and their exact next-token targets, built once, scored against many times.

A set comes from a problem's sampler and a seed (the default: the public seed 0,
2,048 texts of the problem's length), or from a file of texts, one per line.
Position t of a text predicts token t+1, so a text of T tokens has T−1 predicted
positions; texts of different lengths are padded at the end and masked (the mask
is exact: causal attention never lets padding reach an earlier position).

Targets are stored compactly: every distinct (context kind, exact distribution)
once, in `target_rows`, and per position the index of its row. Sets repeat a few
hundred or thousand distributions over millions of positions, so a set costs
about 16 bytes per position instead of 224 for dense targets (`dense_target`
still gives them for a few texts). Rows are told apart by the problem's integer
numerators and denominator, so one distribution written with two denominators
may be stored twice; nothing depends on rows being unique.

Shapes: N texts, T = longest text, P = T−1 predicted positions, V = 28,
R distinct target rows.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from handattn.errors import MAX_ISSUES, EvalFileError, EvalSetError, Issue, plural, shown
from handattn.problems import Problem, uniforms
from handattn.untrusted import read_capped
from handattn.vocab import D_VOCAB, INDEX, IS_LETTER, TOKENS
from handattn.weights.core import MAX_POSITIONS

DEFAULT_SEED = 0  # the public seed; instructors grade hidden sets with a secret one
DEFAULT_TEXTS = 2048
MAX_TEXTS = 1 << 20
MAX_TOKENS = 1 << 22  # texts × length
MAX_TARGET_ROWS = 1 << 20  # distinct (target, context) rows in one set: 1M rows take 232 MiB
BUILD_POSITIONS = 1 << 14  # positions whose exact targets are built at once (4 MiB of int64 numerators)
MAX_EVAL_FILE_BYTES = 64 << 20

_TO_TEXT = bytes.maketrans(bytes(range(len(TOKENS))), "".join(TOKENS).encode())


@dataclass(frozen=True)
class EvalSet:
    problem: Problem
    tokens: torch.Tensor  # [N, T] int64, padded with 0 past each text's end
    lengths: torch.Tensor  # [N] int64 tokens per text
    target_rows: torch.Tensor  # [R, V] float64 exact next-token probabilities, each distinct row once
    row_kinds: torch.Tensor  # [R] int64 index into problem.contexts of each row
    row_index: torch.Tensor  # [N, P] int64 row of target_rows at each position (0 at padding)
    source: str  # "seed 0" or the file the texts came from
    seed: int | None = None
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fingerprint", fingerprint(self.texts()))

    @property
    def mask(self) -> torch.Tensor:
        """[N, P] bool: which positions are real predictions (inside their text)."""
        P = self.tokens.shape[1] - 1
        return torch.arange(P) < (self.lengths[:, None] - 1)

    @property
    def n_positions(self) -> int:
        return int((self.lengths - 1).sum())

    def dense_target(self, texts: slice | torch.Tensor = slice(None)) -> torch.Tensor:
        """[n, P, V] float64 exact next-token probabilities of some texts (e.g. `slice(0, 8)` or a
        tensor of text indices); padding positions hold row 0. Costs 224 bytes per position."""
        return self.target_rows[self.row_index[texts]]

    def context_kind(self, texts: slice | torch.Tensor = slice(None)) -> torch.Tensor:
        """[n, P] int64 index into problem.contexts of each position of some texts."""
        return self.row_kinds[self.row_index[texts]]

    def texts(self) -> list[str]:
        T = self.tokens.shape[1]
        flat = bytes(self.tokens.flatten().tolist()).translate(_TO_TEXT).decode()  # every text, padded to T
        return [flat[i * T : i * T + n] for i, n in enumerate(self.lengths.tolist())]


def fingerprint(texts: list[str]) -> str:
    """16 hex digits of SHA-256 over the texts, one per line: equal sets, equal fingerprints."""
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]


def sample_eval_set(
    problem: Problem, n_texts: int = DEFAULT_TEXTS, length: int | None = None, seed: int = DEFAULT_SEED
) -> EvalSet:
    """N texts of `length` tokens from the problem's sampler, the same on every platform."""
    length = problem.length if length is None else length
    if not 1 <= n_texts <= MAX_TEXTS or not 2 <= length <= MAX_POSITIONS or seed < 0:
        raise EvalSetError(f"need 1 ≤ texts ≤ {MAX_TEXTS:,}, 2 ≤ length ≤ {MAX_POSITIONS} and seed ≥ 0")
    if n_texts * length > MAX_TOKENS:
        raise EvalSetError(
            f"{n_texts:,} texts × {length} tokens is over {MAX_TOKENS:,} tokens; use fewer or shorter texts"
        )
    tokens = problem.sample(uniforms(seed, n_texts, length))  # [N, T]
    return _build(problem, tokens, torch.full((n_texts,), length), f"seed {seed}", seed)


def eval_set_from_texts(problem: Problem, texts: list[str], source: str = "<texts>") -> EvalSet:
    """An evaluation set from given texts; each must be one the problem can produce."""
    return _from_numbered(problem, list(enumerate(texts, start=1)), source)


def read_eval_file(problem: Problem, path: str | Path) -> EvalSet:
    """Texts from a file, one per line (split on newline only; a trailing carriage return is dropped);
    blank lines and lines starting with # are skipped. A regular file of at most 64 MiB, in UTF-8."""
    source = str(path)
    raw = read_capped(
        path, MAX_EVAL_FILE_BYTES, EvalFileError, missing_fix="check the path", large_fix="use fewer texts"
    )
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")  # a byte-order mark, as some editors write
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise EvalFileError(
            source, [Issue(f"line {line}", "is not UTF-8 text", "save the file as plain text")]
        ) from None
    lines = ((number, line.rstrip("\r").strip(" \t")) for number, line in enumerate(_split_lines(text), start=1))
    return _from_numbered(problem, ((n, line) for n, line in lines if line and not line.startswith("#")), source)


def _split_lines(text: str) -> Iterator[str]:
    """The lines of a text, split on "\\n" only, one at a time (a 64 MiB file is not copied into a list)."""
    start = 0
    while (end := text.find("\n", start)) != -1:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def _from_numbered(problem: Problem, numbered: Iterable[tuple[int, str]], source: str) -> EvalSet:
    """Texts with their line numbers → an EvalSet; every bad line is reported, up to MAX_ISSUES
    (reading stops there, so a file of endless mistakes costs no more than its first ones)."""
    issues: list[Issue] = []
    encoded, line_numbers, longest = [], [], 0
    for number, text in numbered:
        line_numbers.append(number)
        where = f"line {number}"
        if not 2 <= len(text) <= MAX_POSITIONS:
            issues.append(
                Issue(where, f"has {plural(len(text), 'token')}", f"a text needs 2 to {MAX_POSITIONS} tokens")
            )
        elif (bad := next((ch for ch in text if ch not in INDEX), None)) is not None:
            issues.append(
                Issue(where, f"{shown(bad)} is not a token", "texts use only a-z, 0 and 1, one text per line")
            )
        else:
            encoded.append([INDEX[ch] for ch in text])
            longest = max(longest, len(text))
            if len(encoded) * longest > MAX_TOKENS:
                fix = "use fewer texts"
                raise EvalFileError(
                    source, [Issue("", f"holds more than {MAX_TOKENS:,} tokens (texts × longest text)", fix)]
                )
        if len(issues) >= MAX_ISSUES:
            issues.append(Issue("", f"stopped reading after {MAX_ISSUES} problems", "mend these first"))
            break
    if not line_numbers:
        issues.append(Issue("", "holds no texts", "write one text per line, e.g. ba1ke1"))
    if issues:
        raise EvalFileError(source, issues)
    lengths = torch.tensor([len(ids) for ids in encoded])
    tokens = torch.zeros(len(encoded), int(lengths.max()), dtype=torch.long)
    for i, ids in enumerate(encoded):
        tokens[i, : len(ids)] = torch.tensor(ids)
    eval_set = _build(problem, tokens, lengths, source, None)
    _check_possible(eval_set, source, line_numbers)
    return eval_set


def _build(problem: Problem, tokens: torch.Tensor, lengths: torch.Tensor, source: str, seed: int | None) -> EvalSet:
    """Exact targets of every real position, a block of texts at a time, each distinct row stored once."""
    N, T = tokens.shape
    mask = torch.arange(T - 1) < (lengths[:, None] - 1)  # [N, P]
    row_index = torch.zeros(N, T - 1, dtype=torch.long)
    step = max(1, BUILD_POSITIONS // T)
    for salt in _SALTS:  # a hash collision (never seen) starts again with other multipliers
        table = _RowTable(salt)
        try:
            for i in range(0, N, step):
                part, real = tokens[i : i + step], mask[i : i + step]
                numerators, denominators = problem.exact_weights(part)  # [n, T, V], [n, T]
                kind = problem.context_kind(part)  # [n, T]
                rows = torch.cat([kind[:, :-1, None], denominators[:, :-1, None], numerators[:, :-1]], dim=-1)
                if real.all():  # texts of equal length: every position is real
                    row_index[i : i + step] = table.add(rows.view(-1, rows.shape[-1])).view(real.shape)
                else:
                    row_index[i : i + step][real] = table.add(rows[real])  # rows [M, 2 + V] int64
                if len(table.rows) > MAX_TARGET_ROWS:
                    raise EvalSetError(
                        f"{problem.name}'s targets take over {MAX_TARGET_ROWS:,} distinct rows in this set; "
                        "use fewer or shorter texts"
                    )
        except _HashCollision:
            continue
        break
    else:  # unequal rows with equal hashes under every salt: 4 independent 2^-64 chances
        raise EvalSetError(f"{problem.name}'s targets could not be tabulated; try other texts")
    kinds, denominators, numerators = table.rows[:, 0], table.rows[:, 1], table.rows[:, 2:]
    target_rows = numerators.double() / denominators[:, None].double()  # as Problem.exact_probs: rounded once
    return EvalSet(problem, tokens, lengths, target_rows, kinds, row_index, source, seed)


_SALTS = [torch.tensor([rng.getrandbits(62) | 1 for _ in range(2 + D_VOCAB)]) for rng in map(random.Random, range(4))]


class _HashCollision(Exception):
    pass


class _RowTable:
    """Distinct int64 rows (context kind, denominator, numerators), found through a hash and confirmed equal."""

    def __init__(self, salt: torch.Tensor):
        self.salt = salt  # [2 + V] odd multipliers
        self.rows = torch.empty(0, 2 + D_VOCAB, dtype=torch.long)  # [R, 2 + V] in order of first sight
        self.hashes = torch.empty(0, dtype=torch.long)  # [R] sorted
        self.ids = torch.empty(0, dtype=torch.long)  # [R] row of each sorted hash

    def add(self, rows: torch.Tensor) -> torch.Tensor:
        """rows [M, 2 + V] → [M] int64 index of each in self.rows (new ones are appended)."""
        hashes = (rows * self.salt).sum(-1)  # [M], int64 arithmetic wraps: any order gives the same sum
        unique, inverse = torch.unique(hashes, return_inverse=True)  # [U], [M]
        some = torch.empty(len(unique), dtype=torch.long).scatter_(0, inverse, torch.arange(len(rows)))  # [U]
        firsts = rows[some]  # [U, 2 + V] one row of each hash: all must equal it
        at = torch.searchsorted(self.hashes, unique).clamp(max=max(len(self.hashes) - 1, 0))  # [U]
        known = self.hashes[at] == unique if len(self.hashes) else torch.zeros(len(unique), dtype=torch.bool)
        ids = torch.empty(len(unique), dtype=torch.long)
        ids[known] = self.ids[at[known]]
        if not torch.equal(firsts[inverse], rows) or not torch.equal(self.rows[ids[known]], firsts[known]):
            raise _HashCollision
        new = ~known
        ids[new] = torch.arange(len(self.rows), len(self.rows) + int(new.sum()))
        self.rows = torch.cat([self.rows, firsts[new]])
        self.hashes, order = torch.cat([self.hashes, unique[new]]).sort()
        self.ids = torch.cat([self.ids, ids[new]])[order]
        return ids[inverse]


def _check_possible(eval_set: EvalSet, source: str, line_numbers: list[int]) -> None:
    """Refuse texts the problem cannot produce: their targets would describe nothing real."""
    tokens, mask = eval_set.tokens, eval_set.mask
    next_prob = eval_set.target_rows[eval_set.row_index, tokens[:, 1:]]  # [N, P]
    impossible = (next_prob == 0) & mask  # [N, P]
    bad_start = ~IS_LETTER[tokens[:, 0]]  # [N]
    bad = (bad_start | impossible.any(-1)).nonzero()[:, 0].tolist()
    if not bad:
        return
    texts, name = eval_set.texts(), eval_set.problem.name
    issues = []
    for i in bad[:MAX_ISSUES]:
        where = f"line {line_numbers[i]}"
        if bad_start[i]:
            issues.append(Issue(where, "starts with a digit", f"every {name} text starts with a letter"))
        else:
            t = int(impossible[i].nonzero()[0]) + 1  # index of the impossible token
            issues.append(
                Issue(
                    where,
                    f"{texts[i][t]!r} cannot follow {'…' * (t > 30)}{texts[i][max(0, t - 30) : t]!r} in {name}",
                    "use texts the problem can produce",
                )
            )
    if len(bad) > MAX_ISSUES:
        issues.append(Issue("", f"… {plural(len(bad) - MAX_ISSUES, 'more impossible text')}", ""))
    raise EvalFileError(source, issues)
