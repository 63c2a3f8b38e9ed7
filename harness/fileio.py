"""Files on disk: atomic writes (a reader sees the old file or the new one, never half of one),
and names from users that become folders without leaving the folder they are put in."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import InvalidOptionError

# A suite is chosen by its user and names folders they will type: checked, not encoded.
SUITE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,63}")
# What a folder name made from a model, dataset or unit name keeps as it is (every name the
# registry and the protocols give); anything else is %-encoded (its UTF-8 bytes): a separator,
# '%' itself, control characters and non-ASCII (which file systems normalise differently).
_KEPT = re.compile(r"[A-Za-z0-9 !#$&'()*+,\-.:;=?@\[\]^_`{|}~\"<>]")
FOLDER_NAME_BYTES = 128  # longer names keep a prefix and a hash of the whole (file systems: 255)


def check_suite(name: str, what: str = "--suite") -> str:
    """``name`` if it is a suite name: folders under the runs folder, parts of letters, digits
    and ``._+-`` joined by ``/`` (``demo/comparison``); else InvalidOptionError naming ``what``."""
    if not isinstance(name, str) or not all(SUITE_PART.fullmatch(p) for p in name.split("/")):
        raise InvalidOptionError(
            f"{what} {name!r}: a suite names folders under the runs folder: parts of letters, "
            f"digits, '_', '.', '+' or '-' (at most 64 each, not starting with '.', '+' or '-') "
            f"joined by '/', e.g. demo/comparison")
    return name


def folder_name(name: str) -> str:
    """``name`` (a model with its arguments, a dataset, a unit) as one folder name that stays in
    the folder it is put in: every character :data:`_KEPT` does not keep is %-encoded, a leading
    '.' too (no '.', '..' or hidden folder), and a name over :data:`FOLDER_NAME_BYTES` keeps its
    start and a hash of the whole. Names the harness has always written are unchanged, and two
    names never share a folder."""
    if not name:
        raise ValueError("an empty name has no folder")
    encoded = "".join(c if _KEPT.fullmatch(c) else "".join(f"%{b:02X}" for b in c.encode())
                      for c in name)
    if encoded.startswith("."):
        encoded = "%2E" + encoded[1:]
    if len(encoded) > FOLDER_NAME_BYTES:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        encoded = f"{encoded[:FOLDER_NAME_BYTES - 17]}~{digest}"
    return encoded

# Errors that mean "no room", and what to tell the user about each.
_NO_ROOM = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than the file system or the process's file-size limit "
                 "(ulimit -f) allows",
}


def atomic_write(path: Path, write: Callable[[Path], object], durable: bool = True) -> None:
    """Call ``write(tmp)`` on a temporary path in ``path``'s folder, fsync it, then rename it
    over ``path``. On any failure the temporary file is removed and ``path`` is untouched; an
    OSError is raised again naming ``path`` (and, for a full disk or quota, saying so) with the
    original errno.

    ``durable=False`` skips the fsync, for cache entries: their readers verify them and rebuild
    a damaged one, so a crash of the machine costs a recomputation, not a result. (An fsync
    took 3.6 ms here; a cold demo wrote 3,400 entries, 12 s of its 2.3 min.)"""
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
        if durable:
            with open(tmp, "rb") as written:
                os.fsync(written.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise _explained(err, path) from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def reason_of(err: OSError) -> str:
    """Why a write failed, in words: the system's reason, and for a full disk or quota what
    that means."""
    reason = err.strerror or str(err)
    # errno is None for an OSError raised without one: get() then finds no hint
    hint = _NO_ROOM.get(err.errno)  # type: ignore[arg-type]
    return f"{reason} ({hint})" if hint else reason


def _explained(err: OSError, path: Path) -> OSError:
    """``err`` with a message that names the file being written (the OS often does not)."""
    hint = _NO_ROOM.get(err.errno)  # type: ignore[arg-type]  # as in reason_of
    text = f"cannot write {path}: {reason_of(err)}" + ("; nothing was replaced" if hint else "")
    return OSError(err.errno, text) if err.errno is not None else OSError(text)


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data), durable)


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text), durable)


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """A fresh folder beside ``out`` to write into; when the block ends without an error, each
    file in it replaces its namesake under ``out`` (renames: no space needed, none half-done),
    and on an error ``out`` is untouched. For outputs of many files (a leaderboard with its
    figures and page) that must be written whole or not at all. A path relative to the staging
    folder is the same relative to ``out``, since both sit in one parent."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as err:
        raise _explained(err, out) from err
    try:
        yield staging
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            target = out / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    except OSError as err:
        # named by ``out``: the file that failed was in the staging folder, now gone
        plain = OSError(err.errno, os.strerror(err.errno)) if err.errno else err
        raise OSError(err.errno, f"cannot write {out}: {reason_of(plain)}; what was there is "
                                 f"as it was") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
