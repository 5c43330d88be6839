"""The simulator's OData engine on plain frames: operators, order, paging, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from auditor.sim import odata
from auditor.sim.odata import ODataError, Preferences, TableStore, parse_prefer, parse_query

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
IDS = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(6)]


def traces() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "plugintracelogid": IDS,
            "typename": ["Contoso.A", "contoso.B", "Fabrikam.C", None, "Contoso.'Quoted'", "Zeta"],
            "depth": pd.array([1, 2, 3, None, 2, 1], dtype="Int64"),
            "performanceexecutionduration": pd.array(
                [10, 2500, 300, 4000, None, 2000], dtype="Int64"
            ),
            "issystemcreated": [False, True, False, False, True, False],
            "correlationid": [IDS[0], IDS[0], IDS[2], IDS[3], IDS[4], IDS[5]],
            "createdon": pd.to_datetime(
                [
                    "2026-11-10T00:00:00Z",
                    "2026-11-11T00:00:00Z",
                    "2026-11-12T00:00:00Z",
                    "2026-11-13T00:00:00Z",
                    "2026-11-14T00:00:00Z",
                    "2026-11-16T00:00:00Z",  # after NOW: not served yet
                ],
                utc=True,
            ),
            "mode": pd.array([0, 1, 0, 1, 0, 1], dtype="Int64"),
            "_sim_secret": [1, 2, 3, 4, 5, 6],
        }
    )


def ids(
    filter_text: str | None = None, orderby: str | None = None, frame: pd.DataFrame | None = None
) -> list[int]:
    """Row numbers (last digit of the id) the query returns, in order."""
    store = TableStore({"plugintracelogs": traces() if frame is None else frame})
    params = {}
    if filter_text is not None:
        params["$filter"] = filter_text
    if orderby is not None:
        params["$orderby"] = orderby
    query = parse_query("plugintracelogs", params, store.columns)
    page = store.page(query, NOW, 0, 5000, Preferences())
    return [int(row["plugintracelogid"][-1]) for row in page.rows]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("depth eq 2", [1, 4]),
        ("depth ne 2", [0, 2, 3]),  # OData: null ne 2 is true
        ("performanceexecutionduration gt 300", [1, 3]),
        ("performanceexecutionduration ge 300", [1, 2, 3]),
        ("performanceexecutionduration lt 300", [0]),
        ("performanceexecutionduration le 300", [0, 2]),
        ("300 lt performanceexecutionduration", [1, 3]),  # literal on the left
        ("depth eq 1 or depth eq 3", [0, 2]),
        ("depth ge 2 and performanceexecutionduration gt 1000", [1]),
        ("not (depth eq 2)", [0, 2, 3]),
        ("not depth eq 2 and typename ne null", [0, 2]),
        ("(depth eq 1 or depth eq 2) and issystemcreated eq true", [1, 4]),
        ("depth eq 1 or depth eq 2 and issystemcreated eq true", [0, 1, 4]),  # and binds tighter
        ("typename eq null", [3]),
        ("typename ne null", [0, 1, 2, 4]),
        ("null eq typename", [3]),
        ("typename eq 'CONTOSO.A'", [0]),  # strings compare case-insensitively
        ("startswith(typename,'contoso')", [0, 1, 4]),
        ("endswith(typename,'.c')", [2]),
        ("contains(typename,'''quoted''')", [4]),  # '' is an escaped quote
        ("typename eq 'Contoso.''Quoted'''", [4]),
        (f"correlationid eq {IDS[0].upper()}", [0, 1]),  # GUID literal, any case
        (f"correlationid eq '{IDS[2]}'", [2]),
        ("createdon ge 2026-11-12T00:00:00Z", [2, 3, 4]),  # rows after NOW never show
        ("createdon lt 2026-11-11T00:00:00.000Z and createdon gt 2026-11-09T23:00:00+01:00", [0]),
        ("createdon ge 2026-11-13", [3, 4]),
        ("issystemcreated eq false", [0, 2, 3]),
        ("issystemcreated", [1, 4]),
        ("depth le 2.5", [0, 1, 4]),
        ("depth ge @min and typename ne @name", [2, 4]),
    ],
)
def test_each_filter_operator_selects_the_documented_rows(
    expression: str, expected: list[int]
) -> None:
    store = TableStore({"plugintracelogs": traces()})
    params = {"$filter": expression, "@min": "2", "@name": "'contoso.b'"}
    query = parse_query("plugintracelogs", params, store.columns)
    rows = store.page(query, NOW, 0, 5000, Preferences()).rows
    assert [int(r["plugintracelogid"][-1]) for r in rows] == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("depth eq", "Syntax error"),
        ("depth eq 1 and", "Syntax error"),
        ("(depth eq 1", "')' expected"),
        ("depth === 1", "Syntax error"),
        ("typename eq 'open", "Syntax error"),
        ("depth eq 'two'", "incompatible types"),
        ("createdon gt 5", "incompatible types"),
        ("nosuchcolumn eq 1", "Could not find a property named 'nosuchcolumn'"),
        ("_sim_secret eq 1", "Could not find a property named '_sim_secret'"),
        ("substringof('a',typename)", "unknown function"),
        ("startswith(typename)", "takes 2 arguments"),
        ("depth eq @undefined", "parameter alias"),
        ("depth", "not a Boolean expression"),
    ],
)
def test_bad_filters_raise_the_documented_error(expression: str, message: str) -> None:
    with pytest.raises(ODataError) as caught:
        ids(expression)
    assert caught.value.status == 400
    assert caught.value.body()["error"]["code"] == "0x80060888"
    assert message in caught.value.message


def test_select_is_validated_and_always_returns_the_primary_key() -> None:
    store = TableStore({"plugintracelogs": traces()})
    query = parse_query("plugintracelogs", {"$select": "typename,depth"}, store.columns)
    row = store.page(query, NOW, 0, 1, Preferences()).rows[0]
    assert list(row) == ["@odata.etag", "typename", "depth", "plugintracelogid"]
    with pytest.raises(
        ODataError,
        match=r"Could not find a property named 'bogus' on type 'Microsoft\.Dynamics\.CRM\.",
    ):
        parse_query("plugintracelogs", {"$select": "typename,bogus"}, store.columns)
    everything = parse_query("plugintracelogs", {}, store.columns)
    assert "_sim_secret" not in everything.select
    with pytest.raises(ODataError, match=r"\$skip is not supported"):
        parse_query("plugintracelogs", {"$skip": "5"}, store.columns)


def test_orderby_several_columns_nulls_first_ascending_and_primary_key_breaks_ties() -> None:
    assert ids(orderby="depth asc,performanceexecutionduration desc") == [3, 0, 1, 4, 2]
    assert ids(orderby="depth desc") == [2, 1, 4, 0, 3]
    assert ids(orderby="typename") == [3, 4, 0, 1, 2]  # case-insensitive like the collation
    assert ids() == [0, 1, 2, 3, 4]  # primary key order by default
    with pytest.raises(ODataError, match="not valid"):
        ids(orderby="depth sideways")


def test_timestamps_ints_and_nulls_are_serialised_as_dataverse_does() -> None:
    store = TableStore({"plugintracelogs": traces()})
    query = parse_query(
        "plugintracelogs", {"$select": "createdon,depth,typename,issystemcreated"}, store.columns
    )
    rows = store.page(query, NOW, 3, 1, Preferences()).rows
    assert rows[0]["createdon"] == "2026-11-13T00:00:00Z"
    assert rows[0]["depth"] is None
    assert rows[0]["typename"] is None
    assert rows[0]["issystemcreated"] is False
    assert rows[0]["@odata.etag"].startswith('W/"')


def test_formatted_values_come_only_when_asked_and_only_for_choices() -> None:
    store = TableStore({"plugintracelogs": traces()})
    query = parse_query("plugintracelogs", {"$select": "mode,depth"}, store.columns)
    plain = store.page(query, NOW, 0, 2, Preferences()).rows
    assert not any("@" in key for row in plain for key in row if key != "@odata.etag")
    for prefs in (
        parse_prefer(['odata.include-annotations="*"']),
        parse_prefer(['odata.include-annotations="OData.Community.Display.V1.FormattedValue"']),
        parse_prefer(['odata.include-annotations="OData.Community.Display.V1.*"']),
    ):
        rows = store.page(query, NOW, 0, 2, prefs).rows
        assert [r["mode@OData.Community.Display.V1.FormattedValue"] for r in rows] == [
            "Synchronous",
            "Asynchronous",
        ]
        assert "depth@OData.Community.Display.V1.FormattedValue" not in rows[0]
        assert list(rows[0])[1:3] == ["mode@OData.Community.Display.V1.FormattedValue", "mode"]


def test_prefer_header_parsing() -> None:
    prefs = parse_prefer(['odata.maxpagesize=10, odata.include-annotations="a.b,c.d"'])
    assert prefs == Preferences(10, ("a.b", "c.d"))
    assert parse_prefer(["odata.maxpagesize=99999"]).maxpagesize == 5000
    assert parse_prefer(["odata.maxpagesize=0"]).maxpagesize is None
    two = parse_prefer(["odata.maxpagesize=7", 'odata.include-annotations="*"'])
    assert two.maxpagesize == 7
    assert two.wants("anything")
    assert two.applied() == 'odata.maxpagesize=7,odata.include-annotations="*"'


def test_skiptoken_round_trips_and_forged_tokens_are_refused() -> None:
    token = odata.encode_skiptoken(3, 1000, NOW)
    assert token.startswith('<cookie pagenumber="3" pagingcookie="')
    assert odata.decode_skiptoken(token) == (3, 1000, NOW)
    for forged in (
        "1000",
        '<cookie pagenumber="2" pagingcookie="bm90IGpzb24=" istracking="False" />',
    ):
        with pytest.raises(ODataError, match="skiptoken"):
            odata.decode_skiptoken(forged)


def test_row_order_is_computed_once_for_all_pages_of_a_big_table() -> None:
    n = 60_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "plugintracelogid": [
                f"{i:08x}-0000-4000-8000-000000000000" for i in rng.permutation(n)
            ],
            "performanceexecutionduration": pd.array(rng.integers(0, 5000, n), dtype="Int64"),
            "createdon": pd.Timestamp("2026-11-01T00:00:00Z")
            + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
        }
    )
    store = TableStore({"plugintracelogs": frame})
    params = {
        "$filter": "performanceexecutionduration ge 1000",
        "$orderby": "createdon desc",
        "$count": "true",
    }
    query = parse_query("plugintracelogs", params, store.columns)
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = store.page(query, NOW, offset, 5000, Preferences())
        seen.extend(r["plugintracelogid"] for r in page.rows)
        offset = page.next_offset
    expected = frame[frame.performanceexecutionduration >= 1000]
    assert len(seen) == len(set(seen)) == len(expected) > 5000
    assert store.index_builds == 1
    stamps = frame.set_index("plugintracelogid").loc[seen, "createdon"]
    assert stamps.is_monotonic_decreasing


def test_expand_follows_lookups_and_nests() -> None:
    steps = pd.DataFrame(
        {
            "sdkmessageprocessingstepid": IDS[:3],
            "name": ["a", "b", "c"],
            "_plugintypeid_value": [IDS[4], None, IDS[5].upper()],
        }
    )
    types = pd.DataFrame(
        {
            "plugintypeid": [IDS[4], IDS[5]],
            "typename": ["T4", "T5"],
            "_pluginassemblyid_value": [IDS[1], None],
        }
    )
    assemblies = pd.DataFrame(
        {
            "pluginassemblyid": [IDS[1]],
            "name": ["Asm"],
            "isolationmode": pd.array([2], dtype="Int64"),
        }
    )
    store = TableStore(
        {"sdkmessageprocessingsteps": steps, "plugintypes": types, "pluginassemblies": assemblies}
    )
    params = {
        "$select": "name",
        "$expand": (
            "plugintypeid($select=typename;$expand=pluginassemblyid($select=name,isolationmode))"
        ),
    }
    query = parse_query("sdkmessageprocessingsteps", params, store.columns)
    rows = store.page(query, NOW, 0, 10, parse_prefer(['odata.include-annotations="*"'])).rows
    assert rows[0]["plugintypeid"]["typename"] == "T4"
    assert rows[0]["plugintypeid"]["pluginassemblyid"]["name"] == "Asm"
    assert (
        rows[0]["plugintypeid"]["pluginassemblyid"][
            "isolationmode@OData.Community.Display.V1.FormattedValue"
        ]
        == "Sandbox"
    )
    assert rows[1]["plugintypeid"] is None
    assert rows[2]["plugintypeid"]["pluginassemblyid"] is None
    assert query.sets() == {"sdkmessageprocessingsteps", "plugintypes", "pluginassemblies"}
    with pytest.raises(ODataError, match="Could not find a property named 'nope'"):
        parse_query("sdkmessageprocessingsteps", {"$expand": "nope"}, store.columns)
    with pytest.raises(ODataError, match="not supported inside"):
        parse_query("sdkmessageprocessingsteps", {"$expand": "plugintypeid($top=1)"}, store.columns)
