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

import functools
import math
import numbers
import random
from array import array
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

import torch

from handattn.errors import RuleError, clip, escape, shown
from handattn.vocab import D_VOCAB, IS_LETTER, TOKENS

RULE_CACHE = 1 << 18  # distinct prefixes kept per problem: a few hundred MB at most

# the features that tell the kinds of token apart, as a starter writes them
KIND_FEATURES = """\
W_E.vowels.vowel = 1
W_E.consonants.consonant = 1
W_E.digits.digit = 1
"""

GENERIC_HINT = f"""\
[params]
# S = 10    # a number to reuse in entries below, e.g. W_K.consonant.c = "S"

[embed]
# Your residual features. Delete this whole table to use one feature per token.
features = ["vowel", "consonant", "digit"]
{KIND_FEATURES}
[[heads]]
name = "head1"
dims = ["c"]        # query/key dimensions: W_Q and W_K write here
values = ["out"]    # value dimensions: W_V writes here, W_U reads them as rows
"""


def uniforms(seed: int, n_texts: int, length: int) -> torch.Tensor:
    """[N, T] float64 uniforms in [0, 1): the specified random stream for a seed."""
    rng = random.Random(seed)
    flat = array("d", (rng.random() for _ in range(n_texts * length)))  # 8 bytes each, not a list of floats
    if not flat:
        return torch.zeros(n_texts, length, dtype=torch.float64)
    return torch.frombuffer(flat, dtype=torch.float64).clone().reshape(n_texts, length)


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
    """Base class. A subclass must set `name`, `summary`, `statement`, `threshold` and write
    `reference_rule`; everything else has a correct default, so an instructor's problem can be
    that short. Built-in problems also write the vectorised rule, contexts and a fast sampler."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for --list
    statement: ClassVar[str]  # the rule in plain words, for starter files and --help
    threshold: ClassVar[float]  # pass if mean KL (nats) ≤ threshold
    length: ClassVar[int] = 32  # default tokens per evaluation text
    contexts: ClassVar[tuple[str, ...]] = ("all positions",)  # names of the kinds of context, for the breakdown
    next_tokens: ClassVar[tuple[str, ...]] = TOKENS  # every token that can ever come next (the uniform baseline)
    # the [params], [embed] and [[heads]] part of the starter `python -m handattn.new` writes:
    # features and a head skeleton suited to the problem, TOML that loads and scores as it stands
    starter_hint: ClassVar[str] = GENERIC_HINT

    @property
    def n_ctx(self) -> int:
        """Positions a solution must cover: `W_P.all` rows are written for positions 1…n_ctx.
        Twice the text length, as the leaderboard's hidden set uses; a subclass may set its own."""
        return 2 * self.length

    def reference_rule(self, prefix: list[int]) -> list:
        """Exact next-token distribution after `prefix` (token ids): 28 exact rationals in vocabulary
        order (sympy Rational, fractions.Fraction or int), non-negative, summing to exactly 1."""
        raise NotImplementedError

    def exact_weights(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [N, T] → numerators [N, T, V] int64, denominators [N, T] int64.

        Position t holds the distribution of the token after tokens[:, : t + 1]. The default asks
        `reference_rule` at every prefix (each distinct prefix once): slow, but exact.
        """
        return rule_weights(self, tokens)

    def context_kind(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [N, T] → [N, T] int64 index into `contexts` of each prefix's kind (default: one kind)."""
        return torch.zeros_like(tokens)

    def sample(self, u: torch.Tensor) -> torch.Tensor:
        """uniforms [N, T] → tokens [N, T]; must equal `reference_sample` on the same uniforms.

        The default draws each token from the rule at its prefix alone (the vectorised rule, when a
        subclass writes one, is asked for every prefix instead, as `reference_sample` does).
        """
        if type(self).exact_weights is Problem.exact_weights:
            return rule_sample(self, u)
        return reference_sample(self, u)

    @functools.cached_property
    def rule_rows(self) -> dict[tuple[int, ...], tuple[list[int], int]]:
        """Cache of `reference_rule` as exact integer rows, by prefix (bounded: cleared when full)."""
        return {}

    def exact_probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """[N, T, V] float64 next-token probabilities, each the exact rational rounded once."""
        numerators, denominators = self.exact_weights(tokens)
        return numerators.double() / denominators[..., None].double()


_EXACT = {int, Fraction}  # checked by type first: isinstance against the numbers ABCs is slow


def exact_row(probs: list) -> tuple[list[int], int]:
    """28 exact rationals → integer numerators over their least common denominator.

    Raises RuleError naming what is wrong: not 28 entries, not exact, negative, not summing to 1,
    or a denominator too large for int64.
    """
    if not isinstance(probs, list | tuple) or len(probs) != D_VOCAB:
        got = len(probs) if isinstance(probs, list | tuple) else type(probs).__name__
        raise RuleError(f"returned {got}, not a list of {D_VOCAB} probabilities")
    pairs = []  # (numerator, denominator) in lowest terms, as every exact rational type keeps them
    for token, p in zip(TOKENS, probs, strict=True):
        if type(p) not in _EXACT and (isinstance(p, bool) or not isinstance(p, numbers.Rational)):
            fix = "use sympy.Rational or fractions.Fraction"
            raise RuleError(f"P({token}) is {escape(clip(repr(p), 40))}, not an exact rational ({fix})")
        n, d = int(p.numerator), int(p.denominator)
        if n < 0:
            raise RuleError(f"P({token}) is negative")
        pairs.append((n, d))
    denominator = math.lcm(*(d for _, d in pairs))
    numerators = [n * (denominator // d) for n, d in pairs]
    if sum(numerators) != denominator:
        total = Fraction(sum(numerators), denominator)
        raise RuleError(f"the probabilities sum to {shown(str(total))[1:-1]}, not 1")
    if denominator >= 2**62:
        raise RuleError("a common denominator is too large for exact integer weights")
    return numerators, denominator


def rule_weights(problem: Problem, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The vectorised rule's contract met by asking `reference_rule` at every prefix, each distinct
    prefix once: [N, T, V] numerators and [N, T] denominators, exact."""
    numerators, denominators = [], []
    for text in tokens.tolist():
        for t in range(len(text)):
            row, denominator = rule_row(problem, tuple(text[: t + 1]))
            numerators.append(row)
            denominators.append(denominator)
    N, T = tokens.shape
    return (
        torch.tensor(numerators, dtype=torch.long).reshape(N, T, D_VOCAB),
        torch.tensor(denominators, dtype=torch.long).reshape(N, T),
    )


def rule_row(problem: Problem, prefix: tuple[int, ...]) -> tuple[list[int], int]:
    """`reference_rule` at one prefix as exact integers, asked once per distinct prefix."""
    rows = problem.rule_rows
    if prefix not in rows:
        if len(rows) >= RULE_CACHE:
            rows.clear()
        after = f"after {shown(''.join(TOKENS[i] for i in prefix))}"
        try:
            probs = problem.reference_rule(list(prefix))
        except Exception as e:  # instructor code: one line, naming the prefix, instead of a traceback
            raise RuleError(
                f"{problem.name}: reference_rule raised {type(e).__name__} {after}: {shown(str(e), 80)[1:-1]}"
            ) from e
        try:
            rows[prefix] = exact_row(list(probs) if isinstance(probs, list | tuple) else probs)
        except RuleError as e:
            raise RuleError(f"{problem.name}: reference_rule {after}: {e}") from None
    return rows[prefix]


def rule_sample(problem: Problem, u: torch.Tensor) -> torch.Tensor:
    """The sampling convention with the rule asked only at each text's current prefix."""
    n_texts, length = u.shape
    tokens = first_tokens(u[:, 0])[:, None].tolist()  # N lists, grown token by token
    for t in range(1, length):
        rows = [rule_row(problem, tuple(text)) for text in tokens]
        numerators = torch.tensor([row for row, _ in rows], dtype=torch.long)  # [N, V]
        denominators = torch.tensor([den for _, den in rows], dtype=torch.long)  # [N]
        for text, nxt in zip(tokens, draw(numerators, denominators, u[:, t]).tolist(), strict=True):
            text.append(nxt)
    return torch.tensor(tokens, dtype=torch.long).reshape(n_texts, length)


def reference_sample(problem: Problem, u: torch.Tensor) -> torch.Tensor:
    """The sampling convention itself, slow and plain: re-run the vectorised rule on every prefix."""
    n_texts, length = u.shape
    tokens = first_tokens(u[:, 0])[:, None]  # [N, 1]
    for t in range(1, length):
        numerators, denominators = problem.exact_weights(tokens)
        nxt = draw(numerators[:, -1], denominators[:, -1], u[:, t])  # [N]
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
    return tokens
