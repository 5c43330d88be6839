"""What the definition rules need to know about one flow (`FlowFacts`): its size and depth,
its effects, its trigger (filtered, gated, updating its own table), responses, catch paths,
retry policies and repeated action sequences.

Apart from the definition walking it builds on: these are the rule-specific readings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from auditor.sim.truth.definitions import (
    CONNECTOR_TYPES,
    catch_paths,
    containers,
    deep_signature,
    external,
    is_effect,
    reports,
    run_after_order,
    walk,
)
from auditor.sim.truth.thresholds import THRESHOLDS

_EVENT_TYPES = {
    *("openapiconnection", "openapiconnectionwebhook", "openapiconnectionnotification"),
    *("apiconnection", "apiconnectionwebhook", "apiconnectionnotification", "http"),
    "httpwebhook",
}
_TRIGGER_READ = re.compile(r"\btrigger(?:Body|Outputs)?\(\s*\)", re.IGNORECASE)
_OTHER_READ = re.compile(
    r"\b(?:body|outputs|actions|items|result|iterationIndexes|variables)\(", re.IGNORECASE
)
_DV_API = "shared_commondataserviceforapps"
_SP_API = "shared_sharepointonline"


def _trigger(definition: Mapping[str, Any]) -> Mapping[str, Any]:
    triggers = definition.get("triggers") or {}
    return next(iter(triggers.values()), {}) if isinstance(triggers, Mapping) else {}


def _is_dataverse_trigger(trigger: Mapping[str, Any]) -> bool:
    host = (trigger.get("inputs") or {}).get("host") or {}
    return str(host.get("operationId", "")) == "SubscribeWebhookTrigger" or str(
        host.get("apiId", "")
    ).endswith("shared_commondataserviceforapps")


def _type(action: Mapping[str, Any]) -> str:
    return str(action.get("type", "")).lower()


def _host(action: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]]:
    """(connector API name, operationId, parameters) of a connector action or trigger."""
    inputs = action.get("inputs") if isinstance(action.get("inputs"), Mapping) else {}
    assert isinstance(inputs, Mapping)
    host = inputs.get("host") or {}
    params = inputs.get("parameters") or {}
    return (
        str(host.get("apiId", "")).rsplit("/", 1)[-1],
        str(host.get("operationId", "")),
        params if isinstance(params, Mapping) else {},
    )


def _gated(trigger: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    """The flow's event trigger is filtered by a gate (the package docstring)."""
    if _type(trigger) not in _EVENT_TYPES:
        return False
    order = [n for n in run_after_order(root) if isinstance(root[n], Mapping)]
    rest = [n for n in order if _type(root[n]) not in ("initializevariable", "compose")]
    if not rest or _type(root[rest[0]]) != "if" or "expression" not in root[rest[0]]:
        return False
    gate = root[rest[0]]
    text = json.dumps(gate["expression"])
    if not _TRIGGER_READ.search(text) or _OTHER_READ.search(text):
        return False
    later = order[order.index(rest[0]) + 1 :]
    effect_after = any(is_effect(a) for n in later for _, a, _ in walk({n: root[n]}))
    other = gate.get("else") if isinstance(gate.get("else"), Mapping) else {}
    for body in (gate.get("actions"), other.get("actions")):
        body = body if isinstance(body, Mapping) else {}
        if any(is_effect(a) for _, a, _ in walk(body)):
            continue
        ends = any(isinstance(a, Mapping) and _type(a) == "terminate" for a in body.values())
        if ends or not effect_after:
            return True
    return False


def _updates_own_trigger(trigger: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    """The flow updates the table or list whose updates trigger it, unguarded (the package
    docstring)."""
    api, operation, params = _host(trigger)
    if trigger.get("conditions") or params.get("subscriptionRequest/filterexpression"):
        return False
    actions = [a for _, a, _ in walk(root)]
    if api == _DV_API and operation == "SubscribeWebhookTrigger":
        if params.get("subscriptionRequest/message") not in (3, 4, 6, 7):
            return False
        entity = str(params.get("subscriptionRequest/entityname", "")).lower()
        sets = {entity, entity + "s", entity + "es"}
        if entity.endswith("y"):
            sets.add(entity[:-1] + "ies")
        raw = str(params.get("subscriptionRequest/filteringattributes") or "")
        watched = {c.strip().lower() for c in raw.split(",") if c.strip()}
        for action in actions:
            a_api, a_op, a_params = _host(action)
            op = a_op.lower()
            if not (a_api == _DV_API and op.startswith("update")) or "withorganization" in op:
                continue
            if str(a_params.get("entityName", "")).lower() not in sets:
                continue
            written = {
                str(k)[5:].lower().removesuffix("@odata.bind")
                for k in a_params
                if str(k).startswith("item/")
            }
            if not watched or written & watched:
                return True
            if not written and op not in ("updaterecord", "updateonlyrecord"):
                return True
        return False
    if api == _SP_API and operation in ("GetOnUpdatedItems", "GetOnUpdatedFileItems"):
        key = (str(params.get("dataset", "")).rstrip("/").lower(), str(params.get("table", "")))
        for action in actions:
            a_api, a_op, a_params = _host(action)
            if a_api != _SP_API or not a_op.lower().startswith(
                ("patchitem", "patchfileitem", "updatefile")
            ):
                continue
            a_key = (
                str(a_params.get("dataset", "")).rstrip("/").lower(),
                str(a_params.get("table", "")),
            )
            if a_key == key:
                return True
    return False


class FlowFacts:
    """What the definition rules need to know about one flow."""

    def __init__(self, definition: Mapping[str, Any]) -> None:
        root = definition.get("actions") or {}
        self.actions = list(walk(root))
        self.count = len(self.actions)
        self.depth = max((dep for _, _, dep in self.actions), default=0)
        self.effects = {n for n, a, _ in self.actions if is_effect(a)}
        trig = _trigger(definition)
        self.trigger_type = str(trig.get("type", ""))
        self.trigger_kind = str(trig.get("kind", ""))
        self.conditions = bool(trig.get("conditions"))
        self.gated = _gated(trig, root)
        self.updates_own_trigger = _updates_own_trigger(trig, root)
        self.dataverse = _is_dataverse_trigger(trig)
        params = (trig.get("inputs") or {}).get("parameters") or {}
        self.dv_message = params.get("subscriptionRequest/message")
        self.dv_filtered = bool(params.get("subscriptionRequest/filteringattributes")) or bool(
            params.get("subscriptionRequest/filterexpression")
        )
        self.child_refs = {
            str(((a.get("inputs") or {}).get("host") or {}).get("workflowReferenceName"))
            for _, a, _ in self.actions
            if str(a.get("type", "")).lower() == "workflow"
        }
        self.has_response = any(
            str(a.get("type", "")).lower() == "response" for _, a, _ in self.actions
        )
        paths = catch_paths(root)
        self.has_catch = bool(paths)
        reporting = [any(reports(a) for a in path) for path in paths]
        self.swallowing = any(not r for r in reporting)
        self.no_retry = any(
            str(a.get("type", "")).lower() in CONNECTOR_TYPES | {"http", "workflow"}
            and str(((a.get("inputs") or {}).get("retryPolicy") or {}).get("type", "")).lower()
            == "none"
            for _, a, _ in self.actions
        )
        self.windows: set[tuple[str, ...]] = set()
        for container in containers(root):
            kept = [
                container[n]
                for n in run_after_order(container)
                if isinstance(container[n], Mapping)
            ]
            sigs = [deep_signature(a) for a in kept]
            k = int(THRESHOLDS["repeated_sequence_length"])
            for i in range(len(sigs) - k + 1):
                if any(external(a) for a in kept[i : i + k]):
                    self.windows.add(tuple(sigs[i : i + k]))
