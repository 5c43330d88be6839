"""Values read from a flow definition, and the definition itself out of its envelope.

Tenant data is untrusted: every value the parsers read from a definition goes through one of
these coercions, which return None (or an empty object) for what is not the expected shape
and never raise. The envelope (`workflow.clientdata`, a solution file, a legacy export
package, the flow API) is unwrapped by `load_definition`; connector names and targets are
read the same way for triggers and actions, so they live here beside the coercions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

_MAX_INT = 2**53  # beyond this an "integer" in a definition is noise, and Int64 may overflow
_MAX_MESSAGE = 200
_INT_TEXT = re.compile(r"[+-]?\d{1,15}")
# "@parameters('$connections')['<key>']['connectionId']", or in flows started for a selected
# item "@json(decodeBase64(triggerOutputs().headers['X-MS-APIM-Tokens']))['$connections']
# ['<key>']['connectionId']": the key is the one after '$connections' when there is one.
_CONNECTION_KEY = re.compile(r"(?:\['\$connections'\]|\$connections'\))\['([^']*)'\]|\['([^']*)'\]")
_COPY_SUFFIX = re.compile(r"_\d+$")
# Legacy paths quote the site URL in an expression: /datasets/@{encodeURIComponent(...)}/...
# (inferred from legacy package exports; the legacy ApiConnection shape is not documented).
_LEGACY_TARGET = re.compile(r"/datasets/(@\{.*?\}|[^/]+)/tables/(@\{.*?\}|[^/]+)", re.IGNORECASE)


# Small coercions: every value read from a definition goes through one of these. -----------


def as_text(value: Any) -> str | None:
    """A string from the definition, or None; lone surrogates replaced (Arrow rejects them)."""
    if not isinstance(value, str):
        return None
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return str(value.encode("utf-8", "replace").decode("utf-8"))
    return str(value)


def nonempty(value: Any) -> str | None:
    text = as_text(value)
    if text is None or not text.strip():
        return None
    return text.strip()


def as_int(value: Any) -> int | None:
    """An integer, also from "3" or 3.0; None for booleans, junk and absurd magnitudes."""
    number: int | None = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or abs(number) > _MAX_INT:
        return None
    return number


def as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def shorten(text: str, limit: int = _MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_text(value: Any) -> str:
    """Compact JSON of a value from the definition, or a placeholder if it cannot be written."""
    try:
        return json.dumps(value, ensure_ascii=True)
    except (ValueError, TypeError, RecursionError):
        return '"<unserialisable>"'


def kind_of(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    names |= {int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), f"a {type(value).__name__}")


def lower_text(value: Any) -> str:
    return (as_text(value) or "").lower()


# The envelope, and the connector and target a trigger or action names. ---------------------


def load_definition(text: Any) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """(definition, connectionReferences, error) from any of the shapes a flow comes in."""
    if text is None or text is pd.NA or (isinstance(text, float) and text != text):
        return {}, {}, "clientdata is empty"
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return {}, {}, "clientdata is not UTF-8 text"
    if not isinstance(text, str):
        return {}, {}, f"clientdata is not text ({type(text).__name__})"
    text = text.lstrip("\ufeff")  # solution files may start with a byte-order mark
    if not text.strip():
        return {}, {}, "clientdata is empty"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"at line {exc.lineno} column {exc.colno}"
        return {}, {}, f"clientdata is not valid JSON: {exc.msg} {where}"
    except RecursionError:
        # A definition is at most 8 action levels deep on the platform; this is hostile.
        return {}, {}, "clientdata is nested too deeply to parse"
    except ValueError as exc:  # e.g. an integer literal longer than Python converts
        return {}, {}, shorten(f"clientdata is not valid JSON: {exc}")
    if not isinstance(document, dict):
        return {}, {}, f"clientdata is not a JSON object (it is {kind_of(document)})"
    refs: dict[str, Any] = {}
    if "properties" in document:
        properties = document["properties"]
        if not isinstance(properties, dict):
            return {}, {}, "`properties` is not an object"
        definition = properties.get("definition")
        refs = as_object(properties.get("connectionReferences"))
    elif "definition" in document:
        definition = document["definition"]
    elif any(key in document for key in ("triggers", "actions", "$schema")):
        definition = document  # a bare definition
    else:
        return {}, {}, "no `definition` object"
    if definition is None:
        return {}, {}, "no `definition` object"
    if not isinstance(definition, dict):
        return {}, {}, f"`definition` is not an object (it is {kind_of(definition)})"
    return definition, refs, None


def connector_of(host: Mapping[str, Any], refs: Mapping[str, Any]) -> str | None:
    """The connector's API name (shared_...) from apiId, a connection reference or its key."""
    api_id = as_text(host.get("apiId"))
    if api_id and api_id.rstrip("/"):
        return api_id.rstrip("/").rsplit("/", 1)[-1]
    key = as_text(host.get("connectionName"))
    if key is None:
        # Legacy flows: host.connection.name = "@parameters('$connections')['<key>']['...']"
        connection = as_object(host.get("connection"))
        ref = as_text(connection.get("name")) or as_text(connection.get("referenceName"))
        if ref:
            matches = list(_CONNECTION_KEY.finditer(ref))
            after = [m.group(1) for m in matches if m.group(1) is not None]
            key = after[0] if after else matches[0].group(2) if matches else ref
    if key:
        reference = as_object(refs.get(key))
        api_name = as_text(as_object(reference.get("api")).get("name"))
        if api_name:
            return api_name
        ref_id = as_text(reference.get("id"))
        if ref_id and ref_id.rstrip("/"):
            return ref_id.rstrip("/").rsplit("/", 1)[-1]
        # Solution flows key a second connection to the same API as "<api>_1".
        return _COPY_SUFFIX.sub("", key) if key.startswith("shared_") else key
    runtime_url = as_text(as_object(host.get("api")).get("runtimeUrl"))
    if runtime_url and runtime_url.rstrip("/"):
        return "shared_" + runtime_url.rstrip("/").rsplit("/", 1)[-1]
    return None


def target_of(connector: str | None, params: Mapping[str, Any], path: str | None) -> str | None:
    """The table (Dataverse) or "site|list" (SharePoint) a trigger or action names."""
    entity = nonempty(params.get("entityName")) or nonempty(
        params.get("subscriptionRequest/entityname")
    )
    if entity is not None:
        return entity.lower()
    dataset, table = nonempty(params.get("dataset")), nonempty(params.get("table"))
    if dataset is not None and table is not None:
        return f"{dataset}|{table}".lower()
    if connector and path:  # legacy ApiConnection: /datasets/<site>/tables/<list>/...
        match = _LEGACY_TARGET.search(path)
        if match:
            return f"{match.group(1)}|{match.group(2)}".lower()
    return None


def display_name(key: Any) -> str | None:
    """The name the designer shows for a trigger or action: its key, underscores as spaces.

    Inferred: the documentation names cards by their titles
    (https://learn.microsoft.com/power-automate/guidance/coding-guidelines/use-consistent-naming-conventions)
    but does not state how a title becomes a key; every exported flow of tests/corpus saves
    it with spaces replaced by underscores.
    """
    text = as_text(key)
    return text.replace("_", " ") if text is not None else None
