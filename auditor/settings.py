"""One frozen `Settings`, resolved once: flag > `AUDITOR_*` environment > auditor.toml > default.

The configuration file is TOML (path from `--config`, else `AUDITOR_CONFIG`, else
`./auditor.toml` when it exists). Secrets are never read from it: client secrets and
certificates come from the Azure variables `AZURE_CLIENT_SECRET`,
`AZURE_CLIENT_CERTIFICATE_PATH` and `AZURE_CLIENT_CERTIFICATE_PASSWORD` (or, for device code,
from the token cache). Every error names the key, where it came from, and what is expected.

`./auditor.toml` may come with a pull request, so the file is checked before any value is
used: a regular file of at most `MAX_FILE_BYTES`, UTF-8 TOML, no deeper than `MAX_DEPTH`, no
key that looks like a secret, no URL with a user name or password, no number that is not
finite, no text longer than `MAX_TEXT` or holding control characters. Every value shown in an
error is cut and cleaned, and a refused secret or password is never shown.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from auditor.errors import ConfigError
from auditor.terminal import clean

AUTH_METHODS = ("client-secret", "client-certificate", "managed-identity", "device-code")
# No real configuration or mutelist is near 1 MB; a bigger one is refused unread.
MAX_FILE_BYTES = 1_000_000
# The longest text value: a path (PATH_MAX is 4096 on Linux) or a URL.
MAX_TEXT = 4096
# Tables in tables: the deepest real key is `checks.<id>.<name>` or `environments[i].<key>`.
MAX_DEPTH = 8
# Larger than any count, size or duration a setting or threshold takes (and exact as a float).
MAX_NUMBER = 10**15
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
# What `auditor.terminal.clean` removes: control, bidirectional and invisible characters.
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)
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


# --- reading a file that may come with a pull request ----------------------------------------


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


def has_control(text: str) -> bool:
    """Whether text holds a character a terminal would act on or hide (see auditor.terminal)."""
    return _CONTROL.search(text) is not None


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


def shown(value: Any, limit: int = 80) -> str:
    """A value quoted in a message: cleaned, cut to `limit` characters, containers by type."""
    if isinstance(value, dict | list | tuple):
        return f"a {type(value).__name__} of {len(value)}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_NUMBER:
        return "a number with too many digits"
    return clean(repr(value), limit)


# --- value parsers: each returns the parsed value or raises ValueError(expected text) -------


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT:,} characters")
    if has_control(value):
        raise ValueError("must not hold control or invisible characters")
    return value.strip()


def _url_parts(text: str) -> tuple[str, str]:
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


def _https_url(value: Any) -> str:
    text = _text(value)
    scheme, netloc = _url_parts(text)
    if scheme != "https" or not netloc:
        raise ValueError(f"must be an https:// URL, got {shown(text)}")
    return text.rstrip("/")


def _scope(value: Any) -> str:
    text = _text(value)
    _url_parts(text)
    if not text.startswith("https://"):
        raise ValueError(f"must be an OAuth scope such as https://host/.default, got {shown(text)}")
    return text


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value)
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}; got {shown(text)}")
        return text

    return parse


def _int_range(low: int, high: int) -> Callable[[Any], int]:
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


def _float_range(low: float, high: float, unit: str) -> Callable[[Any], float]:
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


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {shown(value)}")


def _path(value: Any) -> Path:
    return Path(value if isinstance(value, Path) else _text(value)).expanduser()


def _existing_file(value: Any) -> Path:
    path = _path(value)
    try:
        mode = path.stat().st_mode
    except OSError:  # missing, a name too long, a loop of links
        raise ValueError(f"must name an existing file; {shown(str(path))} does not exist") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"must name a regular file; {shown(str(path))} is not one")
    return path


@dataclass(frozen=True)
class _Field:
    name: str
    toml: tuple[str, ...]  # path of the key in auditor.toml
    env: tuple[str, ...]  # environment variables, first wins
    parse: Callable[[Any], Any]
    relative_to_file: bool = False  # a relative path in the file is relative to the file
    flag: str = ""  # the command-line flag, when not --<name with dashes>


_FIELDS: tuple[_Field, ...] = (
    _Field("tenant_id", ("tenant_id",), ("AUDITOR_TENANT_ID", "AZURE_TENANT_ID"), _text),
    _Field("client_id", ("auth", "client_id"), ("AUDITOR_CLIENT_ID", "AZURE_CLIENT_ID"), _text),
    _Field("auth_method", ("auth", "method"), ("AUDITOR_AUTH_METHOD",), _choice(AUTH_METHODS)),
    _Field(
        "authority_host",
        ("auth", "authority_host"),
        ("AUDITOR_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST"),
        _https_url,
    ),
    _Field(
        "token_cache_path",
        ("auth", "token_cache"),
        ("AUDITOR_TOKEN_CACHE",),
        _path,
        relative_to_file=True,
    ),
    _Field("admin_api_url", ("apis", "admin_url"), ("AUDITOR_ADMIN_API_URL",), _https_url),
    _Field("admin_api_scope", ("apis", "admin_scope"), ("AUDITOR_ADMIN_API_SCOPE",), _scope),
    _Field("flow_api_url", ("apis", "flow_url"), ("AUDITOR_FLOW_API_URL",), _https_url),
    _Field("flow_api_scope", ("apis", "flow_scope"), ("AUDITOR_FLOW_API_SCOPE",), _scope),
    _Field("flow_api_enabled", ("apis", "flow_enabled"), ("AUDITOR_FLOW_API_ENABLED",), _bool),
    _Field("store_path", ("store",), ("AUDITOR_STORE",), _path, True, "--store"),
    _Field("ca_bundle", ("http", "ca_bundle"), ("AUDITOR_CA_BUNDLE",), _existing_file, True),
    _Field(
        "max_concurrency",
        ("http", "max_concurrency"),
        ("AUDITOR_MAX_CONCURRENCY",),
        _int_range(1, 50),
    ),
    _Field(
        "timeout_seconds",
        ("http", "timeout_seconds"),
        ("AUDITOR_TIMEOUT",),
        _float_range(1, 3600, "seconds"),
    ),
    _Field("max_retries", ("http", "max_retries"), ("AUDITOR_MAX_RETRIES",), _int_range(0, 20)),
    _Field("page_size", ("http", "page_size"), ("AUDITOR_PAGE_SIZE",), _int_range(1, 5000)),
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

    config_file, document = _read_config(flags.get("config"), environ, cwd)
    file_label = f"{config_file}" if config_file else ""
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


def _read_config(
    flag: Any, environ: Mapping[str, str], cwd: Path
) -> tuple[Path | None, dict[str, Any]]:
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
    _check_keys(document, label)
    return path, document


_FILE_HINT = "auditor.toml is a small UTF-8 TOML file: see the configuration reference (README)."


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
            raise ConfigError(_key(where), label, f"is nested more than {MAX_DEPTH} levels deep")
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
                _url_parts(value)
            except ValueError as exc:
                problem = str(exc)
    if problem:
        raise ConfigError(_key(where), label, problem)


def _key(where: tuple[str, ...]) -> str:
    """A key path for a message: dotted, cleaned, cut (a key can be any text in TOML)."""
    return clean(".".join(where).replace(".[", "["), 120) or "(top level)"


def _check_keys(document: Mapping[str, Any], label: str) -> None:
    for key, value in document.items():
        if key not in _KNOWN_KEYS[""]:
            raise ConfigError(_key((key,)), label, "is not a known setting", hint=_known_hint(""))
        if key in _KNOWN_KEYS and key not in ("", "checks"):
            if not isinstance(value, dict):
                raise ConfigError(key, label, "must be a table ([" + key + "])")
            for sub in value:
                if sub not in _KNOWN_KEYS[key]:
                    raise ConfigError(
                        _key((key, sub)), label, "is not a known setting", hint=_known_hint(key)
                    )


def _refuse_secret(where: tuple[str, ...], label: str) -> None:
    if is_secret_key(where[-1]):
        raise ConfigError(
            _key(where),
            label,
            "looks like a secret, and secrets are never read from the file",
            hint=_ENVIRONMENT_HINT,
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
            raise ConfigError(_key((key, first)), label, "is not a known setting")
        parsed: dict[str, str] = {}
        for name, parse in (("name", _text), ("id", _text), ("dataverse_url", _https_url)):
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
            raise ConfigError(_key(where), label, "is not a check id (lowercase, digits, -)")
        if not isinstance(values, dict):
            raise ConfigError(_key(where), label, "must be a table of thresholds")
        for name, value in values.items():
            if not _NAME.fullmatch(name):
                raise ConfigError(_key((*where, name)), label, "is not a threshold name")
            if not isinstance(value, str | int | float | bool):
                raise ConfigError(
                    _key((*where, name)), label, "must be a number, string or boolean"
                )
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ConfigError(
                    _key((*where, name)), label, f"must be at least 0, got {shown(value)}"
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
