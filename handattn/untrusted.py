"""Reading an untrusted file: a regular file only, and never more than its cap plus one byte.

A path may name a FIFO (opening it would wait for a writer forever), a device such as
/dev/zero (endless, and `st_size` says 0), a folder, or a symlink to any of these. The file
is opened without blocking, checked with fstat on the open descriptor (so it cannot be swapped
between the check and the read), and read up to `limit + 1` bytes: one more than allowed
proves it is too large, whatever the file system says its size is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from handattn.errors import InputError, Issue


def read_capped(path: str | Path, limit: int, error: type[InputError], *, missing_fix: str, large_fix: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; anything else raises `error` with one issue."""
    source = str(path)

    def refuse(message: str, fix: str) -> InputError:
        return error(source, [Issue("", message, fix)])

    if source == "":
        raise refuse("is an empty file name", "name a file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise refuse("does not exist", missing_fix) from None
    except IsADirectoryError:
        raise refuse("is a folder, not a file", "name a file") from None
    except OSError as e:
        raise refuse(f"cannot be read ({e.strerror or e})", "check the path and its permissions") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise refuse("is a folder, not a file", "name a file")
        if not stat.S_ISREG(mode):
            raise refuse("is not a regular file (a pipe, device or socket)", "name a file saved on disk")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise refuse(f"cannot be read ({e.strerror or e})", "check the path and its permissions") from None
    finally:
        os.close(fd)
    if size > limit:
        raise refuse(f"is over the {_size(limit)} limit", large_fix)
    return b"".join(chunks)


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n:,} bytes"
