"""problem3: the first letter decides which digit a vowel leans to (needs the position embedding).

After a consonant, and after 0 or 1, each of the 26 letters has probability 1/26.
After a vowel: the digit 1 with probability 3/4 and 0 with 1/4 if the text began
with a consonant; 0 with 3/4 and 1 with 1/4 if it began with a vowel.

The digits are random on purpose: were they certain, the first digit written
would give the first letter away, and attention to earlier digits (no position
needed) would solve the problem.
"""

from __future__ import annotations

import torch

from handattn.problems.base import KIND_FEATURES, Problem, draw, first_tokens
from handattn.vocab import CONSONANTS, IS_CONSONANT, IS_DIGIT, IS_LETTER, IS_VOWEL, TOKENS, VOWELS

_LETTERS = IS_LETTER.long()  # [V] 1 on each letter: over 26, the uniform letter
_LEAN_ONE = torch.tensor([0] * 26 + [1, 3])  # [V] over 4: 1 on the digit 0, 3 on the digit 1
_LEAN_ZERO = torch.tensor([0] * 26 + [3, 1])  # [V] over 4: 3 on 0, 1 on 1

STARTER_HINT = f"""\
[params]
# S = 10    # a number to reuse in entries below, e.g. W_K.first.f = "S"

[embed]
features = ["vowel", "consonant", "digit", "first"]
{KIND_FEATURES}# "first" is for the position embedding: W_P.1.first = 1 gives it to position 1.

[[heads]]
name = "head1"
dims = ["f"]        # query/key dimensions: W_Q and W_K write here
values = ["out"]    # value dimensions: W_V writes here, W_U reads them as rows
"""


def _weights(last: torch.Tensor, first_consonant: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Current token and "the text began with a consonant" (same shape S) → numerators [*S, V], denominators [*S].

    After a vowel the digits over 4 (3 on the likelier one, 1 on the other), else 1 on each letter over 26.
    """
    after_vowel = IS_VOWEL[last]  # [*S]
    lean = torch.where(first_consonant[..., None], _LEAN_ONE, _LEAN_ZERO)  # [*S, V]
    numerators = torch.where(after_vowel[..., None], lean, _LETTERS)
    return numerators, torch.where(after_vowel, 4, 26)


class Problem3(Problem):
    name = "problem3"
    summary = "after a vowel: 1 or 0, 3 to 1, by the kind of the first letter"
    statement = (
        "Every text starts with a letter drawn uniformly from the 26 letters. After a consonant, and "
        "after 0 or 1, each of the 26 letters follows with probability 1/26. After a vowel comes a digit: "
        "if the text began with a consonant, 1 with probability 3/4 and 0 with 1/4; if it began with a "
        "vowel, 0 with probability 3/4 and 1 with 1/4. One layer can do this: a position feature that only "
        "position 1 carries gives every position a key to ask for, and the value passes on whether the "
        "first letter is a consonant. Without the position embedding attention cannot tell the first "
        "token from the others."
    )
    threshold = 0.001
    next_tokens = TOKENS
    starter_hint = STARTER_HINT
    contexts = (
        "after a consonant",
        "after a digit",
        "after a vowel, began with a consonant",
        "after a vowel, began with a vowel",
    )

    def reference_rule(self, prefix: list[int]) -> list:
        from sympy import Rational

        first, last = TOKENS[prefix[0]], TOKENS[prefix[-1]]
        if last in VOWELS:
            likely = "1" if first in CONSONANTS else "0"
            return [
                Rational(3, 4) if tok == likely else Rational(1, 4) if tok in "01" else Rational(0) for tok in TOKENS
            ]
        return [Rational(1, 26) if tok not in "01" else Rational(0) for tok in TOKENS]

    def exact_weights(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first_consonant = IS_CONSONANT[tokens[..., :1]].expand_as(tokens)  # [N, T]
        return _weights(tokens, first_consonant)

    def context_kind(self, tokens: torch.Tensor) -> torch.Tensor:
        first_consonant = IS_CONSONANT[tokens[..., :1]].expand_as(tokens)  # [N, T]
        vowel = IS_VOWEL[tokens]
        kind = torch.where(IS_DIGIT[tokens], 1, 0)
        kind[vowel & first_consonant] = 2
        kind[vowel & ~first_consonant] = 3
        return kind

    def sample(self, u: torch.Tensor) -> torch.Tensor:
        n_texts, length = u.shape
        tokens = torch.empty(n_texts, length, dtype=torch.long)
        tokens[:, 0] = first_tokens(u[:, 0])
        first_consonant = IS_CONSONANT[tokens[:, 0]]  # [N]
        for t in range(1, length):
            numerators, denominators = _weights(tokens[:, t - 1], first_consonant)
            tokens[:, t] = draw(numerators, denominators, u[:, t])
        return tokens
