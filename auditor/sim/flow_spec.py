"""What a simulated cloud flow looks like: the spec the scenario picks per flow (by role
and profile) and hands to the flow builder, and the flow type each trigger kind gives.
"""

from __future__ import annotations

from dataclasses import dataclass

TRIGGER_TYPE = {
    "dataverse": "Automated",
    "sharepoint": "Automated",
    "outlook": "Automated",
    "recurrence": "Scheduled",
    "http": "Manual",
    "powerapp": "Manual",
    "button": "Manual",
}


@dataclass(frozen=True)
class FlowSpec:
    """What a flow looks like; the scenario picks one per flow, by role and profile."""

    role: str
    trigger: str  # dataverse | sharepoint | outlook | recurrence | http | powerapp | button
    dv_entity: str = "account"
    dv_message: int = 1
    dv_filtering: str | None = None
    dv_filterexpr: str | None = None
    conditions: tuple[str, ...] = ()
    error_handling: str = "trycatch"  # trycatch | none | swallow (catch that reports success)
    response: str = "none"  # full | success_only | none
    noop: str | None = None  # "if": If with an empty else; "terminate": early Terminate
    http_retry_none: bool = False
    throttle: bool = False
    custom_retry: bool = False
    children: tuple[str, ...] = ()  # workflowids of child flows to call
    repeated_block: bool = False
    monolith: bool = False
    approval: bool = False
    foreach: int = 0  # repetitions of an Apply to each around the first effect; 0: none
    sequential: bool = False
    body: int = 1  # reads and data operations before the effects
    effects: int = 1
    upper: bool = False  # write some runAfter statuses in upper case, as real exports do
    recurrence_minutes: int = 60
    max_container: int = 99  # cap on actions per container (keeps clean flows varied)
    failure_message: str = "Processing failed; the Catch scope reported the error."
