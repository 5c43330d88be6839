"""The error a query the Web API would refuse raises, and the shape of its body.

Apart because every step of a query (parsing, evaluation, paging) raises it and the Web API
routes catch it to answer the documented error body.
"""

from __future__ import annotations

from typing import Any

QUERY_ERROR_CODE = "0x80060888"


class ODataError(Exception):
    """A query the Web API would refuse: HTTP status plus the `error.code` / `message`."""

    def __init__(self, message: str, status: int = 400, code: str = QUERY_ERROR_CODE) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        """The documented error body: {"error": {"code": ..., "message": ...}}."""
        return {"error": {"code": self.code, "message": self.message}}


def logical_name(entity_set: str) -> str:
    """`pluginassemblies` -> `pluginassembly`, `workflows` -> `workflow`."""
    if entity_set.endswith("ies"):
        return entity_set[:-3] + "y"
    return entity_set[:-1] if entity_set.endswith("s") else entity_set


def no_property(entity_set: str, name: str) -> ODataError:
    """Dataverse's 400 for a property the entity set does not serve."""
    return ODataError(
        f"Could not find a property named '{name}' on type "
        f"'Microsoft.Dynamics.CRM.{logical_name(entity_set)}'."
    )
