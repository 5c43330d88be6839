"""What a flow does when an action fails: its failure branches, and whether each reports.

Every check that reasons about failures (error handling, handled failures, responses,
retries) reads this model, built from the `runAfter` statuses of each edge (replayed on the
`flow_graph`, which states the run-after rule) rather than from "some action runs after
Failed somewhere". The rules, with their sources:

- A scope, condition or loop is Failed when an action in it fails, even one a catch inside
  it handled; so a catch that reports nothing is not silent when an outer catch of a
  container holding it reports the failure.
  https://learn.microsoft.com/azure/logic-apps/logic-apps-control-flow-run-steps-group-scopes
- A *failure branch* of a guarded action G is what runs only because G failed: the actions on
  edges from G listing Failed or TimedOut but not Succeeded, what they contain, and what runs
  only after them. It is found by replaying the container twice, once with G Succeeded and
  once with G Failed (every other action Succeeded), and keeping what runs only in the second.
  An edge listing both Succeeded and Failed starts no branch: it tolerates an optional step.
- A branch is a *catch* when it holds a Response, a Terminate or an action with an effect
  outside the run; *failure used as data* when it holds only data actions (a paging loop that
  ends when a page fails, a link probe whose failure is the result); an *empty catch* when it
  holds nothing. Failures used as data are not judged; an empty catch swallows the failure.
  Data actions whose result a later step turns into a report (a failure flag that a
  condition ends with Terminate Failed, variables a Response answers as an error) make a
  catch that reports; data that only lets a later step run on Skipped (skip the rest of an
  item after a lookup fails) is failure used as control flow.
- A catch *reports* the failure when it ends the run Failed or Cancelled (Terminate), answers
  the caller with a failure (a Response whose status is not a literal 2xx, or whose body has a
  status field) or writes the failure somewhere (an action with an effect). Terminate
  Succeeded, and a literal 2xx Response with no status field that runs after the failure,
  report *success on failure*.
  https://learn.microsoft.com/power-automate/guidance/coding-guidelines/error-handling;
  https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-actions-triggers#terminate-action
- A run whose failure a catch handled ends Succeeded unless a Terminate sets another status
  (inferred: the Power Automate guidance ends catch paths with Terminate Failed for this
  reason; the documentation does not state the run-status rule itself).

Whether an invoked flow answers its caller on every path is `response_paths`, which reads
these branches. Everything here works on the action rows of `definitions.parse_definition`,
one flow at a time, without recursion (nesting is untrusted) and in time linear in the flow's
size per guarded action.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from auditor.analysis.definition_effects import DATA_TYPE_PREFIXES, DATA_TYPES
from auditor.analysis.flow_graph import (
    CONTAINER_TYPES,
    FAILED,
    SKIPPED,
    SUCCEEDED,
    TIMEDOUT,
    FlowGraph,
    Node,
    edge_kind,
    row_display,
    row_scope,
    row_type,
    rows_by_flow,
    terminated_as,
)

_LITERAL_2XX = re.compile(r"\s*2\d\d\s*")
_MAX_NAMES = 300

BRANCH_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "guarded_action": "str",  # the action whose failure starts the branch
    "guarded_display": "str",  # that action as the designer names it
    "catch_action": "str",  # the branch's first action (its name in the definition)
    "catch_display": "str",  # that action as the designer names it
    "scope_path": "str",  # the container of both
    "kind": "str",  # catch / data / empty
    "members": "int64",
    "reports_failure": "bool",  # a catch that ends Failed/Cancelled, answers a failure or writes it
    "success_on_failure": "bool",  # Terminate Succeeded or a 2xx Response after the failure
    "ends_failed": "bool",  # Terminate Failed / Cancelled on the branch
    "answers": "bool",  # a Response runs after the failure (on the branch or after it)
    # A container holding the branch fails with it (R-SCOPE) and an outer catch reports that.
    "reported_above": "bool",
    "how": "str",  # what reports (or not), for messages
    "member_names": "str",  # comma-separated display names, shortened
}


def is_data(row: Mapping[str, Any]) -> bool:
    kind = row_type(row)
    return kind in DATA_TYPES or kind.startswith(DATA_TYPE_PREFIXES)


def answers_failure(row: Mapping[str, Any]) -> bool:
    """A Response the caller can read as a failure: a status that is not a literal 2xx
    (an expression may be anything), or a body with a status field."""
    if bool(row.get("response_status_field")):
        return True
    status = row.get("response_status")
    if not isinstance(status, str) or not status.strip():
        return False  # no statusCode: the Response answers 200
    return not _LITERAL_2XX.fullmatch(status)


def _branch(graph: FlowGraph, scope: str, guarded: str) -> dict[str, object] | None:
    container = graph.containers[scope]
    ok = graph.replay(container, None)
    # What runs when the guarded action fails or times out: an edge may list either.
    failed = graph.replay(container, guarded)
    timed_out = graph.replay(container, guarded, TIMEDOUT)
    bad = {n: SUCCEEDED if SUCCEEDED in (failed[n], timed_out[n]) else failed[n] for n in failed}
    exclusive = [n for n in container if bad[n.name] == SUCCEEDED and ok[n.name] != SUCCEEDED]
    if not exclusive:
        return None
    content: list[Node] = []
    for node in exclusive:
        content.append(node)
        content.extend(graph.descendants(node))
    after = [n for n in container if bad[n.name] == SUCCEEDED and n.name != guarded]
    after_index = {n.name: i for i, n in enumerate(container)}
    start = after_index[guarded]
    shared_after = [
        n
        for n in after
        if after_index[n.name] > start and n not in exclusive and ok[n.name] == SUCCEEDED
    ]
    reached = content + [d for n in shared_after for d in [n, *graph.descendants(n)]]
    actions = [n for n in content if n.type not in CONTAINER_TYPES]
    responses = [n for n in reached if n.type == "response"]
    terminates = [n for n in content if n.type == "terminate"]
    effects = [
        n
        for n in actions
        if n.type not in ("response", "terminate") and bool(n.row.get("is_effect"))
    ]
    failure_answer = [n for n in responses if answers_failure(n.row)]
    flagged = False  # the branch sets a flag that a later step turns into Terminate Failed
    if any(n in content for n in responses) or terminates or effects:
        kind = "catch"
    elif actions and all(not n.row.get("is_effect") for n in actions):
        # Data actions, reads and waits that carry the failure to a Response answering it (a
        # status field, a non-2xx status) report it; what something after the branch reads
        # (or runs after) is a result the flow goes on with; data nobody reads is a catch
        # that reports nothing.
        if failure_answer:
            kind = "catch"
        elif _reported_later(graph, content):
            kind, flagged = "catch", True
        else:
            kind = "data" if _used_later(graph, content) or _in_until(graph, scope) else "catch"
    elif actions:
        kind = "catch"  # e.g. a Wait: does something, reports nothing
    else:
        kind = "empty"
    ends_failed = any(terminated_as(n.row) in (FAILED, "cancelled") for n in terminates)
    success_answer = [n for n in responses if not answers_failure(n.row)]
    reports = kind == "catch" and (ends_failed or flagged or bool(failure_answer) or bool(effects))
    # A success answered on the branch itself, or after a catch that reports nothing, tells
    # the caller the work succeeded; after a catch that logged or notified the failure, the
    # shared answer is the flow's designed outcome for it.
    own_success = [n for n in success_answer if n in content]
    success_on_failure = (
        bool(own_success)
        or (bool(success_answer) and not reports)
        or any(terminated_as(n.row) == SUCCEEDED for n in terminates)
    )
    how: list[str] = []
    if ends_failed:
        how.append(
            "Terminate "
            + next(str(n.row.get("terminate_status")) for n in terminates if terminated_as(n.row))
        )
    how.extend(
        f"answers '{row_display(n.row)}' ({n.row.get('response_status') or 200})" for n in responses
    )
    how.extend(f"'{row_display(n.row)}'" for n in effects[:3])
    if any(terminated_as(n.row) == SUCCEEDED for n in terminates):
        how.append("Terminate Succeeded")
    if flagged:
        how.append("sets a flag that a later step turns into Terminate Failed")
    names = ", ".join(row_display(n.row) for n in content)
    return {
        "guarded_action": guarded,
        "guarded_display": row_display(graph.nodes[guarded].row),
        "catch_action": exclusive[0].name,
        "catch_display": row_display(exclusive[0].row),
        "scope_path": scope,
        "kind": kind,
        "members": len(content),
        "reports_failure": reports,
        "success_on_failure": success_on_failure and kind != "data",
        "ends_failed": ends_failed,
        "answers": bool(responses),
        "how": "; ".join(how) or ("nothing" if kind == "empty" else "only data actions"),
        "member_names": names[:_MAX_NAMES],
    }


def _split(value: Any) -> set[str]:
    return {v for v in value.split(",") if v} if isinstance(value, str) else set()


def _in_until(graph: FlowGraph, scope: str) -> bool:
    """Whether the container `scope` is inside a Do until: the loop goes round again."""
    parts = [p for p in scope.split("/") if p]
    return any(graph.nodes[p].type == "until" for p in parts if p in graph.nodes)


def _readers(graph: FlowGraph, content: Sequence[Node]) -> Iterator[tuple[Node, bool]]:
    """Each action outside `content` that reads an output or a variable it produces, or that
    runs depending on how one of its actions ended; with whether it reads (True) or only
    depends on the outcome (False). An edge that runs whether or not the branch ran
    ([Succeeded, Skipped]) only goes on, and is not a use."""
    names = {n.name for n in content}
    variables = {v.lower() for n in content for v in _split(n.row.get("variable_name"))}
    for node in graph.nodes.values():
        if node.name in names:
            continue
        reads = bool(
            _split(node.row.get("references")) & names
            or {v.lower() for v in _split(node.row.get("reads_variables"))} & variables
        )
        depends = any(
            pred in names and not {SUCCEEDED, SKIPPED} <= statuses
            for pred, statuses in node.run_after.items()
        )
        if reads or depends:
            yield node, reads


def _reported_later(graph: FlowGraph, content: Sequence[Node]) -> bool:
    """Whether an action after the branch reads what it set (a failure flag) and ends the run
    Failed or Cancelled, or answers a failure, itself or inside it."""
    for node, reads in _readers(graph, content):
        if not reads:
            continue
        for inner in [node, *graph.descendants(node)]:
            if inner.type == "terminate" and terminated_as(inner.row) in (FAILED, "cancelled"):
                return True
            if inner.type == "response" and answers_failure(inner.row):
                return True
    return False


def _used_later(graph: FlowGraph, content: Sequence[Node]) -> bool:
    """Whether an action after the branch reads what it produces or depends on how it ended
    (a probe's failure)."""
    return next(_readers(graph, content), None) is not None


def flow_branches(
    rows: Sequence[Mapping[str, Any]], graph: FlowGraph | None = None
) -> list[dict[str, object]]:
    """The failure branches of one flow, one per guarded action (`graph`: the rows' graph,
    when the caller built it already)."""
    graph = FlowGraph(rows) if graph is None else graph
    out: list[dict[str, object]] = []
    for scope, members in graph.containers.items():
        guarded = []
        for node in members:
            for pred, statuses in node.run_after.items():
                if edge_kind(statuses) == "failure" and pred not in guarded:
                    guarded.append(pred)
        names = {n.name for n in members}
        for pred in guarded:
            if pred in names:
                found = _branch(graph, scope, pred)
                if found is not None:
                    silent = not found["reports_failure"] or found["success_on_failure"]
                    judged = found["kind"] in ("catch", "empty")
                    found["reported_above"] = bool(
                        judged and silent and scope and _reported_above(graph, scope)
                    )
                    out.append(found)
    return out


def _reported_above(graph: FlowGraph, scope: str) -> bool:
    """Whether a failure inside the container `scope`, which makes every container holding it
    Failed (R-SCOPE), reaches an outer catch that reports it: then the run does not end
    Succeeded whatever the inner catch does."""
    for node in graph.holders(scope):
        outer = _branch(graph, row_scope(node.row), node.name)
        if outer is not None and outer["reports_failure"] and not outer["success_on_failure"]:
            return True
    return False


def branches_frame(actions: pd.DataFrame) -> pd.DataFrame:
    """One row per failure branch of every flow (see the module docstring)."""
    rows: list[dict[str, object]] = []
    for key, flow_rows in rows_by_flow(actions, only_failure_edges=True):
        for branch in flow_branches(flow_rows):
            rows.append({"environment_id": key[0], "flow_id": key[1], **branch})
    frame = pd.DataFrame(rows, columns=list(BRANCH_DTYPES))
    return frame.astype(BRANCH_DTYPES)


__all__ = [
    "BRANCH_DTYPES",
    "answers_failure",
    "branches_frame",
    "flow_branches",
    "is_data",
]
