"""The vocabulary: token order, groups, encode/decode."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from handattn import vocab
from handattn.vocab import (
    CONSONANTS,
    D_VOCAB,
    DIGITS,
    GROUPS,
    INDEX,
    IS_CONSONANT,
    IS_DIGIT,
    IS_LETTER,
    IS_VOWEL,
    LETTERS,
    TOKENS,
    VOWELS,
    decode,
    encode,
)


def test_token_order_is_letters_then_digits():
    assert D_VOCAB == 28
    assert "".join(TOKENS) == "abcdefghijklmnopqrstuvwxyz01"
    assert INDEX["a"] == 0 and INDEX["z"] == 25 and INDEX["0"] == 26 and INDEX["1"] == 27
    assert all(TOKENS[INDEX[tok]] == tok for tok in TOKENS)


def test_groups_partition_the_vocabulary():
    assert VOWELS == tuple("aeiou")
    assert "y" in CONSONANTS and len(CONSONANTS) == 21
    assert set(VOWELS) | set(CONSONANTS) == set(LETTERS) and not set(VOWELS) & set(CONSONANTS)
    assert DIGITS == ("0", "1")
    assert GROUPS == {"vowels": VOWELS, "consonants": CONSONANTS, "letters": LETTERS, "digits": DIGITS, "all": TOKENS}


def test_masks_match_groups():
    for mask, group in [(IS_VOWEL, VOWELS), (IS_CONSONANT, CONSONANTS), (IS_LETTER, LETTERS), (IS_DIGIT, DIGITS)]:
        assert mask.dtype == torch.bool and mask.shape == (D_VOCAB,)
        assert [TOKENS[i] for i in mask.nonzero()[:, 0].tolist()] == list(group)


def test_expand_names_tokens_and_groups():
    assert vocab.expand("b") == ("b",)
    assert vocab.expand("1") == ("1",)
    assert vocab.expand("vowels") == VOWELS
    assert vocab.expand("all") == TOKENS
    assert vocab.expand("vowel") is None
    assert vocab.expand("A") is None


@given(st.text(alphabet="".join(TOKENS), max_size=40))
def test_encode_decode_round_trip(text):
    ids = encode(text)
    assert ids == [TOKENS.index(ch) for ch in text]
    assert decode(ids) == text
    assert decode(torch.tensor(ids, dtype=torch.long)) == text


@pytest.mark.parametrize(("text", "bad", "pos"), [("abC", "'C'", 3), ("2", "'2'", 1), ("ba 1", "' '", 3)])
def test_encode_names_the_first_bad_character(text, bad, pos):
    with pytest.raises(ValueError, match=f"{bad} at position {pos} is not a token"):
        encode(text)
