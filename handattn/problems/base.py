"""What a problem is, and the sampling convention every problem shares.

A problem is a small object: a name, a statement in plain words, a pass
threshold, a default text length, and its exact next-token rule written twice:

- `reference_rule(prefix)`: readable, one prefix at a time, sympy Rationals;
- `exact_weights(tokens)`: vectorised, every prefix of a batch at once, as
  integer numerators over a per-position integer denominator, so it is exact too.

Sampling is specified down to the bit, so an evaluation set is the same on every
platform and torch version: uniforms come from Python's Mersenne Twister
(`random.Random(seed).random()`, whose stream Python guarantees), one per token,
text after text; a token is drawn by inverse CDF over the exact integer weights
in vocabulary order (`draw`).

Shapes: N texts, T tokens, V = d_vocab = 28.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

import torch

from handattn.vocab import D_VOCAB, IS_LETTER


def uniforms(seed: int, n_texts: int, length: int) -> torch.Tensor:
    """[N, T] float64 uniforms in [0, 1): the specified random stream for a seed."""
    rng = random.Random(seed)
    flat = [rng.random() for _ in range(n_texts * length)]
    return torch.tensor(flat, dtype=torch.float64).reshape(n_texts, length)


def draw(numerators: torch.Tensor, denominator: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw: the first token whose cumulative weight exceeds floor(u * den).

    numerators [N, V] int64, denominator [N] int64 (the row sums), u [N] float64 → [N] int64.
    """
    r = torch.floor(u * denominator).long().clamp(max=denominator - 1)  # [N]
    cumulative = numerators.cumsum(-1)  # [N, V]
    return (cumulative <= r[:, None]).sum(-1)  # [N]


def first_tokens(u: torch.Tensor) -> torch.Tensor:
    """[N] first tokens: one letter drawn uniformly from the 26 letters."""
    numerators = IS_LETTER.long().expand(len(u), D_VOCAB)
    return draw(numerators, torch.full((len(u),), 26), u)


@dataclass(frozen=True)
class Problem:
    """Base class: subclasses set the class attributes and write the two rules and a sampler."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for --list
    statement: ClassVar[str]  # the rule in plain words, for starter files and --help
    threshold: ClassVar[float]  # pass if mean KL (nats) ≤ threshold
    length: ClassVar[int] = 32  # default tokens per evaluation text

    @property
    def n_ctx(self) -> int:
        """Positions a solution must cover: `W_P.all` rows are written for positions 1…n_ctx.
        Twice the text length, as the leaderboard's hidden set uses; a subclass may set its own."""
        return 2 * self.length

    contexts: ClassVar[tuple[str, ...]]  # names of the kinds of context, for the breakdown

    def reference_rule(self, prefix: list[int]) -> list:
        """Exact next-token distribution after `prefix` (token ids), as 28 sympy Rationals."""
        raise NotImplementedError

    def exact_weights(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [N, T] → numerators [N, T, V] int64, denominators [N, T] int64.

        Position t holds the distribution of the token after tokens[:, : t + 1].
        """
        raise NotImplementedError

    def context_kind(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [N, T] → [N, T] int64 index into `contexts` of each prefix's kind."""
        raise NotImplementedError

    def sample(self, u: torch.Tensor) -> torch.Tensor:
        """uniforms [N, T] → tokens [N, T]; must equal `reference_sample` on the same uniforms."""
        return reference_sample(self, u)

    def exact_probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """[N, T, V] float64 next-token probabilities, each the exact rational rounded once."""
        numerators, denominators = self.exact_weights(tokens)
        return numerators.double() / denominators[..., None].double()


def reference_sample(problem: Problem, u: torch.Tensor) -> torch.Tensor:
    """The sampling convention itself, slow and plain: re-run the vectorised rule on every prefix."""
    n_texts, length = u.shape
    tokens = first_tokens(u[:, 0])[:, None]  # [N, 1]
    for t in range(1, length):
        numerators, denominators = problem.exact_weights(tokens)
        nxt = draw(numerators[:, -1], denominators[:, -1], u[:, t])  # [N]
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
    return tokens
