"""What every API handler shares: the context it reads, replies, API versions and paging."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pandas as pd
from starlette.requests import Request

from auditor.sim import odata
from auditor.sim.model import SimEnvironment, SimOptions, SimTenant

# scenario.render_actions(tenant, env, flow row, run row): rows map column names to values.
RenderActions = Callable[[SimTenant, SimEnvironment, Any, Any], Mapping[str, Any]]
Headers = list[tuple[str, str]]


@dataclass
class Reply:
    """A complete HTTP answer before it is sent (so faults can cut or corrupt it)."""

    status: int
    body: bytes
    headers: Headers = field(default_factory=list)


@dataclass
class Limits:
    """Page sizes of the APIs that page by `nextLink` (tests lower them to see paging)."""

    flow_page: int = 50
    run_page: int = 50
    environment_page: int = 50


@dataclass
class Context:
    """What the handlers read: the tenant, where and how it is served, the page sizes.

    One object shared by the app and every handler, so a change to the options or the
    renderer (tests make some) reaches them all.
    """

    tenant: SimTenant
    base_url: str
    options: SimOptions
    limits: Limits = field(default_factory=Limits)
    render_actions: RenderActions | None = None


def json_bytes(value: Any) -> bytes:
    """Compact and UTF-8 like the real services; sort-free so field order stays documented."""
    try:
        return orjson.dumps(value)  # a twentieth of json.dumps's time for a page
    except TypeError:
        # Nested deeper than orjson writes (254 levels): the hostile tenant's scopes.
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def http_date(moment: datetime) -> str:
    """An HTTP date (RFC 9110) of a moment of the simulated clock."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return email.utils.format_datetime(aware.astimezone(UTC), usegmt=True)


def json_reply(status: int, value: Any, headers: Headers | None = None) -> Reply:
    """A JSON answer."""
    return Reply(
        status,
        json_bytes(value),
        [("content-type", "application/json; charset=utf-8"), *(headers or [])],
    )


def error_reply(status: int, code: str, message: str, headers: Headers | None = None) -> Reply:
    """An `{"error": {"code", "message"}}` answer, the shape all these APIs share."""
    return json_reply(status, {"error": {"code": code, "message": message}}, headers)


def api_version(params: Mapping[str, str], accepted: tuple[str, ...]) -> Reply | None:
    """The refusal of a missing or unknown `api-version`, if any."""
    # ARM-style errors, as the Power Platform and flow APIs answer them.
    version = params.get("api-version")
    if not version:
        return error_reply(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if version not in accepted:
        return error_reply(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are "
            f"'{','.join(accepted)}'.",
        )
    return None


def page_offset(params: Mapping[str, str]) -> int:
    """Where a `nextLink` page starts (0 for the first page)."""
    if "$skiptoken" not in params:
        return 0
    return odata.decode_skiptoken(params["$skiptoken"])[1]


def next_link(context: Context, request: Request, offset: int) -> str:
    """The `nextLink` of the page starting at `offset`."""
    token = odata.encode_skiptoken(0, offset, odata.utc(context.tenant.now))
    return odata.next_link(f"{context.base_url}{request.url.path}", request.url.query, token)


def stamp(value: datetime) -> str:
    """A time as the admin API writes it: whole seconds, UTC."""
    return odata.utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp7(value: Any) -> str | None:
    """A time as the flow API writes it: seven fractional digits, UTC (None for null), as in
    `"endTime": "2018-08-10T20:16:32.5779999Z"` of the Logic Apps run the flow API returns
    (https://learn.microsoft.com/rest/api/logic/workflowruns/get, sample response)."""
    if value is None or (not isinstance(value, datetime) and pd.isna(value)):
        return None
    moment = pd.Timestamp(value)
    if pd.isna(moment):
        return None
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    # As `odata.format_timestamps(..., 7)` writes a column: microseconds, then a seventh 0.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}0Z"
