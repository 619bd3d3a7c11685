"""Safe arithmetic for weight-file entries: "S", "-S/2", "log(21/5)", "2**-3".

Entries are untrusted text. They are parsed with `ast.parse(mode="eval")` and
walked over a whitelist (numbers, names, + - * / ** and unary signs, calls of
log exp sqrt cos sin), evaluated in float64 with bounds at every step — never handed to
eval, sympify or parse_expr. Size and depth are capped before any arithmetic, and
a power is computed in floats, so `9**9**9` fails at once instead of hanging.
A W_P row written for every position may use the variable `pos` (1, 2, …).
"""

from __future__ import annotations

import ast
import math
import operator

from handattn.errors import MAX_SHOWN, clip, escape, listing, shown

MAX_CHARS = 200  # an entry is a short formula, not a program
MAX_NODES = 64
MAX_DEPTH = 16
MAX_ABS = 1e6  # every entry, once evaluated, lies in [-MAX_ABS, MAX_ABS]

CONSTANTS = {"pi": math.pi, "e": math.e}
FUNCTIONS = {"log": math.log, "exp": math.exp, "sqrt": math.sqrt, "cos": math.cos, "sin": math.sin}
POSITION = "pos"  # the variable of a W_P row written once for every position
RESERVED = set(CONSTANTS) | set(FUNCTIONS) | {POSITION}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: math.pow,  # float pow: raises on overflow or a complex result instead of going exact
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class ExpressionError(ValueError):
    """An entry that is not a valid, bounded expression; the message says what to change."""

    def __init__(self, message: str, unknown_name: str | None = None):
        super().__init__(message)
        self.unknown_name = unknown_name  # set when the only trouble is a name that is not a parameter


def evaluate(text: str, params: dict[str, float] | None = None, used: set[str] | None = None) -> float:
    """The float value of an entry's expression over the given parameters.

    Each parameter the expression reads is added to `used`, when given.
    """
    return check_bounds(_eval(parse(text), params or {}, set() if used is None else used, depth=0))


def evaluate_positions(
    text: str, n: int, params: dict[str, float] | None = None, used: set[str] | None = None
) -> list[float]:
    """The values of an expression over `pos` = 1…n (and the parameters): a W_P row for every position.

    Parsed once; each position is evaluated in floats with the same bounds as any entry.
    """
    tree, params, used = parse(text), params or {}, set() if used is None else used
    values = []
    for pos in range(1, n + 1):
        try:
            values.append(check_bounds(_eval(tree, {**params, POSITION: float(pos)}, used, depth=0)))
        except ExpressionError as e:
            raise ExpressionError(f"at {POSITION} = {pos}: {e}", e.unknown_name) from None
    used.discard(POSITION)
    return values


def parse(text: str) -> ast.AST:
    """The syntax tree of an entry, refused if it is too long, too large or not arithmetic."""
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"expression is {len(text)} characters long (at most {MAX_CHARS})")
    if not text.strip():
        raise ExpressionError("expression is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise ExpressionError(
            f"{shown(text)} is not arithmetic (use numbers, parameters, + - * / ** and log exp sqrt cos sin)"
        ) from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise ExpressionError(
            f"expression has {nodes} parts (at most {MAX_NODES}); declare a parameter for a piece of it"
        )
    return tree.body


def check_bounds(value: float) -> float:
    if not math.isfinite(value):
        raise ExpressionError(f"value {value} is not finite")
    if abs(value) > MAX_ABS:
        raise ExpressionError(f"value {value:.9g} is larger than {MAX_ABS:g} in size")
    return value


def _eval(node: ast.AST, params: dict[str, float], used: set[str], depth: int) -> float:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"expression is nested more than {MAX_DEPTH} deep")
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _finite(float(node.value))
    if isinstance(node, ast.Name):
        if node.id in params:
            used.add(node.id)
            return params[node.id]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        known = listing(sorted(params)) or "none declared"
        raise ExpressionError(f"unknown name {shown(node.id)} (parameters: {known}; constants: pi, e)", node.id)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, params, used, depth + 1))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _eval(node.left, params, used, depth + 1)
        right = _eval(node.right, params, used, depth + 1)
        return _apply(_BINARY[type(node.op)], left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
        if len(node.args) != 1 or node.keywords:
            raise ExpressionError(f"{node.func.id}() takes exactly one argument")
        return _apply(FUNCTIONS[node.func.id], _eval(node.args[0], params, used, depth + 1))
    raise ExpressionError(
        f"{_describe(node)} is not allowed (use numbers, parameters, + - * / ** and log exp sqrt cos sin)"
    )


def _apply(fn, *args: float) -> float:
    try:
        value = fn(*args)
    except ZeroDivisionError:
        raise ExpressionError("division by zero") from None
    except OverflowError:
        raise ExpressionError("a step of the expression overflows") from None
    except ValueError:  # log(-1), sqrt(-1), (-8)**0.5
        raise ExpressionError(
            f"{getattr(fn, '__name__', 'operation')} is undefined for {', '.join(map(repr, args))}"
        ) from None
    return _finite(value)  # outside the try: its ExpressionError is a ValueError too


def _finite(value: float) -> float:
    if isinstance(value, complex) or not math.isfinite(value):
        raise ExpressionError("a step of the expression is not a finite real number")
    return value


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return f"calling {escape(clip(node.func.id, MAX_SHOWN))}()"
    if isinstance(node, ast.Constant):
        return f"the constant {escape(clip(repr(node.value), MAX_SHOWN))}"
    return f"{type(node).__name__.lower()} syntax"
