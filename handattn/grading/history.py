"""The grading history, kept in SQLite: every submission ever seen and every grade ever given.

Tables:
    files        hash → the file's bytes (or why it could not be read), so new options can regrade it
    submissions  student, problem, file hash, path, submission time: one row per submission seen
    gradings     options key → the grading options (secret seed hashed) and the sets' fingerprints
    scores       (problem, file hash, options key) → KL on both sets, max |weight|, passed, error
    results      a view joining the four: student, problem, file hash, time, scores, error, options

A grade belongs to a file's content and the options, not to a student: two students who hand in
the same bytes are graded once. Nothing is ever deleted; a re-run adds what is new.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
from pathlib import Path

from handattn.errors import HandattnError, escape
from handattn.grading.outcome import Outcome

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    hash TEXT PRIMARY KEY,
    bytes BLOB,                 -- NULL when the file could not be read
    error TEXT                  -- why not
);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY,
    student TEXT NOT NULL,
    problem TEXT NOT NULL,
    file_hash TEXT NOT NULL REFERENCES files(hash),
    path TEXT NOT NULL,
    submitted_at REAL NOT NULL, -- seconds since the epoch (UTC)
    first_seen TEXT NOT NULL,
    UNIQUE (student, problem, file_hash, submitted_at)
);
CREATE TABLE IF NOT EXISTS gradings (
    options_key TEXT PRIMARY KEY,
    problem TEXT NOT NULL,
    options TEXT NOT NULL,      -- JSON: sets, limits, handattn version; the secret seed only hashed
    sets TEXT,                  -- JSON: sizes, eval fingerprints and baselines of both sets
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    problem TEXT NOT NULL,
    file_hash TEXT NOT NULL,
    options_key TEXT NOT NULL REFERENCES gradings(options_key),
    kl_public REAL,
    kl_hidden REAL,
    max_abs_weight REAL,
    passed INTEGER NOT NULL,
    error TEXT,
    details TEXT,               -- JSON: the whole outcome (per-context KL, standard errors, ...)
    seconds REAL,
    graded_at TEXT NOT NULL,
    PRIMARY KEY (problem, file_hash, options_key)
);
CREATE VIEW IF NOT EXISTS results AS
    SELECT s.student, s.problem, s.file_hash, s.path, s.submitted_at, g.kl_public, g.kl_hidden,
           g.max_abs_weight, g.passed, g.error, g.graded_at, g.options_key, o.options, o.sets
    FROM submissions s
    JOIN scores g ON g.problem = s.problem AND g.file_hash = s.file_hash
    JOIN gradings o ON o.options_key = g.options_key;
"""


class HistoryError(HandattnError):
    """The history file is not a usable SQLite database (another file of that name, or locked)."""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class History:
    """One SQLite file. Writes are committed by `commit()` (the board commits after each batch)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path, timeout=60)  # another run on the same history: wait for it
            self.db.row_factory = sqlite3.Row
            self.db.executescript(SCHEMA)
        except sqlite3.Error as e:
            raise HistoryError(f"{escape(str(self.path))} cannot be used as a grading history ({e})") from None

    def close(self) -> None:
        self.db.commit()
        self.db.close()

    def commit(self) -> None:
        self.db.commit()

    # -- what was handed in ---------------------------------------------------------------------

    def add_file(self, digest: str, data: bytes | None, error: str | None) -> None:
        self.db.execute("INSERT OR IGNORE INTO files VALUES (?, ?, ?)", (digest, data, error))

    def file(self, digest: str) -> tuple[bytes | None, str | None]:
        row = self.db.execute("SELECT bytes, error FROM files WHERE hash = ?", (digest,)).fetchone()
        return (None, "is missing from the history") if row is None else (row[0], row[1])

    def add_submission(self, student: str, problem: str, digest: str, path: str, submitted_at: float) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO submissions (student, problem, file_hash, path, submitted_at, first_seen)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (student, problem, digest, path, submitted_at, _now()),
        )

    # -- grading options --------------------------------------------------------------------------

    def add_grading(self, key: str, problem: str, options: dict, sets: dict) -> None:
        self.db.execute(
            "INSERT INTO gradings VALUES (?, ?, ?, ?, ?) ON CONFLICT (options_key) DO UPDATE SET sets = excluded.sets",
            (key, problem, json.dumps(options, sort_keys=True), json.dumps(sets, sort_keys=True), _now()),
        )

    def sets(self, key: str) -> dict | None:
        """The evaluation sets' description stored for these options, or None if never built."""
        row = self.db.execute("SELECT sets FROM gradings WHERE options_key = ?", (key,)).fetchone()
        return None if row is None or row[0] is None else json.loads(row[0])

    # -- grades ---------------------------------------------------------------------------------------

    def ungraded(self, problem: str, key: str, extra: list[str] = ()) -> list[str]:
        """Hashes of the problem's submissions (and `extra` files) without a grade under `key`."""
        rows = self.db.execute(
            "SELECT DISTINCT file_hash FROM submissions WHERE problem = ? AND file_hash NOT IN"
            " (SELECT file_hash FROM scores WHERE problem = ? AND options_key = ?) ORDER BY file_hash",
            (problem, problem, key),
        ).fetchall()
        hashes = [r[0] for r in rows]
        return hashes + [h for h in dict.fromkeys(extra) if h not in hashes and self.score(problem, h, key) is None]

    def add_score(self, problem: str, digest: str, key: str, outcome: Outcome) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                problem,
                digest,
                key,
                outcome.public.kl if outcome.public else None,
                outcome.hidden.kl if outcome.hidden else None,
                outcome.max_abs_weight,
                int(outcome.passed),
                outcome.error,
                json.dumps(_details(outcome)),
                outcome.seconds,
                _now(),
            ),
        )

    def score(self, problem: str, digest: str, key: str) -> dict | None:
        row = self.db.execute(
            "SELECT kl_public, kl_hidden, max_abs_weight, passed, error FROM scores"
            " WHERE problem = ? AND file_hash = ? AND options_key = ?",
            (problem, digest, key),
        ).fetchone()
        return None if row is None else dict(row)

    def graded_submissions(self, problem: str, key: str) -> list[dict]:
        """Every submission of the problem with its grade under `key`, oldest first."""
        rows = self.db.execute(
            "SELECT s.id, s.student, s.file_hash, s.path, s.submitted_at,"
            " g.kl_public, g.kl_hidden, g.max_abs_weight, g.passed, g.error"
            " FROM submissions s JOIN scores g"
            " ON g.problem = s.problem AND g.file_hash = s.file_hash AND g.options_key = ?"
            " WHERE s.problem = ? ORDER BY s.submitted_at, s.id",
            (key, problem),
        )
        return [dict(row) for row in rows]


def _details(outcome: Outcome) -> dict:
    """The outcome as JSON data (built by hand: dataclasses.asdict is slow for a thousand files)."""
    sets = {}
    for name, result in (("public", outcome.public), ("hidden", outcome.hidden)):
        if result is not None:
            sets[name] = {
                "kl": result.kl,
                "kl_se": result.kl_se,
                "passed": result.passed,
                "argmax_accuracy": result.argmax_accuracy,
                "by_context": [list(c) for c in result.by_context],
            }
    return {**sets, "max_abs_weight": outcome.max_abs_weight, "error": outcome.error, "seconds": outcome.seconds}
