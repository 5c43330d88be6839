"""The column contract: every column a query names is documented by Microsoft, and the
simulator refuses the others with Dataverse's 400 the way a real environment would."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from auditor.collect import collect
from auditor.collect_types import CollectOptions
from auditor.contract import (
    LEARN,
    comparisons,
    default_contract,
    filter_properties,
    load_contract,
    missing,
    references,
    undocumented_values,
)
from auditor.errors import DefinitionError
from auditor.queries import QuerySpec, default_catalog, load_catalog
from auditor.resources import data_dir
from auditor.settings import load_settings
from auditor.sim.model import SimOptions
from auditor.sim.odata import QUERY_ERROR_CODE, ODataError, TableStore, parse_query
from auditor.sim.scenario import generate
from auditor.sim.server import SimServer
from auditor.sources.base import COLLECTED, NOT_COLLECTED

UNDOCUMENTED = "Could not find a property named 'madeupcolumn'"


def test_every_query_column_is_in_the_contract_with_a_source() -> None:
    contract = default_contract()
    catalog = default_catalog()
    gaps = sorted({ref for spec in catalog.values() for ref in missing(spec, contract)})
    assert not gaps, "not in queries/contract.toml: " + ", ".join(f"{s}.{c}" for s, c in gaps)
    unsourced = sorted(
        f"{entity_set}.{name}"
        for spec in catalog.values()
        for entity_set, name in references(spec, contract)
        if not (
            (prop := contract.entities[entity_set].properties[name]).source.startswith(LEARN)
            or (prop.inferred and prop.note)
        )
    )
    assert not unsourced, "no Learn source and no inferred note: " + ", ".join(unsourced)
    values = sorted({v for spec in catalog.values() for v in undocumented_values(spec, contract)})
    assert not values, "filter values the contract does not list: " + ", ".join(values)


def test_every_dataverse_table_of_the_catalog_is_in_the_contract() -> None:
    contract = default_contract()
    for spec in default_catalog().by_source("dataverse"):
        entity = contract.entities[spec.entity_set]
        assert entity.api == "dataverse"
        assert entity.primary_key in spec.select, spec.id
        assert entity.source == (
            "https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/"
            + entity.logical_name
        )


def spec_of(entity_set: str, **options: str) -> QuerySpec:
    return QuerySpec(
        id="t",
        source="dataverse",
        file=Path("t.odata"),
        entity_set=entity_set,
        path=entity_set,
        options=tuple(options.items()),
        key=(),
        watermark="",
        window="",
        privilege="",
        description="",
    )


def test_references_follow_nested_expands_to_their_target_tables() -> None:
    refs = references(default_catalog()["sdkmessageprocessingsteps"])
    assert ("sdkmessageprocessingsteps", "plugintypeid") in refs  # the navigation property
    assert ("sdkmessageprocessingsteps", "_plugintypeid_value") in refs  # the lookup
    assert ("sdkmessageprocessingsteps", "customizationlevel") in refs  # $filter
    assert ("sdkmessages", "name") in refs
    assert ("sdkmessagefilters", "primaryobjecttypecode") in refs
    assert ("plugintypes", "pluginassemblyid") in refs  # nested $expand
    assert {name for s, name in refs if s == "pluginassemblies"} == {
        "name", "version", "isolationmode", "sourcetype", "ismanaged",
    }  # fmt: skip
    # A navigation the contract lacks is reported; its options cannot be placed.
    odd = spec_of("plugintypes", **{"$expand": "nosuchnav($select=name)"})
    assert missing(odd) == [("plugintypes", "nosuchnav")]


def test_filter_references_are_columns_not_literals_keywords_or_placeholders() -> None:
    text = (
        "(operationtype eq 1 or operationtype eq 10) and not contains(name,'or eq x') "
        "and createdon ge {start} and createdon lt {end} and _regardingobjectid_value ne null "
        "and correlationid eq 5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9 and depth le @max "
        "and startedon gt 2026-11-08T12:00:00Z and retrycount eq -1 and iscustomizable/Value"
    )
    assert filter_properties(text) == [
        "operationtype", "operationtype", "name", "createdon", "createdon",
        "_regardingobjectid_value", "correlationid", "depth", "startedon", "retrycount",
        "iscustomizable/Value",
    ]  # fmt: skip
    assert comparisons(text) == {
        ("operationtype", "1"),
        ("operationtype", "10"),
        ("correlationid", "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"),
        ("startedon", "2026-11-08T12:00:00Z"),
        ("retrycount", "-1"),
    }
    spec = spec_of("asyncoperations", **{"$filter": text, "$orderby": "createdon desc"})
    assert missing(spec) == [("asyncoperations", "iscustomizable")]
    assert comparisons("eventtype eq 'Flow''Run' and 5 lt depth") == {
        ("eventtype", "Flow'Run"),
        ("depth", "5"),
    }


def test_the_simulator_serves_only_documented_columns_with_dataverse_error() -> None:
    store = TableStore(
        {
            "plugintypes": pd.DataFrame(
                {"plugintypeid": ["t1"], "typename": ["A.B"], "madeupcolumn": ["x"]}
            ),
            "plugintracelogs": pd.DataFrame(
                {"plugintracelogid": ["p1"], "depth": [1], "madeupcolumn": [1]}
            ),
            "sdkmessageprocessingsteps": pd.DataFrame(
                {"sdkmessageprocessingstepid": ["s1"], "_plugintypeid_value": ["t1"]}
            ),
        }
    )
    assert "madeupcolumn" not in store.columns("plugintracelogs")
    for params in (
        {"$select": "depth,madeupcolumn"},
        {"$filter": "madeupcolumn eq 1"},
        {"$orderby": "madeupcolumn desc"},
    ):
        with pytest.raises(ODataError) as raised:
            parse_query("plugintracelogs", params, store.columns)
        assert raised.value.status == 400
        assert raised.value.body() == {
            "error": {
                "code": QUERY_ERROR_CODE,
                "message": f"{UNDOCUMENTED} on type 'Microsoft.Dynamics.CRM.plugintracelog'.",
            }
        }
    with pytest.raises(
        ODataError, match=f"{UNDOCUMENTED} on type 'Microsoft.Dynamics.CRM.plugintype'"
    ):
        parse_query(
            "sdkmessageprocessingsteps",
            {"$expand": "plugintypeid($select=typename,madeupcolumn)"},
            store.columns,
        )


@pytest.fixture
def contract_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "queries"
    shutil.copytree(data_dir("queries"), folder)
    return folder


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('logical_name = "flowrun"', 'logical_name = "flowrun"\ncolour = "x"', "unknown keys"),
        ('"isprimary", type', '"isprimary", colour = 1, type', "unknown keys"),
        ('type = "Picklist" },', 'type = "Picklst" },', "unknown type"),
        (
            'source = "https://learn.microsoft.com/power-apps/developer/data-platform/reference/'
            'entities/flowrun"',
            'source = "https://example.com/flowrun"',
            "must be a page on https://learn.microsoft.com/",
        ),
        ('attribute = "workflow", type = "Lookup"', 'attribute = "wf", type = "Lookup"', "`x`"),
        ('inferred = true, note = "Not in', 'inferred = true, nope = "Not in', "unknown keys"),
        ('column = "category"', 'column = "nosuchcolumn"', "not a contract column"),
        ('target = "pluginassemblies"', 'target = "nowhere"', "does not list"),
    ],
)
def test_broken_contracts_are_rejected(
    contract_copy: Path, old: str, new: str, message: str
) -> None:
    edit(contract_copy / "contract.toml", old, new)
    with pytest.raises(DefinitionError, match=message):
        load_contract(contract_copy)


def test_an_inferred_entry_needs_a_note(contract_copy: Path) -> None:
    edit(
        contract_copy / "contract.toml",
        'inferred = true, note = "Environment id',
        'inferred = true, spec = "Environment id',
    )
    with pytest.raises(DefinitionError, match="needs a `note`"):
        load_contract(contract_copy)


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[SimServer, Path]]:
    tenant = generate(7, "tiny")
    server = SimServer(tenant, SimOptions(seed=7, scale="tiny"))
    server.start()
    folder = tmp_path / "sim"
    server.write_client_files(folder)
    yield server, folder
    server.stop()


@pytest.mark.slow
def test_an_undocumented_column_is_reported_and_refused_by_the_simulator(
    contract_copy: Path,
    simulator: tuple[SimServer, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    edit(
        contract_copy / "dataverse" / "workflows.odata",
        "?$select=workflowid,",
        "?$select=workflowid,madeupcolumn,",
    )
    catalog = load_catalog(contract_copy)
    assert missing(catalog["workflows"]) == [("workflows", "madeupcolumn")]

    server, folder = simulator
    monkeypatch.setenv("SSL_CERT_FILE", str(folder / "ca.pem"))
    settings = load_settings(
        {"config": folder / "auditor.toml", "store_path": tmp_path / "s.duckdb"},
        environ={"AZURE_CLIENT_SECRET": server.tenant.client_secret},
        cwd=folder,
    )
    options = CollectOptions(
        environments=("Contoso Production",), since=timedelta(days=2), action_sample=0
    )
    summary = asyncio.run(collect(settings, options, catalog=catalog))
    outcomes = {o.query_id: o for o in summary.outcomes}
    refused = outcomes["workflows"]
    assert refused.status == NOT_COLLECTED
    assert refused.reason is not None
    assert "answered 400" in refused.reason
    assert f"{UNDOCUMENTED} on type 'Microsoft.Dynamics.CRM.workflow'" in refused.reason
    others = [
        o for q, o in outcomes.items() if q in ("organizations", "flowruns", "asyncoperations")
    ]
    assert [o.status for o in others] == [COLLECTED] * 3
