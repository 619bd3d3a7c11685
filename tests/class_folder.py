"""A class's submissions folder for the leaderboard tests: good, tied, failing, broken and hostile files.

problem2, as the board must rank it (key: passed, hidden KL to 1e-6, max |weight|, time):
    ann            reference solution (|w| 90), t0+100                       rank 1
    ben, cat       reference solution, both t0+200                           rank 2, 2
    INJECTED       reference solution, t0+300 (an HTML payload as a name)    rank 4
    café (bytes)   reference solution, t0+400 (a name that is not UTF-8)     rank 5
    dan            same KL (0 to 1e-6) but |w| 120, earliest (t0+50)         rank 6
    FORMULA        scores but does not pass (uniform prediction)             rank 7
and every other student an error row: each bad-input fixture, a FIFO, a device, a folder, an
empty file, a file over 1 MiB, a file with 300 heads, and a name full of control characters.
problem1: ann alone, with the reference solution.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).resolve().parent / "fixtures" / "bad"
SOLUTION1 = (ROOT / "solutions" / "problem1.toml").read_text()
SOLUTION2 = (ROOT / "solutions" / "problem2.toml").read_text()
ECONOMY = SOLUTION2.replace("L = 90", "L = 120")  # as exact to 1e-6, but a larger largest weight
UNIFORM = 'problem = "problem2"\n'  # loads and scores, predicts uniform: does not pass

T0 = 1_700_000_000
INJECTED = "<img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("evil.example","x")'
CONTROL = "pipe|name\nnew line\x1b[31mred\u202eevil"
UNDECODABLE = os.fsdecode(b"caf\xe9")  # a folder name in Latin-1 on a UTF-8 system
UNDECODABLE_SHOWN = "caf\\xe9"

RANKS_P2 = {"ann": 1, "ben": 2, "cat": 2, INJECTED: 4, UNDECODABLE_SHOWN: 5, "dan": 6, FORMULA: 7}
SPECIAL_ERRORS = {  # student -> a fragment of the error row's message
    "fifo": "is not a regular file (a pipe, device or socket)",
    "device": "is not a regular file (a pipe, device or socket)",
    "folder": "is a folder",
    "empty": "is empty",
    "huge": "over the 1 MiB limit",
    "heads300": "has 300 heads",
    CONTROL: "is not valid TOML",
}


TWIN_PY = """\
from handattn.problems.problem2 import Problem2


class Twin(Problem2):  # an instructor's problem: problem2 under another name
    name = "twin"


PROBLEM = Twin()
"""
TWIN_SOLUTION = SOLUTION2.replace('problem = "problem2"', 'problem = "twin"')


def write(path: Path, text: str | bytes, when: int = T0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    os.utime(path, (when, when))
    return path


def heads_300() -> str:
    """A well-formed file with 300 heads (as one inline array: 300 [[heads]] headers are refused sooner)."""
    heads = ", ".join(f'{{dims = ["c"], values = ["v{i}"]}}' for i in range(300))
    return f'problem = "problem2"\nheads = [{heads}]\n'


def make_class(root: Path, bad_fixtures: bool = True) -> Path:
    """Fill `root` with the class described above and return it."""
    for student, text, when in [
        ("ann", SOLUTION2, T0 + 100),
        ("ben", SOLUTION2, T0 + 200),
        ("cat", SOLUTION2, T0 + 200),
        (INJECTED, SOLUTION2, T0 + 300),
        ("dan", ECONOMY, T0 + 50),
        (FORMULA, UNIFORM, T0 + 10),
        ("empty", "", T0),
        ("huge", b"#" * ((1 << 20) + 1), T0),
        ("heads300", heads_300(), T0),
        (CONTROL, 'problem = "problem2"\n[embed\n', T0),
    ]:
        write(root / student / "problem2.toml", text, when)
    write(root / UNDECODABLE / "problem2.toml", SOLUTION2, T0 + 400)
    write(root / "ann" / "problem1.toml", SOLUTION1, T0 + 100)
    write(root / "ann" / "notes.txt", "not a submission")
    write(root / "stray.txt", "not a student")
    (root / "fifo").mkdir()
    os.mkfifo(root / "fifo" / "problem2.toml")
    (root / "device").mkdir()
    (root / "device" / "problem2.toml").symlink_to("/dev/zero")
    (root / "folder" / "problem2.toml").mkdir(parents=True)
    if bad_fixtures:
        for fixture in sorted(BAD.glob("*.toml")):
            write(root / f"bad-{fixture.stem}" / "problem2.toml", fixture.read_bytes())
    return root
