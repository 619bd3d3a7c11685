"""problem5: after a vowel, a digit reports the majority: more consonants (1) or more vowels (0).

After a consonant, and after 0 or 1, the next token is a letter: a vowel with
probability 1/2 (each vowel 1/10) and a consonant with probability 1/2 (each
consonant 1/42). After a vowel comes a digit that reports the vote among the
letters so far, the current vowel included: 1 if consonants outnumber vowels, 0
if vowels outnumber consonants, and 0 or 1 with probability 1/2 each at a tie.
"""

from __future__ import annotations

import torch

from handattn.problems.base import Problem, draw, first_tokens
from handattn.vocab import CONSONANTS, IS_CONSONANT, IS_DIGIT, IS_VOWEL, TOKENS, VOWELS

_LETTERS = torch.where(IS_VOWEL, 21, torch.where(IS_CONSONANT, 5, 0))  # [V] over 210: 1/10 a vowel, 1/42 a consonant
_VOTE = torch.tensor(
    [[0] * 26 + [2, 0], [0] * 26 + [1, 1], [0] * 26 + [0, 2]]
)  # [3, V] over 2: vowels, tie, consonants


def _margin(tokens: torch.Tensor) -> torch.Tensor:
    """tokens [..., T] → [..., T] consonants minus vowels among the tokens so far."""
    return (IS_CONSONANT[tokens].long() - IS_VOWEL[tokens].long()).cumsum(-1)


def _weights(last: torch.Tensor, margin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Current token and consonants − vowels so far (same shape S) → numerators [*S, V], denominators [*S].

    After a vowel the digits over 2 by the sign of the margin, else the letters over 210.
    """
    after_vowel = IS_VOWEL[last]  # [*S]
    vote = _VOTE[margin.sign() + 1]  # [*S, V]
    numerators = torch.where(after_vowel[..., None], vote, _LETTERS)
    return numerators, torch.where(after_vowel, 2, 210)


class Problem5(Problem):
    name = "problem5"
    summary = "after a vowel: 1 if consonants are the majority so far, 0 if vowels"
    statement = (
        "Every text starts with a letter drawn uniformly from the 26 letters. After a consonant, and after "
        "0 or 1, a letter follows: a vowel with probability 1/2 (each vowel 1/10) or a consonant with "
        "probability 1/2 (each consonant 1/42). After a vowel comes a digit that reports the vote among "
        "the letters so far, the current vowel included: 1 if consonants outnumber vowels, 0 if vowels "
        "outnumber consonants, and 0 or 1 with probability 1/2 each at a tie. One layer can do this: a head "
        "that attends evenly to every position averages +1 per consonant and -1 per vowel into "
        "(consonants - vowels)/t, whose sign is the vote; the unembedding must scale it up steeply enough "
        "that a margin of one letter in the longest text still decides the digit."
    )
    threshold = 0.001
    next_tokens = TOKENS
    contexts = (
        "after a consonant",
        "after a digit",
        "after a vowel, a tie",
        "after a vowel, margin 1 or 2",
        "after a vowel, margin 3 or more",
    )

    def reference_rule(self, prefix: list[int]) -> list:
        from sympy import Rational

        letters = [TOKENS[i] for i in prefix]
        if letters[-1] in VOWELS:
            margin = sum(tok in CONSONANTS for tok in letters) - sum(tok in VOWELS for tok in letters)
            p_one = Rational(1) if margin > 0 else Rational(0) if margin < 0 else Rational(1, 2)
            return [Rational(0)] * 26 + [1 - p_one, p_one]
        return [
            Rational(1, 10) if tok in VOWELS else Rational(1, 42) if tok in CONSONANTS else Rational(0)
            for tok in TOKENS
        ]

    def exact_weights(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _weights(tokens, _margin(tokens))

    def context_kind(self, tokens: torch.Tensor) -> torch.Tensor:
        size = _margin(tokens).abs()  # [N, T]
        vowel = IS_VOWEL[tokens]
        kind = torch.where(IS_DIGIT[tokens], 1, 0)
        kind[vowel] = torch.where(size == 0, 2, torch.where(size <= 2, 3, 4))[vowel]
        return kind

    def sample(self, u: torch.Tensor) -> torch.Tensor:
        n_texts, length = u.shape
        tokens = torch.empty(n_texts, length, dtype=torch.long)
        tokens[:, 0] = first_tokens(u[:, 0])
        margin = _margin(tokens[:, :1])[:, 0]  # [N] consonants − vowels so far
        for t in range(1, length):
            numerators, denominators = _weights(tokens[:, t - 1], margin)
            tokens[:, t] = draw(numerators, denominators, u[:, t])
            margin = margin + IS_CONSONANT[tokens[:, t]].long() - IS_VOWEL[tokens[:, t]].long()
        return tokens
