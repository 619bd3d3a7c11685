"""Colours every view shares, chosen to read for colour-blind eyes too.

Attention weights are shaded with viridis (dark purple at 0, yellow at 1: perceptually
even and readable in every common form of colour blindness, and in grey); series of
tokens use the Okabe–Ito palette. Terminals get viridis's nearest xterm-256 colours.
"""

from __future__ import annotations

# viridis at 0, 1/8, …, 1 (matplotlib's values, rounded to 8 bits)
VIRIDIS = (
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
)
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_CUBE = (0, 95, 135, 175, 215, 255)  # the levels of xterm's 6×6×6 colour cube


def viridis(v: float) -> tuple[int, int, int]:
    """The viridis colour of a value in [0, 1] (clamped), linearly between the stops."""
    x = min(max(v, 0.0), 1.0) * (len(VIRIDIS) - 1)
    i = min(int(x), len(VIRIDIS) - 2)
    f = x - i
    return tuple(round(a + (b - a) * f) for a, b in zip(VIRIDIS[i], VIRIDIS[i + 1], strict=True))  # type: ignore[return-value]


def is_light(rgb: tuple[int, int, int]) -> bool:
    """Whether dark text reads better than light text on this colour."""
    r, g, b = rgb
    return 0.299 * r + 0.587 * g + 0.114 * b > 140


def xterm256(rgb: tuple[int, int, int]) -> int:
    """The nearest colour of xterm's 256-colour cube (indices 16…231)."""
    levels = [min(range(6), key=lambda k: abs(_CUBE[k] - c)) for c in rgb]
    return 16 + 36 * levels[0] + 6 * levels[1] + levels[2]
