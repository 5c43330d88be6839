"""Reading and checking `auditor.toml` before any value is used.

The file may come with a pull request, so it is checked whole, whatever settings exist: a
regular file of at most `MAX_FILE_BYTES`, UTF-8 TOML, no deeper than `MAX_DEPTH`, no key that
looks like a secret, no URL with a user name or password, no number that is not finite, no
text longer than `MAX_TEXT` or holding control characters. Every value shown in an error is
cut and cleaned, and a refused secret or password is never shown. Which keys are settings,
and what each may hold, `auditor.settings` checks afterwards. A mutelist is read with the
same `read_limited` and `decode_utf8`.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auditor.errors import ConfigError
from auditor.setting_values import MAX_NUMBER, MAX_TEXT, has_control, shown, url_parts
from auditor.terminal import clean

# No real configuration or mutelist is near 1 MB; a bigger one is refused unread.
MAX_FILE_BYTES = 1_000_000
# Tables in tables: the deepest real key is `checks.<id>.<name>` or `environments[i].<key>`.
MAX_DEPTH = 8
# The last word of a key that would hold a secret ("client_secret", "apiKey", "token").
SECRET_WORDS = frozenset(
    {
        "secret",
        "secrets",
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "token",
        "tokens",
        "key",
        "keys",
        "apikey",
        "credential",
        "credentials",
        "connectionstring",
        "sas",
    }
)
# Words that mark a key as a secret wherever they stand ("password_file", "secret_value").
_ALWAYS_SECRET = frozenset({"secret", "secrets", "password", "passwd", "passphrase"})
_ENVIRONMENT_HINT = (
    "Remove it from the file: secrets come from the environment only, AZURE_CLIENT_SECRET (or "
    "AZURE_CLIENT_CERTIFICATE_PATH / AZURE_CLIENT_CERTIFICATE_PASSWORD)."
)
_FILE_HINT = "auditor.toml is a small UTF-8 TOML file: see the configuration reference (README)."


def read_limited(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes.

    Raises ValueError saying why a path is refused (a folder, a FIFO, a device, too large) and
    OSError when it cannot be read. A FIFO is never opened for reading (that would wait for a
    writer forever): the path is checked first, and the open itself does not block, so a
    FIFO swapped in between is caught by the second check on the open file.
    """
    _check_regular(os.stat(path), limit)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_regular(os.fstat(fd), limit)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:  # it grew after the check, or /proc reports size 0
        raise ValueError(f"is larger than {limit:,} bytes")
    return b"".join(chunks)


def _check_regular(info: os.stat_result, limit: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ValueError("is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device or socket"
        raise ValueError(f"is {kind}, not a regular file")
    if info.st_size > limit:
        raise ValueError(f"is larger than {limit:,} bytes ({info.st_size:,})")


def decode_utf8(data: bytes) -> str:
    """The text of a UTF-8 file (a leading BOM dropped); ValueError names the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"is not UTF-8 text (invalid byte at offset {exc.start:,})") from None


def is_secret_key(key: str) -> bool:
    """Whether a key's name says it holds a secret: client_secret, password, apiKey, token..."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)
    words = re.findall(r"[a-z0-9]+", spaced.lower())
    if not words:
        return False
    return (
        words[-1] in SECRET_WORDS
        or "".join(words[-2:]) in SECRET_WORDS
        or bool(_ALWAYS_SECRET.intersection(words))
    )


def read_config(
    flag: Any, environ: Mapping[str, str], cwd: Path
) -> tuple[Path | None, dict[str, Any]]:
    """The file's path and its document, read and inspected: from `--config`, else
    `AUDITOR_CONFIG`, else `./auditor.toml` when it exists (else None and an empty document)."""
    if flag is not None:
        path, origin = Path(str(flag)).expanduser(), "--config"
    elif environ.get("AUDITOR_CONFIG"):
        path, origin = Path(environ["AUDITOR_CONFIG"]).expanduser(), "AUDITOR_CONFIG"
    else:
        path, origin = cwd / "auditor.toml", ""
        if not os.path.lexists(path):
            return None, {}
    if not path.is_absolute():
        path = cwd / path
    label = str(path)
    try:
        text = decode_utf8(read_limited(path))
    except FileNotFoundError:
        raise ConfigError(
            "config",
            origin or label,
            f"names {shown(label, 300)}, which does not exist",
            hint="Give the path of an auditor.toml, or run `auditor demo` to see one.",
        ) from None
    except OSError as exc:
        raise ConfigError("(file)", label, f"cannot be read: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError("(file)", label, str(exc), hint=_FILE_HINT) from None
    try:
        document = tomllib.loads(text)
    except RecursionError:
        raise ConfigError(
            "(file)", label, "is nested too deeply to read", hint=_FILE_HINT
        ) from None
    except ValueError as exc:  # TOMLDecodeError, or an integer of thousands of digits
        raise ConfigError("(file)", label, f"is not valid TOML: {clean(exc, 200)}") from None
    _inspect(document, label)
    return path, document


def _inspect(document: Mapping[str, Any], label: str) -> None:
    """Refuses, anywhere in the file, what no setting may hold: a secret-looking key, deep
    nesting, a URL with user info, a number not finite or out of bounds, long or control text.

    Iterative, so a nesting tomllib accepted cannot exhaust the stack here; only containers
    are kept on the stack, so a long array of numbers costs nothing extra.
    """
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack:
        where, node = stack.pop()
        if len(where) > MAX_DEPTH:
            raise ConfigError(
                shown_key(where), label, f"is nested more than {MAX_DEPTH} levels deep"
            )
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for name, value in items:
            path = (*where, str(name) if isinstance(node, dict) else f"[{name}]")
            if isinstance(node, dict):
                _refuse_secret(path, label)
            if isinstance(value, dict | list):
                stack.append((path, value))
            else:
                _check_scalar(path, value, label)


def _check_scalar(where: tuple[str, ...], value: Any, label: str) -> None:
    problem = None
    if isinstance(value, float) and not math.isfinite(value):
        problem = "must be a finite number (inf and nan are not numbers a setting takes)"
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if abs(value) > MAX_NUMBER:
            problem = f"is out of range (at most {MAX_NUMBER:.0e} in size)"
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            problem = f"must be at most {MAX_TEXT:,} characters"
        elif has_control(value):
            problem = "must not hold control or invisible characters"
        elif "://" in value:
            try:
                url_parts(value)
            except ValueError as exc:
                problem = str(exc)
    if problem:
        raise ConfigError(shown_key(where), label, problem)


def shown_key(where: tuple[str, ...]) -> str:
    """A key path for a message: dotted, cleaned, cut (a key can be any text in TOML)."""
    return clean(".".join(where).replace(".[", "["), 120) or "(top level)"


def _refuse_secret(where: tuple[str, ...], label: str) -> None:
    if is_secret_key(where[-1]):
        raise ConfigError(
            shown_key(where),
            label,
            "looks like a secret, and secrets are never read from the file",
            hint=_ENVIRONMENT_HINT,
        )
