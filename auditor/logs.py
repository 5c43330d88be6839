"""Logging with secrets and tokens redacted before any handler sees a record.

Redaction is installed as the log-record factory, so it covers every logger in the process
(ours, httpx, httpcore, msal, uvicorn) and every handler (console, files, test capture):
the message and any traceback text are redacted when the record is made. It removes
`Authorization`/Bearer values, `client_secret=`, `access_token` style fields, anything shaped
like a JWT, and every exact value registered with `register_secret` (the client secret, the
certificate password and each token the auditor obtains).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from typing import Any

REDACTED = "[REDACTED]"

_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    re.compile(
        r"(?i)((?:client_secret|access_token|refresh_token|id_token|client_assertion|password"
        r"|passphrase|secret)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;}]+"
    ),
    re.compile(r"()eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
)

_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def register_secret(value: str | None) -> None:
    """Redact this exact value from every later log record (ignored when short or empty)."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """The text with every known secret and token pattern replaced by [REDACTED]."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def install_redaction() -> None:
    """Make every log record of the process redacted at creation (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    make_record = logging.getLogRecordFactory()
    formatter = logging.Formatter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact(formatter.formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)


class _TerminalFormatter(logging.Formatter):
    """Log lines carry tenant text (names, API messages): made inert for the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        from auditor.terminal import lines

        return lines(super().format(record))


def configure_logging(verbosity: int = 0, *, quiet: bool = False) -> None:
    """Console logging for the CLI: -v info, -vv debug, --quiet errors only."""
    install_redaction()
    if quiet:
        level = logging.ERROR
    elif verbosity >= 2:
        level = logging.DEBUG
    elif verbosity == 1:
        level = logging.INFO
    else:
        level = logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TerminalFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # httpcore traces every socket operation at debug level: useful only with -vvv.
    logging.getLogger("httpcore").setLevel(logging.DEBUG if verbosity >= 3 else logging.INFO)
