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

import stat
from collections.abc import Sequence
from pathlib import Path

from auditor.bulk import collection_paused
from auditor.errors import UsageError
from auditor.lint.files import Folder, file_type
from auditor.lint.flow_lines import line_of_key, lines_of_keys
from auditor.lint.flows import read_flow_file
from auditor.lint.layout import SHAPES_HINT, not_a_shape
from auditor.lint.limits import Found
from auditor.lint.records import LintFlow, LintInputs, LintStep, LintWorkflow, Location, Problem
from auditor.lint.solution import read_source
from auditor.lint.zips import read_zip


def read_inputs(paths: Sequence[Path]) -> LintInputs:
    """Read every PATH; raises UsageError for a PATH that is missing, none of the shapes, or
    not a folder or regular file (see the module docstring for what is followed)."""
    if not paths:
        raise UsageError("no PATH to lint", hint=SHAPES_HINT)
    found = Found()
    seen: set[tuple[int, int]] = set()
    with collection_paused():
        for path in paths:
            _read_path(Path(path), found, seen)
        return found.finish()


def _read_path(path: Path, found: Found, seen: set[tuple[int, int]]) -> None:
    display = path.as_posix()
    try:
        info = path.stat()  # a link named on the command line is followed: the user named it
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"{display}: no such file or folder", hint=SHAPES_HINT) from None
    except OSError as exc:
        raise not_a_shape(display, f"cannot be read: {exc.strerror or exc}") from None
    if (info.st_dev, info.st_ino) in seen:
        return  # the same file or folder named twice: read once
    seen.add((info.st_dev, info.st_ino))
    if stat.S_ISDIR(info.st_mode):
        read_source(Folder.of(path, display, found), found)
    elif not stat.S_ISREG(info.st_mode):
        raise not_a_shape(display, f"is {file_type(info.st_mode)}, not a file or folder")
    elif path.suffix.lower() == ".zip":
        read_zip(path, display, found)
    elif path.suffix.lower() == ".json":
        read_flow_file(path, display, found)
    else:
        raise not_a_shape(display, "is neither a folder, a .zip nor a .json file")


__all__ = [
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
