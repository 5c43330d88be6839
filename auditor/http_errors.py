"""API error answers as typed errors: the (code, message) of an error body, in the Dataverse,
ARM or Entra shape, and the `HttpStatusError` that matches a status.

Apart from the transport because reading an error is not sending a request: the retry
transport reads the code of a 429 with it, and `get_json` raises with it for a failed GET.
"""

from __future__ import annotations

from typing import Any

import httpx

from auditor.access import Access
from auditor.errors import (
    BadRequest,
    HttpStatusError,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    Throttled,
    Unauthorized,
)


def has_request(exc: httpx.TransportError) -> bool:
    """Whether the error carries the request that failed."""
    try:
        exc.request  # noqa: B018 - raises RuntimeError when the error has no request
    except RuntimeError:
        return False
    return True


def safe_url(url: str) -> str:
    """The URL without its query string, which can be long and is not needed to act."""
    return url.split("?", 1)[0]


def api_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """The (code, message) of an API error body, in the Dataverse, ARM or Entra shape."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:300] or None
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        return (str(code) if code else None), (str(message) if message else None)
    if isinstance(error, str):  # Microsoft Entra token endpoint
        return error, str(body.get("error_description") or "") or None
    return None, None


def raise_for_status(response: httpx.Response, *, access: Access | None = None) -> None:
    """Turn an error status into the matching `HttpStatusError`; 2xx passes.

    A 401 or 403 says what the API needs for the kind of credential in use (`access`).
    """
    status = response.status_code
    if status < 400:
        return
    code, message = api_error(response)
    url = safe_url(str(response.url))
    detail = f": {message}" if message else ""
    text = f"GET {url} answered {status}{detail}"
    kwargs: dict[str, Any] = {
        "status": status,
        "url": url,
        "api_code": code,
        "api_message": message,
    }
    if status == 400:
        raise BadRequest(text, **kwargs)
    if status == 401:
        raise Unauthorized(text, hint=access.hint(401) if access else None, **kwargs)
    if status == 403:
        hint = access.hint(403) if access else None
        raise PermissionDenied(f"Permission denied: {text}", hint=hint, **kwargs)
    if status == 404:
        raise NotFound(text, **kwargs)
    if status == 429:
        raise Throttled(text, **kwargs)
    if status >= 500 or status == 408:
        raise ServiceUnavailable(text, **kwargs)
    raise HttpStatusError(text, **kwargs)
