"""Environments: from the configuration, or every environment of the tenant (admin API).

The Power Platform admin (BAP) API lists environments with their Dataverse URL in
`properties.linkedEnvironmentMetadata.instanceUrl`; an environment without Dataverse has none
(the environment objects `Get-AdminPowerAppEnvironment` returns:
https://learn.microsoft.com/powershell/module/microsoft.powerapps.administration.powershell/get-adminpowerappenvironment).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from auditor.errors import UsageError
from auditor.http import ApiClient
from auditor.odata import iter_pages
from auditor.queries import Catalog
from auditor.settings import Settings
from auditor.sources.base import Environment


def configured(settings: Settings) -> list[Environment]:
    """The environments named in auditor.toml."""
    return [
        Environment(id=env.id, display_name=env.name, dataverse_url=env.dataverse_url)
        for env in settings.environments
    ]


async def discover(client: ApiClient, catalog: Catalog) -> list[Environment]:
    """Every environment the admin API lists (the client's base URL is the admin API)."""
    spec = catalog["environments"]
    path, params = spec.render()
    found: list[Environment] = []
    async for page in iter_pages(client, path, params=params, access=spec.access):
        found.extend(env for env in (_environment(item) for item in page.rows) if env)
    return found


def _environment(item: dict[str, Any]) -> Environment | None:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        return None
    raw = item.get("properties")
    props: dict[str, Any] = raw if isinstance(raw, dict) else {}
    linked = props.get("linkedEnvironmentMetadata")
    url = linked.get("instanceUrl") if isinstance(linked, dict) else None
    display = props.get("displayName")
    sku = props.get("environmentSku")
    return Environment(
        id=name,
        display_name=display if isinstance(display, str) and display else name,
        dataverse_url=url.rstrip("/")
        if isinstance(url, str) and url.startswith("https://")
        else None,
        sku=sku if isinstance(sku, str) else None,
        discovered_by="admin API",
    )


def select(environments: Sequence[Environment], wanted: Sequence[str]) -> list[Environment]:
    """The environments named (by id or display name, any case); all when none are named."""
    if not wanted:
        return list(environments)
    chosen: list[Environment] = []
    for name in wanted:
        key = name.casefold()
        match = [e for e in environments if key in (e.id.casefold(), e.display_name.casefold())]
        if not match:
            names = [e.display_name for e in environments] + [e.id for e in environments]
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
            suggestion = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UsageError(
                f"No environment {name!r}.{suggestion}",
                hint="Run `auditor environments` to list them.",
            )
        chosen.extend(e for e in match if e not in chosen)
    return chosen
