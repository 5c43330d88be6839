"""What a lint may read: the size limits of one file, the budgets of one run, and `Found`,
which gathers the records and spends those budgets. Apart so that every reader shares one
bookkeeping; a zip's directory and the XML reader have their own limits, kept with them.

Each limit is read from this module when used (`limits.MAX_FLOW_BYTES`), so a test can lower it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from auditor.lint.records import LintFlow, LintInputs, LintStep, LintWorkflow, Location, Problem

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
        "bytes": f"over {format_size(limit)} read in all",
        "text": f"over {format_size(limit)} of flow definitions",
        "files": f"over {limit:,} files listed",
        "flows": f"over {limit:,} flows",
        "steps": f"over {limit:,} plug-in steps",
        "workflows": f"over {limit:,} workflow records",
        "problems": f"over {limit:,} files that cannot be read",
    }[what]


@dataclass
class Found:
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


def format_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.3g} MB"
    return f"{size / 1024:.3g} KB" if size >= 1024 else f"{size} bytes"
