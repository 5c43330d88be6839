"""The query catalog: every shipped query loads; broken catalogs fail loudly at load time."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.errors import DefinitionError
from auditor.queries import default_catalog, load_catalog, odata_datetime
from auditor.resources import data_dir

START = datetime(2026, 11, 8, 12, tzinfo=UTC)
END = datetime(2026, 11, 15, 12, tzinfo=UTC)


def test_every_shipped_query_loads_and_renders() -> None:
    catalog = default_catalog()
    assert {spec.source for spec in catalog.values()} == {"dataverse", "flow_api", "admin_api"}
    for spec in catalog.values():
        values = {name: "x" for name in spec.placeholders} | {"start": START, "end": END}
        path, params = spec.render(**{k: v for k, v in values.items() if k in spec.placeholders})
        assert "{" not in path + "".join(params.values()), spec.id


def test_trace_log_query_shape() -> None:
    spec = default_catalog()["plugintracelogs"]
    assert spec.entity_set == "plugintracelogs"
    assert spec.watermark == spec.window == "createdon"
    assert {"pluginstepid", "performanceexecutionduration", "correlationid"} <= set(spec.select)
    path, params = spec.render(start=START, end=END)
    assert path == "plugintracelogs"
    assert params["$filter"] == (
        "createdon ge 2026-11-08T12:00:00Z and createdon lt 2026-11-15T12:00:00Z"
    )
    assert params["$orderby"] == "createdon asc,plugintracelogid asc"


def test_step_query_expands_in_one_request() -> None:
    spec = default_catalog()["sdkmessageprocessingsteps"]
    expand = spec.option("$expand") or ""
    assert "sdkmessageid($select=name)" in expand
    assert "pluginassemblyid($select=name,version,isolationmode" in expand
    assert spec.filter == "customizationlevel eq 1"


def test_flow_api_paths_are_encoded() -> None:
    spec = default_catalog()["flow_run_actions"]
    path, params = spec.render(environment="Default-1", flow="f/1", run="085CU12")
    assert path.endswith("environments/Default-1/flows/f%2F1/runs/085CU12")
    assert params == {
        "api-version": "2016-11-01",
        "$expand": "properties/actions",
        "include": "repetitionCount",
    }
    with pytest.raises(ValueError, match="needs values"):
        spec.render(environment="e")


def test_the_queries_folder_is_found() -> None:
    assert (data_dir("queries") / "catalog.toml").is_file()


def test_naive_datetimes_are_refused() -> None:
    assert odata_datetime(START) == "2026-11-08T12:00:00Z"
    with pytest.raises(ValueError, match="timezone"):
        odata_datetime(datetime(2026, 1, 1))


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "queries"
    shutil.copytree(data_dir("queries"), folder)
    return folder


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, count))


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "catalog.toml",
            'privilege = "read on Organization',
            'colour = "x"\nprivilege = "read on Organization',
            "unknown keys",
        ),
        ("catalog.toml", 'id = "workflows"', 'id = "organizations"', "duplicate query id"),
        ("catalog.toml", '"dataverse/flowruns.odata"', '"dataverse/nope.odata"', "is missing"),
        ("catalog.toml", 'source = "dataverse"', 'source = "fetchxml"', "must be one of"),
        ("catalog.toml", 'watermark = "createdon"', 'watermark = "modifiedon"', r"not in \$select"),
        ("dataverse/flowruns.odata", "{end}", "{until}", "unknown placeholders"),
        ("dataverse/flowruns.odata", "GET flowruns", "GET flowrun", "entity_set"),
        ("dataverse/flowruns.odata", "&$orderby", "&orderby", "unknown query option"),
    ],
)
def test_broken_catalogs_are_rejected(
    catalog_copy: Path, file: str, old: str, new: str, message: str
) -> None:
    edit(catalog_copy / file, old, new)
    with pytest.raises(DefinitionError, match=message):
        load_catalog(catalog_copy)
