"""problem4: the next token repeats the token before the current one, half the time.

After x1…xt with t ≥ 2: with probability 1/2 the next token is x(t−1), the token
before the current one; otherwise it is one of the 26 letters, uniformly. So the
letter x(t−1) has probability 1/2 + 1/52 = 27/52 and every other letter 1/52.
After the first token, which has nothing before it, the copy is of x1 itself.
Digits never appear.

Why the first token copies itself: attention at position 1 sees only position 1,
so whatever head copies x(t−1) at later positions copies x1 there, and the
direct path cannot cancel it (it would then cancel the current token's letter at
every position). With a uniform first prediction no layer could be exact; the
exact copier would lose log 2 − log(27)/26 ≈ 0.57 nats there.
"""

from __future__ import annotations

import torch

from handattn.problems.base import Problem, draw, first_tokens
from handattn.vocab import D_VOCAB, IS_LETTER, LETTERS, TOKENS

_LETTERS = IS_LETTER.long()  # [V] 1 on each letter

STARTER_HINT = """\
[params]
# THETA = 1    # a number to reuse below, e.g. W_P.all.cos = "cos(THETA*pos)"

[embed]
# one feature per letter (one-hot, written for you), two for the positions:
features = ["letters", "cos", "sin"]
# W_P.all.cos = "cos(THETA*pos)"    # every position at once, pos = 1, 2, …
# W_P.all.sin = "sin(THETA*pos)"

[[heads]]
name = "head1"
dims = ["c", "s"]   # query/key dimensions: W_Q and W_K write here
# value dimensions: W_V writes here, W_U reads them as rows; one per letter
values = ["prev_a", "prev_b", "prev_c", "prev_d", "prev_e", "prev_f",
          "prev_g", "prev_h", "prev_i", "prev_j", "prev_k", "prev_l",
          "prev_m", "prev_n", "prev_o", "prev_p", "prev_q", "prev_r",
          "prev_s", "prev_t", "prev_u", "prev_v", "prev_w", "prev_x",
          "prev_y", "prev_z"]
"""


def _weights(copied: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The token to copy (shape S) → numerators [*S, V], denominators [*S].

    Everything over 52: 1 on each letter (the uniform half), 26 more on the copied token.
    """
    copy = torch.nn.functional.one_hot(copied, D_VOCAB)  # [*S, V]
    return _LETTERS + 26 * copy, torch.full(copied.shape, 52)


def _copied(tokens: torch.Tensor) -> torch.Tensor:
    """tokens [N, T] → [N, T] the token each prefix copies: the one before the current, x1 at the start."""
    return torch.cat([tokens[:, :1], tokens[:, :-1]], dim=1)


class Problem4(Problem):
    name = "problem4"
    summary = "half the time, the next token repeats the one before the current"
    statement = (
        "Every text starts with a letter drawn uniformly from the 26 letters; 0 and 1 never appear. "
        "With probability 1/2 the next token repeats the token before the current one (after the first "
        "token, which has none before it: the first token itself); otherwise it is one of the 26 letters, "
        "uniformly. So the repeated letter has probability 27/52 and each other letter 1/52. One layer can "
        "do this: position features let each position's query match the key of the position before it, "
        "the value passes that letter on, and the unembedding gives it a logit of log 27."
    )
    threshold = 0.001
    next_tokens = LETTERS
    starter_hint = STARTER_HINT
    contexts = (
        "after the first token",
        "the one before = the current token",
        "the one before ≠ the current token",
    )

    def reference_rule(self, prefix: list[int]) -> list:
        from sympy import Rational

        copied = prefix[-2] if len(prefix) >= 2 else prefix[0]
        return [Rational(int(tok in LETTERS), 52) + Rational(int(i == copied), 2) for i, tok in enumerate(TOKENS)]

    def exact_weights(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _weights(_copied(tokens))

    def context_kind(self, tokens: torch.Tensor) -> torch.Tensor:
        kind = torch.where(_copied(tokens) == tokens, 1, 2)
        kind[:, 0] = 0
        return kind

    def sample(self, u: torch.Tensor) -> torch.Tensor:
        n_texts, length = u.shape
        tokens = torch.empty(n_texts, length, dtype=torch.long)
        tokens[:, 0] = first_tokens(u[:, 0])
        for t in range(1, length):
            numerators, denominators = _weights(tokens[:, max(t - 2, 0)])
            tokens[:, t] = draw(numerators, denominators, u[:, t])
        return tokens
