"""The Power Platform admin (BAP) environments list.

Served at `/bap/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments`; the
objects have the shape Get-AdminPowerAppEnvironment returns (BAP environment objects), the
same page the collector cites:
https://learn.microsoft.com/powershell/module/microsoft.powerapps.administration.powershell/get-adminpowerappenvironment
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request

from auditor.sim import odata
from auditor.sim.apis.common import (
    Context,
    Reply,
    api_version,
    error_reply,
    json_reply,
    next_link,
    page_offset,
    stamp,
)
from auditor.sim.model import SimEnvironment

# Versions clients send to the BAP environments list (the admin PowerShell module and PnP
# CLI use 2020-10-01; older tools 2016-11-01 and 2019-05-01).
BAP_API_VERSIONS = ("2016-11-01", "2019-05-01", "2020-06-01", "2020-10-01", "2021-04-01")
BAP_ID_PREFIX = "/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments"


def environments_reply(context: Context, request: Request) -> Reply:
    """One page of the tenant's environments."""
    params = dict(request.query_params)
    version_error = api_version(params, BAP_API_VERSIONS)
    if version_error is not None:
        return version_error
    try:
        offset = page_offset(params)
    except odata.ODataError as exc:
        return error_reply(400, "InvalidSkipToken", exc.message)
    envs = context.tenant.environments
    size = context.limits.environment_page
    body: dict[str, Any] = {
        "value": [_environment(context, e) for e in envs[offset : offset + size]]
    }
    if offset + size < len(envs):
        body["nextLink"] = next_link(context, request, offset + size)
    return json_reply(200, body)


def _environment(context: Context, env: SimEnvironment) -> dict[str, Any]:
    # Shape: BAP environment objects, as Get-AdminPowerAppEnvironment returns them (see the
    # module docstring for the page).
    props: dict[str, Any] = {
        "tenantId": context.tenant.tenant_id,
        "azureRegion": "westus",
        "displayName": env.display_name,
        "createdTime": stamp(context.tenant.start),
        "environmentSku": env.sku,
        "isDefault": env.sku == "Default" or env.env_id.startswith("Default-"),
        "provisioningState": "Succeeded",
        "states": {"management": {"id": "Ready"}, "runtime": {"id": "Enabled"}},
    }
    if env.has_dataverse:
        url = f"{context.base_url}/dv/{env.slug}"
        props["linkedEnvironmentMetadata"] = {
            "type": "Dynamics365Instance",
            "resourceId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"org:{env.env_id}")),
            "friendlyName": env.display_name,
            "uniqueName": f"unq{uuid.uuid5(uuid.NAMESPACE_URL, env.slug).hex[:24]}",
            "domainName": env.slug,
            "version": "9.2.25101.00000",
            "instanceUrl": f"{url}/",
            "instanceApiUrl": url,
            "baseLanguage": 1033,
            "instanceState": "Ready",
            "createdTime": stamp(context.tenant.start),
        }
    return {
        "id": f"{BAP_ID_PREFIX}/{env.env_id}",
        "type": "Microsoft.BusinessAppPlatform/scopes/environments",
        "location": "unitedstates",
        "name": env.env_id,
        "properties": props,
    }
