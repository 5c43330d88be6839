"""What a flow's trigger lets through: events filtered inside the flow, and updates of the
table or list the flow is triggered by.

Two rules of the labelled corpus (tests/corpus/README.md) are decided here, from the parsed
trigger and action rows of `analysis.definitions`:

- **R-EVENT** (`gates`): an event trigger (a connector trigger: polling, webhook or
  notification, the Dataverse trigger included) is already narrowed by its own parameters
  (folder, subject filter, list, table, filtering attributes, filter rows). A *gate* is the
  first top-level action, skipping Initialize variable and Compose actions, that is a
  Condition (type If) whose expression reads only trigger data (`triggerBody()`,
  `triggerOutputs()`, `trigger()`: no action outputs, no variables) and one of whose branches
  ends the run having done nothing: the branch is empty (or holds only actions without an
  effect) and nothing with an effect runs after the Condition, or it holds a Terminate and no
  effect. Every event that takes that branch is a run that does nothing, counted against the
  flow's request limits: the expression belongs in a trigger condition, which keeps those
  runs from starting.
  https://learn.microsoft.com/power-automate/customize-triggers
  https://learn.microsoft.com/power-automate/guidance/coding-guidelines/optimize-power-automate-triggers
- **R-SELF-TRIGGER** (`self_updates`): a flow triggered by updates of a Dataverse table
  ("When a row is added, modified or deleted" with a message that includes Update) or of a
  SharePoint list or library ("When an item is created or modified", "When a file is created
  or modified (properties only)") that updates a row of that table or an item of that list
  starts another run with each update. It does not when the trigger's filtering attributes
  (Select columns) leave out every column the update writes. A trigger condition or a filter
  rows expression may stop the loop; the checks take it as the owner's guard without
  evaluating it.
  https://learn.microsoft.com/power-automate/dataverse/create-update-delete-trigger
  https://learn.microsoft.com/power-automate/guidance/coding-guidelines/optimize-power-automate-triggers
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import pandas as pd

from auditor.analysis.definition_triggers import DATAVERSE_API

_KEY = ["environment_id", "flow_id"]
SHAREPOINT_API = "shared_sharepointonline"

# R-EVENT -------------------------------------------------------------------------------------

GATE_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "action_name": "str",  # the Condition's key in the definition
    "display_name": "str",  # its name in the designer
    "expression": "str",  # the Condition's expression, compact JSON, shortened
    "trigger_condition": "str",  # the same as a trigger condition (@...), when it converts
    "branch": "str",  # then / else: the branch that ends the run
    "ends_with": "str",  # "terminate": a Terminate; "nothing": no action with an effect
}

# Actions skipped before the gate: they only prepare values.
_BEFORE_GATE = frozenset({"initializevariable", "compose"})
_VARIABLES = re.compile(r"\bvariables\s*\(", re.IGNORECASE)
MAX_EXPRESSION = 300


def _operand(value: Any) -> str | None:
    """A designer condition operand as expression-language text, or None if unsure."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return json.dumps(value)
    if not isinstance(value, str):
        return None
    if "@{" in value:
        return None  # string interpolation: not converted
    if value.startswith("@") and not value.startswith("@@"):
        return value[1:]
    text = value[1:] if value.startswith("@@") else value
    return "'" + text.replace("'", "''") + "'"


def _condition_text(node: Any) -> str | None:
    """A designer condition (`{"and": [{"equals": [a, b]}]}`) as a function call, or None."""
    if not isinstance(node, Mapping) or len(node) != 1:
        return None
    ((name, args),) = node.items()
    if name in ("and", "or"):
        if not isinstance(args, list) or not args:
            return None
        parts = [_condition_text(arg) for arg in args]
        if any(part is None for part in parts):
            return None
        return parts[0] if len(parts) == 1 else f"{name}({', '.join(map(str, parts))})"
    if name == "not":
        inner = _condition_text(args)
        return None if inner is None else f"not({inner})"
    if not isinstance(args, list) or not re.fullmatch(r"[A-Za-z]+", str(name)):
        return None
    operands = [_operand(arg) for arg in args]
    if any(op is None for op in operands):
        return None
    return f"{name}({', '.join(map(str, operands))})"


def as_trigger_condition(expression: str | None) -> str | None:
    """A Condition's expression (compact JSON, as parsed) written as a trigger condition
    (`@equals(triggerOutputs()?['body/x'], 1)`), or None when it does not convert."""
    if not isinstance(expression, str):
        return None
    try:
        node = json.loads(expression)
    except ValueError:
        return None
    if isinstance(node, str):  # an expression string: "@equals(...)"
        return node if node.startswith("@") and "@{" not in node else None
    text = _condition_text(node)
    return None if text is None else "@" + text


def _short(text: str, limit: int = MAX_EXPRESSION) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _lower(series: pd.Series) -> pd.Series:
    return series.astype("str").str.lower()


def _top_ancestor(actions: pd.DataFrame) -> pd.Series:
    """The top-level action each action is (or sits in): scope_path's first segment."""
    path = actions["scope_path"].fillna("").astype("str")
    first = path.str.split("/", n=1).str[0]
    return first.where(path != "", actions["action_name"].astype("str"))


def _gate_branch(
    gate: Any, mine: pd.DataFrame, ancestor: pd.Series, top: pd.DataFrame
) -> tuple[str, str] | None:
    """(branch, ends_with) of the gate's branch that ends the run doing nothing, or None."""
    name = str(gate.action_name)
    later = set(top.loc[top["order"] > gate.order, "action_name"].astype("str"))
    effect_after = bool(mine.loc[ancestor.isin(later), "is_effect"].astype(bool).any())
    path = mine["scope_path"].fillna("").astype("str")
    found: list[tuple[str, str]] = []
    for branch in ("then", "else"):
        prefix = f"{name}/{branch}"
        inside = mine[(path == prefix) | path.str.startswith(prefix + "/")]
        if inside["is_effect"].astype(bool).any():
            continue
        direct = inside[(inside["parent"] == name) & (inside["branch"] == branch)]
        if _lower(direct["type"]).eq("terminate").any():
            found.append((branch, "terminate"))
        elif not effect_after:
            found.append((branch, "nothing"))
    found.sort(key=lambda item: item[1] != "terminate")  # a Terminate is the clearer case
    return found[0] if found else None


def gates(triggers: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """One row per flow with an event trigger whose first action is a gate (R-EVENT)."""
    events = triggers.loc[triggers["is_event"].astype(bool), _KEY].drop_duplicates()
    acts = actions.merge(events, on=_KEY, how="inner")
    top = acts[acts["depth"] == 1]
    top = top[~_lower(top["type"]).isin(_BEFORE_GATE)]
    first = top.sort_values([*_KEY, "order"], kind="stable").groupby(_KEY, sort=False).head(1)
    expression = first["expression"]
    candidates = first[
        _lower(first["type"]).eq("if")
        & expression.notna()
        & first["reads_trigger"].astype(bool)
        & first["references"].isna()
        & ~expression.fillna("").astype("str").str.contains(_VARIABLES)
    ]
    found: list[dict[str, Any]] = []
    if not candidates.empty:
        acts = acts.merge(candidates.loc[:, _KEY], on=_KEY, how="inner")
        groups = dict(iter(acts.groupby(_KEY, sort=False)))
        for gate in candidates.itertuples(index=False):
            mine = groups[(gate.environment_id, gate.flow_id)]
            ancestor = _top_ancestor(mine)
            level = mine[mine["depth"] == 1]
            ends = _gate_branch(gate, mine, ancestor, level)
            if ends is None:
                continue
            found.append(
                {
                    "environment_id": gate.environment_id,
                    "flow_id": gate.flow_id,
                    "action_name": gate.action_name,
                    "display_name": gate.display_name,
                    "expression": _short(str(gate.expression)),
                    "trigger_condition": as_trigger_condition(str(gate.expression)),
                    "branch": ends[0],
                    "ends_with": ends[1],
                }
            )
    return pd.DataFrame(found, columns=list(GATE_DTYPES)).astype(GATE_DTYPES)


# R-SELF-TRIGGER ------------------------------------------------------------------------------

SELF_UPDATE_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "action_name": "str",
    "display_name": "str",
    "operation": "str",
    "target": "str",  # the action's table (entity set name) or "site|list"
    "written_columns": "str",
    # The action's table or list is the trigger's; NA when either is not named in the
    # definition (a legacy path the parser cannot read, a missing parameter).
    "same_target": "boolean",
    # Columns the update writes that the trigger's filtering attributes watch, comma list;
    # NaN when the trigger has none (it fires on any column) or the columns are unknown.
    "watched_columns": "str",
    "fires_trigger": "bool",  # the update passes the trigger's filtering attributes
}

SHAREPOINT_UPDATE_TRIGGERS = frozenset({"getonupdateditems", "getonupdatedfileitems"})
# SharePoint actions that change an item or a file of a list or library: Update item, Update
# file properties (PatchFileItem, PatchFileItemWithPredictedValues), Update file.
_SHAREPOINT_UPDATES = ("patchitem", "patchfileitem", "updatefile")
# Dataverse actions that update a row: Update a row (UpdateRecord), Update a row without
# upsert (UpdateOnlyRecord), Upload a file or an image (UpdateEntityFileImageFieldContent).
# "...WithOrganization" variants name their environment by a parameter: left out.
_DATAVERSE_UPDATE = "update"
# Dataverse updates whose columns are the `item/<column>` parameters: none set writes none.
_DATAVERSE_ROW_UPDATES = frozenset({"updaterecord", "updateonlyrecord"})


def update_trigger_kind(trigger: Any) -> str | None:
    """ "dataverse" or "sharepoint" when the trigger row fires on updates of a Dataverse
    table or a SharePoint list or library (R-SELF-TRIGGER), else None."""
    if bool(trigger.is_dataverse):
        return "dataverse" if bool(trigger.fires_on_update) else None
    connector = trigger.connector if isinstance(trigger.connector, str) else ""
    if connector.lower() != SHAREPOINT_API:
        return None
    operation = trigger.operation if isinstance(trigger.operation, str) else None
    if operation is not None:
        return "sharepoint" if operation.lower() in SHAREPOINT_UPDATE_TRIGGERS else None
    # A legacy ApiConnection trigger has no operationId: its path (.../onupdateditems,
    # .../onupdatedfileitems) made `fires_on_update`.
    return "sharepoint" if bool(trigger.fires_on_update) else None


def entity_set_names(logical_name: str) -> set[str]:
    """The entity set names a table's logical name may have (lower case).

    The trigger names its table by the logical name (account), actions by the entity set
    name (accounts). The set name is not in the definition; it is inferred here by the
    English plural rules Dataverse applies to most tables: +s, +es, y -> ies (the logical name
    itself is accepted too).
    """
    name = logical_name.strip().lower()
    names = {name, name + "s", name + "es"}
    if name.endswith("y"):
        names.add(name[:-1] + "ies")
    return names


def _list_key(target: str) -> tuple[str, str]:
    """A SharePoint "site|list" target compared loosely: decoded, no trailing slash."""
    site, _, name = target.partition("|")
    for _ in range(2):  # legacy paths encode twice
        site, name = unquote(site), unquote(name)
    return site.strip().rstrip("/").lower(), name.strip().lower()


def _columns(text: Any) -> list[str]:
    """Column names of a comma list, lower case, without @odata.bind / _<x>_value dressing."""
    if not isinstance(text, str):
        return []
    out = []
    for part in text.split(","):
        name = part.strip().lower()
        name = name.removesuffix("@odata.bind")
        if name.startswith("_") and name.endswith("_value"):
            name = name[1 : -len("_value")]
        if name:
            out.append(name)
    return out


def _is_update(row: Any, kind: str) -> bool:
    connector = row.connector.lower() if isinstance(row.connector, str) else ""
    operation = row.operation.lower() if isinstance(row.operation, str) else ""
    if kind == "dataverse":
        return (
            connector == DATAVERSE_API
            and operation.startswith(_DATAVERSE_UPDATE)
            and "withorganization" not in operation
        )
    if connector != SHAREPOINT_API:
        return False
    if not operation:  # a legacy ApiConnection action: PATCH on an item
        return isinstance(row.method, str) and row.method.upper() == "PATCH"
    return operation.startswith(_SHAREPOINT_UPDATES)


def _same_target(trigger_target: Any, action_target: Any, kind: str) -> bool | None:
    if not isinstance(trigger_target, str) or not isinstance(action_target, str):
        return None
    if kind == "dataverse":
        return action_target.strip().lower() in entity_set_names(trigger_target)
    return "|" in action_target and _list_key(action_target) == _list_key(trigger_target)


def _fires(trigger: Any, row: Any, kind: str) -> tuple[bool, list[str] | None]:
    """Whether the update passes the trigger's filtering attributes, and the watched
    columns it writes (None when the trigger watches every column or they are unknown)."""
    filtering = set(_columns(trigger.filtering_attributes)) if kind == "dataverse" else set()
    if not filtering:
        return True, None
    written = _columns(row.written_columns)
    if written or str(row.operation).lower() in _DATAVERSE_ROW_UPDATES:
        watched = [c for c in written if c in filtering]
        return bool(watched), watched
    return True, None  # a file or image upload: its column is not known, it may fire


def self_updates(triggers: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """The update actions (R-SELF-TRIGGER) of flows whose trigger fires on updates of a
    Dataverse table or a SharePoint list: whether each updates the trigger's table or list,
    and whether it passes the trigger's filtering attributes. Guards (trigger conditions,
    filter rows) are not applied here: the check reports them."""
    kinds = {
        (str(t.environment_id), str(t.flow_id)): (kind, t)
        for t in triggers.itertuples(index=False)
        if (kind := update_trigger_kind(t)) is not None
    }
    found: list[dict[str, Any]] = []
    if kinds:
        keys = pd.DataFrame(list(kinds), columns=_KEY)
        acts = actions.merge(keys, on=_KEY, how="inner")
        acts = acts[acts["connector"].notna()]
        for row in acts.itertuples(index=False):
            kind, trigger = kinds[(str(row.environment_id), str(row.flow_id))]
            if not _is_update(row, kind):
                continue
            same = _same_target(trigger.target, row.target, kind)
            if same is False:
                continue
            fires, watched = _fires(trigger, row, kind)
            found.append(
                {
                    "environment_id": row.environment_id,
                    "flow_id": row.flow_id,
                    "action_name": row.action_name,
                    "display_name": row.display_name,
                    "operation": row.operation,
                    "target": row.target,
                    "written_columns": row.written_columns,
                    "same_target": same,
                    "watched_columns": ",".join(watched) if watched else None,
                    "fires_trigger": fires,
                }
            )
    return pd.DataFrame(found, columns=list(SELF_UPDATE_DTYPES)).astype(SELF_UPDATE_DTYPES)


__all__ = [
    "GATE_DTYPES",
    "SELF_UPDATE_DTYPES",
    "SHAREPOINT_API",
    "as_trigger_condition",
    "entity_set_names",
    "gates",
    "self_updates",
    "update_trigger_kind",
]
