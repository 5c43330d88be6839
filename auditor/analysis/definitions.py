"""Cloud-flow definitions parsed into trigger facts and an action tree.

A definition is a Logic Apps Workflow Definition Language document, found in
`workflow.clientdata`, in a solution file, in a legacy export package or in the flow API
(https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-definition-language):
https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-definition-language
https://learn.microsoft.com/power-automate/manage-flows-with-code

The checks need facts, not documents: which trigger starts the flow and how it is filtered,
which actions can change something (the unnecessary-run analysis, docs/how-a-scan-runs.md), how
failures are handled, and which action sequences repeat across flows. Tenant data is
untrusted, so nothing here raises on a definition: what cannot be parsed becomes
`ParsedFlow.error`, which the checks report as an `error` finding for that one flow.

This module is the entry point; the parts are `definition_values` (coercions, unwrapping),
`definition_triggers` (the trigger row), `definition_actions` and `definition_tree` (the
action rows), `definition_effects` (which actions change something) and `block_signatures`
(repeated blocks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from auditor.analysis.common import typed_rows
from auditor.analysis.definition_actions import ACTION_DTYPES
from auditor.analysis.definition_tree import action_rows
from auditor.analysis.definition_triggers import TRIGGER_DTYPES, trigger_row
from auditor.analysis.definition_values import kind_of, load_definition, shorten

ERROR_DTYPES: dict[str, str] = {"environment_id": "str", "flow_id": "str", "error": "str"}
ERROR_COLUMNS: tuple[str, ...] = tuple(ERROR_DTYPES)


@dataclass(frozen=True)
class ParsedFlow:
    """One flow's trigger row and action rows, or why its definition could not be read."""

    flow_id: str
    environment_id: str
    trigger: dict[str, Any] | None
    actions: list[dict[str, Any]]
    error: str | None
    notes: tuple[str, ...] = ()


def parse_definition(text: str | None, *, flow_id: str, environment_id: str) -> ParsedFlow:
    """Trigger and action rows of one flow; never raises, whatever the text holds."""
    try:
        return _parse(text, flow_id, environment_id)
    except Exception as exc:
        # Every shape we know of is handled in _parse; a definition that still trips a bug must
        # cost that flow's facts (reported as its error finding), not the whole analysis.
        detail = shorten(f"{type(exc).__name__}: {exc}")
        return ParsedFlow(flow_id, environment_id, None, [], f"definition not analysed: {detail}")


def _parse(text: Any, flow_id: str, environment_id: str) -> ParsedFlow:
    definition, refs, error = load_definition(text)
    if error is None:
        triggers = definition.get("triggers")
        actions = definition.get("actions")
        if triggers is not None and not isinstance(triggers, dict):
            error = f"`triggers` is not an object (it is {kind_of(triggers)})"
        elif actions is not None and not isinstance(actions, dict):
            error = f"`actions` is not an object (it is {kind_of(actions)})"
    if error is not None:
        return ParsedFlow(flow_id, environment_id, None, [], error)
    notes: list[str] = []
    if not triggers:
        notes.append("the definition has no trigger")
    elif len(triggers) > 1:
        notes.append(f"the definition has {len(triggers)} triggers; the first is used")
    trigger = trigger_row(triggers or {}, refs, flow_id, environment_id)
    rows = action_rows(actions or {}, refs, (environment_id, flow_id))
    notes.extend(f"{row['action_name']}: {row['note']}" for row in rows if row["note"] is not None)
    return ParsedFlow(flow_id, environment_id, trigger, rows, None, tuple(notes))


def definition_frames(
    flows: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(triggers, actions, errors) of every flow; a broken definition is an error row."""
    missing = [c for c in ("environment_id", "flow_id", "definition_text") if c not in flows]
    if missing:
        raise ValueError(f"flows frame lacks column(s): {', '.join(missing)}")
    parsed = [
        parse_definition(text, flow_id=flow_id, environment_id=environment_id)
        for environment_id, flow_id, text in zip(
            flows["environment_id"], flows["flow_id"], flows["definition_text"], strict=True
        )
    ]
    triggers = typed_rows((p.trigger for p in parsed if p.trigger is not None), TRIGGER_DTYPES)
    actions = typed_rows((row for p in parsed for row in p.actions), ACTION_DTYPES)
    errors = typed_rows(
        (
            {"environment_id": p.environment_id, "flow_id": p.flow_id, "error": p.error}
            for p in parsed
            if p.error is not None
        ),
        ERROR_DTYPES,
    )
    return triggers, actions, errors
