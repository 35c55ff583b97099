"""Atomic writes that leave nothing behind.

A reader sees the old file (or folder) or the new one, never half of one.
Every write goes through a hidden temporary sibling named
``.NAME.XXXXXXXX.tmp`` (``XXXXXXXX``: ``tempfile``'s 8 random characters)
that its writer holds an exclusive ``flock`` on until it is renamed into
place.  A killed writer's lock dies with it, so the next write of the same
``NAME`` removes exactly the temporaries nobody holds
(:func:`remove_stale`): a live writer's are skipped, and nothing whose name
does not fit the pattern is ever touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import: os.umask can only be read by setting it
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK
TMP_SUFFIX = ".tmp"


def tmp_pattern(name: str | None = None) -> re.Pattern[str]:
    """The names of the temporaries of ``name`` (None: of any name): ``.NAME.`` + 8 tempfile
    characters + ``.tmp``."""
    stem = r"\..+\." if name is None else re.escape(f".{name}.")
    return re.compile(stem + r"[a-z0-9_]{8}" + re.escape(TMP_SUFFIX))


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def remove_stale(parent: str | os.PathLike, name: str | None = None) -> int:
    """Remove the temporaries of ``parent/name`` (None: of any name in ``parent``) that no
    live writer holds; returns how many.

    Only entries matching :func:`tmp_pattern` are considered, symbolic links
    are never followed or removed, and each candidate is removed while we hold
    its lock, so a writer that created it a moment ago notices (see
    :func:`_claim`) instead of losing its work.
    """
    parent = Path(parent)
    pat = tmp_pattern(name)
    removed = 0
    try:
        entries = [e for e in os.scandir(parent) if pat.fullmatch(e.name)]
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for e in entries:
        path = parent / e.name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue  # gone, a symbolic link (ELOOP), or unreadable: not ours to judge
        try:
            st = os.fstat(fd)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) or not _try_lock(fd):
                continue
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            removed += 1
        finally:
            os.close(fd)
    return removed


def _claim(fd: int, path: str) -> bool:
    """Lock our new temporary; False if a concurrent :func:`remove_stale` took it first."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        return os.path.samestat(os.fstat(fd), os.lstat(path))
    except FileNotFoundError:
        return False


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a locked temporary file in the same folder and a rename.

    Stale temporaries of ``path`` (from a killed earlier write) are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, path.name)
    while True:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        if _claim(fd, tmp):
            break
        os.close(fd)
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(tmp, path)  # still holding the lock: nobody removes it under us
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomic UTF-8 text write (``\\n`` newlines on every platform)."""
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def temp_dir(final: str | os.PathLike) -> Iterator[Path]:
    """A fresh, locked, hidden temporary folder beside ``final`` (stale ones removed first).

    The caller fills it and renames it into place; if the body raises, the
    folder is removed.  The lock lasts until the body ends, so a concurrent
    :func:`remove_stale` never takes a folder that is being written.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final.parent, final.name)
    while True:
        tmp = tempfile.mkdtemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent)
        fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        if _claim(fd, tmp):
            break
        os.close(fd)
    try:
        os.chmod(tmp, DIR_MODE)  # mkdtemp makes 0700
        yield Path(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Atomically swap the names ``a`` and ``b`` (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the system or file system cannot (then nothing moved).
    """
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(b))
