"""One frozen `Settings`, resolved once: flag > `AUDITOR_*` environment > auditor.toml > default.

The configuration file is TOML (path from `--config`, else `AUDITOR_CONFIG`, else
`./auditor.toml` when it exists). Secrets are never read from it: client secrets and
certificates come from the Azure variables `AZURE_CLIENT_SECRET`,
`AZURE_CLIENT_CERTIFICATE_PATH` and `AZURE_CLIENT_CERTIFICATE_PASSWORD` (or, for device code,
from the token cache). Every error names the key, where it came from, and what is expected.

Here are the settings themselves: the dataclasses, the table of fields (key in the file,
variables, parser) and their resolution. How the file is read and checked before any value is
used is `auditor.config_file`; what a valid value is, `auditor.setting_values`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.config_file import read_config, shown_key
from auditor.errors import ConfigError
from auditor.setting_values import (
    choice,
    float_range,
    int_range,
    parse_bool,
    parse_existing_file,
    parse_https_url,
    parse_path,
    parse_scope,
    parse_text,
    shown,
)

AUTH_METHODS = ("client-secret", "client-certificate", "managed-identity", "device-code")
# A check id or threshold name: the names `auditor checks list` shows.
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

Scalar = str | int | float | bool


@dataclass(frozen=True, repr=False)
class Secret:
    """A secret value whose repr and str never show it (so it cannot leak into logs)."""

    value: str

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class Credentials:
    """Secrets from the environment only."""

    client_secret: Secret | None = None
    certificate_path: Path | None = None
    certificate_password: Secret | None = None


@dataclass(frozen=True)
class EnvironmentConfig:
    """An environment named in the configuration file."""

    name: str
    id: str
    dataverse_url: str


@dataclass(frozen=True)
class Settings:
    """Everything the auditor needs to know, resolved and validated."""

    config_file: Path | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    auth_method: str = "client-secret"
    authority_host: str = "https://login.microsoftonline.com"
    discover_environments: bool = True
    environments: tuple[EnvironmentConfig, ...] = ()
    admin_api_url: str = "https://api.bap.microsoft.com"
    admin_api_scope: str = "https://service.powerapps.com/.default"
    flow_api_url: str = "https://api.flow.microsoft.com"
    flow_api_scope: str = "https://service.flow.microsoft.com/.default"
    flow_api_enabled: bool = True
    store_path: Path = Path("auditor-data/auditor.duckdb")
    ca_bundle: Path | None = None
    max_concurrency: int = 16
    # Each environment's service-protection budget: requests per sliding window (Dataverse:
    # 6,000 per 300 s, https://learn.microsoft.com/power-apps/developer/data-platform/api-limits).
    requests_per_window: int = 6000
    request_window_seconds: float = 300.0
    timeout_seconds: float = 60.0
    max_retries: int = 6
    page_size: int = 5000
    token_cache_path: Path = field(default_factory=lambda: _default_cache_path())
    thresholds: Mapping[str, Mapping[str, Scalar]] = field(default_factory=dict)
    credentials: Credentials = field(default_factory=Credentials, repr=False)
    # Where each resolved value came from ("default", "file <path>", "env NAME", "flag"),
    # for `auditor config` and for error messages.
    sources: Mapping[str, str] = field(default_factory=dict, repr=False)

    def threshold(self, check_id: str, name: str, default: Scalar) -> Scalar:
        """A check's threshold: `[checks.<id>] <name> = value` in the file, else `default`."""
        return self.thresholds.get(check_id, {}).get(name, default)


def _default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "auditor" / "msal-token-cache.bin"


@dataclass(frozen=True)
class _Field:
    name: str
    toml: tuple[str, ...]  # path of the key in auditor.toml
    env: tuple[str, ...]  # environment variables, first wins
    parse: Callable[[Any], Any]
    relative_to_file: bool = False  # a relative path in the file is relative to the file
    flag: str = ""  # the command-line flag, when not --<name with dashes>


_FIELDS: tuple[_Field, ...] = (
    _Field("tenant_id", ("tenant_id",), ("AUDITOR_TENANT_ID", "AZURE_TENANT_ID"), parse_text),
    _Field(
        "client_id", ("auth", "client_id"), ("AUDITOR_CLIENT_ID", "AZURE_CLIENT_ID"), parse_text
    ),
    _Field("auth_method", ("auth", "method"), ("AUDITOR_AUTH_METHOD",), choice(AUTH_METHODS)),
    _Field(
        "authority_host",
        ("auth", "authority_host"),
        ("AUDITOR_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST"),
        parse_https_url,
    ),
    _Field(
        "token_cache_path",
        ("auth", "token_cache"),
        ("AUDITOR_TOKEN_CACHE",),
        parse_path,
        relative_to_file=True,
    ),
    _Field("admin_api_url", ("apis", "admin_url"), ("AUDITOR_ADMIN_API_URL",), parse_https_url),
    _Field("admin_api_scope", ("apis", "admin_scope"), ("AUDITOR_ADMIN_API_SCOPE",), parse_scope),
    _Field("flow_api_url", ("apis", "flow_url"), ("AUDITOR_FLOW_API_URL",), parse_https_url),
    _Field("flow_api_scope", ("apis", "flow_scope"), ("AUDITOR_FLOW_API_SCOPE",), parse_scope),
    _Field("flow_api_enabled", ("apis", "flow_enabled"), ("AUDITOR_FLOW_API_ENABLED",), parse_bool),
    _Field("store_path", ("store",), ("AUDITOR_STORE",), parse_path, True, "--store"),
    _Field("ca_bundle", ("http", "ca_bundle"), ("AUDITOR_CA_BUNDLE",), parse_existing_file, True),
    _Field(
        "max_concurrency",
        ("http", "max_concurrency"),
        ("AUDITOR_MAX_CONCURRENCY",),
        int_range(1, 50),
    ),
    _Field(
        "timeout_seconds",
        ("http", "timeout_seconds"),
        ("AUDITOR_TIMEOUT",),
        float_range(1, 3600, "seconds"),
    ),
    _Field(
        "requests_per_window",
        ("http", "requests_per_window"),
        ("AUDITOR_REQUESTS_PER_WINDOW",),
        int_range(1, 1_000_000_000),
    ),
    _Field(
        "request_window_seconds",
        ("http", "request_window_seconds"),
        ("AUDITOR_REQUEST_WINDOW_SECONDS",),
        float_range(1, 86_400, "seconds"),
    ),
    _Field("max_retries", ("http", "max_retries"), ("AUDITOR_MAX_RETRIES",), int_range(0, 20)),
    _Field("page_size", ("http", "page_size"), ("AUDITOR_PAGE_SIZE",), int_range(1, 5000)),
)

# Every key the file may hold (tables and their keys); anything else is a typo to report.
_KNOWN_KEYS: dict[str, set[str]] = {"": {"tenant_id", "store", "environments", "checks"}}
for _f in _FIELDS:
    if len(_f.toml) == 2:
        _KNOWN_KEYS.setdefault(_f.toml[0], set()).add(_f.toml[1])
        _KNOWN_KEYS[""].add(_f.toml[0])


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolve the settings from flags (None = not given), the environment and the file."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()

    config_file, document = read_config(flags.get("config"), environ, cwd)
    file_label = f"{config_file}" if config_file else ""
    _check_keys(document, file_label)
    values: dict[str, Any] = {"config_file": config_file}
    sources: dict[str, str] = {}

    for spec in _FIELDS:
        raw, source, key = _lookup(spec, flags, environ, document, file_label)
        if source is None:
            continue
        try:
            value = spec.parse(raw)
        except ValueError as exc:
            raise ConfigError(key, source, str(exc)) from None
        if isinstance(value, Path) and not value.is_absolute():
            base = config_file.parent if source.startswith("file") and config_file else cwd
            value = base / value
        values[spec.name] = value
        sources[spec.name] = source

    values.setdefault("store_path", cwd / Settings.store_path)
    discover, environments = _environments(document, file_label)
    if flags.get("all_environments"):
        discover, sources["environments"] = True, "flag"
    values["discover_environments"] = discover
    values["environments"] = environments
    values["thresholds"] = _thresholds(document, file_label)
    values["credentials"] = _credentials(environ)
    values["sources"] = sources
    return Settings(**values)


def _check_keys(document: Mapping[str, Any], label: str) -> None:
    """Every key of the file is a setting (a typo is reported with the known keys)."""
    for key, value in document.items():
        if key not in _KNOWN_KEYS[""]:
            raise ConfigError(
                shown_key((key,)), label, "is not a known setting", hint=_known_hint("")
            )
        if key in _KNOWN_KEYS and key not in ("", "checks"):
            if not isinstance(value, dict):
                raise ConfigError(key, label, "must be a table ([" + key + "])")
            for sub in value:
                if sub not in _KNOWN_KEYS[key]:
                    raise ConfigError(
                        shown_key((key, sub)),
                        label,
                        "is not a known setting",
                        hint=_known_hint(key),
                    )


def _known_hint(table: str) -> str:
    keys = sorted(_KNOWN_KEYS[table])
    where = f"[{table}]" if table else "the top level"
    return f"Known keys in {where}: {', '.join(keys)}."


def _lookup(
    spec: _Field,
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    document: Mapping[str, Any],
    file_label: str,
) -> tuple[Any, str | None, str]:
    if spec.name in flags:
        return flags[spec.name], "flag", spec.flag or "--" + spec.name.replace("_", "-")
    for name in spec.env:
        if environ.get(name):
            return environ[name], f"env {name}", name
    node: Any = document
    for part in spec.toml:
        if not isinstance(node, dict) or part not in node:
            return None, None, ".".join(spec.toml)
        node = node[part]
    return node, f"file {file_label}", ".".join(spec.toml)


def _environments(
    document: Mapping[str, Any], label: str
) -> tuple[bool, tuple[EnvironmentConfig, ...]]:
    raw = document.get("environments")
    if raw is None or raw == "all":
        return True, ()
    if not isinstance(raw, list):
        raise ConfigError(
            "environments",
            label,
            'must be "all" or a list of [[environments]] tables with name, id and dataverse_url',
        )
    items: list[EnvironmentConfig] = []
    for index, item in enumerate(raw):
        key = f"environments[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(key, label, "must be a table with name, id and dataverse_url")
        unknown = set(item) - {"name", "id", "dataverse_url"}
        if unknown:
            first = sorted(map(str, unknown))[0]
            raise ConfigError(shown_key((key, first)), label, "is not a known setting")
        parsed: dict[str, str] = {}
        for name, parse in (
            ("name", parse_text),
            ("id", parse_text),
            ("dataverse_url", parse_https_url),
        ):
            if not item.get(name):
                what = "an https:// Dataverse URL" if name == "dataverse_url" else "text"
                raise ConfigError(f"{key}.{name}", label, f"is required ({what})")
            try:
                parsed[name] = parse(item[name])
            except ValueError as exc:
                raise ConfigError(f"{key}.{name}", label, str(exc)) from None
        items.append(EnvironmentConfig(**parsed))
    return False, tuple(items)


def _thresholds(document: Mapping[str, Any], label: str) -> dict[str, dict[str, Scalar]]:
    """`[checks.<id>]` tables: plain names, and values a threshold can take (a number at least
    0, as `Threshold.coerce` documents, true or false, or text); which check and threshold
    exist is checked where the checks are loaded."""
    raw = document.get("checks", {})
    if not isinstance(raw, dict):
        raise ConfigError("checks", label, "must be a table of [checks.<check id>] tables")
    result: dict[str, dict[str, Scalar]] = {}
    for check_id, values in raw.items():
        where = ("checks", check_id)
        if not _NAME.fullmatch(check_id):
            raise ConfigError(shown_key(where), label, "is not a check id (lowercase, digits, -)")
        if not isinstance(values, dict):
            raise ConfigError(shown_key(where), label, "must be a table of thresholds")
        for name, value in values.items():
            if not _NAME.fullmatch(name):
                raise ConfigError(shown_key((*where, name)), label, "is not a threshold name")
            if not isinstance(value, str | int | float | bool):
                raise ConfigError(
                    shown_key((*where, name)), label, "must be a number, string or boolean"
                )
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ConfigError(
                    shown_key((*where, name)), label, f"must be at least 0, got {shown(value)}"
                )
        result[check_id] = dict(values)
    return result


def _credentials(environ: Mapping[str, str]) -> Credentials:
    secret = environ.get("AZURE_CLIENT_SECRET")
    cert = environ.get("AZURE_CLIENT_CERTIFICATE_PATH")
    password = environ.get("AZURE_CLIENT_CERTIFICATE_PASSWORD")
    return Credentials(
        client_secret=Secret(secret) if secret else None,
        certificate_path=Path(cert).expanduser() if cert else None,
        certificate_password=Secret(password) if password else None,
    )
