"""The mutelist: reviewed exceptions that suppress findings by check and resource, each with a
reason and an expiry date, read from a TOML or YAML file that may come with a pull request.

Apart from the verdicts because reading an untrusted file (bounded, no YAML anchors, every
text checked) is its own concern; the verdicts only ask an entry whether it `matches`.
"""

from __future__ import annotations

import fnmatch
import logging
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from auditor.checks import CHECKS
from auditor.checks.base import Finding
from auditor.config_file import decode_utf8, read_limited
from auditor.errors import UsageError
from auditor.setting_values import has_control, shown
from auditor.terminal import clean

# The package's logger: a warning reads `auditor.assessment: mutelist entry ...`.
log = logging.getLogger(__package__)

# A mutelist names a few reviewed exceptions and may come with a pull request: these bound what
# a hostile one can cost (matching is entries x findings, and every text reaches the reports).
MAX_MUTE_ENTRIES = 1_000
MAX_MUTE_TEXT = 1_000
_MUTE_KEYS = ("check", "resource", "environment", "reason", "expires")
_MUTE_HINT = (
    "It is a TOML or YAML file with a list `mute` of {check, resource, reason, expires} and "
    "an optional environment."
)


@dataclass(frozen=True)
class MuteEntry:
    """Suppress findings of one check on matching resources, for a reason, until a date."""

    check_id: str
    resource: str  # resource id or name; shell-style wildcards allowed
    reason: str
    expires: date
    environment: str | None = None  # environment id or name; None = any

    def __post_init__(self) -> None:
        """Every field is short plain text and `expires` a date, whoever built the entry: a
        structure, a huge text or a control character never reaches matching or a report."""
        named = {"check": self.check_id, "resource": self.resource, "reason": self.reason}
        if self.environment is not None:
            named["environment"] = self.environment
        for name, value in named.items():
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be non-empty text (quote it), got {shown(value)}")
            if len(value) > MAX_MUTE_TEXT:
                raise ValueError(f"{name} must be at most {MAX_MUTE_TEXT:,} characters")
            if has_control(value):
                raise ValueError(f"{name} must not hold control or invisible characters")
        # A datetime is a date too, but cannot be compared with one.
        if not isinstance(self.expires, date) or isinstance(self.expires, datetime):
            raise ValueError(f"expires must be a date like 2027-03-31, got {shown(self.expires)}")

    def matches(self, finding: Finding, environment_name: str | None) -> bool:
        if finding.check_id != self.check_id:
            return False
        if self.environment is not None and self.environment.lower() not in {
            (finding.environment_id or "").lower(),
            (environment_name or "").lower(),
        }:
            return False
        names = [finding.resource_id or "", finding.resource_name or ""]
        return any(fnmatch.fnmatchcase(n.lower(), self.resource.lower()) for n in names)


def load_mutelist(path: Path, *, today: date) -> list[MuteEntry]:
    """Entries of a YAML or TOML mutelist; expired entries are dropped with a warning.

    ```toml
    [[mute]]
    check = "flow-no-error-handling"
    resource = "Nightly export*"     # id or name, wildcards allowed
    environment = "Contoso Dev"      # optional
    reason = "Replaced in Q1; tracked in ADO 1234"
    expires = 2027-03-31
    ```

    The file is read as `auditor.toml` is (a regular file, at most 1 MB, UTF-8); YAML anchors
    and aliases are refused, and at most `MAX_MUTE_ENTRIES` entries are read.
    """
    document = _read_mutelist(path)
    raw = document.get("mute", []) if isinstance(document, dict) else None
    if not isinstance(raw, list):
        raise UsageError(f"the mutelist {path} needs a list named `mute`", hint=_MUTE_HINT)
    if len(raw) > MAX_MUTE_ENTRIES:
        raise UsageError(
            f"the mutelist {path} has {len(raw):,} entries; at most {MAX_MUTE_ENTRIES:,} are read",
            hint='Mute by wildcard (resource = "Nightly*") rather than entry by entry.',
        )
    entries = []
    for i, item in enumerate(raw):
        entry = _mute_entry(item, f"{path}: mute[{i}]")
        if entry.expires < today:
            log.warning(
                "mutelist entry %d (%s on %s) expired on %s and is ignored",
                i,
                entry.check_id,
                clean(entry.resource, 200),
                entry.expires.isoformat(),
            )
            continue
        entries.append(entry)
    return entries


def _read_mutelist(path: Path) -> Any:
    """The parsed document; every way a file can be wrong is one UsageError line."""
    try:
        text = decode_utf8(read_limited(path))
    except OSError as exc:
        raise UsageError(f"cannot read the mutelist {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"the mutelist {path} {exc}", hint=_MUTE_HINT) from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            return yaml.load(text, Loader=_MutelistLoader)  # noqa: S506 (a SafeLoader)
        return tomllib.loads(text)
    except RecursionError:
        problem = "is nested too deeply to read"
    except yaml.MarkedYAMLError as exc:
        problem = f"does not parse: {_yaml_problem(exc)}"
    except (yaml.YAMLError, ValueError) as exc:  # TOMLDecodeError, an integer too long
        problem = f"does not parse: {clean(exc, 200)}"
    raise UsageError(f"the mutelist {path} {problem}", hint=_MUTE_HINT)


class _MutelistLoader(yaml.SafeLoader):
    """YAML without anchors and aliases, and no deeper than a mutelist is.

    Aliases nested in aliases (a "billion laughs") are a few hundred bytes that expand to
    billions of nodes once anything walks them; a mutelist has no use for them."""

    max_depth = 8

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _refused("anchors and aliases (& and *) are not allowed", event)
        if self._depth >= self.max_depth:
            raise _refused(f"nested more than {self.max_depth} levels deep", event)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _refused(problem: str, event: yaml.Event) -> yaml.YAMLError:
    mark = event.start_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return yaml.composer.ComposerError(None, None, problem + where)


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """The problem and its position, without the quoted lines PyYAML adds (they would copy
    the file's text, whatever it holds, into the log)."""
    what = clean(exc.problem or exc.context or "invalid YAML", 200)
    mark = exc.problem_mark or exc.context_mark
    return f"{what} (line {mark.line + 1}, column {mark.column + 1})" if mark else what


def _mute_entry(item: Any, where: str) -> MuteEntry:
    if not isinstance(item, dict):
        raise UsageError(f"{where} must be a table of check, resource, reason, expires")
    unknown = [key for key in item if key not in _MUTE_KEYS]
    if unknown:
        raise UsageError(
            f"{where}: {shown(unknown[0], 60)} is not a key of an entry", hint=_MUTE_HINT
        )
    missing = [k for k in ("check", "resource", "reason", "expires") if not item.get(k)]
    if missing:
        raise UsageError(
            f"{where} lacks {', '.join(missing)}",
            hint="Every entry needs "
            "a reason and an expiry date, so that suppressions are reviewed.",
        )
    check = item["check"]
    if not isinstance(check, str) or check not in CHECKS:
        raise UsageError(
            f"{where}: unknown check id {shown(check, 80)}",
            hint="`auditor checks list` shows the check ids.",
        )
    expires = item["expires"]
    if isinstance(expires, str) and len(expires) <= 32:
        try:
            expires = date.fromisoformat(expires)
        except ValueError:
            raise UsageError(f"{where}: expires must be a date like 2027-03-31") from None
    try:
        if "environment" in item and item["environment"] is None:
            raise ValueError("environment must be non-empty text (leave it out for any)")
        return MuteEntry(
            check_id=check,
            resource=item["resource"],
            reason=item["reason"],
            expires=expires,
            environment=item.get("environment"),
        )
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}", hint=_MUTE_HINT) from None
