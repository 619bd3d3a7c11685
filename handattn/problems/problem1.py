"""problem1: the more consonants so far, the likelier a vowel comes next.

After x1…xt with c consonants among them (the current token included):
P(next is a vowel) = c/t, spread evenly over the 5 vowels (c/(5t) each); the
rest, (t−c)/t, spread evenly over the 21 consonants ((t−c)/(21t) each); the
digits never appear.
"""

from __future__ import annotations

import torch

from handattn.problems.base import Problem, draw, first_tokens
from handattn.vocab import CONSONANTS, IS_CONSONANT, IS_VOWEL, LETTERS, TOKENS, VOWELS


def _weights(c: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Consonant count c and length t (same shape S) → numerators [*S, V], denominators [*S].

    Common denominator 105t = 5t · 21: a vowel gets 21c, a consonant 5(t − c), a digit 0.
    """
    c, t = c[..., None], t[..., None]  # [*S, 1]
    numerators = torch.where(IS_VOWEL, 21 * c, torch.where(IS_CONSONANT, 5 * (t - c), 0))
    return numerators, 105 * t[..., 0]


class Problem1(Problem):
    name = "problem1"
    summary = "P(next is a vowel) = share of consonants so far; 0 and 1 never appear"
    statement = (
        "Every text starts with a letter drawn uniformly from the 26 letters; 0 and 1 never appear. "
        "After x1…xt, let c be the number of consonants among x1…xt (the current token included). "
        "The next token is a vowel with probability c/t (each vowel c/(5t)) and a consonant with "
        "probability (t−c)/t (each consonant (t−c)/(21t))."
    )
    threshold = 0.005
    next_tokens = LETTERS
    contexts = (
        "consonant share 0",
        "consonant share in (0, 1/3]",
        "consonant share in (1/3, 2/3]",
        "consonant share in (2/3, 1)",
        "consonant share 1",
    )

    def reference_rule(self, prefix: list[int]) -> list:
        from sympy import Rational

        t = len(prefix)
        c = sum(TOKENS[i] in CONSONANTS for i in prefix)
        probs = []
        for tok in TOKENS:
            if tok in VOWELS:
                probs.append(Rational(c, 5 * t))
            elif tok in CONSONANTS:
                probs.append(Rational(t - c, 21 * t))
            else:
                probs.append(Rational(0))
        return probs

    def exact_weights(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = IS_CONSONANT[tokens].long().cumsum(-1)  # [N, T]
        t = torch.arange(1, tokens.shape[-1] + 1).expand_as(c)  # [N, T]
        return _weights(c, t)

    def context_kind(self, tokens: torch.Tensor) -> torch.Tensor:
        c = IS_CONSONANT[tokens].long().cumsum(-1)  # [N, T]
        t = torch.arange(1, tokens.shape[-1] + 1)  # [T]
        kind = torch.full_like(c, 3)
        kind[3 * c <= 2 * t] = 2
        kind[3 * c <= t] = 1
        kind[c == 0] = 0
        kind[c == t] = 4
        return kind

    def sample(self, u: torch.Tensor) -> torch.Tensor:
        n_texts, length = u.shape
        tokens = torch.empty(n_texts, length, dtype=torch.long)
        tokens[:, 0] = first_tokens(u[:, 0])
        c = IS_CONSONANT[tokens[:, 0]].long()  # [N] consonants so far
        for t in range(1, length):
            numerators, denominators = _weights(c, torch.full_like(c, t))
            tokens[:, t] = draw(numerators, denominators, u[:, t])
            c = c + IS_CONSONANT[tokens[:, t]].long()
        return tokens
