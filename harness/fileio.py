"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

# Errors that mean "no room", and what to tell the user about each.
_NO_ROOM = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than the file system or the process's file-size limit "
                 "(ulimit -f) allows",
}


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary path in ``path``'s folder, fsync it, then rename it
    over ``path``. On any failure the temporary file is removed and ``path`` is untouched; an
    OSError is raised again naming ``path`` (and, for a full disk or quota, saying so) with the
    original errno."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(handle)
        write(Path(tmp))
        # mkstemp makes the file private (0600); the result gets the mode of the file it
        # replaces, or a new file's usual 0644 (a leaderboard or page is for reading)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise _explained(err, path) from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _explained(err: OSError, path: Path) -> OSError:
    """``err`` with a message that names the file being written (the OS often does not)."""
    reason = err.strerror or str(err)
    hint = _NO_ROOM.get(err.errno)  # type: ignore[arg-type]
    text = f"cannot write {path}: {reason}" + (f" ({hint}); nothing was replaced" if hint else "")
    return OSError(err.errno, text) if err.errno is not None else OSError(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))
