"""Environments from the admin API shape and the name selection."""

from __future__ import annotations

import pytest

from auditor.errors import UsageError
from auditor.sources.base import Environment
from auditor.sources.environments import _environment, select


def test_admin_api_environment_shape() -> None:
    env = _environment(
        {
            "name": "Default-72f988bf",
            "properties": {
                "displayName": "Contoso (default)",
                "environmentSku": "Default",
                "linkedEnvironmentMetadata": {"instanceUrl": "https://contoso.crm.dynamics.com/"},
            },
        }
    )
    assert env == Environment(
        id="Default-72f988bf",
        display_name="Contoso (default)",
        dataverse_url="https://contoso.crm.dynamics.com",
        sku="Default",
        discovered_by="admin API",
    )
    teams = _environment({"name": "e-2", "properties": {"displayName": "Teams"}})
    assert teams is not None
    assert teams.dataverse_url is None
    assert _environment({"properties": {}}) is None
    odd = _environment({"name": "e-3", "properties": {"linkedEnvironmentMetadata": "x"}})
    assert odd is not None
    assert (odd.display_name, odd.dataverse_url) == ("e-3", None)


ENVS = [
    Environment("e-1", "Contoso Production", "https://a.crm.dynamics.com"),
    Environment("e-2", "Contoso Dev", "https://b.crm.dynamics.com"),
]


def test_select_by_name_or_id_any_case() -> None:
    assert select(ENVS, []) == ENVS
    assert select(ENVS, ["contoso dev"]) == [ENVS[1]]
    assert select(ENVS, ["e-1", "Contoso Production"]) == [ENVS[0]]


def test_an_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(UsageError) as caught:
        select(ENVS, ["Contoso Prod"])
    assert "Did you mean 'Contoso Production'" in caught.value.message
    assert "auditor environments" in caught.value.hint
