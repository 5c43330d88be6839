"""What a flow does when an action fails, and whether its caller gets an answer.

Every check that reasons about failures (error handling, handled failures, responses,
retries) reads this model, built from the `runAfter` statuses of each edge rather than from
"some action runs after Failed somewhere". The rules, with their sources:

- An action runs when every predecessor in its `runAfter` ended in one of the statuses listed
  for it (Succeeded, Failed, Skipped, TimedOut); otherwise it is Skipped. An action with an
  empty `runAfter` runs when its container starts.
  https://learn.microsoft.com/azure/logic-apps/error-exception-handling (run after);
  https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-definition-language
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
- For an invoked flow, every path that ends the run Succeeded must send a Response: a
  Request-triggered flow with no Response answers 202 Accepted at once
  (https://learn.microsoft.com/azure/logic-apps/logic-apps-http-endpoint), and a caller
  waiting for a Response that never comes times out with an error
  (https://learn.microsoft.com/power-automate/guidance/coding-guidelines/asychronous-flow-pattern).
  A path that ends Failed or Cancelled is seen as a failure by the caller.

Everything here works on the action rows of `definitions.parse_definition`, one flow at a
time, without recursion (nesting is untrusted) and in time linear in the flow's size per
guarded action.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from auditor.analysis.definition_effects import DATA_TYPE_PREFIXES, DATA_TYPES

SUCCEEDED, FAILED, TIMEDOUT, SKIPPED = "succeeded", "failed", "timedout", "skipped"
FAILURE_STATUSES = frozenset({FAILED, TIMEDOUT})
CONTAINER_TYPES = frozenset({"scope", "if", "switch", "foreach", "until"})
LOOP_TYPES = frozenset({"foreach", "until"})
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


@dataclass(frozen=True)
class _Node:
    name: str
    row: Mapping[str, Any]
    run_after: dict[str, frozenset[str]]
    type: str
    path: str  # the scope path of the containers nested in it (its base)


def _type(row: Mapping[str, Any]) -> str:
    value = row.get("type")
    return value.lower() if isinstance(value, str) else ""


def _scope(row: Mapping[str, Any]) -> str:
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


def is_data(row: Mapping[str, Any]) -> bool:
    kind = _type(row)
    return kind in DATA_TYPES or kind.startswith(DATA_TYPE_PREFIXES)


def _display(row: Mapping[str, Any]) -> str:
    for key in ("display_name", "action_name"):
        value = row.get(key)
        if isinstance(value, str):
            return value
    return "?"


def answers_failure(row: Mapping[str, Any]) -> bool:
    """A Response the caller can read as a failure: a status that is not a literal 2xx
    (an expression may be anything), or a body with a status field."""
    if bool(row.get("response_status_field")):
        return True
    status = row.get("response_status")
    if not isinstance(status, str) or not status.strip():
        return False  # no statusCode: the Response answers 200
    return not _LITERAL_2XX.fullmatch(status)


def _terminate(row: Mapping[str, Any]) -> str:
    status = row.get("terminate_status")
    return status.lower() if isinstance(status, str) else ""


class FlowGraph:
    """One flow's action rows as containers of nodes with their runAfter edges."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.rows = rows
        self.containers: dict[str, list[_Node]] = {}
        self.nodes: dict[str, _Node] = {}
        ordered = sorted(rows, key=lambda r: (_scope(r), int(r.get("order") or 0)))
        for row in ordered:
            name = str(row.get("action_name"))
            scope = _scope(row)
            node = _Node(
                name, row, _run_after(row), _type(row), f"{scope}/{name}" if scope else name
            )
            self.containers.setdefault(scope, []).append(node)
            self.nodes.setdefault(name, node)

    def descendants(self, node: _Node) -> list[_Node]:
        """Every action nested in `node`, at any depth."""
        prefix = node.path + "/"
        return [
            inner
            for scope, members in self.containers.items()
            if scope == node.path or scope.startswith(prefix)
            for inner in members
        ]

    def bodies(self, node: _Node) -> dict[str, list[_Node]]:
        """The containers directly inside `node`: {"": body} or {"then": ..., "else": ...}."""
        out: dict[str, list[_Node]] = {}
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
        self, container: Sequence[_Node], failed: str | None, how: str = FAILED
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


def _edge_kind(statuses: frozenset[str]) -> str | None:
    if not statuses & FAILURE_STATUSES:
        return None
    return "tolerates" if SUCCEEDED in statuses else "failure"


def reacted(graph: FlowGraph) -> set[str]:
    """Actions whose failure some edge reacts to (a failure branch or a tolerating edge)."""
    out: set[str] = set()
    for members in graph.containers.values():
        for node in members:
            for pred, statuses in node.run_after.items():
                if _edge_kind(statuses) is not None:
                    out.add(pred)
    return out


def ancestors(graph: FlowGraph, node: _Node) -> list[_Node]:
    """The containers holding `node`, innermost first."""
    out: list[_Node] = []
    seen: set[str] = set()
    parent = node.row.get("parent")
    while isinstance(parent, str) and parent in graph.nodes and parent not in seen:
        seen.add(parent)
        holder = graph.nodes[parent]
        out.append(holder)
        parent = holder.row.get("parent")
    return out


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
    content: list[_Node] = []
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
    ends_failed = any(_terminate(n.row) in (FAILED, "cancelled") for n in terminates)
    success_answer = [n for n in responses if not answers_failure(n.row)]
    reports = kind == "catch" and (ends_failed or flagged or bool(failure_answer) or bool(effects))
    # A success answered on the branch itself, or after a catch that reports nothing, tells
    # the caller the work succeeded; after a catch that logged or notified the failure, the
    # shared answer is the flow's designed outcome for it.
    own_success = [n for n in success_answer if n in content]
    success_on_failure = (
        bool(own_success)
        or (bool(success_answer) and not reports)
        or any(_terminate(n.row) == SUCCEEDED for n in terminates)
    )
    how: list[str] = []
    if ends_failed:
        how.append(
            "Terminate "
            + next(str(n.row.get("terminate_status")) for n in terminates if _terminate(n.row))
        )
    how.extend(
        f"answers '{_display(n.row)}' ({n.row.get('response_status') or 200})" for n in responses
    )
    how.extend(f"'{_display(n.row)}'" for n in effects[:3])
    if any(_terminate(n.row) == SUCCEEDED for n in terminates):
        how.append("Terminate Succeeded")
    if flagged:
        how.append("sets a flag that a later step turns into Terminate Failed")
    names = ", ".join(_display(n.row) for n in content)
    return {
        "guarded_action": guarded,
        "guarded_display": _display(graph.nodes[guarded].row),
        "catch_action": exclusive[0].name,
        "catch_display": _display(exclusive[0].row),
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


def _readers(graph: FlowGraph, content: Sequence[_Node]) -> Iterator[tuple[_Node, bool]]:
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


def _reported_later(graph: FlowGraph, content: Sequence[_Node]) -> bool:
    """Whether an action after the branch reads what it set (a failure flag) and ends the run
    Failed or Cancelled, or answers a failure, itself or inside it."""
    for node, reads in _readers(graph, content):
        if not reads:
            continue
        for inner in [node, *graph.descendants(node)]:
            if inner.type == "terminate" and _terminate(inner.row) in (FAILED, "cancelled"):
                return True
            if inner.type == "response" and answers_failure(inner.row):
                return True
    return False


def _used_later(graph: FlowGraph, content: Sequence[_Node]) -> bool:
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
                if _edge_kind(statuses) == "failure" and pred not in guarded:
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
    members = graph.containers.get(scope, [])
    parent = members[0].row.get("parent") if members else None
    node = graph.nodes.get(parent) if isinstance(parent, str) else None
    seen: set[str] = set()
    while node is not None and node.name not in seen:
        seen.add(node.name)
        outer = _branch(graph, _scope(node.row), node.name)
        if outer is not None and outer["reports_failure"] and not outer["success_on_failure"]:
            return True
        parent = node.row.get("parent")
        node = graph.nodes.get(parent) if isinstance(parent, str) else None
    return False


# Responses on every path -----------------------------------------------------------------

ANSWERED, ENDED, SILENT, CONTINUES = "answered", "ended", "silent", "continues"


def _outcomes(graph: FlowGraph, container: Sequence[_Node], guard: int) -> dict[str, str]:
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
            status = _terminate(node.row)
            results = {SILENT if status == SUCCEEDED else ENDED: f"'{_display(node.row)}'"}
        elif node.type in CONTAINER_TYPES:
            bodies = graph.bodies(node)
            if node.type == "if":
                bodies.setdefault("then", [])
                bodies.setdefault("else", [])
            elif node.type == "switch":
                bodies.setdefault("default", [])
            results = {}
            for branch, members in sorted(bodies.items()):
                label = f"'{_display(node.row)}'" + (f" ({branch})" if branch else "")
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
    members = graph.containers.get(scope, [])
    parent = members[0].row.get("parent") if members else None
    node = graph.nodes.get(parent) if isinstance(parent, str) else None
    seen: set[str] = set()
    while node is not None and node.name not in seen:
        seen.add(node.name)
        container = graph.containers.get(_scope(node.row), [])
        status = graph.replay(container, node.name)
        index = {n.name: i for i, n in enumerate(container)}
        for other in container:
            if status[other.name] != SUCCEEDED or index[other.name] <= index[node.name]:
                continue
            for inner in [other, *graph.descendants(other)]:
                if inner.type == "response" or (
                    inner.type == "terminate" and _terminate(inner.row) in (FAILED, "cancelled")
                ):
                    return True
        parent = node.row.get("parent")
        node = graph.nodes.get(parent) if isinstance(parent, str) else None
    return False


def response_paths(rows: Sequence[Mapping[str, Any]]) -> ResponsePaths:
    graph = FlowGraph(rows)
    responses = sum(1 for row in rows if _type(row) == "response")
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


def branches_frame(actions: pd.DataFrame) -> pd.DataFrame:
    """One row per failure branch of every flow (see the module docstring)."""
    rows: list[dict[str, object]] = []
    for key, flow_rows in _by_flow(actions, only_failure_edges=True):
        for branch in flow_branches(flow_rows):
            rows.append({"environment_id": key[0], "flow_id": key[1], **branch})
    frame = pd.DataFrame(rows, columns=list(BRANCH_DTYPES))
    return frame.astype(BRANCH_DTYPES)


def _by_flow(
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
    return dict(_by_flow(actions))


__all__ = [
    "BRANCH_DTYPES",
    "FlowGraph",
    "ResponsePaths",
    "ancestors",
    "answers_failure",
    "branches_frame",
    "flow_branches",
    "flow_rows",
    "reacted",
    "response_paths",
]
