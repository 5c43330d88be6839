"""Whether an invoked flow answers its caller on every path, and how its catches answer.

It walks the flow another way than the failure branches (`failure_paths`), which it reads:
every path when all succeeds, down into the containers, for the Responses and Terminates
that end it.

- For an invoked flow, every path that ends the run Succeeded must send a Response: a
  Request-triggered flow with no Response answers 202 Accepted at once
  (https://learn.microsoft.com/azure/logic-apps/logic-apps-http-endpoint), and a caller
  waiting for a Response that never comes times out with an error
  (https://learn.microsoft.com/power-automate/guidance/coding-guidelines/asychronous-flow-pattern).
  A path that ends Failed or Cancelled is seen as a failure by the caller.
- A scope, condition or loop is Failed when an action in it fails (R-SCOPE), so a Response or
  a Terminate Failed after a container holding a catch answers for that catch.
  https://learn.microsoft.com/azure/logic-apps/logic-apps-control-flow-run-steps-group-scopes
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.analysis.failure_paths import flow_branches
from auditor.analysis.flow_graph import (
    CONTAINER_TYPES,
    FAILED,
    LOOP_TYPES,
    SUCCEEDED,
    FlowGraph,
    Node,
    row_display,
    row_scope,
    row_type,
    terminated_as,
)

ANSWERED, ENDED, SILENT, CONTINUES = "answered", "ended", "silent", "continues"


def _outcomes(graph: FlowGraph, container: Sequence[Node], guard: int) -> dict[str, str]:
    """{outcome: where} of running `container` when every action succeeds.

    Outcomes: answered (a Response ran), ended (Terminate Failed or Cancelled: the caller sees
    a failure), silent (Terminate Succeeded before any Response), continues (the container
    finished without any of these). `where` names the first path found to that outcome.
    """
    if guard > 64:  # deeper than the platform allows: treat as unknown, not unanswered
        return {ANSWERED: ""}
    ok = graph.replay(container, None)
    live: dict[str, str] = {CONTINUES: ""}
    done: dict[str, str] = {}
    for node in container:
        if ok[node.name] != SUCCEEDED or CONTINUES not in live:
            continue
        here = live.pop(CONTINUES)
        results: dict[str, str]
        if node.type == "response":
            results = {ANSWERED: here}
        elif node.type == "terminate":
            status = terminated_as(node.row)
            results = {SILENT if status == SUCCEEDED else ENDED: f"'{row_display(node.row)}'"}
        elif node.type in CONTAINER_TYPES:
            bodies = graph.bodies(node)
            if node.type == "if":
                bodies.setdefault("then", [])
                bodies.setdefault("else", [])
            elif node.type == "switch":
                bodies.setdefault("default", [])
            results = {}
            for branch, members in sorted(bodies.items()):
                label = f"'{row_display(node.row)}'" + (f" ({branch})" if branch else "")
                for outcome, where in _outcomes(graph, members, guard + 1).items():
                    results.setdefault(outcome, where or label)
            if node.type in LOOP_TYPES:
                results.setdefault(CONTINUES, "")  # a loop may run no iteration
        else:
            results = {CONTINUES: ""}
        for outcome, where in results.items():
            if outcome == CONTINUES:
                live.setdefault(CONTINUES, where or here)
            else:
                done.setdefault(outcome, where)
    for outcome, where in live.items():
        done.setdefault(outcome, where)
    return done


@dataclass(frozen=True)
class ResponsePaths:
    """How an invoked flow answers: its Responses, the paths that end Succeeded without one,
    and the failure branches that answer success or end silently."""

    responses: int
    silent_paths: tuple[str, ...]
    success_on_failure: tuple[str, ...]
    silent_catches: tuple[str, ...]


def _answered_above(graph: FlowGraph, scope: str) -> bool:
    """Whether, once a failure inside the container `scope` made its holders Failed (R-SCOPE),
    an outer container answers (a Response) or ends the run Failed after a holder."""
    for node in graph.holders(scope):
        container = graph.containers.get(row_scope(node.row), [])
        status = graph.replay(container, node.name)
        index = {n.name: i for i, n in enumerate(container)}
        for other in container:
            if status[other.name] != SUCCEEDED or index[other.name] <= index[node.name]:
                continue
            for inner in [other, *graph.descendants(other)]:
                if inner.type == "response" or (
                    inner.type == "terminate" and terminated_as(inner.row) in (FAILED, "cancelled")
                ):
                    return True
    return False


def response_paths(rows: Sequence[Mapping[str, Any]]) -> ResponsePaths:
    graph = FlowGraph(rows)
    responses = sum(1 for row in rows if row_type(row) == "response")
    outcomes = _outcomes(graph, graph.containers.get("", []), 0)
    silent = [
        where or "the end of the flow"
        for outcome, where in outcomes.items()
        if outcome in (SILENT, CONTINUES)
    ]
    branches = flow_branches(rows, graph)
    wrong = [f"after '{b['guarded_display']}' fails" for b in branches if b["success_on_failure"]]
    quiet = [
        f"'{b['catch_display']}' (after '{b['guarded_display']}' fails)"
        for b in branches
        if b["kind"] in ("catch", "empty")
        and not b["answers"]
        and not b["ends_failed"]
        and not _answered_above(graph, str(b["scope_path"]))
    ]
    return ResponsePaths(responses, tuple(silent), tuple(wrong), tuple(quiet))


__all__ = ["ResponsePaths", "response_paths"]
