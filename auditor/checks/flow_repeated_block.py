"""The same step built twice is one child flow: a block of actions that recurs in several
flows of a solution, or several times in one flow.

Rule R-CHILD of tests/corpus/README.md. Power Automate's guidance is to put logic that is
repeated across flows, or within a flow, into a child flow that each of them calls, so it is
written, fixed and changed in one place:
https://learn.microsoft.com/power-automate/guidance/coding-guidelines/create-reusable-code
https://learn.microsoft.com/power-automate/create-child-flows (a child flow lives in a
solution, next to the flows that call it, so copies are compared within a solution).

A block is `repeated_sequence_length` consecutive actions of one container holding at least
one external call, compared by content (`analysis.block_signatures`): operation,
the parameters it sets, the table or list it targets; not by name, since copies get renamed.
It counts as repeated when it recurs in `repeated_sequence_flows` or more enabled flows of
the same solution (of the environment when the solution is unknown, as after a tenant scan),
or `repeated_sequence_flows` or more times, without overlap, inside one flow. Windows that
continue one another at every place they occur are one longer block, reported once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from auditor.checks.base import (
    MAX_EVIDENCE_ROWS,
    CheckMeta,
    Finding,
    Limits,
    Threshold,
    make,
    plain,
)
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-repeated-block",
    title="Repeated action block across flows",
    severity="medium",
    rationale=(
        "The same sequence of actions in several flows of a solution, or several times in one "
        "flow, is one step implemented several times: a fix or a retry policy must be changed "
        "everywhere, and the copies drift."
    ),
    remediation=(
        "Move the repeated sequence into a child flow in the solution and call it with Run a "
        "Child Flow from each place it was copied to."
    ),
    learn_url="https://learn.microsoft.com/power-automate/create-child-flows",
    needs=("workflows", "flows"),
    thresholds=(
        Threshold(
            "repeated_sequence_length", 5, "consecutive actions that make a block", "actions"
        ),
        Threshold(
            "repeated_sequence_flows",
            3,
            "enabled flows of one solution holding the same block, or copies of it in one flow",
            "flows",
        ),
    ),
    resource_kind="action-block",
)

_KEY = ["environment_id", "flow_id"]
_SHOWN_FLOWS = 5
_EVIDENCE = ["flow_id", "display_name", "scope_path", "start_action"]
# A place a window occurs: (flow, container, 0-based position in the container).
_Place = tuple[str, str, int]


@dataclass(frozen=True)
class _Block:
    """A repeated block: its first window's signature, its length and where it occurs."""

    environment_id: str
    signature: str
    length: int
    occurrences: tuple[int, ...]  # the first window's rows in `_Windows`, in document order


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """One `fail` per repeated block (R-CHILD): per solution, or per environment for flows
    whose solution is unknown, when it recurs in `repeated_sequence_flows` enabled flows;
    per flow when it recurs that many times inside it. An environment without one passes.

    Repeated logic belongs in one child flow that each place calls:
    https://learn.microsoft.com/power-automate/guidance/coding-guidelines/create-reusable-code
    https://learn.microsoft.com/power-automate/create-child-flows
    """
    length = int(limits["repeated_sequence_length"])
    least = int(limits["repeated_sequence_flows"])
    names = evidence.flow_names()
    enabled = names[names["enabled"]]
    positions = _positions(evidence.actions)
    windows = _Windows(_windows(evidence, enabled, positions, length))
    ends = _Ends(positions)
    out: list[Finding] = []
    failed: set[str] = set()
    across: set[tuple[str, str, str, int]] = set()
    for solution, block in _across_flows(windows, length, least):
        for flow in {windows.places[i][0] for i in block.occurrences}:
            across.add((block.environment_id, flow, block.signature, block.length))
        out.append(_across_finding(block, solution, windows, ends))
        failed.add(block.environment_id)
    for block in _within_flows(windows, length, least):
        flow = windows.places[block.occurrences[0]][0]
        if (block.environment_id, flow, block.signature, block.length) in across:
            continue  # the same block is reported across the flows of its solution
        out.append(_within_finding(block, windows, ends))
        failed.add(block.environment_id)
    for env in evidence.environments["environment_id"]:
        if env in failed:
            continue
        audited = int((enabled["environment_id"] == env).sum())
        out.append(
            make(
                META,
                "pass",
                f"no block of {length} actions with an external call recurs in {least} or more "
                f"enabled flows of a solution, or {least} times in one flow ({audited} enabled "
                "flows)",
                environment_id=env,
                resource_kind="environment",
                resource_id=env,
                resource_name=evidence.environment_name(env),
                values={"enabled_flows": audited},
            )
        )
    return out


# Windows and where they are -----------------------------------------------------------------


def _positions(actions: pd.DataFrame) -> pd.DataFrame:
    """Each action's 0-based position in its container (runAfter order), its rank in the
    document (`seq`: depth first, as the designer lists them) and the name the designer shows
    for it."""
    out = actions.loc[:, [*_KEY, "scope_path", "order", "action_name", "display_name"]]
    out = out.assign(seq=range(len(out)))
    out = out.sort_values([*_KEY, "scope_path", "order"], kind="stable")
    out["position"] = out.groupby([*_KEY, "scope_path"], dropna=False).cumcount()
    return out.drop(columns="order").rename(columns={"display_name": "action_display_name"})


def _windows(
    evidence: Evidence, enabled: pd.DataFrame, positions: pd.DataFrame, length: int
) -> pd.DataFrame:
    """Every `length`-action window of the enabled flows, with its flow's name and solution
    and its first action's position and name; sorted by solution, flow name and place in
    the document."""
    blocks = evidence.blocks(length).merge(enabled.loc[:, [*_KEY, "display_name"]], on=_KEY)
    solutions = evidence.definitions.loc[:, [*_KEY, "solution"]].drop_duplicates(_KEY)
    blocks = blocks.merge(solutions, on=_KEY, how="left")
    starts = positions.rename(
        columns={"action_name": "start_action", "action_display_name": "first_action"}
    )
    blocks = blocks.merge(starts, on=[*_KEY, "scope_path", "start_action"])
    blocks["position"] = blocks["position"].astype("int64")
    blocks["group"] = blocks["solution"].fillna("")  # "": the environment's other flows
    return blocks.sort_values(
        ["environment_id", "group", "display_name", "flow_id", "seq"],
        kind="stable",
    ).reset_index(drop=True)


class _Windows:
    """The windows frame with the columns the grouping reads taken out once as lists.

    Every grouping below is one pass over these lists (a dict from a key to row numbers);
    filtering the frame once per repeated signature, and every action once per block, cost
    O(blocks x actions): half a minute for three flows of 6,000 actions."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.environments: list[str] = frame["environment_id"].astype(str).tolist()
        self.groups: list[str] = frame["group"].astype(str).tolist()
        self.signatures: list[str] = frame["signature"].astype(str).tolist()
        self.places: list[_Place] = list(zip(*_place_columns(frame), strict=True))
        self.flow_names: list[str] = frame["display_name"].astype(str).tolist()
        self.first_actions: list[str] = frame["first_action"].astype(str).tolist()
        self.columns = {column: frame[column].tolist() for column in _EVIDENCE}

    def evidence(self, at: Sequence[int]) -> tuple[dict[str, Any], ...]:
        """The evidence rows of the windows at these row numbers (the first ones)."""
        return tuple(
            {column: plain(values[i]) for column, values in self.columns.items()}
            for i in at[:MAX_EVIDENCE_ROWS]
        )

    def by_signature(self, at: Iterable[int]) -> dict[str, list[int]]:
        """Row numbers per signature, signatures sorted."""
        out: dict[str, list[int]] = {}
        for i in at:
            out.setdefault(self.signatures[i], []).append(i)
        return dict(sorted(out.items()))

    def places_of(self, by_signature: Mapping[str, Sequence[int]]) -> dict[str, frozenset[_Place]]:
        return {s: frozenset(self.places[i] for i in at) for s, at in by_signature.items()}


def _apart(places: Iterable[_Place], length: int) -> list[_Place]:
    """The places that hold a copy overlapping none taken before (greedy, in position order
    per container): a block of `length` actions counts once per copy."""
    kept: list[_Place] = []
    end: dict[tuple[str, str], int] = {}
    for flow, scope, position in sorted(places):
        if position >= end.get((flow, scope), 0):
            kept.append((flow, scope, position))
            end[(flow, scope)] = position + length
    return kept


def _copies(places: Iterable[_Place], length: int) -> int:
    return len(_apart(places, length))


def _flows(places: Iterable[_Place], length: int) -> int:
    del length  # a flow holds the block however long it is
    return len({flow for flow, _, _ in places})


def _chains(
    places: Mapping[str, frozenset[_Place]],
    length: int,
    least: int,
    count: Callable[[Iterable[_Place], int], int],
) -> list[tuple[str, int]]:
    """Repeated windows joined into blocks: (first window's signature, block length).

    `places` maps each repeated window's signature to where it occurs, signatures sorted. A
    window whose places are exactly those of another window moved one action on continues
    it: together they are one block a window longer, as long as the block still counts as
    repeated (`count` of its places at its length is at least `least`)."""
    by_places = {where: signature for signature, where in places.items()}
    following = {}
    for signature, where in places.items():
        moved = frozenset((flow, scope, position + 1) for flow, scope, position in where)
        if moved in by_places:
            following[signature] = by_places[moved]
    chains = []
    continued = set()
    for signature in places:
        if signature in continued:
            continue
        size, current = length, signature
        while current in following and count(places[signature], size + 1) >= least:
            current = following[current]
            continued.add(current)
            size += 1
        chains.append((signature, size))
    # A window taken for a block's start may turn out to continue another block.
    return [(signature, size) for signature, size in chains if signature not in continued]


# Across the flows of a solution, within one flow --------------------------------------------


def _across_flows(windows: _Windows, length: int, least: int) -> list[tuple[str | None, _Block]]:
    """Blocks in `least` or more flows of one solution (or of the environment's flows whose
    solution is unknown), with that solution."""
    frame = windows.frame
    if frame.empty:
        return []
    keys = ["environment_id", "group", "signature"]
    spread = frame.groupby(keys, sort=False)["flow_id"].transform("nunique")
    by_group: dict[tuple[str, str], list[int]] = {}
    for i in np.flatnonzero((spread >= least).to_numpy()).tolist():
        by_group.setdefault((windows.environments[i], windows.groups[i]), []).append(i)
    out = []
    for env, group in sorted(by_group):
        by_signature = windows.by_signature(by_group[(env, group)])
        chains = _chains(windows.places_of(by_signature), length, least, _flows)
        for signature, size in chains:
            block = _Block(env, signature, size, tuple(by_signature[signature]))
            out.append((group or None, block))
    return out


def _within_flows(windows: _Windows, length: int, least: int) -> list[_Block]:
    """Blocks copied `least` or more times, without overlap, into one flow."""
    if windows.frame.empty:
        return []
    by_copy: dict[tuple[str, str, str], list[int]] = {}
    for i, (env, place, signature) in enumerate(
        zip(windows.environments, windows.places, windows.signatures, strict=True)
    ):
        by_copy.setdefault((env, place[0], signature), []).append(i)
    kept = sorted(
        i
        for at in by_copy.values()
        if len(at) >= least and _copies((windows.places[i] for i in at), length) >= least
        for i in at
    )
    by_flow: dict[tuple[str, str], list[int]] = {}  # flows in document order
    for i in kept:
        by_flow.setdefault((windows.environments[i], windows.places[i][0]), []).append(i)
    out = []
    for (env, _), at in by_flow.items():
        by_signature = windows.by_signature(at)
        for signature, size in _chains(windows.places_of(by_signature), length, least, _copies):
            out.append(_Block(env, signature, size, tuple(by_signature[signature])))
    return out


# Findings ---------------------------------------------------------------------------------


class _Ends:
    """The designer's name of every action by its place, looked up once per block instead of
    filtering every action per block."""

    def __init__(self, positions: pd.DataFrame) -> None:
        keys = zip(
            positions["environment_id"].astype(str).tolist(),
            *_place_columns(positions),
            strict=True,
        )
        self.names: dict[tuple[str, str, str, int], object] = {}
        for key, name in zip(keys, positions["action_display_name"].tolist(), strict=True):
            self.names.setdefault(key, name)

    def of(self, block: _Block, windows: _Windows) -> tuple[str, str]:
        """The names of the block's first and last action, where it first occurs."""
        first = block.occurrences[0]
        flow, scope, position = windows.places[first]
        last = (block.environment_id, flow, scope, position + block.length - 1)
        return windows.first_actions[first], str(self.names.get(last))


def _quoted(names: Sequence[str]) -> str:
    shown = ", ".join(f"'{name}'" for name in names[:_SHOWN_FLOWS])
    more = len(names) - _SHOWN_FLOWS
    return shown + (f" (and {more} more)" if more > 0 else "")


def _across_finding(block: _Block, solution: str | None, windows: _Windows, ends: _Ends) -> Finding:
    by_flow: dict[str, int] = {}  # each flow's first occurrence, in document order
    for i in block.occurrences:
        by_flow.setdefault(windows.places[i][0], i)
    rows = list(by_flow.values())
    first, last = ends.of(block, windows)
    flows = len(rows)
    where = f"solution {solution}" if solution else "this environment"
    return make(
        META,
        "fail",
        f"the same {block.length} actions (from '{first}' to '{last}') appear in {flows} flows "
        f"of {where}: {_quoted([windows.flow_names[i] for i in rows])}",
        environment_id=block.environment_id,
        resource_id=f"{block.signature}-{block.length}" + (f"@{solution}" if solution else ""),
        resource_name=f"block from '{first}' to '{last}'",
        values={"flows": flows, "length": block.length},
        evidence=windows.evidence(rows),
    )


def _within_finding(block: _Block, windows: _Windows, ends: _Ends) -> Finding:
    kept = set(_apart((windows.places[i] for i in block.occurrences), block.length))
    rows = [i for i in block.occurrences if windows.places[i] in kept]  # in document order
    first, last = ends.of(block, windows)
    flow_id, flow_name = windows.places[rows[0]][0], windows.flow_names[rows[0]]
    return make(
        META,
        "fail",
        f"the same {block.length} actions (from '{first}' to '{last}') appear {len(rows)} "
        f"times in the flow '{flow_name}'",
        environment_id=block.environment_id,
        resource_id=f"{block.signature}-{block.length}@{flow_id}",
        resource_name=f"block from '{first}' to '{last}'",
        values={"copies": len(rows), "length": block.length},
        evidence=windows.evidence(rows),
    )


def _place_columns(rows: pd.DataFrame) -> tuple[list[str], list[str], list[int]]:
    return (
        rows["flow_id"].astype(str).tolist(),
        rows["scope_path"].astype(str).tolist(),
        rows["position"].astype(int).tolist(),
    )
