"""Problems: the readable rule, the vectorised rule and the samplers agree exactly; the stream is pinned."""

import math
import random

import pytest
import torch
from conftest import random_weights
from sympy import Rational

import handattn
from handattn import problems
from handattn.errors import UnknownProblemError
from handattn.evalset import eval_set_from_texts, sample_eval_set
from handattn.model import AttentionModel
from handattn.problems import get_problem, problem_names, reference_sample, register, uniforms
from handattn.problems.base import Problem, draw, first_tokens
from handattn.vocab import CONSONANTS, D_VOCAB, INDEX, IS_LETTER, TOKENS, VOWELS, encode

PROBLEMS = problem_names()

# prefixes at the edges of the rules: one token, only vowels, only consonants, y, digits (even where a
# problem never produces them: the vectorised rule is also run on padded and user-given texts)
EDGE_TEXTS = ["a", "b", "y", "0", "1", "aeiou", "a0", "ba1", "ya1", "bbbbb", "a0e0i0b", "ba1e1", "01ab", "ybyu"]


@pytest.fixture(scope="module")
def default_sets():
    return {name: sample_eval_set(get_problem(name)) for name in PROBLEMS}


def random_texts(seed: int, n: int, length: int) -> list[list[int]]:
    """Arbitrary token sequences over the whole vocabulary, digits anywhere."""
    rng = random.Random(seed)
    return [[rng.randrange(D_VOCAB) for _ in range(length)] for _ in range(n)]


# -- (1) the two rules agree exactly -----------------------------------------------------------------


@pytest.mark.parametrize("name", PROBLEMS)
def test_reference_and_vectorised_rules_agree_exactly(name):
    problem = get_problem(name)
    sampled = problem.sample(uniforms(11, 200, 24)).tolist()
    texts = sampled + random_texts(12, 40, 24) + [encode(text) for text in EDGE_TEXTS]
    for ids in texts:
        numerators, denominators = problem.exact_weights(torch.tensor([ids]))
        assert numerators.dtype == denominators.dtype == torch.int64
        for t in range(len(ids)):
            reference = problem.reference_rule(ids[: t + 1])
            den = int(denominators[0, t])
            vectorised = [Rational(int(num), den) for num in numerators[0, t].tolist()]
            assert vectorised == reference, f"{name} after {ids[: t + 1]}"
            assert sum(reference) == 1


@pytest.mark.parametrize("name", PROBLEMS)
def test_exact_probs_are_the_rationals_rounded_once(name):
    problem = get_problem(name)
    for text in EDGE_TEXTS:
        ids = encode(text)
        probs = problem.exact_probs(torch.tensor([ids]))  # [1, T, V]
        assert probs.dtype == torch.float64
        rows = [[float(p) for p in problem.reference_rule(ids[: t + 1])] for t in range(len(ids))]
        assert torch.equal(probs[0], torch.tensor(rows, dtype=torch.float64))


def test_reference_rules_by_hand():
    p1, p2 = get_problem("problem1"), get_problem("problem2")
    # "bab": t = 3, c = 2 → each vowel 2/15, each consonant 1/63, digits 0
    rule = p1.reference_rule(encode("bab"))
    assert rule[INDEX["e"]] == Rational(2, 15) and rule[INDEX["y"]] == Rational(1, 63) and rule[INDEX["0"]] == 0
    assert p2.reference_rule(encode("ba"))[INDEX["1"]] == 1
    assert p2.reference_rule(encode("a"))[INDEX["0"]] == 1
    assert p2.reference_rule(encode("a0e"))[INDEX["0"]] == 1  # the vowel itself is not "earlier"
    assert p2.reference_rule(encode("ya1e"))[INDEX["1"]] == 1  # y is a consonant
    after_digit = p2.reference_rule(encode("ba1"))
    assert after_digit == [Rational(1, 26)] * 26 + [0, 0]


def test_new_reference_rules_by_hand():
    p3, p4, p5 = get_problem("problem3"), get_problem("problem4"), get_problem("problem5")
    digits = slice(26, 28)
    # problem3: the first letter decides, not any earlier consonant (unlike problem2)
    assert p3.reference_rule(encode("ba"))[digits] == [Rational(1, 4), Rational(3, 4)]
    assert p3.reference_rule(encode("a"))[digits] == [Rational(3, 4), Rational(1, 4)]
    assert p3.reference_rule(encode("a1be"))[digits] == [Rational(3, 4), Rational(1, 4)]
    assert p3.reference_rule(encode("ya0e"))[digits] == [Rational(1, 4), Rational(3, 4)]  # y is a consonant
    assert p3.reference_rule(encode("ba1"))[:26] == [Rational(1, 26)] * 26
    # problem4: the token before the current one gets 1/2 + 1/52; after the first token, the first token
    after_abc = p4.reference_rule(encode("abc"))
    assert after_abc[INDEX["b"]] == Rational(27, 52) and after_abc[INDEX["c"]] == Rational(1, 52)
    assert p4.reference_rule(encode("q"))[INDEX["q"]] == Rational(27, 52) and p4.reference_rule(encode("q"))[
        digits
    ] == [0, 0]
    assert p4.reference_rule(encode("aa"))[INDEX["a"]] == Rational(27, 52)
    # problem5: the vote of the letters so far, the current vowel included; digits do not vote
    assert p5.reference_rule(encode("ba"))[digits] == [Rational(1, 2), Rational(1, 2)]  # a tie
    assert p5.reference_rule(encode("bca"))[digits] == [0, 1]
    assert p5.reference_rule(encode("ba1e"))[digits] == [1, 0]
    assert p5.reference_rule(encode("ya1e1ybo"))[digits] == [Rational(1, 2), Rational(1, 2)]
    after_b = p5.reference_rule(encode("b"))
    assert (
        after_b[INDEX["e"]] == Rational(1, 10) and after_b[INDEX["y"]] == Rational(1, 42) and after_b[digits] == [0, 0]
    )


@pytest.mark.parametrize(
    ("name", "texts"),
    [
        # the same bag of earlier tokens {a, b, 1} and the same current vowel, but one text began with a consonant
        ("problem3", ["ba1e", "a1be"]),
        # the same bag {a, b} before the current c, but the token before it differs
        ("problem4", ["abc", "bac"]),
    ],
)
def test_without_a_position_embedding_the_layer_cannot_tell_these_apart(name, texts):
    """The problems that teach positions need W_P: attention without it sees earlier tokens as a bag."""
    problem = get_problem(name)
    eval_set = eval_set_from_texts(problem, texts)  # both texts are ones the problem can produce ...
    after = problem.exact_probs(eval_set.tokens)[:, -1]  # [2, V] what comes after each whole text
    assert not torch.equal(after[0], after[1])  # ... and the rule tells them apart
    for seed in range(3):  # while a layer without W_P cannot, whatever its weights
        weights = random_weights(seed, name, features=6, n_pos=None)
        logits = AttentionModel(weights)(eval_set.tokens).logits[:, -1]  # [2, V]
        assert torch.allclose(logits[0], logits[1], rtol=1e-12, atol=1e-12)
        with_positions = random_weights(seed, name, features=6, n_pos=4)
        logits = AttentionModel(with_positions)(eval_set.tokens).logits[:, -1]
        assert not torch.allclose(logits[0], logits[1], rtol=0, atol=1e-6)


# -- (2) fast samplers equal the reference sampler bit for bit ---------------------------------------


@pytest.mark.parametrize("name", PROBLEMS)
def test_fast_sample_equals_reference_sample(name):
    problem = get_problem(name)
    u = uniforms(3, 300, 20)
    assert torch.equal(problem.sample(u), reference_sample(problem, u))


@pytest.mark.parametrize("name", PROBLEMS)
def test_fast_sample_equals_reference_sample_on_boundary_uniforms(name):
    # 0, the largest float below 1, and exact multiples of 1/26, 1/105, 1/52, 1/210 and 1/4 (the denominators)
    rng = random.Random(5)
    special = [0.0, 1 - 2**-53] + [k / d for d in (4, 26, 52, 105, 210) for k in range(d)]
    u = torch.tensor([[rng.choice(special) for _ in range(16)] for _ in range(200)], dtype=torch.float64)
    problem = get_problem(name)
    assert torch.equal(problem.sample(u), reference_sample(problem, u))


def test_draw_is_inverse_cdf_over_integer_weights():
    numerators = torch.tensor([[0, 2, 0, 1]]).expand(5, 4)  # den 3: token 1 on [0, 2/3), token 3 on [2/3, 1)
    u = torch.tensor([0.0, 0.5, 0.66, 0.7, 1 - 2**-53], dtype=torch.float64)
    assert draw(numerators, torch.full((5,), 3), u).tolist() == [1, 1, 1, 3, 3]


def test_first_token_is_letter_floor_u_times_26():
    u = torch.tensor([(k + 0.5) / 26 for k in range(26)] + [0.0, 1 - 2**-53], dtype=torch.float64)
    assert first_tokens(u).tolist() == list(range(26)) + [0, 25]


# -- (3) every sampled text is possible and starts with a letter -------------------------------------


@pytest.mark.parametrize("name", PROBLEMS)
def test_sampled_texts_have_positive_probability(name, default_sets):
    eval_set = default_sets[name]
    tokens = eval_set.tokens
    assert IS_LETTER[tokens[:, 0]].all()
    next_prob = eval_set.dense_target().gather(-1, tokens[:, 1:, None])[..., 0]  # [N, P]
    assert (next_prob > 0).all()
    problem = get_problem(name)
    for ids in tokens[:30].tolist():  # and under the readable rule too
        assert all(problem.reference_rule(ids[:t])[ids[t]] > 0 for t in range(1, len(ids)))
    if name == "problem1":
        assert not any(ch in "01" for ch in "".join(eval_set.texts()))


# -- (4) statistics with a fixed seed ------------------------------------------------------------------


def test_first_token_roughly_uniform_over_letters():
    n = 26 * 400
    counts = torch.bincount(first_tokens(uniforms(1, n, 1)[:, 0]), minlength=D_VOCAB)
    assert counts[26:].sum() == 0
    expected = n / 26
    chi2 = float(((counts[:26] - expected) ** 2 / expected).sum())
    assert chi2 < 52.6  # the 0.999 quantile of chi-square with 25 degrees of freedom


def test_problem1_next_is_vowel_with_probability_consonant_share():
    tokens = get_problem("problem1").sample(uniforms(7, 4000, 16))
    is_vowel = torch.tensor([tok in VOWELS for tok in TOKENS])[tokens]  # [N, T]
    is_consonant = torch.tensor([tok in CONSONANTS for tok in TOKENS])[tokens]
    c = is_consonant.long().cumsum(-1)[:, :-1].double()  # [N, P]
    t = torch.arange(1, tokens.shape[1]).double()  # [P]
    share = c / t  # [N, P] P(next is a vowel)
    observed = is_vowel[:, 1:].double()  # [N, P]
    z = float((observed - share).sum() / (share * (1 - share)).sum().sqrt())
    assert abs(z) < 4
    # the extremes are certain: no vowel after only vowels, always a vowel after only consonants
    assert (observed[share == 0] == 0).all() and (observed[share == 1] == 1).all()
    for lo, hi in [(0.0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1.0)]:  # and in each band of shares
        band = (share > lo) & (share <= hi) & (share < 1)
        assert abs(float(observed[band].mean() - share[band].mean())) < 0.02


def test_problem4_repeats_the_token_before_the_current_one_about_27_times_in_52():
    tokens = get_problem("problem4").sample(uniforms(8, 2000, 16))
    repeats = tokens[:, 2:] == tokens[:, :-2]  # [N, T-2] x(t+1) = x(t-1)
    n = repeats.numel()
    z = (float(repeats.sum()) - n * 27 / 52) / math.sqrt(n * 27 / 52 * 25 / 52)
    assert abs(z) < 4
    assert (tokens[:, 1] == tokens[:, 0]).double().mean().item() == pytest.approx(27 / 52, abs=0.05)
    assert IS_LETTER[tokens].all()


# -- (5) the sampling stream is pinned ---------------------------------------------------------------


def test_uniforms_are_pythons_random_stream():
    u = uniforms(0, 2, 3)
    assert u.dtype == torch.float64 and u.shape == (2, 3)
    assert u.flatten().tolist()[:5] == [
        0.8444218515250481,
        0.7579544029403025,
        0.420571580830845,
        0.25891675029296335,
        0.5112747213686085,
    ]
    rng = random.Random(123)
    assert uniforms(123, 4, 5).flatten().tolist() == [rng.random() for _ in range(20)]


PINNED = {
    "problem1": (
        "3dec58121c3ae5cd",
        ["voifliugkowlesoewzuvgrupjaiowyju", "gunariupaluehueoeyukbhmxbnqnumyo"],
        "tedeaagcyiauatihrjoqleszsfumuvae",
    ),
    "problem2": (
        "ded7d6f1be7cd335",
        ["vtkgnku1mpxnhtqgxzvxi1xrmclpxzmw", "gu1a1kvra1wgi1e1gzu1ci1yco1o1o1p"],
        "the1ba1dzjbu1tki1lqrnftzthu1vxa1",
    ),
    "problem3": (
        "8d5b57845c7d8b7b",
        ["vtkgnku1mpxnhtqgxzvxi1xrmclpxzmw", "gu1a1kvra1wgi1e1gzu1ci1yco1o1o1p"],
        "the1ba1dzjbu0tki1lqrnftzthu1vxa0",
    ),
    "problem4": (
        "1d95c2a9d1bd0489",
        ["vvvnvnvnvnvnononvzvzqzuzufufvyvy", "gpgalaqiaitiqtjtjypxeqewewkwqwyw"],
        "toindbdbybdpcpcpkpkpkkmzmpppruam",
    ),
    "problem5": (
        "975f1e8feb4bb75b",
        ["vti1li1gko1lfso1wzu1grvpkbi1wyku", "gu1a0i0pa0u0hu0o0yu0a0lxbnqnu1yo"],
        "tfde1a1cyi1u1si1qi1ple1zsfu1u1a1",
    ),
}


@pytest.mark.parametrize("name", PROBLEMS)
def test_default_eval_sets_are_pinned(name, default_sets):
    eval_set = default_sets[name]
    fingerprint, first, last = PINNED[name]
    texts = eval_set.texts()
    assert (len(texts), eval_set.tokens.shape, eval_set.n_positions) == (2048, (2048, 32), 2048 * 31)
    assert (eval_set.source, eval_set.seed) == ("seed 0", 0)
    assert texts[:2] == first and texts[-1] == last
    assert eval_set.fingerprint == fingerprint


def test_first_tokens_follow_from_the_uniforms_by_hand():
    u0, u1 = uniforms(0, 1, 2)[0].tolist()
    assert math.floor(u0 * 26) == INDEX["v"]  # first token: letter floor(26 u)
    # problem1 after "v" (c = t = 1): each vowel 21/105, consonants 0; floor(105 u) = 79 falls in "o" = [63, 84)
    assert math.floor(u1 * 105) == 79
    # problem2 after "v": each letter 1/26; floor(26 u) = 19 is "t"
    assert math.floor(u1 * 26) == INDEX["t"]
    assert PINNED["problem1"][1][0].startswith("vo") and PINNED["problem2"][1][0].startswith("vt")


def test_other_seeds_give_other_sets():
    problem = get_problem("problem2")
    assert sample_eval_set(problem, 50, seed=1).fingerprint != sample_eval_set(problem, 50, seed=0).fingerprint


# -- (6) the stream is text-major --------------------------------------------------------------------


@pytest.mark.parametrize("name", PROBLEMS)
def test_fewer_texts_are_a_prefix_of_more(name, default_sets):
    small = sample_eval_set(get_problem(name), 100)
    assert small.texts() == default_sets[name].texts()[:100]
    assert torch.equal(small.dense_target(), default_sets[name].dense_target(slice(0, 100)))


# -- (7) context kinds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "kinds"),
    [
        # shares c/t: b 1/1, ba 1/2, bab 2/3, babb 3/4 → 1, (1/3, 2/3], (1/3, 2/3], (2/3, 1)
        ("problem1", "babb", [4, 2, 2, 3]),
        # a 0/1, aa 0/2, aab 1/3, aabe 1/4 → 0, 0, (0, 1/3], (0, 1/3]
        ("problem1", "aabe", [0, 0, 1, 1]),
        ("problem1", "yyyy", [4, 4, 4, 4]),
        ("problem2", "a0e0b", [3, 1, 3, 1, 0]),
        ("problem2", "a0ba1", [3, 1, 0, 2, 1]),
        ("problem2", "ya1", [0, 2, 1]),
        ("problem3", "ba1e0", [0, 2, 1, 2, 1]),
        ("problem3", "a0be1", [3, 1, 0, 3, 1]),
        ("problem4", "abab", [0, 2, 2, 2]),
        ("problem4", "aaab", [0, 1, 1, 2]),
        # margins after each token of "bae1ai0": b +1, a 0, e -1, 1 -1, a -2, i -3, 0 -3
        ("problem5", "bae1ai0", [0, 2, 3, 1, 3, 4, 1]),
    ],
)
def test_context_kind(name, text, kinds):
    problem = get_problem(name)
    got = problem.context_kind(torch.tensor([encode(text)]))
    assert got.dtype == torch.int64 and got.tolist() == [kinds]
    assert all(0 <= k < len(problem.contexts) for k in kinds)


def test_context_names():
    assert get_problem("problem1").contexts[0] == "consonant share 0"
    assert get_problem("problem2").contexts == (
        "after a consonant",
        "after a digit",
        "after a vowel, consonant earlier",
        "after a vowel, no consonant yet",
    )


# -- (8) the registry ----------------------------------------------------------------------------------


def test_registry_lists_the_built_in_problems():
    assert {"problem1", "problem2", "problem3", "problem4", "problem5"} <= set(problem_names())
    assert problem_names() == sorted(problem_names())
    assert get_problem("problem1").name == "problem1" and handattn.get_problem is get_problem


def test_unknown_problem_lists_the_known_names():
    with pytest.raises(UnknownProblemError) as info:
        get_problem("problem9")
    assert "problem9" in str(info.value) and "problem1, problem2" in str(info.value)
    assert isinstance(info.value, KeyError)


class UniformLetters(Problem):
    """Every token is a uniform letter, whatever came before."""

    name = "uniform-letters"
    summary = "a uniform letter, always"
    statement = "Each token is one of the 26 letters, uniformly."
    threshold = 0.01
    length = 6
    contexts = ("any",)

    def reference_rule(self, prefix):
        return [Rational(1, 26) if tok not in "01" else Rational(0) for tok in TOKENS]

    def exact_weights(self, tokens):
        numerators = IS_LETTER.long().expand(*tokens.shape, D_VOCAB)
        return numerators, torch.full(tokens.shape, 26)

    def context_kind(self, tokens):
        return torch.zeros_like(tokens)


@pytest.fixture
def private_registry(monkeypatch):
    monkeypatch.setattr(problems, "_REGISTRY", dict(problems._REGISTRY))


def test_register_adds_a_problem_usable_everywhere(private_registry):
    problem = register(UniformLetters())
    assert get_problem("uniform-letters") is problem and "uniform-letters" in problem_names()
    eval_set = sample_eval_set(problem, 40)
    assert eval_set.tokens.shape == (40, 6)
    assert all(ch not in "01" for ch in "".join(eval_set.texts()))
    # no weights: uniform over 28 tokens, KL = log(28/26) at every position
    result = handattn.score(handattn.Weights("uniform-letters"), eval_set)
    assert result.problem == "uniform-letters" and result.n_positions == 40 * 5
    assert result.kl == pytest.approx(math.log(28 / 26), rel=1e-12)
    assert not result.passed
    # a bias that rules the digits out solves it
    solved = handattn.score(handattn.Weights("uniform-letters", b_U=[0.0] * 26 + [-50.0, -50.0]), eval_set)
    assert solved.passed and solved.kl < 1e-20
