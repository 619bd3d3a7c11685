"""The 28-token vocabulary shared by every problem: a…z, then 0 and 1.

Tokens are numbered in that order (a=0 … z=25, "0"=26, "1"=27). Vowels are
a e i o u; the other 21 letters, y included, are consonants. Groups name sets
of tokens and may stand wherever a weight file names a token.
"""

from __future__ import annotations

import torch

TOKENS: tuple[str, ...] = tuple("abcdefghijklmnopqrstuvwxyz01")
D_VOCAB = len(TOKENS)  # 28
INDEX: dict[str, int] = {tok: i for i, tok in enumerate(TOKENS)}

VOWELS = tuple("aeiou")
LETTERS = TOKENS[:26]
CONSONANTS = tuple(t for t in LETTERS if t not in VOWELS)
DIGITS = ("0", "1")

GROUPS: dict[str, tuple[str, ...]] = {
    "vowels": VOWELS,
    "consonants": CONSONANTS,
    "letters": LETTERS,
    "digits": DIGITS,
    "all": TOKENS,
}

# boolean masks over the vocabulary, handy for vectorised rules
IS_VOWEL = torch.tensor([t in VOWELS for t in TOKENS])  # [d_vocab]
IS_CONSONANT = torch.tensor([t in CONSONANTS for t in TOKENS])  # [d_vocab]
IS_LETTER = torch.tensor([t in LETTERS for t in TOKENS])  # [d_vocab]
IS_DIGIT = torch.tensor([t in DIGITS for t in TOKENS])  # [d_vocab]


def expand(name: str) -> tuple[str, ...] | None:
    """The tokens a name stands for: itself if a token, its members if a group, else None."""
    if name in INDEX:
        return (name,)
    return GROUPS.get(name)


def encode(text: str) -> list[int]:
    """Token ids of a text; raises ValueError naming the first character outside the vocabulary."""
    ids = []
    for pos, ch in enumerate(text, start=1):
        if ch not in INDEX:
            raise ValueError(f"character {ch!r} at position {pos} is not a token (use a-z, 0, 1)")
        ids.append(INDEX[ch])
    return ids


def decode(ids) -> str:
    """The text of a sequence of token ids (a list or a 1-d tensor)."""
    return "".join(TOKENS[int(i)] for i in ids)
