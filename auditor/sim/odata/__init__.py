"""The OData v4 subset of the Dataverse Web API, evaluated on pandas frames.

Covers what the collectors send and what Microsoft documents for reading rows:
`$select`, `$filter` (comparison, logical and grouping operators, `startswith` /
`endswith` / `contains`, parameter aliases), `$orderby`, `$top`, `$count`, `$expand` of
single-valued navigation properties with nested `$select` / `$expand`, `Prefer:
odata.maxpagesize` and `odata.include-annotations`, and paging with an opaque `$skiptoken`.
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/overview

Queries are evaluated column-wise: a filter is one boolean mask over the whole table, the
order is one `numpy.lexsort` over integer sort codes cached per column, and the resulting row
positions are cached per (table, filter, order, clock) so that paging a million-row table
costs one evaluation, not one per page.

One module per part: `errors` (the error body), `filter_syntax` (tokens, syntax tree,
parser), `filter_eval` (masks over frames), `query` (the validated query options),
`paging` (`Prefer`, `$skiptoken`, next links), `values` (values as JSON), `labels`
(formatted values) and `store` (the cached engine that serves rows).
"""

from __future__ import annotations

from auditor.sim.odata.errors import QUERY_ERROR_CODE, ODataError, logical_name
from auditor.sim.odata.filter_eval import FilterEvaluator, Mask, fill_mask
from auditor.sim.odata.filter_syntax import (
    COMPARISONS,
    FUNCTIONS,
    BoolOp,
    Call,
    Column,
    Compare,
    Literal,
    Node,
    Not,
    Operand,
    columns_of,
    parse_filter,
    tokenize,
)
from auditor.sim.odata.labels import CHOICE_LABELS, FORMATTED_VALUE, LOOKUP_NAMES, PRIMARY_NAMES
from auditor.sim.odata.paging import (
    MAX_COUNT,
    MAX_PAGE_SIZE,
    TOTAL_COUNT,
    TOTAL_COUNT_EXCEEDED,
    Preferences,
    decode_skiptoken,
    encode_skiptoken,
    next_link,
    parse_prefer,
)
from auditor.sim.odata.query import ColumnsOf, EntityQuery, Expand, context_url, parse_query
from auditor.sim.odata.store import Page, Positions, TableStore
from auditor.sim.odata.values import format_timestamps, json_values, objects, utc

__all__ = [
    "CHOICE_LABELS",
    "COMPARISONS",
    "FORMATTED_VALUE",
    "FUNCTIONS",
    "LOOKUP_NAMES",
    "MAX_COUNT",
    "MAX_PAGE_SIZE",
    "PRIMARY_NAMES",
    "QUERY_ERROR_CODE",
    "TOTAL_COUNT",
    "TOTAL_COUNT_EXCEEDED",
    "BoolOp",
    "Call",
    "Column",
    "ColumnsOf",
    "Compare",
    "EntityQuery",
    "Expand",
    "FilterEvaluator",
    "Literal",
    "Mask",
    "Node",
    "Not",
    "ODataError",
    "Operand",
    "Page",
    "Positions",
    "Preferences",
    "TableStore",
    "columns_of",
    "context_url",
    "decode_skiptoken",
    "encode_skiptoken",
    "fill_mask",
    "format_timestamps",
    "json_values",
    "logical_name",
    "next_link",
    "objects",
    "parse_filter",
    "parse_prefer",
    "parse_query",
    "tokenize",
    "utc",
]
