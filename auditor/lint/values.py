"""Column values as solution files write them: GUIDs, integers, flags, and the workflow
category and type codes. Apart because flows, steps and classic workflows all read them.
"""

from __future__ import annotations

import re

# workflow.category: 0 Workflow (classic), 5 Modern Flow. workflow.type 1 is a definition
# (2 activation, 3 template: neither runs on its own).
CLASSIC, MODERN = 0, 5
DEFINITION = 1

_GUID = re.compile(r"\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?", re.I)


def guid(value: str | None) -> str | None:
    """A GUID lower-case without braces; None when `value` is not one."""
    match = _GUID.fullmatch(value.strip()) if value else None
    return match.group(1).lower() if match else None


def integer(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value else None
    except ValueError:
        return None


def flag(value: str | None) -> bool | None:
    return _FLAGS.get(value.strip().lower()) if value else None


_FLAGS = {"1": True, "true": True, "0": False, "false": False}
