"""Paging: the `Prefer` header (`odata.maxpagesize`, `odata.include-annotations`), the
opaque `$skiptoken` and the `@odata.nextLink` that carries it, and the count annotations.

Apart because the flow API's routes page the same way without a Dataverse query.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from auditor.sim.odata.errors import ODataError

MAX_PAGE_SIZE = 5000  # default and maximum odata.maxpagesize
MAX_COUNT = 5000  # $count=true is capped at 5,000 (count-rows.md)
TOTAL_COUNT = "Microsoft.Dynamics.CRM.totalrecordcount"
TOTAL_COUNT_EXCEEDED = "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"


_PREFERENCE = re.compile(r'\s*([\w.-]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,;]*))?\s*(?:,|$)')


@dataclass(frozen=True)
class Preferences:
    """The `Prefer` header preferences the simulator honours."""

    maxpagesize: int | None = None
    annotations: tuple[str, ...] = ()

    def wants(self, annotation: str) -> bool:
        """Whether `include-annotations` asks for `annotation` (`*` and `Ns.*` match)."""
        for pattern in self.annotations:
            if pattern == "*" or pattern == annotation:
                return True
            if pattern.endswith(".*") and annotation.startswith(pattern[:-1]):
                return True
        return False

    def applied(self) -> str:
        """The `Preference-Applied` header value ("" when nothing applies)."""
        parts = []
        if self.maxpagesize is not None:
            parts.append(f"odata.maxpagesize={self.maxpagesize}")
        if self.annotations:
            parts.append(f'odata.include-annotations="{",".join(self.annotations)}"')
        return ",".join(parts)


def parse_prefer(headers: Sequence[str]) -> Preferences:
    """Read `odata.maxpagesize` (capped at 5,000) and `odata.include-annotations`."""
    maxpagesize: int | None = None
    annotations: tuple[str, ...] = ()
    for header in headers:
        for match in _PREFERENCE.finditer(header):
            name, value = match.group(1), (match.group(2) or "").strip()
            if not name:
                continue
            if value.startswith('"') and value.endswith('"'):
                value = value[1:-1]
            if name.lower() == "odata.maxpagesize" and value.isdigit() and int(value) > 0:
                maxpagesize = min(int(value), MAX_PAGE_SIZE)
            elif name.lower() == "odata.include-annotations":
                annotations = tuple(a.strip() for a in value.split(",") if a.strip())
    return Preferences(maxpagesize, annotations)


def encode_skiptoken(page: int, offset: int, snapshot: datetime) -> str:
    """The `$skiptoken` value (unencoded) in the shape of Dataverse's paging cookie.

    Dataverse encodes `<cookie pagenumber="2" pagingcookie="..." istracking="False" />`
    (page-results.md). Here the cookie carries the offset into the cached result and the
    clock of the first page, so a clock advance during paging cannot duplicate rows.
    """
    payload = json.dumps({"o": offset, "n": snapshot.isoformat()}, separators=(",", ":"))
    cookie = base64.urlsafe_b64encode(payload.encode()).decode("ascii")
    return f'<cookie pagenumber="{page}" pagingcookie="{cookie}" istracking="False" />'


def decode_skiptoken(token: str) -> tuple[int, int, datetime]:
    """(page number, offset, snapshot clock) from a `$skiptoken`; ODataError when forged."""
    match = re.fullmatch(
        r'<cookie pagenumber="(\d+)" pagingcookie="([\w=-]+)" istracking="False" />', token
    )
    if match is None:
        raise ODataError("The $skiptoken value is not valid.")
    try:
        payload = json.loads(base64.urlsafe_b64decode(match.group(2).encode()))
        offset = int(payload["o"])
        snapshot = datetime.fromisoformat(payload["n"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ODataError("The $skiptoken value is not valid.") from None
    if offset < 0 or snapshot.tzinfo is None:
        raise ODataError("The $skiptoken value is not valid.")
    return int(match.group(1)), offset, snapshot


def next_link(url_without_query: str, raw_query: str, skiptoken: str) -> str:
    """The absolute `@odata.nextLink`: the original options plus a new `$skiptoken`."""
    kept = [
        p
        for p in raw_query.split("&")
        if p and not p.lower().startswith(("$skiptoken=", "%24skiptoken="))
    ]
    kept.append("$skiptoken=" + quote(skiptoken, safe="="))
    return f"{url_without_query}?{'&'.join(kept)}"
