"""Reading files on disk safely: a folder listed without following links, each file opened
folder by folder with no link followed and no blocking, then read only if it is a regular
file, within the limits. Apart because it is the reader's defence against hostile trees.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from auditor.lint.layout import LEGACY
from auditor.lint.limits import Found, format_size
from auditor.lint.records import Location

# Folders never searched: version control and tool state, and build output, which holds
# copies of the sources (pac's bin/ and obj/).
SKIPPED_FOLDERS = frozenset({"bin", "obj", "node_modules"})


# Folders the reader reads files in: a link in their place is reported, not silently skipped.
_READ_FOLDERS = frozenset({"workflows", "sdkmessageprocessingsteps", "other", "microsoft.flow"})
REFUSED = "lint reads regular files only, and follows no link it was not given"


@dataclass
class Folder:
    """A folder on disk; subfolders holding tool state or build output are not searched, and
    what is not a regular file is listed in `refused`, never opened."""

    root: Path
    display: str
    names: list[str]
    root_name: str
    refused: dict[str, str] = field(default_factory=dict)  # rel -> what it is
    complete: bool = True
    absent: str = "does not exist"

    @classmethod
    def of(cls, root: Path, display: str, found: Found) -> Folder:
        folder = cls(root, display, [], root.resolve().name)
        folder.complete = _walk(folder, found)
        return folder

    @property
    def has_lines(self) -> bool:
        return True

    def location(self, rel: str, line: int | None = None) -> Location:
        return Location(_joined(self.display, rel), None, line)

    def solution(self, rel: str) -> str:
        """The solution folder of the flow file at `rel`: the folder above its `Workflows/`
        folder, or above `Microsoft.Flow/flows/` (a legacy package)."""
        legacy = LEGACY.search(rel)
        if legacy is not None:
            below = rel[: legacy.start()]
        else:
            folder = posixpath.dirname(rel)
            if not folder:  # PATH is the Workflows folder itself
                return posixpath.normpath(posixpath.join(self.display, ".."))
            below = posixpath.dirname(folder)
        return _joined(self.display, below) if below else self.display

    def read(self, rel: str, kind: str, found: Found, limit: int) -> bytes | None:
        location = self.location(rel)
        if rel in self.refused:
            found.problem(location, kind, f"not read: {self.refused[rel]}; {REFUSED}")
            return None
        return read_regular(lambda: _open_below(self.root, rel), location, kind, found, limit)


def _joined(display: str, rel: str) -> str:
    return rel if display in ("", ".") else f"{display.rstrip('/')}/{rel}"


def _walk(folder: Folder, found: Found) -> bool:
    """Lists the files below the folder into `folder.names` (POSIX paths relative to it, a
    folder's files in sorted order before its subfolders'), with what is not a regular file
    in `folder.refused`; a link to a folder is not entered. False when the run's budget of
    files listed cut the listing short."""
    pending = [""]
    while pending:
        below = pending.pop()
        try:
            with os.scandir(folder.root / below) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            continue  # a folder that cannot be listed is skipped, as os.walk does
        subfolders = []
        for entry in entries:
            rel = f"{below}/{entry.name}" if below else entry.name
            what = _entry_type(entry)
            if what == "folder":
                if not entry.name.startswith(".") and entry.name.lower() not in SKIPPED_FOLDERS:
                    subfolders.append(rel)
                continue
            if not found.take("files", folder.location(rel)):
                return False
            folder.names.append(rel)
            if what != "file":
                folder.refused[rel] = what
                if entry.name.lower() in _READ_FOLDERS:  # e.g. Workflows -> elsewhere
                    found.problem(folder.location(rel), "solution", f"not read: {what}; {REFUSED}")
        pending.extend(reversed(subfolders))
    return True


def _entry_type(entry: os.DirEntry[str]) -> str:
    """What an entry of a listing is, links not followed: "folder", "file" (a regular one),
    or what else, as `file_type` says it."""
    try:
        if entry.is_symlink():
            return "a symbolic link"
        if entry.is_dir(follow_symlinks=False):
            return "folder"
        if entry.is_file(follow_symlinks=False):
            return "file"
        return file_type(entry.stat(follow_symlinks=False).st_mode)
    except OSError:
        return "a file that cannot be examined"


def file_type(mode: int) -> str:
    """What a file that is not a regular one is, for messages."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a folder" if stat.S_ISDIR(mode) else "a special file"


# Flags of every open: never block on a FIFO, never leak to a child, binary on Windows.
READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
READ |= getattr(os, "O_BINARY", 0)
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def _open_below(root: Path, rel: str) -> int:
    """`rel` below the folder `root`, opened folder by folder without following a link at any
    level below `root`, and without blocking on a FIFO; the caller checks what it opened."""
    *folders, name = rel.split("/")
    if os.open not in os.supports_dir_fd:  # no openat (Windows): check each level first
        for depth in range(1, len(folders) + 2):
            if os.path.islink(root.joinpath(*rel.split("/")[:depth])):
                raise OSError(errno.ELOOP, "a symbolic link", str(root / rel))
        return os.open(root / rel, READ | NOFOLLOW)
    fd = os.open(root, _FOLDER)
    try:
        for folder in folders:
            try:
                inner = os.open(folder, _FOLDER | NOFOLLOW, dir_fd=fd)
            except NotADirectoryError:  # what Linux says of a link opened as a folder
                if stat.S_ISLNK(os.lstat(folder, dir_fd=fd).st_mode):
                    raise OSError(errno.ELOOP, "a symbolic link", folder) from None
                raise
            os.close(fd)
            fd = inner
        return os.open(name, READ | NOFOLLOW, dir_fd=fd)
    finally:
        os.close(fd)


def read_regular(
    open_file: Callable[[], int], location: Location, kind: str, found: Found, limit: int
) -> bytes | None:
    """The bytes of the regular file `open_file` opens, at most `limit`, within the run's
    budget; None after a problem, or once the budget is spent."""
    if found.spent:
        found.skip(location)
        return None
    try:
        fd = open_file()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            found.problem(location, kind, f"not read: a symbolic link; {REFUSED}")
        else:
            found.problem(location, kind, f"cannot be read: {exc.strerror or exc}")
        return None
    try:
        data = _read_opened(fd, location, kind, found, limit)
    except OSError as exc:
        found.problem(location, kind, f"cannot be read: {exc.strerror or exc}")
        return None
    finally:
        os.close(fd)
    if data is not None:
        found.files += 1
    return data


def _read_opened(fd: int, location: Location, kind: str, found: Found, limit: int) -> bytes | None:
    """What `read_regular` reads once the file is open: it must be a regular file (by
    fstat of what was opened), and at most `limit` + 1 bytes are read whatever its size says
    (a file may be sparse, grow while read, or be a /proc file whose size is 0)."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        what = file_type(info.st_mode)
        found.problem(location, kind, f"not read: {what}; {REFUSED}")
        return None
    if info.st_size > limit:
        message = f"not read: {format_size(info.st_size)}, over the {format_size(limit)} limit"
        found.problem(location, kind, message)
        return None
    room = found.left("bytes")
    if info.st_size > room:
        found.take("bytes", location, info.st_size)
        found.skip(location)
        return None
    most = min(limit, room) + 1
    chunks, size = [], 0
    step = min(most, info.st_size + 1) if info.st_size else 64 * 1024
    while size < most:
        chunk = os.read(fd, min(most - size, step))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        step = 1024 * 1024
    data = b"".join(chunks)
    if len(data) > limit:
        found.problem(location, kind, f"not read: over the {format_size(limit)} limit")
        return None
    if not found.take("bytes", location, len(data)):
        found.skip(location)
        return None
    return data
