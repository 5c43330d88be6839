"""Walking a flow definition: its containers and actions, nesting depth, runAfter order,
action signatures, effect actions and catch paths (the package docstring's "Definitions").

Apart because it reads one definition and nothing else: no frame, no threshold.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

CONNECTOR_TYPES = {
    "openapiconnection",
    "openapiconnectionwebhook",
    "apiconnection",
    "apiconnectionwebhook",
}
_READ_PREFIXES = ("get", "list", "search", "retrieve", "read", "on")
_FAIL_STATUSES = {"failed", "timedout"}


def kids(action: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The containers nested directly in an action."""
    out: list[Mapping[str, Any]] = []
    if isinstance(action.get("actions"), Mapping):
        out.append(action["actions"])
    for key in ("else", "default"):
        part = action.get(key)
        if isinstance(part, Mapping) and isinstance(part.get("actions"), Mapping):
            out.append(part["actions"])
    cases = action.get("cases")
    if isinstance(cases, Mapping):
        for case in cases.values():
            if isinstance(case, Mapping) and isinstance(case.get("actions"), Mapping):
                out.append(case["actions"])
    return out


def containers(root: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The action map `root` and every container nested in it, at any depth."""
    yield root
    for action in root.values():
        if isinstance(action, Mapping):
            for kid in kids(action):
                yield from containers(kid)


def walk(root: Mapping[str, Any], depth: int = 1) -> Iterator[tuple[str, Mapping[str, Any], int]]:
    """(name, action, nesting depth) of every action at any depth; the root's are depth 1."""
    for name, action in root.items():
        if not isinstance(action, Mapping):
            continue
        yield name, action, depth
        for kid in kids(action):
            yield from walk(kid, depth + 1)


def run_after_order(container: Mapping[str, Any]) -> list[str]:
    """The action names of one container in runAfter order (a stable topological order)."""
    names = list(container)
    placed: list[str] = []
    seen: set[str] = set()
    while len(placed) < len(names):
        moved = False
        for name in names:
            if name in seen:
                continue
            preds = (
                (container[name].get("runAfter") or {})
                if isinstance(container[name], Mapping)
                else {}
            )
            if all(p in seen or p not in container for p in preds):
                placed.append(name)
                seen.add(name)
                moved = True
        if not moved:
            placed.extend(n for n in names if n not in seen)
            break
    return placed


def signature(action: Mapping[str, Any]) -> str:
    """What makes two actions "the same" step: type, connector operation (or HTTP method),
    the parameters it sets and the table or list it targets; a variable action's variable."""
    kind = str(action.get("type", ""))
    inputs = action.get("inputs") if isinstance(action.get("inputs"), Mapping) else {}
    assert isinstance(inputs, Mapping)
    params = inputs.get("parameters") if isinstance(inputs.get("parameters"), Mapping) else {}
    assert isinstance(params, Mapping)
    shape = ",".join(sorted(str(k) for k in params))
    target = str(params.get("entityName") or f"{params.get('dataset')}|{params.get('table')}")
    if kind.lower() in CONNECTOR_TYPES:
        host = inputs.get("host") or {}
        api = str(host.get("apiId", "")).rsplit("/", 1)[-1]
        return f"{kind}:{api}:{host.get('operationId', '')}:{shape}:{target.lower()}"
    if kind.lower() == "http":
        return f"{kind}:{str(inputs.get('method', '')).upper()}"
    if kind.lower().endswith("variable"):
        variables = inputs.get("variables")
        first = variables[0] if isinstance(variables, list) and variables else inputs
        return f"{kind}:{str(first.get('name', '')).lower()}"
    return kind


def external(action: Mapping[str, Any]) -> bool:
    """A connector, HTTP or child-flow call, or a container holding one."""
    if str(action.get("type", "")).lower() in CONNECTOR_TYPES | {"http", "workflow"}:
        return True
    return any(
        external(inner)
        for kid in kids(action)
        for inner in kid.values()
        if isinstance(inner, Mapping)
    )


def deep_signature(action: Mapping[str, Any]) -> str:
    """`signature`, and for a container the sorted signatures of what it holds."""
    inner = sorted(
        deep_signature(a) for kid in kids(action) for a in kid.values() if isinstance(a, Mapping)
    )
    own = signature(action)
    return f"{own}{{{'|'.join(inner)}}}" if inner else own


def is_effect(action: Mapping[str, Any]) -> bool:
    """Whether an action changes something (docs/how-a-scan-runs.md)."""
    kind = str(action.get("type", "")).lower()
    inputs = action.get("inputs") if isinstance(action.get("inputs"), Mapping) else {}
    assert isinstance(inputs, Mapping)
    if kind in CONNECTOR_TYPES:
        op = str((inputs.get("host") or {}).get("operationId", "")).lower()
        return not op.startswith(_READ_PREFIXES)
    if kind == "http":
        return str(inputs.get("method", "GET")).upper() != "GET"
    return kind in ("workflow", "response")


def _fails_after(action: Mapping[str, Any]) -> bool:
    run_after = action.get("runAfter") or {}
    for statuses in run_after.values():
        lowered = {str(s).lower() for s in (statuses or [])}
        if lowered & _FAIL_STATUSES and "succeeded" not in lowered:
            return True
    return False


def reports(action: Mapping[str, Any]) -> bool:
    """Terminate Failed / Cancelled, a Response, or an effect: the failure is reported."""
    inputs = action.get("inputs") or {}
    if str(action.get("type", "")).lower() == "terminate":
        return str(inputs.get("runStatus", "")).lower() in ("failed", "cancelled")
    return is_effect(action)


def catch_paths(root: Mapping[str, Any]) -> list[list[Mapping[str, Any]]]:
    """Each catch action's path: itself, its nested actions and its successors in its container."""
    paths: list[list[Mapping[str, Any]]] = []
    for container in containers(root):
        succ: dict[str, list[str]] = {n: [] for n in container}
        for name, action in container.items():
            for pred in (action.get("runAfter") or {}) if isinstance(action, Mapping) else {}:
                if pred in succ:
                    succ[pred].append(name)
        for name, action in container.items():
            if not isinstance(action, Mapping) or not _fails_after(action):
                continue
            todo, seen = [name], {name}
            while todo:
                for nxt in succ[todo.pop()]:
                    if nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            members: list[Mapping[str, Any]] = []
            for n in seen:
                members.append(container[n])
                members.extend(a for _, a, _ in walk({n: container[n]}) if a is not container[n])
            paths.append(members)
    return paths
