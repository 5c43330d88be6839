"""The status vocabularies of each source, declared once, each with the Microsoft page it is from.

Run history comes from two sources that do not share their words: the flow API uses the
Logic Apps `WorkflowStatus` (Succeeded, Failed, ...), Dataverse `flowruns` its own (Success,
Failed, Cancelled). Reading one source with the other's vocabulary turns every successful
Dataverse run into an "undocumented status", so each run is judged by the vocabulary of the
source it came from (`RUN_VOCABULARIES`, keyed by the `source` column of the run frames).
System jobs (asyncoperation) use numeric statecode / statuscode choices, declared here too so
the analyses that read them import one list instead of repeating the numbers.

Words are kept in lower case: statuses are compared case-insensitively, since exports and
third-party tools write "FAILED" as often as "Failed".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True)
class RunVocabulary:
    """The status words one source writes for a run (and, for the flow API, an action).

    `documented` are the words Microsoft's page lists; `aliases` are words accepted although
    no page lists them (each vocabulary says why). A status in neither is counted as missing
    or undocumented rather than read as a success. `final` is None when any status but an
    `unfinished` one ends a run (the flow API reports runs in progress); otherwise only a
    status in `final` does (a source that records runs once they have ended).
    """

    source: str  # the `source` value of the run frames (auditor.analysis.runs.RUN_DTYPES)
    page: str  # where the words are documented
    documented: frozenset[str]
    aliases: frozenset[str]
    unfinished: frozenset[str]  # the run has not ended: no outcome yet
    final: frozenset[str] | None
    succeeded: frozenset[str]
    failed: frozenset[str]
    cancelled: frozenset[str]

    @property
    def known(self) -> frozenset[str]:
        """Every word this source is known to write: documented words and aliases."""
        return self.documented | self.aliases

    def standing(self, status: str | None) -> str:
        """How a status stands in this vocabulary: documented, alias or unknown (also missing).

        For messages that must say whether a word is Microsoft's or only observed.
        """
        word = status.lower() if isinstance(status, str) else None
        if word in self.documented:
            return "documented"
        if word in self.aliases:
            return "alias"
        return "unknown"


def _lower(*words: str) -> frozenset[str]:
    return frozenset(w.lower() for w in words)


# (a) Flow API runs and actions: Logic Apps `WorkflowStatus`, the `status` of WorkflowRun and
# WorkflowRunAction. Azure/azure-rest-api-specs
# specification/logic/resource-manager/Microsoft.Logic/stable/2019-05-01/logic.json,
# definitions/WorkflowStatus; https://learn.microsoft.com/rest/api/logic/workflowruns/get
WORKFLOW_STATUS: Final[frozenset[str]] = _lower(
    *("NotSpecified", "Paused", "Running", "Waiting", "Succeeded", "Skipped", "Suspended"),
    *("Cancelled", "Failed", "Faulted", "TimedOut", "Aborted", "Ignored"),
)

FLOW_API: Final = RunVocabulary(
    source="flow-api",
    page="https://learn.microsoft.com/rest/api/logic/workflowruns/get",
    documented=WORKFLOW_STATUS,
    # "Canceled" (one l) is not a WorkflowStatus; it has always been read as a cancellation
    # here, so a run spelt that way keeps counting as cancelled, not as undocumented.
    aliases=_lower("Canceled"),
    # A run in progress. "Queued" is no WorkflowStatus (so it is also counted as unknown),
    # but a run reported as queued has clearly not ended.
    unfinished=_lower("Running", "Waiting", "Paused", "Suspended", "Queued"),
    final=None,
    succeeded=_lower("Succeeded"),
    failed=_lower("Failed"),
    cancelled=_lower("Cancelled", "Canceled"),
)

# (b) Dataverse `flowrun.status`: "End result of the flow execution (Success, Failed, or
# Cancelled)". https://learn.microsoft.com/power-automate/dataverse/cloud-flow-run-metadata
# (MicrosoftDocs/power-automate-docs articles/dataverse/cloud-flow-run-metadata.md). A run is
# recorded when it ends, so there is no in-progress word. Some third parties report seeing
# the flow API's "Succeeded" in this column: accepted as an observed alias, not documented.
DATAVERSE_FLOWRUN: Final = RunVocabulary(
    source="dataverse",
    page="https://learn.microsoft.com/power-automate/dataverse/cloud-flow-run-metadata",
    documented=_lower("Success", "Failed", "Cancelled"),
    aliases=_lower("Succeeded"),  # observed, not documented
    unfinished=frozenset(),
    final=_lower("Success", "Failed", "Cancelled", "Succeeded"),
    succeeded=_lower("Success", "Succeeded"),
    failed=_lower("Failed"),
    cancelled=_lower("Cancelled"),
)

# The vocabulary of each run source, by the `source` column of the run frames.
RUN_VOCABULARIES: Final[Mapping[str, RunVocabulary]] = MappingProxyType(
    {v.source: v for v in (FLOW_API, DATAVERSE_FLOWRUN)}
)

# (c) Dataverse system jobs (asyncoperation): the StateCode and StatusCode choices.
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation
# (MicrosoftDocs/powerapps-docs powerapps-docs/developer/data-platform/reference/entities/
# asyncoperation.md, "StateCode Choices/Options" and "StatusCode Choices/Options").

# statecode
READY: Final[int] = 0
SUSPENDED: Final[int] = 1
LOCKED: Final[int] = 2
COMPLETED: Final[int] = 3

ASYNC_STATES: Final[Mapping[int, str]] = MappingProxyType(
    {READY: "Ready", SUSPENDED: "Suspended", LOCKED: "Locked", COMPLETED: "Completed"}
)

# statuscode
WAITING_FOR_RESOURCES: Final[int] = 0
WAITING: Final[int] = 10
IN_PROGRESS: Final[int] = 20
PAUSING: Final[int] = 21
CANCELING: Final[int] = 22
SUCCEEDED: Final[int] = 30
FAILED: Final[int] = 31
CANCELED: Final[int] = 32

ASYNC_STATUSES: Final[Mapping[int, str]] = MappingProxyType(
    {
        WAITING_FOR_RESOURCES: "Waiting For Resources",
        WAITING: "Waiting",
        IN_PROGRESS: "In Progress",
        PAUSING: "Pausing",
        CANCELING: "Canceling",
        SUCCEEDED: "Succeeded",
        FAILED: "Failed",
        CANCELED: "Canceled",
    }
)

# The statecode each statuscode belongs to (the "State" column of the StatusCode choices).
ASYNC_STATUS_STATE: Final[Mapping[int, int]] = MappingProxyType(
    {
        WAITING_FOR_RESOURCES: READY,
        WAITING: SUSPENDED,
        IN_PROGRESS: LOCKED,
        PAUSING: LOCKED,
        CANCELING: LOCKED,
        SUCCEEDED: COMPLETED,
        FAILED: COMPLETED,
        CANCELED: COMPLETED,
    }
)

__all__ = [
    "ASYNC_STATES",
    "ASYNC_STATUSES",
    "ASYNC_STATUS_STATE",
    "CANCELED",
    "CANCELING",
    "COMPLETED",
    "DATAVERSE_FLOWRUN",
    "FAILED",
    "FLOW_API",
    "IN_PROGRESS",
    "LOCKED",
    "PAUSING",
    "READY",
    "RUN_VOCABULARIES",
    "SUCCEEDED",
    "SUSPENDED",
    "WAITING",
    "WAITING_FOR_RESOURCES",
    "WORKFLOW_STATUS",
    "RunVocabulary",
]
