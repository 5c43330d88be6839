"""Reading a zip in memory: its central directory bounded before it is listed, a member
named twice never read, and each member inflated within the limits. Apart from folders
because a zip's hazards (declared sizes, duplicate names) are its own.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from auditor.lint.files import READ, file_type
from auditor.lint.layout import ROLE_KIND, role_of
from auditor.lint.limits import Found, format_size
from auditor.lint.records import Location
from auditor.lint.solution import read_source

# A zip's central directory (a real solution's is a few hundred KB; each entry costs about
# ten times its size in memory once listed).
MAX_ZIP_DIRECTORY = 8 * 1024 * 1024


@dataclass
class _Zip:
    """A zip read in memory, member by member, within the limits; members it holds twice
    (`refused`) are never read."""

    archive: zipfile.ZipFile
    display: str
    members: dict[str, zipfile.ZipInfo]  # by name with "/" separators; folders left out
    refused: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)
    root_name: str = ""
    absent: str = "is not in the zip"
    complete: bool = True
    # One Location per member (the same for every record of it: no lines in a zip).
    locations: dict[str, Location] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names = sorted(self.members)

    @property
    def has_lines(self) -> bool:
        return False

    def location(self, rel: str, line: int | None = None) -> Location:
        location = self.locations.get(rel)
        if location is None:
            location = self.locations[rel] = Location(self.display, rel, None)
        return location

    def solution(self, rel: str) -> str:
        """A zip is one solution (or one legacy package)."""
        return self.display

    def read(self, rel: str, kind: str, found: Found, limit: int) -> bytes | None:
        """The member's bytes; never more than the limits, whatever its header declares."""
        info, location = self.members[rel], self.location(rel)
        if rel in self.refused:
            return None  # its problem was reported with the listing
        if found.spent:
            found.skip(location)
            return None
        if info.file_size > limit:
            message = (
                f"not read: inflates to {format_size(info.file_size)}, over the "
                f"{format_size(limit)} limit"
            )
            found.problem(location, kind, message)
            return None
        room = found.left("bytes")
        if info.file_size > room:
            found.take("bytes", location, info.file_size)
            found.skip(location)
            return None
        try:
            with self.archive.open(info) as member:
                data = member.read(min(limit, room) + 1)
        except Exception as exc:  # any decompressor's error: the member is damaged or hostile
            found.problem(location, kind, f"cannot be read from the zip: {exc}")
            return None
        if len(data) > limit:
            found.problem(location, kind, f"not read: inflates past the {format_size(limit)} limit")
            return None
        if not found.take("bytes", location, len(data)):
            found.skip(location)
            return None
        found.files += 1
        return data


def read_zip(path: Path, display: str, found: Found) -> None:
    """A solution or legacy package .zip; a zip that is neither is a usage error."""
    location = Location(display)
    try:
        handle = os.fdopen(os.open(path, READ), "rb")
    except OSError as exc:
        found.problem(location, "solution", f"cannot be read: {exc.strerror or exc}")
        return
    with handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):  # swapped since it was examined
            found.problem(location, "solution", f"not read: {file_type(mode)}")
            return
        directory = _zip_directory_size(handle)
        if directory > MAX_ZIP_DIRECTORY:
            message = (
                f"not read: its directory is {format_size(directory)}, over the "
                f"{format_size(MAX_ZIP_DIRECTORY)} limit (more files than any solution holds)"
            )
            found.problem(location, "solution", message)
            return
        try:
            archive = zipfile.ZipFile(handle)
        except Exception as exc:  # any error of a damaged or hostile zip
            found.problem(location, "solution", f"not a readable zip: {exc}")
            return
        with archive:
            read_source(_zip_listing(archive, display, found), found)


def _zip_directory_size(handle: IO[bytes]) -> int:
    """The size of the central directory the zip's end record declares, which ZipFile reads
    whole and lists entry by entry (0 without an end record: ZipFile then says why). It
    finds the record, and a zip64 record before it, as ZipFile does."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - 22 - 65535))  # the record (22 bytes) and a comment of 64 KB
    tail = handle.read()
    at = len(tail) - 22 if tail[-22:-18] == b"PK\x05\x06" else tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return 0
    declared = int.from_bytes(tail[at + 12 : at + 16], "little")
    start = size - len(tail) + at
    if start >= 76:
        handle.seek(start - 76)  # a zip64 end record (56 bytes), then its locator (20)
        record = handle.read(76)
        if record[56:60] == b"PK\x06\x07" and record[:4] == b"PK\x06\x06":
            declared = max(declared, int.from_bytes(record[40:48], "little"))
    return declared


def _zip_listing(archive: zipfile.ZipFile, display: str, found: Found) -> _Zip:
    """The zip's members by name with "/" separators, folders left out. A name held twice
    (the same after "\\" -> "/", or one the reader uses in another case) is a problem, and
    neither copy is read: another extractor may read the other one."""
    members: dict[str, zipfile.ZipInfo] = {}
    by_case: dict[str, str] = {}
    twice: dict[str, str | None] = {}  # name -> its other spelling (None: the same)
    complete = True
    for info in archive.infolist():
        name = info.filename.replace("\\", "/")
        if name.endswith("/"):
            continue
        if name in members:
            twice[name] = None
            continue
        if not found.take("files", Location(display, name)):
            complete = False
            break
        members[name] = info
        other = by_case.setdefault(name.lower(), name)
        if other != name and role_of(name, "") is not None:
            twice[name] = other
            twice.setdefault(other, name)
    for held, spelling in twice.items():
        also = f" (also as {spelling})" if spelling else ""
        message = f"the zip holds {held} twice{also}; another extractor may read the other copy"
        kind = ROLE_KIND.get(role_of(held, "") or "", "solution")
        found.problem(Location(display, held), kind, message)
    return _Zip(archive, display, members, set(twice), complete=complete)
