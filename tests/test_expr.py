"""The safe evaluator for weight-file entries: what it computes, what it refuses, and that it never escapes."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handattn.weights.expr import MAX_ABS, MAX_CHARS, MAX_DEPTH, MAX_NODES, ExpressionError, evaluate

PARAMS = {"S": 20.0, "M": 30.0, "tiny": 1e-9}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1", 1.0),
        ("-2.5", -2.5),
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("7 / 2", 3.5),
        ("10 - 4 - 3", 3.0),  # left to right
        ("2 ** -3", 0.125),
        ("2 ** 3 ** 2", 512.0),  # right to left, as in Python
        ("-2 ** 2", -4.0),  # ** binds tighter than unary minus
        ("--3", 3.0),
        ("+4", 4.0),
        ("-(1 - 3)", 2.0),
        ("1e6", 1e6),
        ("-1e6", -1e6),
        ("1_000", 1000.0),
        ("  42  ", 42.0),
        ("sqrt(16)", 4.0),
        ("exp(0)", 1.0),
        ("log(1)", 0.0),
        ("log(e)", 1.0),
        ("pi", math.pi),
        ("e", math.e),
        ("2 * pi", 2 * math.pi),
        ("log(21/5)", math.log(21 / 5)),
        ("exp(-1000)", 0.0),  # underflow to zero is a fine, finite answer
    ],
)
def test_arithmetic(text, expected):
    assert evaluate(text) == pytest.approx(expected, rel=1e-15, abs=0)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("S", 20.0),
        ("-S/2", -10.0),
        ("3*M", 90.0),
        ("log(S) - log(M)", math.log(20 / 30)),
        ("S ** 2 / M", 400 / 30),
        ("tiny * 1e9", 1.0),
    ],
)
def test_parameters(text, expected):
    assert evaluate(text, PARAMS) == pytest.approx(expected, rel=1e-15)


def test_parameters_shadow_nothing_and_are_not_required():
    assert evaluate("e", {"S": 1.0}) == math.e
    assert evaluate("1 + 1", None) == 2.0


@pytest.mark.parametrize(
    "text, fragment",
    [
        # names and code
        ("x", "unknown name 'x'"),
        ("inf", "unknown name 'inf'"),
        ("nan", "unknown name 'nan'"),
        ("log", "unknown name 'log'"),
        ("__import__('os')", "calling __import__() is not allowed"),
        ("__import__('os').system('true')", "not allowed"),
        ("open('/etc/passwd')", "calling open() is not allowed"),
        ("abs(-1)", "calling abs() is not allowed"),
        ("().__class__", "attribute syntax is not allowed"),
        ("S.real", "attribute syntax is not allowed"),
        ("(lambda: 1)()", "not allowed"),
        ("lambda: 1", "lambda syntax is not allowed"),
        ("[x for x in (1, 2)]", "listcomp syntax is not allowed"),
        ("sum(x for x in (1, 2))", "not allowed"),
        ("(1, 2)", "tuple syntax is not allowed"),
        ("[1]", "list syntax is not allowed"),
        ("1 if S else 2", "not allowed"),
        ("S := 3", "not arithmetic"),
        ("f'{1}'", "not allowed"),
        ("1; 2", "not arithmetic"),
        # constants that are not real numbers
        ("'a'", "the constant 'a' is not allowed"),
        ("b'1'", "not allowed"),
        ("True", "the constant True is not allowed"),
        ("False", "the constant False is not allowed"),
        ("None", "the constant None is not allowed"),
        ("1j", "the constant 1j is not allowed"),
        ("2 + 3j", "not allowed"),
        ("...", "not allowed"),
        # operators outside + - * / **
        ("7 // 2", "not allowed"),
        ("7 % 2", "not allowed"),
        ("1 < 2", "not allowed"),
        ("1 and 2", "not allowed"),
        ("not 1", "not allowed"),
        ("~1", "not allowed"),
        ("1 << 2", "not allowed"),
        # functions called wrongly
        ("log(1, 2)", "log() takes exactly one argument"),
        ("exp()", "exp() takes exactly one argument"),
        ("sqrt(x=4)", "sqrt() takes exactly one argument"),
        ("pi(1)", "calling pi() is not allowed"),
        # arithmetic without a finite real answer
        ("1 / 0", "division by zero"),
        ("S / (M - 30)", "division by zero"),
        ("log(0)", "log is undefined"),
        ("log(-1)", "log is undefined"),
        ("sqrt(-1)", "sqrt is undefined"),
        ("(-8) ** 0.5", "undefined"),
        ("0 ** -1", "undefined"),
        ("9 ** 9 ** 9", "overflows"),
        ("2 ** 1024", "overflows"),
        ("exp(1000)", "overflows"),
        ("1e999", "not a finite"),
        ("1e308 * 10", "not a finite"),  # not "mul is undefined": the step overflowed
        ("-1e308 - 1e308", "not a finite"),
        # results out of bounds
        ("1e6 + 1", "value 1000001 is larger than 1e+06"),
        ("-1e7", "larger than"),
        ("S ** 5", "larger than"),
        # text that is not an expression
        ("", "empty"),
        ("   ", "empty"),
        ("1 +", "not arithmetic"),
        ("(1", "not arithmetic"),
        ("1 2", "not arithmetic"),
        ("1\n+ 2", "not arithmetic"),
        ("\x00", "not arithmetic"),
        ("\ud800", "not arithmetic"),  # a lone surrogate cannot even be encoded
    ],
)
def test_refused(text, fragment):
    with pytest.raises(ExpressionError) as info:
        evaluate(text, PARAMS)
    assert fragment in str(info.value)


def test_unknown_name_lists_the_declared_parameters():
    with pytest.raises(ExpressionError, match=r"parameters: M, S, tiny; constants: pi, e"):
        evaluate("Q", PARAMS)
    with pytest.raises(ExpressionError, match=r"none declared"):
        evaluate("Q")


def test_length_limit():
    longest = "1" + " " * (MAX_CHARS - 1)
    assert evaluate(longest) == 1.0
    with pytest.raises(ExpressionError, match=rf"is {MAX_CHARS + 1} characters long \(at most {MAX_CHARS}\)"):
        evaluate(longest + " ")


def test_node_limit():
    terms = "+".join(["1"] * 40)  # 79 characters, but about 120 nodes
    assert len(terms) <= MAX_CHARS
    with pytest.raises(ExpressionError, match=rf"parts \(at most {MAX_NODES}\); declare a parameter"):
        evaluate(terms)
    assert evaluate("+".join(["1"] * 10)) == 10.0


def test_depth_limit():
    def nested(n):
        return "sqrt(" * n + "1" + ")" * n

    assert evaluate(nested(MAX_DEPTH)) == 1.0
    with pytest.raises(ExpressionError, match=rf"nested more than {MAX_DEPTH} deep"):
        evaluate(nested(MAX_DEPTH + 1))
    with pytest.raises(ExpressionError, match="nested more than"):
        evaluate("-" * (MAX_DEPTH + 4) + "1")


def test_bounds_are_inclusive():
    assert evaluate(f"{MAX_ABS!r}") == MAX_ABS
    assert evaluate(f"-{MAX_ABS!r}") == -MAX_ABS


def test_parentheses_are_not_nesting():
    # redundant parentheses add no nodes; they are harmless, however many fit in MAX_CHARS
    assert evaluate("(" * 60 + "3" + ")" * 60) == 3.0


# -- properties: whatever the text, a bounded float or an ExpressionError, quickly -------------------------


def _outcome(text: str, params=PARAMS) -> float | None:
    """The value, or None for an ExpressionError; any other exception fails the test."""
    try:
        value = evaluate(text, params)
    except ExpressionError as e:
        assert str(e), "an ExpressionError must say what is wrong"
        return None
    assert type(value) is float
    assert math.isfinite(value) and abs(value) <= MAX_ABS
    return value


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NUMBERS = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["0", "1", "2", "9", "1e308", "1e-320", "1_0", "0x1f", "0b11", "0o7", "1e999", "9" * 190]),
)
ATOMS = st.one_of(
    NUMBERS,
    st.sampled_from(["S", "M", "tiny", "pi", "e", "x", "log", "__import__", "True", "None", "'s'", "1j", "..."]),
)
OPERATORS = st.sampled_from(["+", "-", "*", "/", "**", "//", "%", "@", "<", " and ", " if 1 else ", ".", ","])
FUNCTIONS = st.sampled_from(["log", "exp", "sqrt", "abs", "__import__", "eval", "S", "lambda: "])


def _expressions():
    """Arithmetic-like text from a small grammar: mostly valid shapes, with foreign tokens mixed in."""
    return st.recursive(
        ATOMS,
        lambda inner: st.one_of(
            st.tuples(inner, OPERATORS, inner).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
            st.tuples(st.sampled_from(["-", "+", "~", "not ", ""]), inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(FUNCTIONS, inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(FUNCTIONS, inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        ),
        max_leaves=40,
    )


TOKENS = st.sampled_from(list("0123456789.+-*/()eE_ jx,'") + ["**", "log(", "exp(", "sqrt(", "pi", "S", "9**9"])


@FAST
@given(st.text(max_size=MAX_CHARS + 20))
def test_any_text_is_a_bounded_float_or_an_expression_error(text):
    _outcome(text)


@FAST
@given(_expressions())
def test_grammar_expressions_are_a_bounded_float_or_an_expression_error(text):
    _outcome(text)


@FAST
@given(st.lists(TOKENS, max_size=80).map("".join))
def test_token_soup_is_a_bounded_float_or_an_expression_error(text):
    _outcome(text)


@settings(FAST, max_examples=100)
@given(st.integers(2, 99), st.integers(10, 99), st.integers(2, 99))
def test_power_towers_fail_fast(a, b, c):
    # computed in floats, never as exact integers: 99**99**99 is refused at once
    assert _outcome(f"{a}**{b}**{c}") is None
    assert _outcome(f"-{a}**{b}**{c}") is None


@settings(FAST, max_examples=100)
@given(st.floats(-MAX_ABS, MAX_ABS))
def test_a_written_float_reads_back_exactly(x):
    assert evaluate(repr(x)) == x
