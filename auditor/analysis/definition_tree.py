"""The walk over a definition's nested containers, producing every action row.

Scopes, conditions, switches and loops nest actions; each container is ordered the way the
engine runs it (runAfter), and walked depth first without recursion, since the nesting of
tenant data is untrusted. Containers then get a content key that includes what they hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from itertools import chain
from typing import Any

from auditor.analysis.definition_actions import Place, action_row
from auditor.analysis.definition_values import as_object, as_text, lower_text, shorten


def _ordered(container: dict[str, Any]) -> list[tuple[str, Any, int, str | None]]:
    """(name, action, position, note) of one scope's actions in runAfter order.

    Replays the engine's order: repeated passes in definition order, an action placing as
    soon as its predecessors are placed (computed in linear time rather than by passes).
    Predecessors outside the scope are ignored. Actions in (or after) a runAfter cycle,
    which the platform would reject, come last in name order with a note.
    """
    names = list(container)
    index = {name: i for i, name in enumerate(names)}
    size = len(names)
    successors: list[list[int]] = [[] for _ in range(size)]
    indegree = [0] * size
    notes: list[str | None] = [None] * size
    for i, name in enumerate(names):
        raw = as_object(container[name]).get("runAfter")
        if not isinstance(raw, dict):
            continue
        unknown = []
        for pred in raw:
            j = index.get(pred)
            if j is None:
                unknown.append(pred)
            else:
                successors[j].append(i)
                indegree[i] += 1
        if unknown:
            notes[i] = shorten(f"runAfter references unknown action(s): {', '.join(unknown)}")
    passes = [1] * size
    ready = [i for i in range(size) if indegree[i] == 0]
    placed: list[int] = []
    while ready:
        j = ready.pop()
        placed.append(j)
        for i in successors[j]:
            passes[i] = max(passes[i], passes[j] + (1 if j > i else 0))
            indegree[i] -= 1
            if indegree[i] == 0:
                ready.append(i)
    placed.sort(key=lambda i: (passes[i], i))
    done = set(placed)
    stuck = sorted((i for i in range(size) if i not in done), key=lambda i: names[i])
    for i in stuck:
        notes[i] = "; ".join(filter(None, [notes[i], "runAfter cycle; ordered by name"]))
    return [
        (names[i], container[names[i]], position, notes[i])
        for position, i in enumerate(chain(placed, stuck), start=1)
    ]


def _entries(
    container: dict[str, Any], place: Place
) -> Iterator[tuple[str, Any, int, str | None, Place]]:
    for name, action, position, note in _ordered(container):
        yield name, action, position, note, place


def _children(
    name: str, action: dict[str, Any], place: Place
) -> tuple[list[tuple[dict[str, Any], Place]], list[str]]:
    """The containers nested in an action (then/else, cases/default, a scope's body)."""
    type_l = lower_text(action.get("type"))
    base = f"{place.scope_path}/{name}" if place.scope_path else name
    parts: list[tuple[Any, str | None]] = []
    if "actions" in action:
        parts.append((action["actions"], "then" if type_l == "if" else None))
    if "else" in action:
        parts.append((as_object(action["else"]).get("actions"), "else"))
    cases = action.get("cases")
    if isinstance(cases, dict):
        parts.extend(
            (as_object(case).get("actions"), as_text(key) or "") for key, case in cases.items()
        )
    if "default" in action:
        parts.append((as_object(action["default"]).get("actions"), "default"))
    out: list[tuple[dict[str, Any], Place]] = []
    notes: list[str] = []
    for body, branch in parts:
        if body is None:
            continue
        if not isinstance(body, dict):
            notes.append(f"nested actions of {branch or 'the body'} are not an object")
            continue
        path = f"{base}/{branch}" if branch else base
        out.append((body, Place(name, path, branch, place.depth + 1)))
    return out, notes


def action_rows(
    actions: dict[str, Any], refs: Mapping[str, Any], ids: tuple[str, str]
) -> list[dict[str, Any]]:
    """Every action, depth first in runAfter order, without recursion (nesting is untrusted)."""
    rows: list[dict[str, Any]] = []
    stack: list[Iterator[tuple[str, Any, int, str | None, Place]]] = [
        _entries(actions, Place(None, "", None, 1))
    ]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        name, action, position, note, place = entry
        notes = [note] if note else []
        children: list[tuple[dict[str, Any], Place]] = []
        if isinstance(action, dict):
            children, child_notes = _children(name, action, place)
            notes.extend(child_notes)
        rows.append(action_row(name, action, position, notes, place, refs, ids))
        if children:
            stack.append(chain.from_iterable(_entries(body, where) for body, where in children))
    _fold_containers(rows)
    return rows


def _fold_containers(rows: list[dict[str, Any]]) -> None:
    """Give each container a content key that includes what it holds (two conditions match
    only when their branches do the same), and mark the actions that are or hold an external
    call. Rows are depth first, so walking them backwards folds children before parents."""
    index = {row["action_name"]: i for i, row in enumerate(rows)}
    parts: list[list[str]] = [[] for _ in rows]
    holds = [bool(row["is_external_call"]) for row in rows]
    for i in range(len(rows) - 1, -1, -1):
        row = rows[i]
        if parts[i]:
            content = "\x1e".join(sorted(parts[i])).encode("utf-8", "surrogatepass")
            digest = hashlib.blake2b(content, digest_size=8).hexdigest()
            row["content_key"] = f"{row['content_key']}{{{digest}}}"
        row["holds_external_call"] = holds[i]
        j = index.get(row["parent"]) if row["parent"] is not None else None
        if j is not None and j < i:  # a parent precedes its children; names are unique
            written = row.get("written_columns") or ""
            parts[j].append(f"{row.get('branch') or ''}:{row['content_key']}:{written}")
            holds[j] = holds[j] or holds[i]
