"""One flow's action rows as a graph: containers of actions joined by their `runAfter` edges.

The failure branches (`failure_paths`) and the answers of an invoked flow (`response_paths`)
both walk this graph and its basic queries, so it stands apart from either walk. The rule it
replays:

- An action runs when every predecessor in its `runAfter` ended in one of the statuses listed
  for it (Succeeded, Failed, Skipped, TimedOut); otherwise it is Skipped. An action with an
  empty `runAfter` runs when its container starts.
  https://learn.microsoft.com/azure/logic-apps/error-exception-handling (run after);
  https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-definition-language

The rows are those of `definitions.parse_definition`, one flow at a time (`flow_rows` cuts the
actions frame into flows); nothing here recurses, since nesting is untrusted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

SUCCEEDED, FAILED, TIMEDOUT, SKIPPED = "succeeded", "failed", "timedout", "skipped"
FAILURE_STATUSES = frozenset({FAILED, TIMEDOUT})
CONTAINER_TYPES = frozenset({"scope", "if", "switch", "foreach", "until"})
LOOP_TYPES = frozenset({"foreach", "until"})


@dataclass(frozen=True)
class Node:
    """One action: its row, its runAfter edges, its type and the scope path it holds."""

    name: str
    row: Mapping[str, Any]
    run_after: dict[str, frozenset[str]]
    type: str
    path: str  # the scope path of the containers nested in it (its base)


def row_type(row: Mapping[str, Any]) -> str:
    """An action's type in lower case ("" without one)."""
    value = row.get("type")
    return value.lower() if isinstance(value, str) else ""


def row_scope(row: Mapping[str, Any]) -> str:
    """The scope path of the container holding an action ("" at the top level)."""
    value = row.get("scope_path")
    return value if isinstance(value, str) else ""


def _run_after(row: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    raw = row.get("run_after")
    try:
        loaded = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        loaded = {}
    if not isinstance(loaded, dict):
        return {}
    return {
        str(pred): frozenset(s for s in statuses if isinstance(s, str))
        for pred, statuses in loaded.items()
        if isinstance(statuses, list)
    }


def row_display(row: Mapping[str, Any]) -> str:
    """An action as the designer names it: its display name, else its key."""
    for key in ("display_name", "action_name"):
        value = row.get(key)
        if isinstance(value, str):
            return value
    return "?"


def terminated_as(row: Mapping[str, Any]) -> str:
    """A Terminate's run status in lower case ("" when it sets none)."""
    status = row.get("terminate_status")
    return status.lower() if isinstance(status, str) else ""


class FlowGraph:
    """One flow's action rows as containers of nodes with their runAfter edges."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.rows = rows
        self.containers: dict[str, list[Node]] = {}
        self.nodes: dict[str, Node] = {}
        ordered = sorted(rows, key=lambda r: (row_scope(r), int(r.get("order") or 0)))
        for row in ordered:
            name = str(row.get("action_name"))
            scope = row_scope(row)
            node = Node(
                name, row, _run_after(row), row_type(row), f"{scope}/{name}" if scope else name
            )
            self.containers.setdefault(scope, []).append(node)
            self.nodes.setdefault(name, node)

    def holders(self, scope: str) -> Iterator[Node]:
        """The containers holding the container `scope`, innermost first (a failure inside
        `scope` makes each of them Failed, R-SCOPE); a cycle in broken data ends the walk."""
        members = self.containers.get(scope, [])
        parent = members[0].row.get("parent") if members else None
        node = self.nodes.get(parent) if isinstance(parent, str) else None
        seen: set[str] = set()
        while node is not None and node.name not in seen:
            seen.add(node.name)
            yield node
            parent = node.row.get("parent")
            node = self.nodes.get(parent) if isinstance(parent, str) else None

    def descendants(self, node: Node) -> list[Node]:
        """Every action nested in `node`, at any depth."""
        prefix = node.path + "/"
        return [
            inner
            for scope, members in self.containers.items()
            if scope == node.path or scope.startswith(prefix)
            for inner in members
        ]

    def bodies(self, node: Node) -> dict[str, list[Node]]:
        """The containers directly inside `node`: {"": body} or {"then": ..., "else": ...}."""
        out: dict[str, list[Node]] = {}
        branched = node.type in ("if", "switch")  # only these name their bodies
        for scope, members in self.containers.items():
            if scope == node.path and not branched:
                out[""] = members
            elif branched and scope.startswith(node.path + "/"):
                branch = scope[len(node.path) + 1 :]
                if "/" not in branch:
                    out[branch] = members
        return out

    def replay(
        self, container: Sequence[Node], failed: str | None, how: str = FAILED
    ) -> dict[str, str]:
        """Each action's status when `failed` ends `how` (Failed or TimedOut) and everything
        else succeeds."""
        status: dict[str, str] = {}
        for node in container:  # runAfter order
            if node.name == failed:
                status[node.name] = how
                continue
            runs = all(
                status.get(pred, SUCCEEDED) in allowed
                for pred, allowed in node.run_after.items()
                if pred in status or pred in self.nodes
            )
            status[node.name] = SUCCEEDED if runs else SKIPPED
        return status


def edge_kind(statuses: frozenset[str]) -> str | None:
    """ "failure" for a runAfter edge that runs only on a failure, "tolerates" for one that
    runs on success and failure alike, None for one that ignores failures."""
    if not statuses & FAILURE_STATUSES:
        return None
    return "tolerates" if SUCCEEDED in statuses else "failure"


def reacted(graph: FlowGraph) -> set[str]:
    """Actions whose failure some edge reacts to (a failure branch or a tolerating edge)."""
    out: set[str] = set()
    for members in graph.containers.values():
        for node in members:
            for pred, statuses in node.run_after.items():
                if edge_kind(statuses) is not None:
                    out.add(pred)
    return out


def ancestors(graph: FlowGraph, node: Node) -> list[Node]:
    """The containers holding `node`, innermost first."""
    out: list[Node] = []
    seen: set[str] = set()
    parent = node.row.get("parent")
    while isinstance(parent, str) and parent in graph.nodes and parent not in seen:
        seen.add(parent)
        holder = graph.nodes[parent]
        out.append(holder)
        parent = holder.row.get("parent")
    return out


def rows_by_flow(
    actions: pd.DataFrame, *, only_failure_edges: bool = False
) -> Iterable[tuple[tuple[str, str], list[dict[str, Any]]]]:
    """Each flow's action rows as dicts, flows in key order (one to_dict for all flows)."""
    frame = actions
    if only_failure_edges:
        wanted = actions.loc[
            actions["runs_after_failure"].astype(bool), ["environment_id", "flow_id"]
        ].drop_duplicates()
        if wanted.empty:
            return []
        frame = actions.merge(wanted, on=["environment_id", "flow_id"], how="inner")
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in frame.to_dict("records"):
        row = {str(k): v for k, v in record.items()}
        key = (row["environment_id"], row["flow_id"])
        if pd.notna(key[0]) and pd.notna(key[1]):
            grouped.setdefault(key, []).append(row)
    return sorted(grouped.items())


def flow_rows(actions: pd.DataFrame) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every flow's action rows as dicts, by (environment_id, flow_id)."""
    return dict(rows_by_flow(actions))


__all__ = [
    "CONTAINER_TYPES",
    "FAILED",
    "FAILURE_STATUSES",
    "LOOP_TYPES",
    "SKIPPED",
    "SUCCEEDED",
    "TIMEDOUT",
    "FlowGraph",
    "Node",
    "ancestors",
    "edge_kind",
    "flow_rows",
    "reacted",
    "row_display",
    "row_scope",
    "row_type",
    "rows_by_flow",
    "terminated_as",
]
