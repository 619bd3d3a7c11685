"""Finding submissions in a folder and reading them without trusting anything about them.

Layout: SUBMISSIONS/<student>/<problem>.toml, one folder per student, named by the student in
any Unicode; or SUBMISSIONS/manifest.csv with the columns student,problem,path,submitted_at
(paths relative to SUBMISSIONS, times ISO 8601, a time without a zone is UTC, an empty time
means the file's modification time). Names that the file system cannot decode keep their
bytes as \\x escapes. Files are read only if they are regular files, at most the core's size
cap and without blocking (`untrusted.read_capped`), so a FIFO, a device or a huge file is an
error, never a hang.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from handattn.errors import InputError, Issue, shown
from handattn.untrusted import read_capped
from handattn.weights.read import MAX_FILE_BYTES

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("student", "problem", "path", "submitted_at")
MAX_MANIFEST_BYTES = 16 << 20
MAX_WALK = 10_000  # entries looked at inside one upload (a student may upload a whole project)
SKIPPED = ("__MACOSX",)  # what zip tools add beside the files


class ManifestError(InputError):
    """A manifest.csv that cannot be used (the instructor's file: the board is not written)."""


@dataclass(frozen=True)
class Submission:
    student: str
    problem: str
    path: Path
    submitted_at: float | None = None  # seconds since the epoch; None: the file's modification time


@dataclass
class Found:
    submissions: list[Submission] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # entries that are not <problem>.toml in a student folder


@dataclass(frozen=True)
class FileRead:
    """A file's bytes, or why it cannot be read; `digest` names either (a content hash or an error hash)."""

    data: bytes | None
    error: str | None
    mtime: float | None

    @property
    def digest(self) -> str:
        if self.data is not None:
            return hashlib.sha256(self.data).hexdigest()
        return "unreadable:" + hashlib.sha256((self.error or "").encode()).hexdigest()[:32]


def display_name(name: str) -> str:
    """A file-system name as valid Unicode: undecodable bytes (surrogate escapes) become \\xNN."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def find_submissions(root: Path, problems: Sequence[str]) -> Found:
    """Every submission under `root`, from its manifest.csv if it has one, else from the folders."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(str(root), [Issue("", "is not a folder", "name the folder that holds one folder per student")])
    if (root / MANIFEST).is_file():
        return Found(read_manifest(root, problems))
    found = Found()
    wanted = {f"{p}.toml": p for p in problems}
    for student in sorted(os.scandir(root), key=lambda e: e.name):
        if _skipped(student.name):
            continue
        if not student.is_dir(follow_symlinks=True):
            found.ignored.append(display_name(student.name))
            continue
        try:
            entries = sorted(os.scandir(student.path), key=lambda e: e.name)
        except OSError as e:
            found.ignored.append(f"{display_name(student.name)} (cannot be read: {e.strerror or e})")
            continue
        for entry in entries:
            if entry.name in wanted:
                found.submissions.append(Submission(display_name(student.name), wanted[entry.name], Path(entry.path)))
            elif not _skipped(entry.name):
                found.ignored.append(display_name(f"{student.name}/{entry.name}"))
    return found


def read_manifest(root: Path, problems: Sequence[str]) -> list[Submission]:
    """The submissions manifest.csv lists; every problem with it raises one ManifestError."""
    path = root / MANIFEST
    source = str(path)
    data = read_file(path, MAX_MANIFEST_BYTES)
    if data.error:
        raise ManifestError(source, [Issue("", data.error, "write the manifest as a CSV file")])
    try:
        text = data.data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(source, [Issue("", "is not UTF-8 text", "save it as CSV in UTF-8")]) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        fix = f"the first line names the columns: {','.join(MANIFEST_COLUMNS)}"
        raise ManifestError(source, [Issue("line 1", f"has no column {', '.join(missing)}", fix)])
    issues, submissions = [], []
    base = root.resolve()
    for row in reader:
        where = f"line {reader.line_num}"
        student, problem, rel, when = (row[c] or "" for c in MANIFEST_COLUMNS)
        if not student.strip():
            issues.append(Issue(where, "has no student", "name the student on every line"))
        if problem not in problems:
            issues.append(Issue(where, f"problem {shown(problem)} is not graded", f"use one of: {', '.join(problems)}"))
        target = (root / rel).resolve()
        if not rel or Path(rel).is_absolute() or not target.is_relative_to(base):
            issues.append(Issue(where, f"path {shown(rel)} is not inside {root}", "give paths relative to the folder"))
        try:
            submitted_at = parse_time(when)
        except ValueError:
            issues.append(Issue(where, f"time {shown(when)} is not ISO 8601", "write e.g. 2025-03-01T17:05:00Z"))
            continue
        if len(issues) > 50:
            break
        submissions.append(Submission(student, problem, root / rel, submitted_at))
    if issues:
        raise ManifestError(source, issues)
    return submissions


def parse_time(text: str) -> float | None:
    """ISO 8601 → seconds since the epoch; no zone means UTC; empty means unknown (None)."""
    text = text.strip()
    if not text:
        return None
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def format_time(seconds: float | None) -> str:
    """Seconds since the epoch → ISO 8601 in UTC ("2025-03-01T17:05:00Z"); "" when unknown."""
    if seconds is None:
        return ""
    when = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return when.isoformat(timespec="seconds" if when.microsecond == 0 else "microseconds").replace("+00:00", "Z")


def read_file(path: Path, cap: int = MAX_FILE_BYTES) -> FileRead:
    """At most `cap` bytes of a regular file, read without blocking (`untrusted.read_capped`), or why not."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        mtime = None
    try:
        data = read_capped(path, cap, InputError, missing_fix="", large_fix="")
    except InputError as e:
        return FileRead(None, e.issues[0].message, mtime)
    return FileRead(data, None, mtime)


@dataclass
class Upload:
    """Where each `<problem>.toml` lies inside one student's upload (paths relative to it)."""

    found: dict[str, list[str]]  # problem -> paths of files with exactly that name
    other_toml: list[str] = field(default_factory=list)  # other .toml files, to help a student who misnamed one


def find_uploads(root: Path, problems: Sequence[str]) -> Upload:
    """Look for `<problem>.toml` anywhere inside an upload (students upload folders).

    Symbolic links are not followed, hidden and __MACOSX folders are skipped, and at most
    MAX_WALK entries are looked at."""
    wanted = {f"{p}.toml": p for p in problems}
    upload = Upload({p: [] for p in problems})
    seen = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not _skipped(d))
        seen += len(dirs) + len(files)
        for name in sorted(files):
            rel = display_name(os.path.relpath(os.path.join(folder, name), root))
            if name in wanted:
                upload.found[wanted[name]].append(rel)
            elif name.lower().endswith(".toml") and not _skipped(name):
                upload.other_toml.append(rel)
        if seen > MAX_WALK:
            break
    return upload


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED
