"""Reading what a user did not write: config files, run folders, data files.

A run folder is untrusted input, like a config: someone may send one.  The
helpers here give every reader the same four guarantees:

* a name read from disk (run id, file name in a DONE marker, folder name)
  passes the same rule as a config ``name``, so a name used to build an
  output path can never climb out of its folder (no ``/``, no leading ``.``);
* a file is read only if it is a regular file and at most ``limit`` bytes,
  and never whole into memory before its size is known (a FIFO, a device or
  a 50 GB file is refused with its size, a gzip bomb is cut at the limit);
* JSON is parsed without NaN/Infinity and without a RecursionError escaping;
* text from a run that goes to a terminal has its control characters
  escaped (:func:`term`), so an id cannot clear the screen or forge a line.

Errors are raised as the caller's :class:`SparsescopeError` subclass so the
message stays one line naming the file.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import stat
import unicodedata
import zlib
from pathlib import Path
from typing import Any

from ._errors import SparsescopeError
from ._resources import human_bytes

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NAME_MAX = 64  # config names; run ids (a name plus a hash) and file names may be longer
RUN_ID_MAX = 128
JSON_LIMIT = 16 << 20  # manifests, DONE markers and metrics are a few kB; 16 MiB is generous


def is_name(value: object, max_len: int = NAME_MAX) -> bool:
    """True for a string that is safe as one path component: the config-name rule
    (letters, digits, ``-``, ``_``, ``.``; a letter or digit first; at most ``max_len``)."""
    return isinstance(value, str) and 0 < len(value) <= max_len and NAME_RE.fullmatch(value) is not None


def check_name(what: str, value: object, error: type[SparsescopeError], max_len: int = NAME_MAX) -> str:
    """``value`` if it follows the config-name rule (:func:`is_name`), else ``error`` naming ``what``."""
    if not is_name(value, max_len):
        raise error(f"{what} must be 1-{max_len} letters, digits, '-', '_' or '.', starting with a letter or "
                    f"digit, got {term(repr(value))[:80]}")
    return value  # type: ignore[return-value]


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def term(value: object) -> str:
    """``str(value)`` with every control, format and line/paragraph-separator
    character escaped (``\\x1b``, ``\\n``, ``\\u202e``), so that what reaches a terminal
    is exactly one line of visible text.  Idempotent (backslashes are kept as they
    are), so a message escaped in the library can be escaped again when printed."""
    text = str(value)
    if text.isprintable():  # the usual case: no control, format or separator characters at all
        return text
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def open_regular(path: Path, what: str, error: type[SparsescopeError]) -> tuple[int, int]:
    """Open ``path`` read-only; refuse anything but a regular file.  Returns ``(fd, size)``.

    ``O_NONBLOCK`` keeps a FIFO from hanging the open; ``fstat`` on the open
    descriptor checks the file actually opened (no check-then-open race).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{what}: {term(path)} is missing") from None
    except IsADirectoryError:
        raise error(f"{what}: {term(path)} is a folder, not a file") from None
    except OSError as exc:
        raise error(f"{what}: cannot open {term(path)}: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise error(f"{what}: {term(path)} is {kind}")
    return fd, st.st_size


def read_limited(path: str | os.PathLike, limit: int, what: str, error: type[SparsescopeError]) -> bytes:
    """The bytes of regular file ``path``, refused (before reading) if larger than ``limit``."""
    path = Path(path)
    fd, size = open_regular(path, what, error)
    try:
        if size > limit:
            raise error(f"{what}: {term(path)} is {human_bytes(size)}, more than the {human_bytes(limit)} it can be")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise error(f"{what}: cannot read {term(path)}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while we read it
        raise error(f"{what}: {term(path)} is more than the {human_bytes(limit)} it can be")
    return data


def read_gzip_limited(path: str | os.PathLike, limit: int, what: str, error: type[SparsescopeError], *,
                      head: bool = False) -> bytes:
    """The decompressed bytes of gzip file ``path``, refused if more than ``limit`` (a bomb is cut
    off after ``limit + 1`` bytes); ``head=True``: just the first ``limit`` bytes, no refusal."""
    path = Path(path)
    fd, _ = open_regular(path, what, error)
    try:
        with os.fdopen(fd, "rb", closefd=False) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as fh:
            data = fh.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise error(f"{what}: cannot read {term(path)}: {exc}") from None
    finally:
        os.close(fd)
    if head:
        return data[:limit]
    if len(data) > limit:
        raise error(f"{what}: {term(path)} decompresses to more than the {human_bytes(limit)} it can be")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def parse_json(data: bytes, what: str, error: type[SparsescopeError]) -> Any:
    """Parse JSON bytes strictly: UTF-8, no NaN/Infinity, nesting within Python's stack."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except RecursionError:
        raise error(f"{what} is nested too deeply (corrupt)") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise error(f"{what} is corrupt ({term(exc)[:120]})") from None


def read_json(path: str | os.PathLike, what: str, error: type[SparsescopeError], limit: int = JSON_LIMIT) -> Any:
    """Read and strictly parse a JSON file of at most ``limit`` bytes."""
    return parse_json(read_limited(path, limit, what, error), what, error)


def need(what: str, ok: bool, error: type[SparsescopeError], detail: str) -> None:
    """Raise ``error("{what}: {detail}")`` unless ``ok``: one line per failed field check."""
    if not ok:
        raise error(f"{what}: {detail}")


def is_int(v: object, lo: int | None = None, hi: int | None = None) -> bool:
    """A true int (not a bool) within ``[lo, hi]``."""
    return (isinstance(v, int) and not isinstance(v, bool) and (lo is None or v >= lo) and (hi is None or v <= hi))


def is_number(v: object, lo: float | None = None, hi: float | None = None) -> bool:
    """A finite int or float (not a bool) within ``[lo, hi]``."""
    import math

    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        f = float(v)
    except OverflowError:
        return False
    return math.isfinite(f) and (lo is None or f >= lo) and (hi is None or f <= hi)
