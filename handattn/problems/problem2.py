"""problem2: a vowel is followed by 1 if a consonant came earlier, else by 0.

After a consonant, and after 0 or 1, each of the 26 letters has probability
1/26. After a vowel: the digit 1 with probability 1 if a consonant appears
anywhere earlier in the text, otherwise the digit 0 with probability 1.
"""

from __future__ import annotations

import torch

from handattn.problems.base import Problem, draw, first_tokens
from handattn.vocab import CONSONANTS, INDEX, IS_CONSONANT, IS_DIGIT, IS_LETTER, IS_VOWEL, TOKENS, VOWELS

ZERO, ONE = INDEX["0"], INDEX["1"]


def _weights(last: torch.Tensor, seen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Current token and "a consonant so far" flag (same shape S) → numerators [*S, V], denominators [*S].

    Everything over 26: after a vowel the whole 26 sits on one digit, else 1 on each letter.
    (The current token is a vowel in that branch, so "so far" and "earlier" agree.)
    """
    after_vowel = IS_VOWEL[last][..., None]  # [*S, 1]
    digit = torch.where(seen, ONE, ZERO)[..., None]  # [*S, 1]
    vocab = torch.arange(len(TOKENS))  # [V]
    numerators = torch.where(after_vowel, 26 * (vocab == digit), IS_LETTER.long())
    return numerators, torch.full(last.shape, 26)


class Problem2(Problem):
    name = "problem2"
    summary = "after a vowel: 1 if a consonant came earlier, else 0; else a uniform letter"
    statement = (
        "Every text starts with a letter drawn uniformly from the 26 letters. After a consonant, and "
        "after 0 or 1, each of the 26 letters follows with probability 1/26. After a vowel, the digit 1 "
        "follows if a consonant appears anywhere earlier in the text, otherwise the digit 0."
    )
    threshold = 0.001
    contexts = (
        "after a consonant",
        "after a digit",
        "after a vowel, consonant earlier",
        "after a vowel, no consonant yet",
    )

    def reference_rule(self, prefix: list[int]) -> list:
        from sympy import Rational

        *earlier, last = [TOKENS[i] for i in prefix]
        if last in VOWELS:
            digit = "1" if any(tok in CONSONANTS for tok in earlier) else "0"
            return [Rational(int(tok == digit)) for tok in TOKENS]
        return [Rational(1, 26) if tok not in "01" else Rational(0) for tok in TOKENS]

    def exact_weights(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seen = IS_CONSONANT[tokens].long().cumsum(-1) > 0  # [N, T]
        return _weights(tokens, seen)

    def context_kind(self, tokens: torch.Tensor) -> torch.Tensor:
        seen = IS_CONSONANT[tokens].long().cumsum(-1) > 0  # [N, T]
        kind = torch.where(IS_DIGIT[tokens], 1, 0)
        kind[IS_VOWEL[tokens] & seen] = 2
        kind[IS_VOWEL[tokens] & ~seen] = 3
        return kind

    def sample(self, u: torch.Tensor) -> torch.Tensor:
        n_texts, length = u.shape
        tokens = torch.empty(n_texts, length, dtype=torch.long)
        tokens[:, 0] = first_tokens(u[:, 0])
        seen = IS_CONSONANT[tokens[:, 0]]  # [N] a consonant so far
        for t in range(1, length):
            numerators, denominators = _weights(tokens[:, t - 1], seen)
            tokens[:, t] = draw(numerators, denominators, u[:, t])
            seen = seen | IS_CONSONANT[tokens[:, t]]
        return tokens
