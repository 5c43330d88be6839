"""What a valid setting value is: each parser returns the value or raises ValueError saying
what is expected, and `shown` quotes a refused value safely.

Apart from `settings` so that the checks of the configuration file and of a mutelist use the
same notion of plain text (no control or invisible character) as the settings themselves.
"""

from __future__ import annotations

import math
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from auditor.terminal import clean

# The longest text value: a path (PATH_MAX is 4096 on Linux) or a URL.
MAX_TEXT = 4096
# Larger than any count, size or duration a setting or threshold takes (and exact as a float).
MAX_NUMBER = 10**15
# What `auditor.terminal.clean` removes: control, bidirectional and invisible characters.
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)


def has_control(text: str) -> bool:
    """Whether text holds a character a terminal would act on or hide (see auditor.terminal)."""
    return _CONTROL.search(text) is not None


def shown(value: Any, limit: int = 80) -> str:
    """A value quoted in a message: cleaned, cut to `limit` characters, containers by type."""
    if isinstance(value, dict | list | tuple):
        return f"a {type(value).__name__} of {len(value)}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
        return "a number with too many digits"
    return clean(repr(value), limit)


# --- value parsers: each returns the parsed value or raises ValueError(expected text) -------


def parse_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT:,} characters")
    if has_control(value):
        raise ValueError("must not hold control or invisible characters")
    return value.strip()


def url_parts(text: str) -> tuple[str, str]:
    """Scheme and host of a URL; refuses user info without ever quoting it."""
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueError(f"is not a URL ({exc})") from None
    if "@" in parts.netloc:
        raise ValueError(
            "must not hold a user name or password (user@ before the host); credentials "
            "come from the environment, such as AZURE_CLIENT_SECRET"
        )
    return parts.scheme, parts.netloc


def parse_https_url(value: Any) -> str:
    text = parse_text(value)
    scheme, netloc = url_parts(text)
    if scheme != "https" or not netloc:
        raise ValueError(f"must be an https:// URL, got {shown(text)}")
    return text.rstrip("/")


def parse_scope(value: Any) -> str:
    text = parse_text(value)
    url_parts(text)
    if not text.startswith("https://"):
        raise ValueError(f"must be an OAuth scope such as https://host/.default, got {shown(text)}")
    return text


def choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = parse_text(value)
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}; got {shown(text)}")
        return text

    return parse


def int_range(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        expected = f"must be a whole number from {low} to {high}"
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{expected}, got {shown(value)}")
        try:
            number = int(value)
        except (TypeError, ValueError, OverflowError):  # "x", nan, inf, 5,000 digits
            raise ValueError(f"{expected}, got {shown(value)}") from None
        if isinstance(value, float) and value != number:
            raise ValueError(f"{expected}, got {shown(value)}")
        if not low <= number <= high:
            raise ValueError(f"{expected}, got {shown(number)}")
        return number

    return parse


def float_range(low: float, high: float, unit: str) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        expected = f"must be a finite number of {unit} from {low:g} to {high:g}"
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{expected}, got {shown(value)}")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):  # "x", an int too large for a float
            raise ValueError(f"{expected}, got {shown(value)}") from None
        if not math.isfinite(number) or not low <= number <= high:  # inf, nan, 0, 1e9
            raise ValueError(f"{expected}, got {shown(number)}")
        return number

    return parse


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {shown(value)}")


def parse_path(value: Any) -> Path:
    return Path(value if isinstance(value, Path) else parse_text(value)).expanduser()


def parse_existing_file(value: Any) -> Path:
    path = parse_path(value)
    try:
        mode = path.stat().st_mode
    except OSError:  # missing, a name too long, a loop of links
        raise ValueError(f"must name an existing file; {shown(str(path))} does not exist") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"must name a regular file; {shown(str(path))} is not one")
    return path
