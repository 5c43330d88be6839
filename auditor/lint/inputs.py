"""The inputs of `auditor lint`: exported solutions and flow files, read offline.

Each PATH is one of four shapes, and the reader turns all of them into the same records
(cloud flows, plug-in steps, classic workflows) plus the problems of what could not be read:

1. An unpacked solution folder (`pac solution unpack` / SolutionPackager), found anywhere
   below PATH: `Workflows/<Name>-<GUID>.json` with its `.json.data.xml` sibling,
   `SdkMessageProcessingSteps/{<id>}.xml`, `Other/Customizations.xml` (classic workflows,
   steps, references to flow files) and `Workflows/*.xaml.data.xml` (classic workflows).
   https://learn.microsoft.com/power-platform/alm/solution-packager-tool
2. A solution .zip exported from Dataverse (`customizations.xml`, `solution.xml`,
   `Workflows/*.json`), read in memory: nothing is written to disk.
3. A legacy flow export package (`Microsoft.Flow/flows/<guid>/definition.json`), as a folder
   or a .zip.
4. One flow definition .json: `clientdata` (`{"properties": {"definition": ...}}`), legacy
   (`{"name", "id", "type", "properties": {"displayName", "definition"}}`) or bare
   (`{"$schema", "triggers", "actions"}`).
   https://learn.microsoft.com/power-automate/manage-flows-with-code

The files are untrusted: anyone who can open a pull request chooses them. So the reader
reads only what it was asked to, within limits no real solution reaches, and nothing below a
valid PATH raises: what cannot be read becomes a `Problem` naming the file (an `error` finding
of the report). A flow file that is not valid JSON is still returned as a flow, so the
analysis reports it once, with its parser's reason and line.

- A PATH named on the command line is followed if it is a link, since the user named it, but
  only to a folder or a regular file; a FIFO, socket or device (or a link to one) is a usage
  error, and is never opened. The same file or folder named twice is read once.
- Below a folder PATH only regular files are read. No link is followed, to a file or to a
  folder, even one that stays inside PATH: a link, FIFO, socket or device where the reader
  would read a file is a problem naming it ("not read: a symbolic link ..."), and one
  anywhere else is ignored like any other file the reader does not use. Each file is opened
  folder by folder from PATH without following a link (`O_NOFOLLOW`) and without blocking
  (`O_NONBLOCK`), then must be a regular file by `fstat` of what was opened, so a file
  swapped for a link or a FIFO after the listing is refused too.
- At most the limit plus one byte is read from a file or zip member, whatever its size or
  its zip header says: 8 MB for a flow definition, 64 MB for any other file (the largest real
  flows are a few hundred KB; customizations.xml of a big managed solution is tens of MB).
- XML is parsed with defusedxml (no DTD, no entity expansion, no network) as a stream: only
  the records the reader uses (`<SdkMessageProcessingStep>`, `<Workflow>`) are built, one at
  a time, so memory does not grow with the rest of the document; nesting, distinct names,
  markup-free runs and a record's size are bounded.
- A zip's central directory may be at most 8 MB; a member named twice (after "\\" -> "/", or
  differing only in case where the reader uses the name) is a problem and neither copy is
  read, since another extractor may read the other one.
- A run reads at most 256 MB in all (files and inflated members, across every PATH), keeps
  at most 128 MB of flow definitions (by their size in memory: the analysis holds each in
  several forms), lists at most 500,000 files, and keeps at most 10,000 flows, 200,000
  plug-in steps, 50,000 workflow records and 1,000 problems. When one of these is spent,
  reading stops: every later file is counted, not read, and `LintInputs.unread` says where
  reading stopped (a problem too, so the report is partial and says so).

Columns and their values follow the Dataverse tables the records stand for:
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/workflow
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessageprocessingstep
"""

from __future__ import annotations

import errno
import functools
import json
import os
import posixpath
import re
import stat
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar
from xml.etree.ElementTree import TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from auditor.bulk import collection_paused
from auditor.errors import UsageError

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

# What one file may hold: a flow definition 8 MB, any other file or zip member 64 MB. The
# largest real flow definitions are a few hundred KB; customizations.xml of a big managed
# solution is tens of MB. Sizes are checked on the bytes read, never on what a header says.
MAX_FLOW_BYTES = 8 * 1024 * 1024
MAX_MEMBER_BYTES = 64 * 1024 * 1024
# What one run may read, across every PATH (a solution has at most a few thousand flows and
# steps; these are far above, and keep a hostile run well under 1 GB of memory).
MAX_RUN_BYTES = 256 * 1024 * 1024  # files and inflated zip members read
# Flow definitions kept, by their size in memory: the analysis holds each one in several
# forms (the text, its column in the frames, the parsed definition), about 3 times this.
MAX_RUN_FLOW_TEXT = 128 * 1024 * 1024
MAX_RUN_FILES = 500_000  # files listed in folders and zips
MAX_RUN_FLOWS = 10_000
MAX_RUN_STEPS = 200_000
MAX_RUN_WORKFLOWS = 50_000  # <Workflow> records of any category
MAX_RUN_PROBLEMS = 1_000
# A zip's central directory (a real solution's is a few hundred KB; each entry costs about
# ten times its size in memory once listed).
MAX_ZIP_DIRECTORY = 8 * 1024 * 1024
# XML: nesting (real files nest about 25 deep), distinct element and attribute names (a few
# hundred in real files), bytes without a "<" (a start tag's attributes arrive all at once),
# elements of one record (a <Workflow> or a step has a few dozen).
MAX_XML_DEPTH = 256
MAX_XML_NAMES = 50_000
MAX_XML_RUN = 16 * 1024 * 1024
MAX_RECORD_ELEMENTS = 10_000
_XML_CHUNK = 1024 * 1024

# The ids of the system messages, which are the same in every environment, and their names.
# Source: the sdkmessagefilters response for the account table in "Use messages with the
# Organization service", section "Table support for messages":
# https://learn.microsoft.com/power-apps/developer/data-platform/org-service/use-messages#table-support-for-messages
# Create and Update are also seen identically in solution exports from unrelated environments
# (public solutions on GitHub, such as mikefactorial/PluginSample). Other messages come from
# the step's name.
WELL_KNOWN_MESSAGES: Mapping[str, str] = {
    "8cbdbb1b-ea3e-db11-86a7-000a3a5473e8": "Assign",
    "9ebdbb1b-ea3e-db11-86a7-000a3a5473e8": "Create",
    "a1bdbb1b-ea3e-db11-86a7-000a3a5473e8": "Delete",
    "c5bdbb1b-ea3e-db11-86a7-000a3a5473e8": "GrantAccess",
    "dbbdbb1b-ea3e-db11-86a7-000a3a5473e8": "Merge",
    "dcbdbb1b-ea3e-db11-86a7-000a3a5473e8": "ModifyAccess",
    "f2bdbb1b-ea3e-db11-86a7-000a3a5473e8": "Retrieve",
    "03bebb1b-ea3e-db11-86a7-000a3a5473e8": "RetrieveMultiple",
    "04bebb1b-ea3e-db11-86a7-000a3a5473e8": "RetrievePrincipalAccess",
    "10bebb1b-ea3e-db11-86a7-000a3a5473e8": "RetrieveSharedPrincipalsAndAccess",
    "11bebb1b-ea3e-db11-86a7-000a3a5473e8": "RevokeAccess",
    "1cbebb1b-ea3e-db11-86a7-000a3a5473e8": "SetState",
    "1dbebb1b-ea3e-db11-86a7-000a3a5473e8": "SetStateDynamicEntity",
    "20bebb1b-ea3e-db11-86a7-000a3a5473e8": "Update",
}

SHAPES_HINT = (
    "Give an unpacked solution folder (pac solution unpack), a solution .zip exported from "
    "Dataverse, a legacy flow export package (folder or .zip) or a flow definition .json."
)
# Folders never searched: version control and tool state, and build output, which holds
# copies of the sources (pac's bin/ and obj/).
SKIPPED_FOLDERS = frozenset({"bin", "obj", "node_modules"})
# workflow.category: 0 Workflow (classic), 5 Modern Flow. workflow.type 1 is a definition
# (2 activation, 3 template: neither runs on its own).
CLASSIC, MODERN = 0, 5
DEFINITION = 1

_GUID = re.compile(r"\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?", re.I)
_FILE_GUID = re.compile(
    r"^(?P<stem>.*?)-?(?P<guid>[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})$", re.I
)
_LEGACY = re.compile(r"(?:^|/)microsoft\.flow/flows/([^/]+)/definition\.json$", re.I)
# The default name the Plug-in Registration tool gives a step: "<Handler>: <Message> of <table>".
_STEP_NAME = re.compile(
    r"^(?:[^:]+:\s*)?(?P<message>[A-Za-z][A-Za-z0-9_]*)\s+of\s+(?P<entity>[A-Za-z][A-Za-z0-9_]*"
    r"|any entity)\s*$",
    re.I,
)
# A JSON string (an unterminated one runs to the end, so a hostile text is still read in one
# pass), with the colon that makes it a key; or a bracket.
_JSON_TOKEN = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"?(\s*:)?|[{}\[\]]', re.S)
_FLOW_KEYS = ("properties", "definition", "triggers", "actions", "$schema")


@dataclass(frozen=True, slots=True)
class Location:
    """Where a record is: the file (PATH joined with the path below it, POSIX; for a zip, the
    zip), the member inside a zip, and the 1-based line of the record where it is known."""

    file: str
    member: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class LintFlow:
    """A cloud flow: its definition file's text exactly as read (byte-order mark stripped)."""

    flow_id: str  # lower-case workflow GUID, else the file's path
    name: str
    text: str
    location: Location
    # The solution it came from: the zip; for a folder, the path above its `Workflows/` folder
    # (or above `Microsoft.Flow/flows/`); None for a lone flow file outside those.
    solution: str | None = None


class LintStep(NamedTuple):
    """A plug-in step registration (the `sdkmessageprocessingstep` columns the checks use).
    A named tuple: a solution may register 200,000 steps, and a frozen dataclass takes four
    times as long to build."""

    stepid: str
    name: str
    message_name: str | None
    primary_entity: str | None
    filteringattributes: str | None  # None when absent or empty: the step runs on any column
    stage: int | None
    mode: int | None
    rank: int | None
    asyncautodelete: bool | None
    plugintype_name: str | None  # the type name, without the assembly qualification
    location: Location


@dataclass(frozen=True, slots=True)
class LintWorkflow:
    """A classic (Category 0) workflow and its trigger columns."""

    workflowid: str
    name: str
    mode: int | None  # 0 background, 1 real-time
    trigger_on_create: bool | None
    trigger_on_delete: bool | None
    trigger_on_update_attributes: str | None  # as written; None when the element is absent
    primary_entity: str | None
    location: Location


@dataclass(frozen=True, slots=True)
class Problem:
    """Something below a PATH that could not be read, and why."""

    location: Location
    kind: str  # what the file would have held: flow, step, workflow or solution
    message: str


@dataclass(frozen=True)
class LintInputs:
    """Everything the PATHs hold, deduplicated and in a stable order."""

    flows: tuple[LintFlow, ...]
    steps: tuple[LintStep, ...]
    workflows: tuple[LintWorkflow, ...]
    problems: tuple[Problem, ...]
    files: int  # files (and zip members) read
    # What a spent budget left out, as one sentence for the operator; None: everything read.
    unread: str | None = None


# Reading ------------------------------------------------------------------------------------


def read_inputs(paths: Sequence[Path]) -> LintInputs:
    """Read every PATH; raises UsageError for a PATH that is missing, none of the shapes, or
    not a folder or regular file (see the module docstring for what is followed)."""
    if not paths:
        raise UsageError("no PATH to lint", hint=SHAPES_HINT)
    found = _Found()
    seen: set[tuple[int, int]] = set()
    with collection_paused():
        for path in paths:
            _read_path(Path(path), found, seen)
        return found.finish()


def _read_path(path: Path, found: _Found, seen: set[tuple[int, int]]) -> None:
    display = path.as_posix()
    try:
        info = path.stat()  # a link named on the command line is followed: the user named it
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"{display}: no such file or folder", hint=SHAPES_HINT) from None
    except OSError as exc:
        raise _not_a_shape(display, f"cannot be read: {exc.strerror or exc}") from None
    if (info.st_dev, info.st_ino) in seen:
        return  # the same file or folder named twice: read once
    seen.add((info.st_dev, info.st_ino))
    if stat.S_ISDIR(info.st_mode):
        _read_source(_Folder.of(path, display, found), found)
    elif not stat.S_ISREG(info.st_mode):
        raise _not_a_shape(display, f"is {_file_type(info.st_mode)}, not a file or folder")
    elif path.suffix.lower() == ".zip":
        _read_zip(path, display, found)
    elif path.suffix.lower() == ".json":
        _read_flow_file(path, display, found)
    else:
        raise _not_a_shape(display, "is neither a folder, a .zip nor a .json file")


def _not_a_shape(display: str, why: str) -> UsageError:
    return UsageError(f"{display}: {why}", hint=SHAPES_HINT)


_LIMITS = {
    "bytes": "MAX_RUN_BYTES",
    "text": "MAX_RUN_FLOW_TEXT",
    "files": "MAX_RUN_FILES",
    "flows": "MAX_RUN_FLOWS",
    "steps": "MAX_RUN_STEPS",
    "workflows": "MAX_RUN_WORKFLOWS",
    "problems": "MAX_RUN_PROBLEMS",
}


def _limit(what: str) -> int:
    """A budget of the run, read when used (so a test can lower it)."""
    limit: int = globals()[_LIMITS[what]]
    return limit


def _past(what: str) -> str:
    """What going past a budget is called."""
    limit = _limit(what)
    return {
        "bytes": f"over {_size(limit)} read in all",
        "text": f"over {_size(limit)} of flow definitions",
        "files": f"over {limit:,} files listed",
        "flows": f"over {limit:,} flows",
        "steps": f"over {limit:,} plug-in steps",
        "workflows": f"over {limit:,} workflow records",
        "problems": f"over {limit:,} files that cannot be read",
    }[what]


@dataclass
class _Found:
    """What the PATHs held so far, deduplicated and sorted once at the end, and what the run
    has spent of its budget. Once a budget is spent (`spent`), no file is read any more: each
    one the reader comes to is counted in `unread`."""

    flows: list[LintFlow] = field(default_factory=list)
    steps: list[tuple[int, LintStep]] = field(default_factory=list)  # (0 own file, 1 other)
    workflows: list[LintWorkflow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    used: dict[str, int] = field(default_factory=dict)
    spent: str | None = None  # what ran out, e.g. "over 256 MB read in all"
    stopped_at: Location | None = None  # where reading stopped
    unread: int = 0  # files not read after that

    def problem(self, location: Location, kind: str, message: str) -> None:
        if self.take("problems", location):
            self.problems.append(Problem(location, kind, message))

    def left(self, what: str) -> int:
        return _limit(what) - self.used.get(what, 0)

    def take(self, what: str, location: Location, amount: int = 1) -> bool:
        """Spend `amount` of a budget; False, and reading stops, when it would go past."""
        used = self.used.get(what, 0)
        if amount > _limit(what) - used:
            self.stop(_past(what), location)
            return False
        self.used[what] = used + amount
        return True

    def stop(self, why: str, location: Location) -> None:
        if self.spent is None:
            self.spent, self.stopped_at = why, location

    def skip(self, location: Location) -> None:
        """A file the reader came to after the budget was spent."""
        self.unread += 1
        self.stopped_at = self.stopped_at or location

    def finish(self) -> LintInputs:
        """One record per id (the first in location order; a step's own file over
        customizations.xml), sorted by location then id so reports are reproducible."""
        flows = _first_per_id(self.flows, lambda f: (_place(f.location), f.flow_id), _flow_id)
        steps = _first_per_id(
            self.steps, lambda s: (s[0], _place(s[1].location), s[1].stepid), _step_id
        )
        workflows = _first_per_id(
            self.workflows, lambda w: (_place(w.location), w.workflowid), _workflow_id
        )
        unread = self._unread()
        return LintInputs(
            flows=tuple(sorted(flows, key=lambda f: (_place(f.location), f.flow_id))),
            steps=tuple(
                sorted((s for _, s in steps), key=lambda s: (_place(s.location), s.stepid))
            ),
            workflows=tuple(sorted(workflows, key=lambda w: (_place(w.location), w.workflowid))),
            problems=tuple(
                sorted(set(self.problems), key=lambda p: (_place(p.location), p.message))
            ),
            files=self.files,
            unread=unread,
        )

    def _unread(self) -> str | None:
        """The sentence saying what a spent budget left out; its problem joins the others (past
        the problems budget too: the report must not claim to be complete)."""
        if self.spent is None or self.stopped_at is None:
            return None
        place = self.stopped_at
        shown = place.file + (f"!{place.member}" if place.member else "")
        what = f"{self.unread:,} file(s) left out" if self.unread else "the rest of it left out"
        message = f"lint budget reached ({self.spent}): reading stopped at {shown}; {what}"
        self.problems.append(Problem(Location(place.file, place.member), "solution", message))
        return f"{message}; the report covers what was read"


_T = TypeVar("_T")


def _first_per_id(
    items: Iterable[_T], order: Callable[[_T], Any], id_of: Callable[[_T], str]
) -> list[_T]:
    """The first item of each id in `order`: the same component seen twice is one record."""
    kept: dict[str, _T] = {}
    for item in sorted(items, key=order):
        kept.setdefault(id_of(item), item)
    return list(kept.values())


def _flow_id(item: LintFlow) -> str:
    return item.flow_id


def _step_id(item: tuple[int, LintStep]) -> str:
    return item[1].stepid


def _workflow_id(item: LintWorkflow) -> str:
    return item.workflowid


def _place(location: Location) -> tuple[str, str, int]:
    return (location.file, location.member or "", location.line or 0)


# Sources: a folder or a zip ------------------------------------------------------------------


class _Source(Protocol):
    """The files below one PATH, by POSIX path relative to it."""

    display: str  # the PATH as given
    names: list[str]
    root_name: str  # the PATH's own folder name, for a PATH that is e.g. a Workflows folder
    absent: str  # how a missing file is described: "does not exist" / "is not in the zip"
    complete: bool  # False when the run's budget of files listed cut the listing short

    @property
    def has_lines(self) -> bool: ...

    def location(self, rel: str, line: int | None = None) -> Location: ...

    def solution(self, rel: str) -> str: ...

    def read(self, rel: str, kind: str, found: _Found, limit: int) -> bytes | None: ...


# Folders the reader reads files in: a link in their place is reported, not silently skipped.
_READ_FOLDERS = frozenset({"workflows", "sdkmessageprocessingsteps", "other", "microsoft.flow"})
_REFUSED = "lint reads regular files only, and follows no link it was not given"


@dataclass
class _Folder:
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
    def of(cls, root: Path, display: str, found: _Found) -> _Folder:
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
        legacy = _LEGACY.search(rel)
        if legacy is not None:
            below = rel[: legacy.start()]
        else:
            folder = posixpath.dirname(rel)
            if not folder:  # PATH is the Workflows folder itself
                return posixpath.normpath(posixpath.join(self.display, ".."))
            below = posixpath.dirname(folder)
        return _joined(self.display, below) if below else self.display

    def read(self, rel: str, kind: str, found: _Found, limit: int) -> bytes | None:
        location = self.location(rel)
        if rel in self.refused:
            found.problem(location, kind, f"not read: {self.refused[rel]}; {_REFUSED}")
            return None
        return _read_regular(lambda: _open_below(self.root, rel), location, kind, found, limit)


def _joined(display: str, rel: str) -> str:
    return rel if display in ("", ".") else f"{display.rstrip('/')}/{rel}"


def _walk(folder: _Folder, found: _Found) -> bool:
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
                    found.problem(folder.location(rel), "solution", f"not read: {what}; {_REFUSED}")
        pending.extend(reversed(subfolders))
    return True


def _entry_type(entry: os.DirEntry[str]) -> str:
    """What an entry of a listing is, links not followed: "folder", "file" (a regular one),
    or what else, as `_file_type` says it."""
    try:
        if entry.is_symlink():
            return "a symbolic link"
        if entry.is_dir(follow_symlinks=False):
            return "folder"
        if entry.is_file(follow_symlinks=False):
            return "file"
        return _file_type(entry.stat(follow_symlinks=False).st_mode)
    except OSError:
        return "a file that cannot be examined"


def _file_type(mode: int) -> str:
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
_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_READ |= getattr(os, "O_BINARY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def _open_below(root: Path, rel: str) -> int:
    """`rel` below the folder `root`, opened folder by folder without following a link at any
    level below `root`, and without blocking on a FIFO; the caller checks what it opened."""
    *folders, name = rel.split("/")
    if os.open not in os.supports_dir_fd:  # no openat (Windows): check each level first
        for depth in range(1, len(folders) + 2):
            if os.path.islink(root.joinpath(*rel.split("/")[:depth])):
                raise OSError(errno.ELOOP, "a symbolic link", str(root / rel))
        return os.open(root / rel, _READ | _NOFOLLOW)
    fd = os.open(root, _FOLDER)
    try:
        for folder in folders:
            try:
                inner = os.open(folder, _FOLDER | _NOFOLLOW, dir_fd=fd)
            except NotADirectoryError:  # what Linux says of a link opened as a folder
                if stat.S_ISLNK(os.lstat(folder, dir_fd=fd).st_mode):
                    raise OSError(errno.ELOOP, "a symbolic link", folder) from None
                raise
            os.close(fd)
            fd = inner
        return os.open(name, _READ | _NOFOLLOW, dir_fd=fd)
    finally:
        os.close(fd)


def _read_regular(
    open_file: Callable[[], int], location: Location, kind: str, found: _Found, limit: int
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
            found.problem(location, kind, f"not read: a symbolic link; {_REFUSED}")
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


def _read_opened(fd: int, location: Location, kind: str, found: _Found, limit: int) -> bytes | None:
    """What `_read_regular` reads once the file is open: it must be a regular file (by
    fstat of what was opened), and at most `limit` + 1 bytes are read whatever its size says
    (a file may be sparse, grow while read, or be a /proc file whose size is 0)."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        what = _file_type(info.st_mode)
        found.problem(location, kind, f"not read: {what}; {_REFUSED}")
        return None
    if info.st_size > limit:
        message = f"not read: {_size(info.st_size)}, over the {_size(limit)} limit"
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
        found.problem(location, kind, f"not read: over the {_size(limit)} limit")
        return None
    if not found.take("bytes", location, len(data)):
        found.skip(location)
        return None
    return data


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

    def read(self, rel: str, kind: str, found: _Found, limit: int) -> bytes | None:
        """The member's bytes; never more than the limits, whatever its header declares."""
        info, location = self.members[rel], self.location(rel)
        if rel in self.refused:
            return None  # its problem was reported with the listing
        if found.spent:
            found.skip(location)
            return None
        if info.file_size > limit:
            message = (
                f"not read: inflates to {_size(info.file_size)}, over the {_size(limit)} limit"
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
            found.problem(location, kind, f"not read: inflates past the {_size(limit)} limit")
            return None
        if not found.take("bytes", location, len(data)):
            found.skip(location)
            return None
        found.files += 1
        return data


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.3g} MB"
    return f"{size / 1024:.3g} KB" if size >= 1024 else f"{size} bytes"


def _read_zip(path: Path, display: str, found: _Found) -> None:
    """A solution or legacy package .zip; a zip that is neither is a usage error."""
    location = Location(display)
    try:
        handle = os.fdopen(os.open(path, _READ), "rb")
    except OSError as exc:
        found.problem(location, "solution", f"cannot be read: {exc.strerror or exc}")
        return
    with handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):  # swapped since it was examined
            found.problem(location, "solution", f"not read: {_file_type(mode)}")
            return
        directory = _zip_directory_size(handle)
        if directory > MAX_ZIP_DIRECTORY:
            message = (
                f"not read: its directory is {_size(directory)}, over the "
                f"{_size(MAX_ZIP_DIRECTORY)} limit (more files than any solution holds)"
            )
            found.problem(location, "solution", message)
            return
        try:
            archive = zipfile.ZipFile(handle)
        except Exception as exc:  # any error of a damaged or hostile zip
            found.problem(location, "solution", f"not a readable zip: {exc}")
            return
        with archive:
            _read_source(_zip_listing(archive, display, found), found)


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


def _zip_listing(archive: zipfile.ZipFile, display: str, found: _Found) -> _Zip:
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
        if other != name and _role(name, "") is not None:
            twice[name] = other
            twice.setdefault(other, name)
    for held, spelling in twice.items():
        also = f" (also as {spelling})" if spelling else ""
        message = f"the zip holds {held} twice{also}; another extractor may read the other copy"
        kind = _ROLE_KIND.get(_role(held, "") or "", "solution")
        found.problem(Location(display, held), kind, message)
    return _Zip(archive, display, members, set(twice), complete=complete)


# What a source holds -------------------------------------------------------------------------


@dataclass
class _Layout:
    """The files of a source the reader understands, by role."""

    flows: list[str] = field(default_factory=list)  # Workflows/*.json
    flow_meta: dict[str, str] = field(default_factory=dict)  # json path (lower) -> .data.xml
    classic_meta: list[str] = field(default_factory=list)  # Workflows/*.xaml.data.xml
    steps: list[str] = field(default_factory=list)  # SdkMessageProcessingSteps/*.xml
    customizations: list[str] = field(default_factory=list)
    legacy: list[tuple[str, str]] = field(default_factory=list)  # (definition.json, folder)
    markers: int = 0  # solution.xml, manifest.json

    @property
    def empty(self) -> bool:
        found = self.flows or self.classic_meta or self.steps or self.customizations
        return not (found or self.legacy or self.markers)


# What a file of each role would have held, for its problems.
_ROLE_KIND = {
    "legacy": "flow",
    "flow": "flow",
    "flow_meta": "flow",
    "classic_meta": "workflow",
    "step": "step",
    "customizations": "solution",
    "marker": "solution",
}


def _role(rel: str, root_name: str) -> str | None:
    """The role of the file at `rel` (a key of _ROLE_KIND), None for a file the reader does
    not use."""
    parts = rel.split("/")
    name = parts[-1].lower()
    parent = (parts[-2] if len(parts) > 1 else root_name).lower()
    if _LEGACY.search(rel):
        return "legacy"
    if parent == "workflows" and name.endswith(".json"):
        return "flow"
    if parent == "workflows" and name.endswith(".json.data.xml"):
        return "flow_meta"
    if parent == "workflows" and name.endswith(".data.xml"):
        return "classic_meta"
    if parent == "sdkmessageprocessingsteps" and name.endswith(".xml"):
        return "step"
    if name == "customizations.xml":
        return "customizations"
    return "marker" if name in ("solution.xml", "manifest.json") else None


def _classify(names: Iterable[str], root_name: str) -> _Layout:
    layout = _Layout()
    for rel in names:
        role = _role(rel, root_name)
        if role == "legacy":
            legacy = _LEGACY.search(rel)
            layout.legacy.append((rel, legacy.group(1) if legacy else ""))
        elif role == "flow":
            layout.flows.append(rel)
        elif role == "flow_meta":
            layout.flow_meta[rel[: -len(".data.xml")].lower()] = rel
        elif role == "classic_meta":
            layout.classic_meta.append(rel)
        elif role == "step":
            layout.steps.append(rel)
        elif role == "customizations":
            layout.customizations.append(rel)
        elif role == "marker":
            layout.markers += 1
    return layout


@dataclass(frozen=True)
class _FlowRef:
    """A modern flow as customizations.xml or its .json.data.xml describes it."""

    json_rel: str  # the flow file's path in the source
    flow_id: str | None
    name: str | None
    category: int | None
    location: Location  # where it is described


def _read_source(source: _Source, found: _Found) -> None:
    layout = _classify(source.names, source.root_name)
    if layout.empty:
        if not source.complete:
            return  # the budget of files listed ran out before any solution file was seen
        raise _not_a_shape(
            source.display,
            "holds no solution files (customizations.xml, solution.xml, Workflows/*.json, "
            "SdkMessageProcessingSteps/*.xml) and no Microsoft.Flow/flows/*/definition.json",
        )
    refs: list[_FlowRef] = []
    for rel in layout.customizations:
        refs.extend(_read_customizations(source, rel, found))
    _read_solution_flows(source, layout, refs, found)
    for rel in layout.steps:
        _read_step_file(source, rel, found)
    for rel in layout.classic_meta:
        _read_classic_meta(source, rel, found)
    for rel, folder in layout.legacy:
        _read_legacy_flow(source, rel, folder, found)


def _read_solution_flows(
    source: _Source, layout: _Layout, refs: Sequence[_FlowRef], found: _Found
) -> None:
    """Workflows/*.json, described by their .data.xml, else customizations.xml, else the file
    name; a flow that customizations.xml names but the source lacks is a problem."""
    by_path = {ref.json_rel.lower(): ref for ref in refs}
    by_id = {ref.flow_id: ref for ref in refs if ref.flow_id}
    for rel in layout.flows:
        meta_rel = layout.flow_meta.get(rel.lower())
        meta = _read_flow_meta(source, meta_rel, found) if meta_rel else None
        described = [ref for ref in (meta, by_path.get(rel.lower())) if ref is not None]
        if described and described[0].category not in (None, MODERN):
            continue  # e.g. a desktop flow: not a cloud flow definition
        stem, file_guid = _split_guid(posixpath.basename(rel)[: -len(".json")])
        flow_id = next((ref.flow_id for ref in described if ref.flow_id), file_guid)
        if flow_id in by_id:
            described.append(by_id[flow_id])
        text = _read_flow_text(source, rel, found)
        if text is not None:
            location = source.location(rel)
            name = next((ref.name for ref in described if ref.name), stem)
            flow = LintFlow(
                flow_id or _path_id(location), name, text, location, source.solution(rel)
            )
            found.flows.append(flow)
    if not source.complete:
        return  # a file missing from a listing cut short may exist: nothing to say
    present = {rel.lower() for rel in source.names}
    for ref in refs:
        if ref.json_rel.lower() not in present:
            declared = posixpath.basename(ref.location.member or ref.location.file)
            message = f"{declared} names {ref.json_rel}, which {source.absent}"
            found.problem(ref.location, "flow", message)


def _read_flow_meta(source: _Source, rel: str, found: _Found) -> _FlowRef | None:
    """A flow's .json.data.xml: its workflow id, display name and category."""
    loaded = _read_root_workflow(source, rel, "flow", found)
    if loaded is None:
        return None
    return _flow_ref(loaded[0], rel[: -len(".data.xml")], source.location(rel))


def _flow_ref(root: Element, json_rel: str, location: Location) -> _FlowRef:
    fields = _fields(root)
    return _FlowRef(
        json_rel=json_rel,
        flow_id=_guid(root.get("WorkflowId")),
        name=(root.get("Name") or "").strip() or None,
        category=_int(fields.get("Category") or root.get("Category")),
        location=location,
    )


def _read_legacy_flow(source: _Source, rel: str, folder: str, found: _Found) -> None:
    """A legacy package's definition.json: the id is its folder's, the name its displayName."""
    text = _read_flow_text(source, rel, found)
    if text is None:
        return
    document = _json_document(text)
    document = document if isinstance(document, dict) else {}
    location = source.location(rel)
    flow_id = _guid(folder) or _guid(_str(document.get("name"))) or _path_id(location)
    name = _display_name(document) or folder
    found.flows.append(LintFlow(flow_id, name, text, location, source.solution(rel)))


def _read_flow_file(path: Path, display: str, found: _Found) -> None:
    """One flow .json given as a PATH: clientdata, legacy or bare definition. Valid JSON that
    is no flow is a usage error; invalid JSON is a flow the analysis reports as unreadable."""
    location = Location(display)
    if not found.take("flows", location):
        found.skip(location)
        return
    data = _read_regular(lambda: os.open(path, _READ), location, "flow", found, MAX_FLOW_BYTES)
    text = None if data is None else _decode(data, location, "flow", found)
    if text is None:
        return
    document = _json_document(text)
    if document is not _INVALID and not (
        isinstance(document, dict) and any(key in document for key in _FLOW_KEYS)
    ):
        raise _not_a_shape(
            display, "is JSON, but no flow definition (no definition, triggers or actions)"
        )
    document = document if isinstance(document, dict) else {}
    meta = _sibling_meta(path, display, found)
    stem, file_guid = _split_guid(path.stem)
    flow_id = (
        (meta.flow_id if meta else None)
        or file_guid
        or _guid(_str(document.get("name")))
        or _path_id(location)
    )
    name = (meta.name if meta else None) or _display_name(document) or stem
    found.flows.append(LintFlow(flow_id, name, text, location, _lone_solution(path, display)))


def _lone_solution(path: Path, display: str) -> str | None:
    """The solution folder of a flow file given alone: above its `Workflows/` folder, or above
    `Microsoft.Flow/flows/`; None elsewhere."""
    resolved = path.resolve()
    if _LEGACY.search(resolved.as_posix()):
        return posixpath.normpath(posixpath.join(display, "..", "..", "..", ".."))
    if resolved.parent.name.lower() == "workflows":
        return posixpath.normpath(posixpath.join(display, "..", ".."))
    return None


def _sibling_meta(path: Path, display: str, found: _Found) -> _FlowRef | None:
    """The .json.data.xml beside a flow file given alone, when it sits in a Workflows folder.
    It was not named on the command line: a link or other non-regular file is not read."""
    meta_path = path.with_name(path.name + ".data.xml")
    try:
        mode = os.lstat(meta_path).st_mode
    except OSError:
        return None
    if path.parent.name.lower() != "workflows":
        return None
    location = Location(display + ".data.xml")
    if not stat.S_ISREG(mode):
        found.problem(location, "flow", f"not read: {_file_type(mode)}; {_REFUSED}")
        return None
    data = _read_regular(
        lambda: os.open(meta_path, _READ | _NOFOLLOW), location, "flow", found, MAX_MEMBER_BYTES
    )
    if data is None:
        return None
    records: list[tuple[Element, int]] = []
    _stream_xml(data, location, "flow", found, _is_root_workflow, _collect(records))
    return _flow_ref(records[0][0], path.name, location) if records else None


def _display_name(document: Mapping[str, Any]) -> str | None:
    properties = document.get("properties")
    shown = properties.get("displayName") if isinstance(properties, dict) else None
    return (shown.strip() or None) if isinstance(shown, str) else None


def _read_flow_text(source: _Source, rel: str, found: _Found) -> str | None:
    """A flow definition's text, within the run's budget of flows."""
    location = source.location(rel)
    if not found.take("flows", location):
        found.skip(location)
        return None
    data = source.read(rel, "flow", found, MAX_FLOW_BYTES)
    return None if data is None else _decode(data, location, "flow", found)


def _decode(data: bytes, location: Location, kind: str, found: _Found) -> str | None:
    """UTF-8 (with or without a byte-order mark), or UTF-16 when its byte-order mark says so:
    solution files exported by older tools (e.g. the CoE Starter Kit's of 2021) are UTF-16
    (inferred from those exports; the solution file format does not document an encoding).
    The text spends its size in memory from the run's budget of flow definitions (one
    character past Latin-1 makes every character 2 or 4 bytes)."""
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        what = "UTF-16" if encoding == "utf-16" else "UTF-8"
        found.problem(location, kind, f"not {what} text (byte {exc.start})")
        return None
    if not found.take("text", location, sys.getsizeof(text)):
        found.skip(location)
        return None
    return text


_INVALID = object()


def _json_document(text: str) -> object:
    """The parsed document, or _INVALID (the analysis reports why, with the line)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _INVALID


# XML: customizations.xml, step files, .data.xml -----------------------------------------------


class _XmlLimit(Exception):
    """An XML file past one of the reader's limits."""


class _Stop(Exception):
    """The run's budget is spent: the rest of the file is not read."""


class _Records:
    """The handlers of a streamed parse that build only the records asked for
    (`is_record(ancestors, name)`), each handed to `on_record(element, line of its start
    tag)` as it ends and then dropped; every other element is only a name on the path, so
    memory is the path and one record.

    They are set on the defused parser's expat parser itself, in place of ElementTree's
    `XMLParser` handlers (which call a target in Python for every element): expat calls
    `start` and `end` for the tags outside a record, `record_start` and `record_end` for
    those of a record, and hands a record's text straight to its C `TreeBuilder`. The
    elements built are those `XMLParser` builds: a namespaced name `uri}local` becomes
    `{uri}local`, and of an attribute written twice the last is kept. The defused parser's
    own handlers (DTDs, entity declarations, external references, undefined entities) are
    left as they are."""

    __slots__ = (
        "base",
        "builder",
        "count",
        "expat",
        "first_line",
        "inner",
        "is_record",
        "on_record",
        "path",
        "record",
        "size",
    )

    def __init__(
        self,
        expat: Any,
        is_record: Callable[[list[str], str], bool],
        on_record: Callable[[Element, int], bool],  # False: the budget is spent, stop
    ) -> None:
        self.expat = expat
        self.is_record = is_record
        self.on_record = on_record
        self.path: list[str] = []  # local names of the open elements outside a record
        self.builder = TreeBuilder()  # the open record's
        self.base = 0  # length of `path` where the open record starts
        self.inner = 0  # its elements open, itself included
        self.size = 0  # its elements so far
        self.record = ""  # its local name
        self.first_line = 0
        self.count = 0  # records handed on
        expat.ordered_attributes = False  # a start tag's attributes as a dict, in their order
        self._outside()

    def _outside(self) -> None:
        self.expat.StartElementHandler = self.start
        self.expat.EndElementHandler = self.end
        self.expat.CharacterDataHandler = _ignore_text

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        path = self.path
        local = _local(tag)
        if len(path) >= MAX_XML_DEPTH:
            raise _XmlLimit(f"nested deeper than {MAX_XML_DEPTH:,} elements")
        if not self.is_record(path, local):
            path.append(local)
            return
        self.builder = builder = TreeBuilder()
        self.base, self.inner, self.size, self.record = len(path), 0, 0, local
        expat = self.expat
        self.first_line = expat.CurrentLineNumber
        expat.StartElementHandler = self.record_start
        expat.EndElementHandler = self.record_end
        expat.CharacterDataHandler = builder.data
        self.record_start(tag, attributes)

    def end(self, tag: str) -> None:
        self.path.pop()

    def record_start(self, tag: str, attributes: dict[str, str]) -> None:
        inner = self.inner
        if self.base + inner >= MAX_XML_DEPTH:
            raise _XmlLimit(f"nested deeper than {MAX_XML_DEPTH:,} elements")
        size = self.size + 1
        if size > MAX_RECORD_ELEMENTS:
            raise _XmlLimit(f"a <{self.record}> holds over {MAX_RECORD_ELEMENTS:,} elements")
        self.size, self.inner = size, inner + 1
        if attributes and any("}" in name for name in attributes):
            attributes = {"{" + k if "}" in k else k: v for k, v in attributes.items()}
        self.builder.start("{" + tag if "}" in tag else tag, attributes)

    def record_end(self, tag: str) -> None:
        element = self.builder.end("{" + tag if "}" in tag else tag)
        self.inner -= 1
        if self.inner:
            return
        self._outside()
        self.count += 1
        if not self.on_record(element, self.first_line):
            raise _Stop

    def release(self) -> None:
        """Lets go of the parser and of a record left open once the file is parsed or given
        up: the parser holds its handlers and they hold it (these and the defused parser's),
        a cycle only the garbage collector would free, and it is held off while the inputs
        are read."""
        expat = self.expat
        for handler in _HANDLERS:
            setattr(expat, handler, None)
        self.builder = TreeBuilder()


# Text outside a record is not kept: a C function that looks at its argument and keeps
# nothing, so expat does not call back into Python for it (with no handler set, expat would
# hand the text to the defused parser's default handler, in Python).
_ignore_text = len
_NO_TARGET = object()
# The handlers `_Records` and the defused parser set, dropped once a file is parsed.
_HANDLERS = (
    "StartElementHandler",
    "EndElementHandler",
    "CharacterDataHandler",
    "DefaultHandlerExpand",
    "StartDoctypeDeclHandler",
    "EntityDeclHandler",
    "UnparsedEntityDeclHandler",
    "ExternalEntityRefHandler",
)


def _stream_xml(
    data: bytes,
    location: Location,
    kind: str,
    found: _Found,
    is_record: Callable[[list[str], str], bool],
    on_record: Callable[[Element, int], bool],
) -> int | None:
    """Hands each record of an XML file to `on_record`, parsing without DTDs, entity
    expansion or external references, a megabyte at a time within the XML limits; returns
    how many records it handed on, None after a problem."""
    # No target: `_Records` sets the element and text handlers, the rest (comments, processing
    # instructions) go to the defused parser's default handler, which ignores them.
    parser = DefusedXMLParser(target=_NO_TARGET, forbid_dtd=True)
    records = _Records(parser.parser, is_record, on_record)
    run = 0  # bytes since the last "<": a start tag's attributes arrive in one call
    try:
        for start in range(0, len(data), _XML_CHUNK):
            chunk = data[start : start + _XML_CHUNK]
            last = chunk.rfind(b"<")
            run = run + len(chunk) if last < 0 else len(chunk) - last - 1
            if run > MAX_XML_RUN:
                raise _XmlLimit(f"holds over {_size(MAX_XML_RUN)} without markup")
            parser.feed(chunk)
            if len(parser.parser.intern) > MAX_XML_NAMES:
                raise _XmlLimit(f"uses over {MAX_XML_NAMES:,} distinct names")
        parser.close()
    except _Stop:
        pass
    except _XmlLimit as exc:
        found.problem(location, kind, f"XML not read: it {exc}, past what any solution holds")
        return None
    except ParseError as exc:
        found.problem(location, kind, f"XML does not parse: {exc}")
        return None
    except DefusedXmlException as exc:
        why = f"XML refused: {type(exc).__name__} (DTDs and entities are not read)"
        found.problem(location, kind, why)
        return None
    finally:
        records.release()
    return records.count


def _read_xml_records(
    source: _Source,
    rel: str,
    kind: str,
    found: _Found,
    is_record: Callable[[list[str], str], bool],
    on_record: Callable[[Element, int], bool],
) -> int | None:
    """`_stream_xml` over a file of the source; None when it could not be read."""
    data = source.read(rel, kind, found, MAX_MEMBER_BYTES)
    if data is None:
        return None
    return _stream_xml(data, source.location(rel), kind, found, is_record, on_record)


def _collect(records: list[tuple[Element, int]]) -> Callable[[Element, int], bool]:
    def keep(element: Element, line: int) -> bool:
        records.append((element, line))
        return True

    return keep


def _is_root_workflow(path: list[str], name: str) -> bool:
    return not path and name == "Workflow"


def _read_root_workflow(
    source: _Source, rel: str, kind: str, found: _Found
) -> tuple[Element, int] | None:
    """The root <Workflow> of a .data.xml file and its line; None when the root is another
    element or the file could not be read."""
    records: list[tuple[Element, int]] = []
    _read_xml_records(source, rel, kind, found, _is_root_workflow, _collect(records))
    return records[0] if records else None


_CUSTOMIZATION_RECORDS = frozenset(
    {("SdkMessageProcessingSteps", "SdkMessageProcessingStep"), ("Workflows", "Workflow")}
)


def _is_customization_record(path: list[str], name: str) -> bool:
    """A step of any <SdkMessageProcessingSteps>, a workflow of any <Workflows>."""
    return bool(path) and (path[-1], name) in _CUSTOMIZATION_RECORDS


def _read_customizations(source: _Source, rel: str, found: _Found) -> list[_FlowRef]:
    """Steps and classic workflows in customizations.xml; returns the modern flows it names."""
    base = posixpath.dirname(rel)
    if posixpath.basename(base).lower() == "other":  # pac layout: Other/Customizations.xml
        base = posixpath.dirname(base)
    refs: list[_FlowRef] = []

    def record(element: Element, line: int) -> bool:
        location = source.location(rel, line)
        if _local(element.tag) == "SdkMessageProcessingStep":
            if not found.take("steps", location):
                return False
            _add_step(element, source, rel, location, 1, found)
            return True
        if not found.take("workflows", location):
            return False
        ref = _workflow_element(element, location, base, found)
        if ref is not None:
            refs.append(ref)
        return True

    _read_xml_records(source, rel, "solution", found, _is_customization_record, record)
    return refs


def _workflow_element(
    element: Element, location: Location, base: str, found: _Found
) -> _FlowRef | None:
    """A <Workflow> of customizations.xml: a classic workflow is recorded, a modern flow's
    file reference returned; other categories (dialogs, actions, business rules) are not
    background jobs of this audit."""
    fields = _fields(element)
    category = _int(fields.get("Category") or element.get("Category"))
    json_file = fields.get("JsonFileName")
    if category == MODERN and json_file:
        json_rel = posixpath.join(base, json_file.replace("\\", "/").lstrip("/"))
        return _flow_ref(element, posixpath.normpath(json_rel), location)
    if category == CLASSIC:
        _add_workflow(element, location, found)
    return None


def _read_classic_meta(source: _Source, rel: str, found: _Found) -> None:
    """A classic workflow's Workflows/*.xaml.data.xml (pac unpack's layout)."""
    loaded = _read_root_workflow(source, rel, "workflow", found)
    if loaded is None:
        return
    root, line = loaded
    location = source.location(rel, line)
    classic = _int(_fields(root).get("Category") or root.get("Category")) == CLASSIC
    if classic and found.take("workflows", location):
        _add_workflow(root, location, found)


def _add_workflow(element: Element, location: Location, found: _Found) -> None:
    fields = _fields(element)
    workflow_id = _guid(element.get("WorkflowId")) or _guid(fields.get("WorkflowId"))
    if workflow_id is None:
        found.problem(location, "workflow", "a classic <Workflow> has no WorkflowId")
        return
    if _int(fields.get("Type")) not in (None, DEFINITION):
        return  # an activation or a template: not what runs
    found.workflows.append(
        LintWorkflow(
            workflowid=workflow_id,
            name=(element.get("Name") or "").strip() or workflow_id,
            mode=_int(fields.get("Mode")),
            trigger_on_create=_flag(fields.get("TriggerOnCreate")),
            trigger_on_delete=_flag(fields.get("TriggerOnDelete")),
            trigger_on_update_attributes=_raw_text(element, "TriggerOnUpdateAttributeList"),
            primary_entity=fields.get("PrimaryEntity") or None,
            location=location,
        )
    )


def _read_step_file(source: _Source, rel: str, found: _Found) -> None:
    """SdkMessageProcessingSteps/{id}.xml: one <SdkMessageProcessingStep> (pac layout)."""

    def record(element: Element, line: int) -> bool:
        location = source.location(rel, line)
        if not found.take("steps", location):
            return False
        _add_step(element, source, rel, location, 0, found)
        return True

    count = _read_xml_records(source, rel, "step", found, _is_step, record)
    if count == 0:
        found.problem(source.location(rel), "step", "holds no <SdkMessageProcessingStep>")


def _is_step(path: list[str], name: str) -> bool:
    return name == "SdkMessageProcessingStep"


def _add_step(
    element: Element,
    source: _Source,
    rel: str,
    location: Location,
    priority: int,
    found: _Found,
) -> None:
    """One <SdkMessageProcessingStep> at `location`; its message comes from the message id or
    its name. A solution may hold 200,000 of them: the name is matched only when the message
    or the table is not given otherwise, and message ids are looked up once each."""
    fields = _fields(element)
    name = (element.get("Name") or "").strip()
    step_id = _guid(element.get("SdkMessageProcessingStepId")) or _guid(
        fields.get("SdkMessageProcessingStepId")
    )
    if step_id is None:
        shown = f" {name!r}" if name else ""
        message = f"the step{shown} has no SdkMessageProcessingStepId"
        found.problem(source.location(rel), "step", message)
        return
    message_name, entity = _message_and_entity(fields, name)
    plugin_type = fields.get("PluginTypeName")
    step = LintStep(
        step_id,  # stepid
        name or step_id,  # name
        message_name,
        entity,  # primary_entity
        fields.get("FilteringAttributes") or None,
        _int(fields.get("Stage")),
        _int(fields.get("Mode")),
        _int(fields.get("Rank")),
        _flag(fields.get("AsyncAutoDelete")),
        plugin_type.split(",")[0].strip() or None if plugin_type else None,  # plugintype_name
        location,
    )
    found.steps.append((priority, step))


def _message_and_entity(fields: Mapping[str, str], name: str) -> tuple[str | None, str | None]:
    """The message from its well-known id, else from the step name "<Handler>: <Message> of
    <table>"; the table from <PrimaryEntity>, else from the name."""
    message_id = fields.get("SdkMessageId")
    message = _well_known_message(message_id) if message_id else None
    entity = fields.get("PrimaryEntity") or None
    if message is not None and entity is not None:
        return message, entity
    named = _STEP_NAME.match(name)
    if message is None and named:
        message = named.group("message")
    if entity is None and named and named.group("entity").lower() != "any entity":
        entity = named.group("entity").lower()
    return message, entity


@functools.lru_cache(maxsize=1024)
def _well_known_message(message_id: str) -> str | None:
    """The name of a system message from its id as written (cached: a solution's steps use
    a few messages, each id written the same way every time)."""
    return WELL_KNOWN_MESSAGES.get(_guid(message_id) or "")


def _fields(element: Element) -> dict[str, str]:
    """Child element texts by local name, stripped (the first of a name wins)."""
    out: dict[str, str] = {}
    for child in element:
        out.setdefault(_local(child.tag), (child.text or "").strip())
    return out


def _raw_text(element: Element, tag: str) -> str | None:
    """A child's text as written ("" when empty); None when the child is absent."""
    for child in element:
        if _local(child.tag) == tag:
            return child.text or ""
    return None


@functools.lru_cache(maxsize=4096)
def _local(tag: object) -> str:
    """The name without its namespace (cached: a file uses a few hundred names, per element)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


# Values ---------------------------------------------------------------------------------------


def _guid(value: str | None) -> str | None:
    """A GUID lower-case without braces; None when `value` is not one."""
    match = _GUID.fullmatch(value.strip()) if value else None
    return match.group(1).lower() if match else None


def _split_guid(stem: str) -> tuple[str, str | None]:
    """("Name", guid) from a SolutionPackager file stem "Name-<GUID>"; (stem, None) without."""
    match = _FILE_GUID.match(stem)
    if match is None:
        return stem, None
    return match.group("stem") or stem, match.group("guid").lower()


def _path_id(location: Location) -> str:
    """A stable id for a flow file with no workflow GUID: its path."""
    return f"{location.file}!{location.member}" if location.member else location.file


def _int(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value else None
    except ValueError:
        return None


def _flag(value: str | None) -> bool | None:
    return _FLAGS.get(value.strip().lower()) if value else None


_FLAGS = {"1": True, "true": True, "0": False, "false": False}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


# Lines of flow definitions -------------------------------------------------------------------


def line_of_key(text: str, name: str) -> int | None:
    """The 1-based line where `"name": {` is defined: an action or trigger (a member of an
    `actions` or `triggers` object) first, else any object member of that name. Keys are
    compared decoded, so escapes in the file (`\\"`, `\\u00e9`) match. A runAfter reference
    (`"name": [`) is never a definition. None when there is none."""
    return lines_of_keys(text, [name]).get(name)


def lines_of_keys(text: str, names: Iterable[str]) -> dict[str, int]:
    """`line_of_key` for several names in one pass over the text (a report asks for many
    names per flow); names without a definition are left out. Only the names asked for are
    kept, so memory does not grow with the keys of the flow."""
    wanted = set(names)
    definitions, members = _object_keys(text, wanted)
    offsets = sorted(
        (offset, name)
        for name in wanted
        if (offset := definitions.get(name, members.get(name))) is not None
    )
    lines: dict[str, int] = {}
    line, last = 1, 0
    for offset, name in offsets:
        line += text.count("\n", last, offset)
        last = offset
        lines[name] = line
    return lines


def _object_keys(text: str, wanted: set[str]) -> tuple[dict[str, int], dict[str, int]]:
    """(action and trigger definitions, object members) among `wanted` -> offset of the
    first key, in one pass over the strings and brackets."""
    definitions: dict[str, int] = {}
    members: dict[str, int] = {}
    stack: list[str | None] = []
    pending: tuple[str, int] | None = None  # a key whose value comes next
    for match in _JSON_TOKEN.finditer(text):
        piece = match.group(0)
        key, pending = pending, None
        if piece == "{":
            if key is not None and key[0] in wanted:
                members.setdefault(*key)
                if stack and stack[-1] in ("actions", "triggers"):
                    definitions.setdefault(*key)
            stack.append(key[0] if key and key[0] in ("actions", "triggers") else None)
        elif piece == "[":
            stack.append(None)
        elif piece in ("}", "]"):
            if stack:
                stack.pop()
        elif match.group(2):
            pending = (_unescape(match.group(1)), match.start())
    return definitions, members


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    try:
        value = json.loads(f'"{raw}"')
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


__all__ = [
    "MAX_FLOW_BYTES",
    "MAX_MEMBER_BYTES",
    "MAX_RUN_BYTES",
    "SHAPES_HINT",
    "WELL_KNOWN_MESSAGES",
    "LintFlow",
    "LintInputs",
    "LintStep",
    "LintWorkflow",
    "Location",
    "Problem",
    "line_of_key",
    "lines_of_keys",
    "read_inputs",
]
