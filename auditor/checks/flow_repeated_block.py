"""The same step built twice is one child flow: a block of actions that recurs in several
flows of a solution, or several times in one flow.

Rule R-CHILD of tests/corpus/README.md. Power Automate's guidance is to put logic that is
repeated across flows, or within a flow, into a child flow that each of them calls, so it is
written, fixed and changed in one place:
https://learn.microsoft.com/power-automate/guidance/coding-guidelines/create-reusable-code
https://learn.microsoft.com/power-automate/create-child-flows (a child flow lives in a
solution, next to the flows that call it, so copies are compared within a solution).

A block is `repeated_sequence_length` consecutive actions of one container holding at least
one external call, compared by content (`analysis.definitions.block_signatures`): operation,
the parameters it sets, the table or list it targets; not by name, since copies get renamed.
It counts as repeated when it recurs in `repeated_sequence_flows` or more enabled flows of
the same solution (of the environment when the solution is unknown, as after a tenant scan),
or `repeated_sequence_flows` or more times, without overlap, inside one flow. Windows that
continue one another at every place they occur are one longer block, reported once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, evidence_rows, make
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-repeated-block",
    title="Repeated action block across flows",
    answers=("decomposed-steps",),
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
# A place a window occurs: (flow, container, 0-based position in the container).
_Place = tuple[str, str, int]


@dataclass(frozen=True)
class _Block:
    """A repeated block: its first window's signature, its length and where it occurs."""

    environment_id: str
    signature: str
    length: int
    occurrences: pd.DataFrame  # rows of the first window, one per place it occurs


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
    windows = _windows(evidence, enabled, positions, length)
    out: list[Finding] = []
    failed: set[str] = set()
    across: set[tuple[str, str, str, int]] = set()
    for solution, block in _across_flows(windows, length, least):
        for flow in block.occurrences["flow_id"].unique():
            across.add((block.environment_id, str(flow), block.signature, block.length))
        out.append(_across_finding(block, solution, positions))
        failed.add(block.environment_id)
    for block in _within_flows(windows, length, least):
        flow = str(block.occurrences["flow_id"].iloc[0])
        if (block.environment_id, flow, block.signature, block.length) in across:
            continue  # the same block is reported across the flows of its solution
        out.append(_within_finding(block, positions))
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


def _places(rows: pd.DataFrame) -> frozenset[_Place]:
    return frozenset(
        zip(
            rows["flow_id"].astype(str),
            rows["scope_path"].astype(str),
            rows["position"].astype(int),
            strict=True,
        )
    )


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
    rows: pd.DataFrame, length: int, least: int, count: Callable[[Iterable[_Place], int], int]
) -> list[tuple[str, int]]:
    """Repeated windows joined into blocks: (first window's signature, block length).

    A window whose places are exactly those of another window moved one action on continues
    it: together they are one block a window longer, as long as the block still counts as
    repeated (`count` of its places at its length is at least `least`)."""
    places = {str(s): _places(g) for s, g in rows.groupby("signature", sort=True)}
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


def _across_flows(
    windows: pd.DataFrame, length: int, least: int
) -> list[tuple[str | None, _Block]]:
    """Blocks in `least` or more flows of one solution (or of the environment's flows whose
    solution is unknown), with that solution."""
    if windows.empty:
        return []
    keys = ["environment_id", "group", "signature"]
    spread = windows.groupby(keys, sort=False)["flow_id"].transform("nunique")
    repeated = windows[spread >= least]
    out = []
    for (env, group), rows in repeated.groupby(["environment_id", "group"], sort=True):
        for signature, size in _chains(rows, length, least, _flows):
            first = rows[rows["signature"] == signature]
            out.append((str(group) or None, _Block(str(env), signature, size, first)))
    return out


def _within_flows(windows: pd.DataFrame, length: int, least: int) -> list[_Block]:
    """Blocks copied `least` or more times, without overlap, into one flow."""
    if windows.empty:
        return []
    keys = [*_KEY, "signature"]
    many = windows[windows.groupby(keys, sort=False)["flow_id"].transform("size") >= least]
    repeated = many.groupby(keys, sort=False).filter(
        lambda rows: _copies(_places(rows), length) >= least
    )
    out = []
    for (env, _), rows in repeated.groupby(_KEY, sort=False):
        for signature, size in _chains(rows, length, least, _copies):
            first = rows[rows["signature"] == signature]
            out.append(_Block(str(env), signature, size, first))
    return out


# Findings ---------------------------------------------------------------------------------

_EVIDENCE = ["flow_id", "display_name", "scope_path", "start_action"]


def _ends(block: _Block, positions: pd.DataFrame) -> tuple[str, str]:
    """The designer's names of the block's first and last action, where it first occurs."""
    first = block.occurrences.iloc[0]
    last = positions[
        (positions["environment_id"] == block.environment_id)
        & (positions["flow_id"] == first["flow_id"])
        & (positions["scope_path"] == first["scope_path"])
        & (positions["position"] == int(first["position"]) + block.length - 1)
    ]
    end = last["action_display_name"].iloc[0] if len(last) else None
    return str(first["first_action"]), str(end)


def _quoted(names: Sequence[str]) -> str:
    shown = ", ".join(f"'{name}'" for name in names[:_SHOWN_FLOWS])
    more = len(names) - _SHOWN_FLOWS
    return shown + (f" (and {more} more)" if more > 0 else "")


def _across_finding(block: _Block, solution: str | None, positions: pd.DataFrame) -> Finding:
    rows = block.occurrences.drop_duplicates("flow_id")
    first, last = _ends(block, positions)
    flows = len(rows)
    where = f"solution {solution}" if solution else "this environment"
    return make(
        META,
        "fail",
        f"the same {block.length} actions (from '{first}' to '{last}') appear in {flows} flows "
        f"of {where}: {_quoted(list(rows['display_name'].astype(str)))}",
        environment_id=block.environment_id,
        resource_id=f"{block.signature}-{block.length}" + (f"@{solution}" if solution else ""),
        resource_name=f"block from '{first}' to '{last}'",
        values={"flows": flows, "length": block.length},
        evidence=evidence_rows(rows, _EVIDENCE),
    )


def _within_finding(block: _Block, positions: pd.DataFrame) -> Finding:
    kept = set(_apart(_places(block.occurrences), block.length))
    rows = block.occurrences  # in document order
    rows = rows[[place in kept for place in zip(*_place_columns(rows), strict=True)]]
    first, last = _ends(block, positions)
    flow_id, flow_name = str(rows["flow_id"].iloc[0]), str(rows["display_name"].iloc[0])
    return make(
        META,
        "fail",
        f"the same {block.length} actions (from '{first}' to '{last}') appear {len(rows)} "
        f"times in the flow '{flow_name}'",
        environment_id=block.environment_id,
        resource_id=f"{block.signature}-{block.length}@{flow_id}",
        resource_name=f"block from '{first}' to '{last}'",
        values={"copies": len(rows), "length": block.length},
        evidence=evidence_rows(rows, _EVIDENCE),
    )


def _place_columns(rows: pd.DataFrame) -> tuple[list[str], list[str], list[int]]:
    return (
        rows["flow_id"].astype(str).tolist(),
        rows["scope_path"].astype(str).tolist(),
        rows["position"].astype(int).tolist(),
    )
