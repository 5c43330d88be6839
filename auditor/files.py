"""Every file the auditor writes, written safely.

Reports, evidence, exports and the simulator's files hold tenant telemetry, and `--out` may be
a folder in a pull request's checkout that anyone could have filled with links. So:

- a file is written to a temporary file in its target folder (created 0600 with `O_EXCL`,
  so it never follows a link) and renamed over the target only when complete: a failure
  leaves the previous file or nothing, never a truncated report, and a rename replaces a link
  at the target instead of writing through it;
- a folder the auditor creates is owner-only (0700); an existing path on the way that is a
  symbolic link, or not a folder, is refused rather than followed;
- every `OSError` becomes a `WriteError`: one line naming the path and the reason, a hint for
  the common causes, exit code 3.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from auditor.errors import WriteError

FILE_MODE = 0o600
FOLDER_MODE = 0o700

_HINTS = {
    errno.ENOSPC: "The disk is full: free space or choose another folder with --out.",
    errno.EDQUOT: "The disk quota is used up: free space or choose another folder with --out.",
    errno.EFBIG: "The file grew past the size allowed (file system or `ulimit -f`): free space "
    "or choose another folder with --out.",
    errno.EROFS: "The file system is read-only: choose a writable folder with --out.",
    errno.EACCES: "Permission denied: choose a folder you can write with --out.",
    errno.EPERM: "Permission denied: choose a folder you can write with --out.",
    errno.ENOTDIR: "A path on the way is a file, not a folder: choose another --out.",
    errno.EEXIST: "A path on the way is a file, not a folder: choose another --out.",
}


def write_error(path: Path, exc: OSError) -> WriteError:
    """The one-line error for `exc` raised while writing `path`."""
    reason = exc.strerror or str(exc)
    return WriteError(f"cannot write {path}: {reason}", hint=_HINTS.get(exc.errno or 0))


def private_dir(path: Path) -> Path:
    """Creates `path` and its missing parents owner-only (0700); an existing folder is kept
    as it is. A link or a file at `path` is refused: nothing is written through it. The
    folders above that already exist are the operator's choice and are used as they are."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        if path.parent != path:
            _existing_or_private(path.parent)
        try:
            os.mkdir(path, FOLDER_MODE)
        except FileExistsError:
            pass  # made meanwhile: checked below like any existing path
        except OSError as exc:
            raise write_error(path, exc) from exc
        mode = os.lstat(path).st_mode
    except OSError as exc:
        raise write_error(path, exc) from exc
    _refuse_link(path, mode)
    if not stat.S_ISDIR(mode):
        raise WriteError(
            f"cannot write {path}: it is a file, not a folder", hint=_HINTS[errno.ENOTDIR]
        )
    return path


def _existing_or_private(path: Path) -> None:
    """A parent of the output: used if it exists as a folder (links followed), else made."""
    if path.is_dir():
        return
    if path.exists() or path.is_symlink():
        raise WriteError(f"cannot write {path}: it is not a folder", hint=_HINTS[errno.ENOTDIR])
    private_dir(path)


def _refuse_link(path: Path, mode: int) -> None:
    if stat.S_ISLNK(mode):
        raise WriteError(
            f"cannot write {path}: it is a symbolic link, and the auditor does not write "
            "through links",
            hint="Remove the link or choose another folder with --out.",
        )


@contextlib.contextmanager
def atomic_open(path: Path, *, binary: bool = False, newline: str | None = None) -> Iterator[IO]:  # type: ignore[type-arg]
    """A handle on a temporary file beside `path` (0600), renamed to `path` when the block
    ends without an error; on any error the temporary file is removed and `path` untouched."""
    path = Path(path)
    folder = private_dir(path.parent)
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            raise IsADirectoryError(errno.EISDIR, "it is a folder")
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        with os.fdopen(
            fd, "wb" if binary else "w", encoding=None if binary else "utf-8", newline=newline
        ) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)  # replaces a link at `path` itself, never its target
    except OSError as exc:
        _discard(temporary)
        raise write_error(path, exc) from exc
    except BaseException:
        _discard(temporary)
        raise


def _discard(temporary: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(temporary)


def write_text(path: Path, text: str) -> Path:
    """Writes `text` (UTF-8) to `path` atomically, owner-only."""
    with atomic_open(path) as handle:
        handle.write(text)
    return Path(path)


def write_bytes(path: Path, data: bytes) -> Path:
    """Writes `data` to `path` atomically, owner-only."""
    with atomic_open(path, binary=True) as handle:
        handle.write(data)
    return Path(path)


__all__ = [
    "FILE_MODE",
    "FOLDER_MODE",
    "atomic_open",
    "private_dir",
    "write_bytes",
    "write_error",
    "write_text",
]
