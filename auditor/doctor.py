"""`auditor doctor`: the preflight a new user runs before the first scan.

A scan that lacks a permission does not stop: it records the query as not collected and the
verdicts become needs-review, which a new user learns only after a long first scan, one gap
at a time. The doctor signs in with the configured credential and sends one cheap request per
API and per query (a page of one row; time-windowed queries over the last hour), concurrently
per environment through the scan's own clients and retry policy, so every missing
management-app registration, application user, privilege or setting shows at once, with its
fix and Learn link. It never opens the store.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import RenderableType
from rich.constrain import Constrain
from rich.table import Table

from auditor.access import (
    ADMIN_ROLE,
    REGISTER_MANAGEMENT_APP,
    Access,
    current_principal,
    principal_of,
)
from auditor.api_clients import ApiClients
from auditor.errors import (
    AuditorError,
    AuthError,
    BadRequest,
    BadResponse,
    PermissionDenied,
    Unauthorized,
)
from auditor.http import ApiClient, get_json
from auditor.odata import NEXT_LINK_KEYS, prefer_header
from auditor.queries import Catalog, QuerySpec, default_catalog
from auditor.settings import Settings
from auditor.sources import environments
from auditor.sources.base import Environment
from auditor.sources.dataverse import TRACE_OFF_HINT
from auditor.terminal import markup

OK, MISSING, WARN, OFF = "OK", "MISSING", "WARN", "OFF"
TENANT = "tenant"
WINDOW = timedelta(hours=1)  # the time window of windowed queries, ending now
UNKNOWN = "environments unknown: nothing else checked"
_PRIVILEGE = re.compile(r"missing (prv\w+) privilege")
MAX_WIDTH = 160  # the table fills the terminal up to this width
_STYLE = {OK: "green", MISSING: "red", WARN: "yellow", OFF: "dim"}

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Check:
    """One row: what was checked, its status, what is missing and how to fix it."""

    environment: str
    api: str
    status: str
    missing: str = ""
    fix: str = ""
    detail: str = ""  # what was seen, when nothing is missing


@dataclass(frozen=True)
class Report:
    """Every check of a run, in order."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Whether a scan has everything it needs (WARN and OFF do not fail it)."""
        return all(check.status != MISSING for check in self.checks)

    def as_json(self) -> dict[str, Any]:
        """`{"ok": ..., "rows": [...]}` for `--json`."""
        return {"ok": self.ok, "rows": [asdict(check) for check in self.checks]}


def run(settings: Settings, wanted: Sequence[str] = ()) -> Report:
    """`check` for synchronous callers (the CLI)."""
    return asyncio.run(check(settings, wanted))


async def check(
    settings: Settings,
    wanted: Sequence[str] = (),
    *,
    catalog: Catalog | None = None,
    now: datetime | None = None,
) -> Report:
    """Sign in, then check the admin API, and per environment Dataverse and the flow API."""
    current_principal.set(principal_of(settings.auth_method))  # hints fit the credential
    try:
        apis = ApiClients(settings)
    except AuthError as exc:
        return Report((_failed(TENANT, "sign-in", exc),))
    async with apis:
        rows = await _check(apis, settings, catalog or default_catalog(), wanted, now)
    return Report(tuple(rows))


async def _check(
    apis: ApiClients,
    settings: Settings,
    catalog: Catalog,
    wanted: Sequence[str],
    now: datetime | None,
) -> list[Check]:
    scopes = {}
    if settings.discover_environments:
        scopes["admin API"] = settings.admin_api_scope
    if settings.flow_api_enabled:
        scopes["flow API"] = settings.flow_api_scope
    rows = await _sign_in(apis, TENANT, scopes)
    if any(row.status == MISSING for row in rows):
        return rows  # no token: nothing else can be checked
    envs, listed = await _environments(apis, settings, catalog, wanted)
    rows.extend(listed)
    flow = None
    if settings.flow_api_enabled:
        flow = apis.client(settings.flow_api_url + "/", settings.flow_api_scope)
    moment = now or datetime.now(UTC)
    for found in await asyncio.gather(
        *(_environment(apis, settings, catalog, flow, env, moment) for env in envs)
    ):
        rows.extend(found)
    return rows


async def _sign_in(apis: ApiClients, environment: str, scopes: Mapping[str, str]) -> list[Check]:
    async def one(api: str, scope: str) -> Check:
        try:
            await apis.tokens.token(scope)
        except AuthError as exc:
            return _failed(environment, f"sign-in: {api}", exc)
        return Check(environment, f"sign-in: {api}", OK)

    return list(await asyncio.gather(*(one(api, scope) for api, scope in scopes.items())))


async def _environments(
    apis: ApiClients, settings: Settings, catalog: Catalog, wanted: Sequence[str]
) -> tuple[list[Environment], list[Check]]:
    """The environments to check (the admin API's first page, or the configured ones)."""
    if not settings.discover_environments:
        found = environments.configured(settings)
        row = Check(
            TENANT,
            "admin API",
            OK,
            detail=f"{_count(len(found), 'environment')} named in auditor.toml: not called",
        )
    else:
        spec = catalog["environments"]
        client = apis.client(settings.admin_api_url + "/", settings.admin_api_scope)
        path, params = spec.render()
        try:
            items, more = _page(await get_json(client, path, params=params, access=spec.access))
        except PermissionDenied as exc:
            row = Check(TENANT, "admin API", MISSING, _admin_access(), exc.hint, UNKNOWN)
            return [], [row]
        except AuditorError as exc:
            return [], [_failed(TENANT, "admin API", exc, UNKNOWN)]
        # The admin API's own parsing of an environment (the first page is all doctor reads).
        found = [e for e in map(environments._environment, items) if e is not None]
        later = "; more on later pages, not checked" if more else ""
        row = Check(
            TENANT, "admin API", OK, detail=f"{_count(len(found), 'environment')} listed{later}"
        )
    chosen = environments.select(found, wanted)  # an unknown name is a usage error
    if not chosen:
        return [], [
            row,
            Check(
                TENANT,
                "environments",
                MISSING,
                "no environment to check",
                "Name environments in auditor.toml or use --all-environments.",
            ),
        ]
    return chosen, [row]


async def _environment(
    apis: ApiClients,
    settings: Settings,
    catalog: Catalog,
    flow: ApiClient | None,
    env: Environment,
    now: datetime,
) -> list[Check]:
    """Dataverse and the flow API of one environment, concurrently."""
    name = env.display_name
    if env.dataverse_url:
        dataverse = _dataverse(apis, catalog, env.dataverse_url, name, now)
    else:
        dataverse = _no_dataverse(name)
    flows = _flows(flow, catalog, env) if flow else _flow_api_off(settings, name)
    (rows, solution_flows), (flow_row, listed) = await asyncio.gather(dataverse, flows)
    if listed == 0 and solution_flows:
        flow_row = Check(
            name,
            "flow API",
            WARN,
            "the flow list holds none of the cloud flows Dataverse lists",
            f"Check the registration and the admin route (apis.flow_url): {_admin_fix()}",
        )
    return [*rows, flow_row]


async def _no_dataverse(name: str) -> tuple[list[Check], int | None]:
    return [
        Check(
            name,
            "Dataverse",
            OFF,
            "no Dataverse database: Dataverse checks do not apply",
            "Nothing to do unless Dataverse is added to this environment.",
        )
    ], None


async def _flow_api_off(settings: Settings, name: str) -> tuple[Check, int | None]:
    source = settings.sources.get("flow_api_enabled", "")
    where = "in auditor.toml" if source.startswith("file") else f"({source or 'default'})"
    return Check(
        name,
        "flow API",
        OFF,
        f"flow API disabled {where}",
        "Flows outside solutions, runs and action retries are not collected; set "
        "apis.flow_enabled = true to read them (the flow API is unsupported by Microsoft).",
    ), None


async def _dataverse(
    apis: ApiClients, catalog: Catalog, url: str, name: str, now: datetime
) -> tuple[list[Check], int | None]:
    """Sign-in, WhoAmI, then every Dataverse query; and how many solution flows it lists."""
    scope = f"{url}/.default"
    rows = await _sign_in(apis, name, {"Dataverse": scope})
    if rows[0].status == MISSING:
        return rows, None
    client = apis.client(f"{url}/api/data/v9.2/", scope)
    try:
        await get_json(client, "WhoAmI", access=Access("dataverse"))
    except (Unauthorized, PermissionDenied) as exc:
        app = current_principal.get() == "app"
        missing = "application user missing" if app else "no user in this environment"
        fix = Access("dataverse").hint(exc.status) or exc.hint
        return [*rows, Check(name, "WhoAmI", MISSING, missing, fix, "queries not sent")], None
    except AuditorError as exc:
        return [*rows, _failed(name, "WhoAmI", exc, "queries not sent")], None
    rows.append(Check(name, "WhoAmI", OK))
    solution_flows = None
    specs = catalog.by_source("dataverse")
    answers = await asyncio.gather(*(_query(client, spec, name, now) for spec in specs))
    for spec, (row, found) in zip(specs, answers, strict=True):
        rows.append(row)
        if spec.id == "organizations" and row.status == OK:
            rows.append(_trace_logging(name, found))
        if spec.id == "workflows" and row.status == OK:
            solution_flows = len(found)
    return rows, solution_flows


async def _query(
    client: ApiClient, spec: QuerySpec, name: str, now: datetime
) -> tuple[Check, Rows]:
    """One page of one row of a Dataverse query, with its own options and annotations."""
    path, params = spec.render(start=now - WINDOW, end=now)
    headers = prefer_header(1, spec.annotations or None)
    try:
        body = await get_json(client, path, params=params, headers=headers, access=spec.access)
        found, _ = _page(body)
    except PermissionDenied as exc:
        match = _PRIVILEGE.search(exc.api_message or "")
        if match is None:
            return Check(name, spec.id, MISSING, exc.api_message or exc.message, exc.hint), []
        privilege = match.group(1)
        fix = exc.hint if privilege in spec.privilege else Access("dataverse", privilege).hint(403)
        return Check(name, spec.id, MISSING, privilege, fix or exc.hint), []
    except BadRequest as exc:
        fix = (
            f"This environment's Dataverse rejects {spec.file.parent.name}/{spec.file.name}; "
            "a scan records it as not collected. Check that the environment has the table and "
            "column (its version and solutions)."
        )
        return Check(name, spec.id, MISSING, exc.api_message or exc.message, fix), []
    except AuditorError as exc:
        return _failed(name, spec.id, exc), []
    return Check(name, spec.id, OK), found


def _trace_logging(name: str, rows: Rows) -> Check:
    setting = rows[0].get("plugintracelogsetting") if rows else None
    api = "plug-in trace logging"
    if setting == 2:
        return Check(name, api, OK, detail="All")
    if setting == 1:
        missing = "plug-in trace logging is Exception (only failures are logged)"
    elif setting == 0:
        missing = "plug-in trace logging is Off"
    else:
        missing = "plug-in trace-log setting unknown"
    return Check(name, api, WARN, missing, TRACE_OFF_HINT)


async def _flows(client: ApiClient, catalog: Catalog, env: Environment) -> tuple[Check, int | None]:
    """The first page of the admin flow list; and how many flows it holds."""
    spec = catalog["flows"]
    path, params = spec.render(environment=env.id)
    name = env.display_name
    try:
        found, more = _page(await get_json(client, path, params=params, access=spec.access))
    except PermissionDenied as exc:
        return Check(name, "flow API", MISSING, _admin_access(), exc.hint), None
    except AuditorError as exc:
        return _failed(name, "flow API", exc), None
    detail = f"{_count(len(found), 'flow')}{' (first page)' if more else ''} listed"
    return Check(name, "flow API", OK, detail=detail), len(found)


def _admin_access() -> str:
    """What the admin routes need for this credential."""
    if current_principal.get() == "app":
        return "management-app registration"
    return "Power Platform administrator role"


def _admin_fix() -> str:
    return REGISTER_MANAGEMENT_APP if current_principal.get() == "app" else ADMIN_ROLE


def _page(body: Any) -> tuple[Rows, bool]:
    """The rows of one page and whether there are more."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise BadResponse("the answer has no `value` list of rows")
    more = any(body.get(key) for key in NEXT_LINK_KEYS)
    return [row for row in body["value"] if isinstance(row, dict)], more


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _failed(environment: str, api: str, exc: AuditorError, detail: str = "") -> Check:
    return Check(environment, api, MISSING, exc.message, exc.hint, detail)


def render(report: Report) -> RenderableType:
    """The report as a rich table (tenant text escaped), at most `MAX_WIDTH` wide."""
    missing = sum(check.status == MISSING for check in report.checks)
    warnings = sum(check.status == WARN for check in report.checks)
    title = f"Not ready to scan: {missing} missing" if missing else "Ready to scan"
    if warnings:
        title += f", {warnings} warning" + ("s" if warnings > 1 else "")
    table = Table(
        "environment", "API / table", "status", "missing", "fix", title=title, expand=True
    )
    # The width is shared in proportion, most to the fix; long words such as URLs fold.
    for column, ratio in zip(table.columns, (3, 4, None, 4, 5), strict=True):
        column.ratio, column.overflow = ratio, "fold"
    table.columns[2].no_wrap = True
    for row in report.checks:
        what = markup(row.missing)
        if row.detail:
            what += ("\n" if what else "") + f"[dim]{markup(row.detail)}[/]"
        table.add_row(
            markup(row.environment),
            markup(row.api),
            f"[{_STYLE[row.status]}]{row.status}[/]",
            what,
            markup(row.fix),
        )
    return Constrain(table, MAX_WIDTH)
