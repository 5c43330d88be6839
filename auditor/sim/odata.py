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
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditor.contract import default_contract
from auditor.sim.model import NAVIGATIONS, PRIMARY_KEYS, VISIBLE_BY

MAX_PAGE_SIZE = 5000  # default and maximum odata.maxpagesize
MAX_COUNT = 5000  # $count=true is capped at 5,000 (count-rows.md)
QUERY_ERROR_CODE = "0x80060888"
FORMATTED_VALUE = "OData.Community.Display.V1.FormattedValue"
TOTAL_COUNT = "Microsoft.Dynamics.CRM.totalrecordcount"
TOTAL_COUNT_EXCEEDED = "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"

Positions = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


class ODataError(Exception):
    """A query the Web API would refuse: HTTP status plus the `error.code` / `message`."""

    def __init__(self, message: str, status: int = 400, code: str = QUERY_ERROR_CODE) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        """The documented error body: {"error": {"code": ..., "message": ...}}."""
        return {"error": {"code": self.code, "message": self.message}}


# A lookup's formatted value is the primary name of the row it points to: lookup column ->
# target entity set, per source entity set.
# https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/select-columns#formatted-values
LOOKUP_NAMES: Mapping[str, Mapping[str, str]] = {
    "flowruns": {"_workflow_value": "workflows"},
}
# PrimaryNameAttribute of the targets (the generated table reference pages).
PRIMARY_NAMES: Mapping[str, str] = {"workflows": "name"}


def logical_name(entity_set: str) -> str:
    """`pluginassemblies` -> `pluginassembly`, `workflows` -> `workflow`."""
    if entity_set.endswith("ies"):
        return entity_set[:-3] + "y"
    return entity_set[:-1] if entity_set.endswith("s") else entity_set


def _no_property(entity_set: str, name: str) -> ODataError:
    return ODataError(
        f"Could not find a property named '{name}' on type "
        f"'Microsoft.Dynamics.CRM.{logical_name(entity_set)}'."
    )


# --------------------------------------------------------------------------------------
# Choice labels for `OData.Community.Display.V1.FormattedValue`, from the generated table
# reference pages (https://learn.microsoft.com/power-apps/developer/data-platform/reference/
# entities/<table>), as listed with their pages in queries/contract.toml.

_ASYNC_OPERATION_TYPES = {
    1: "System Event", 2: "Bulk Email", 3: "Import File Parse", 4: "Transform Parse Data",
    5: "Import", 6: "Activity Propagation", 7: "Duplicate Detection Rule Publish",
    8: "Bulk Duplicate Detection", 9: "SQM Data Collection", 10: "Workflow",
    11: "Quick Campaign", 12: "Matchcode Update", 13: "Bulk Delete", 14: "Deletion Service",
    15: "Index Management", 16: "Collect Organization Statistics", 17: "Import Subprocess",
    18: "Calculate Organization Storage Size", 19: "Collect Organization Database Statistics",
    20: "Collection Organization Size Statistics", 21: "Database Tuning",
    22: "Calculate Organization Maximum Storage Size", 23: "Bulk Delete Subprocess",
    24: "Update Statistic Intervals", 25: "Organization Full Text Catalog Index",
    26: "Database log backup", 27: "Update Contract States",
    28: "DBCC SHRINKDATABASE maintenance job", 29: "DBCC SHRINKFILE maintenance job",
    30: "Reindex all indices maintenance job", 31: "Storage Limit Notification",
    32: "Cleanup inactive workflow assemblies", 35: "Recurring Series Expansion",
    38: "Import Sample Data", 40: "Goal Roll Up", 41: "Audit Partition Creation",
    42: "Check For Language Pack Updates", 43: "Provision Language Pack",
    44: "Update Organization Database", 45: "Update Solution",
    46: "Regenerate Entity Row Count Snapshot Data", 47: "Regenerate Read Share Snapshot Data",
    49: "Post to Yammer", 50: "Outgoing Activity", 51: "Incoming Email Processing",
    52: "Mailbox Test Access", 53: "Encryption Health Check", 54: "Execute Async Request",
    56: "Update Entitlement States", 57: "Calculate Rollup Field",
    58: "Mass Calculate Rollup Field", 59: "Import Translation",
    62: "Convert Date And Time Behavior", 63: "EntityKey Index Creation",
    65: "Update Knowledge Article States", 68: "Resource Booking Sync",
    69: "Relationship Assistant Cards", 71: "Cleanup Solution Components",
    72: "App Module Metadata Operation", 73: "ALM Anomaly Detection Operation",
    75: "Flow Notification", 76: "Ribbon Client Metadata Operation",
    79: "CallbackRegistration Expander Operation", 85: "Migrate notes to attachments job",
    86: "Migrate article content to file storage",
    87: "Updated Deactived On for Resolved Cases job", 90: "CascadeAssign",
    91: "CascadeDelete", 92: "Event Expander Operation", 93: "Import Solution Metadata",
    94: "Bulk Delete File Attachment",
    95: "Refresh Business Unit for Records Owned By Principal", 96: "Revoke Inherited Access",
    98: "Create Or Refresh Virtual Entity",
    100: "Cascade FlowSession Permissions Async Operation",
    101: "Update Modern Flow Async Operation", 102: "AsyncArchive Async Operation",
    103: "Cancel Async Operations (System)", 201: "Provision language for user",
    202: "Export Solution Async Operation", 203: "Import Solution Async Operation",
    204: "PublishAll Async Operation", 207: "DeleteAndPromote Async Operation",
    208: "UninstallSolution Async Operation", 209: "ProvisionLanguage Async Operation",
    210: "ImportTranslation Async Operation", 211: "StageAndUpgrade Async Operation",
    239: "Denormalization Async Operation",
    250: "Refresh Runtime Integration Components Async Operation",
    300: "Bulk Archive Operation", 301: "Archive Execution Async Operation",
    302: "FinOps Deployment Async Operation", 304: "Purge Archived Content Operation",
    305: "Register Offering Async Operation", 306: "Execute DataProcessing Configuration",
    307: "Sync Synapse Tables Schema", 308: "FinOps DB Sync Async Operation",
    309: "FinOps Unit Test Async Operation",
    12801: "Cascade Grant or Revoke Access Version Tracking Async Operation",
    190690091: "AI Builder Training Events", 190690092: "AI Builder Prediction Events",
}  # fmt: skip

_SYNC_ASYNC = {0: "Synchronous", 1: "Asynchronous"}

CHOICE_LABELS: Mapping[str, Mapping[str, Mapping[int, str]]] = {
    "plugintracelogs": {
        "mode": _SYNC_ASYNC,
        "operationtype": {0: "Unknown", 1: "Plug-in", 2: "Workflow Activity"},
    },
    "asyncoperations": {
        "operationtype": _ASYNC_OPERATION_TYPES,
        "statecode": {0: "Ready", 1: "Suspended", 2: "Locked", 3: "Completed"},
        "statuscode": {
            0: "Waiting For Resources", 10: "Waiting", 20: "In Progress", 21: "Pausing",
            22: "Canceling", 30: "Succeeded", 31: "Failed", 32: "Canceled",
        },
    },
    "sdkmessageprocessingsteps": {
        "stage": {
            5: "Initial Pre-operation (For internal use only)", 10: "Pre-validation",
            15: "Internal Pre-operation Before External Plugins (For internal use only)",
            20: "Pre-operation",
            25: "Internal Pre-operation After External Plugins (For internal use only)",
            30: "Main Operation (For internal use only)",
            35: "Internal Post-operation Before External Plugins (For internal use only)",
            40: "Post-operation",
            45: "Internal Post-operation After External Plugins (For internal use only)",
            50: "Post-operation (Deprecated)", 55: "Final Post-operation (For internal use only)",
            80: "Pre-Commit stage fired before transaction commit (For internal use only)",
            90: "Post-Commit stage fired after transaction commit (For internal use only)",
        },
        "mode": _SYNC_ASYNC,
        "statecode": {0: "Enabled", 1: "Disabled"},
        "statuscode": {1: "Enabled", 2: "Disabled"},
    },
    "workflows": {
        "category": {
            0: "Workflow", 1: "Dialog", 2: "Business Rule", 3: "Action",
            4: "Business Process Flow", 5: "Modern Flow", 6: "Desktop Flow", 7: "AI Flow",
        },
        "type": {1: "Definition", 2: "Activation", 3: "Template"},
        "statecode": {0: "Draft", 1: "Activated", 2: "Suspended"},
        "statuscode": {1: "Draft", 2: "Activated", 3: "CompanyDLPViolation"},
    },
    "callbackregistrations": {
        "message": {
            1: "Create", 2: "Delete", 3: "Update", 4: "Create or Update",
            5: "Create or Delete", 6: "Update or Delete", 7: "Create or Update or Delete",
        },
        "scope": {1: "User", 2: "BusinessUnit", 3: "ParentChildBusinessUnit", 4: "Organization"},
        "runas": {1: "Triggering User", 2: "Record Owner", 3: "Process Owner"},
    },
    "organizations": {"plugintracelogsetting": {0: "Off", 1: "Exception", 2: "All"}},
    "pluginassemblies": {
        "isolationmode": {1: "None", 2: "Sandbox", 3: "External"},
        "sourcetype": {0: "Database", 1: "Disk", 2: "Normal", 3: "AzureWebApp", 4: "File Store"},
    },
}  # fmt: skip


# --------------------------------------------------------------------------------------
# $filter: tokens, syntax tree, parser.

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<punct>[(),])
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.]))
  | (?P<alias>@[A-Za-z_]\w*)
  | (?P<name>[A-Za-z_]\w*(?:/[A-Za-z_]\w*)*)
    """,
    re.VERBOSE,
)

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
FUNCTIONS = ("startswith", "endswith", "contains")
_OPERATOR_KIND = {
    "eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual", "lt": "LessThan", "le": "LessThanOrEqual",
}  # fmt: skip


@dataclass(frozen=True)
class Literal:
    """A constant: kind is string, int, float, bool, null, guid, datetime or date."""

    kind: str
    value: Any


@dataclass(frozen=True)
class Column:
    """A property of the row."""

    name: str


@dataclass(frozen=True)
class Compare:
    """`left op right` with op one of eq, ne, gt, ge, lt, le."""

    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True)
class Call:
    """A string function such as `startswith(col,'x')`."""

    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True)
class BoolOp:
    """`and` / `or` of two conditions."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    """`not condition`."""

    operand: Node


Operand = Literal | Column
Node = Compare | Call | BoolOp | Not | Column | Literal


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _literal(kind: str, text: str) -> Literal:
    if kind == "string":
        return Literal("string", text[1:-1].replace("''", "'"))
    if kind == "guid":
        return Literal("guid", text.lower())
    if kind == "datetime":
        return Literal("datetime", _parse_datetime(text))
    if kind == "date":
        return Literal("date", pd.Timestamp(text, tz="UTC"))
    if kind == "number":
        if re.fullmatch(r"-?\d+", text):
            return Literal("int", int(text))
        return Literal("float", float(text))
    raise AssertionError(kind)


def _parse_datetime(text: str) -> pd.Timestamp:
    stamp = pd.Timestamp(text)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def tokenize(text: str, aliases: Mapping[str, str] | None = None) -> list[_Token]:
    """Split a `$filter` into tokens; `@p` aliases are replaced by their literal."""
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ODataError(f"Syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "alias":
            alias = (aliases or {}).get(value)
            if alias is None:
                raise ODataError(f"The parameter alias '{value}' is not defined in the query.")
            inner = [t for t in tokenize(alias) if t.kind != "ws"]
            if len(inner) != 1 or inner[0].kind in ("punct", "name", "alias"):
                raise ODataError(f"The value of parameter alias '{value}' is not a literal.")
            tokens.append(_Token(inner[0].kind, inner[0].text, match.start()))
        elif kind != "ws":
            tokens.append(_Token(kind, value, match.start()))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over the OData boolean expression grammar (or < and < not)."""

    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0

    def error(self, what: str) -> ODataError:
        pos = self.tokens[self.i].pos if self.i < len(self.tokens) else len(self.text)
        return ODataError(f"Syntax error: {what} at position {pos} in '{self.text}'.")

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "name" and token.text == word:
            self.i += 1
            return True
        return False

    def punct(self, char: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "punct" and token.text == char:
            self.i += 1
            return True
        return False

    def parse(self) -> Node:
        node = self.parse_or()
        if self.peek() is not None:
            raise self.error(f"unexpected '{self.tokens[self.i].text}'")
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.keyword("or"):
            node = BoolOp("or", node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        while self.keyword("and"):
            node = BoolOp("and", node, self.parse_not())
        return node

    def parse_not(self) -> Node:
        if self.keyword("not"):
            return Not(self.parse_not())
        return self.parse_comparison()

    def parse_comparison(self) -> Node:
        left = self.parse_primary()
        token = self.peek()
        if token is not None and token.kind == "name" and token.text in COMPARISONS:
            self.i += 1
            if not isinstance(left, Literal | Column):
                raise self.error(f"'{token.text}' needs a property or a literal on its left")
            right = self.parse_primary()
            if not isinstance(right, Literal | Column):
                raise self.error(f"'{token.text}' needs a property or a literal on its right")
            return Compare(token.text, left, right)
        return left

    def parse_primary(self) -> Node:
        token = self.peek()
        if token is None:
            raise self.error("unexpected end of expression")
        if self.punct("("):
            node = self.parse_or()
            if not self.punct(")"):
                raise self.error("')' expected")
            return node
        if token.kind == "name":
            self.i += 1
            if token.text in ("true", "false"):
                return Literal("bool", token.text == "true")
            if token.text == "null":
                return Literal("null", None)
            if token.text in ("and", "or", "not", *COMPARISONS):
                raise self.error(f"unexpected '{token.text}'")
            if self.punct("("):
                return self.parse_call(token.text)
            return Column(token.text)
        if token.kind in ("string", "guid", "datetime", "date", "number"):
            self.i += 1
            return _literal(token.kind, token.text)
        raise self.error(f"unexpected '{token.text}'")

    def parse_call(self, name: str) -> Node:
        if name not in FUNCTIONS:
            raise ODataError(f"An unknown function with name '{name}' was found.")
        args: list[Operand] = []
        while True:
            arg = self.parse_primary()
            if not isinstance(arg, Literal | Column):
                raise self.error(f"'{name}' takes properties and literals")
            args.append(arg)
            if self.punct(")"):
                break
            if not self.punct(","):
                raise self.error("',' or ')' expected")
        if len(args) != 2:
            raise ODataError(f"The function '{name}' takes 2 arguments, {len(args)} given.")
        return Call(name, tuple(args))


def parse_filter(text: str, aliases: Mapping[str, str] | None = None) -> Node:
    """Parse a `$filter` expression; raises ODataError (400) on bad syntax."""
    if not text.strip():
        raise ODataError("The $filter expression is empty.")
    return _Parser(text, tokenize(text, aliases)).parse()


def columns_of(node: Node) -> set[str]:
    """Every property named in an expression."""
    if isinstance(node, Column):
        return {node.name}
    if isinstance(node, Compare):
        return columns_of(node.left) | columns_of(node.right)
    if isinstance(node, Call):
        return set().union(*(columns_of(a) for a in node.args))
    if isinstance(node, BoolOp):
        return columns_of(node.left) | columns_of(node.right)
    if isinstance(node, Not):
        return columns_of(node.operand)
    return set()


# --------------------------------------------------------------------------------------
# $filter evaluation.


def _edm_type(series: pd.Series) -> str:
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return "Edm.DateTimeOffset"
    if pd.api.types.is_bool_dtype(dtype):
        return "Edm.Boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "Edm.Int32"
    if pd.api.types.is_float_dtype(dtype):
        return "Edm.Double"
    return "Edm.String"


_LITERAL_EDM = {
    "string": "Edm.String", "int": "Edm.Int32", "float": "Edm.Double", "bool": "Edm.Boolean",
    "guid": "Edm.Guid", "datetime": "Edm.DateTimeOffset", "date": "Edm.Date", "null": "null",
}  # fmt: skip
_ACCEPTS = {
    "Edm.DateTimeOffset": {"datetime", "date"},
    "Edm.Boolean": {"bool"},
    "Edm.Int32": {"int", "float"},
    "Edm.Double": {"int", "float"},
    "Edm.String": {"string", "guid"},
}


def fill_mask(values: Any) -> Mask:
    """A boolean mask from a comparison result that may hold NA (NA counts as false)."""
    if isinstance(values, pd.Series):
        if values.dtype == bool:
            return values.to_numpy()
        return values.astype("boolean").fillna(False).to_numpy(dtype=bool)
    return np.asarray(values, dtype=bool)


def _text(series: pd.Series) -> pd.Series:
    """Lower-cased text: Dataverse compares strings case-insensitively (SQL collation)."""
    return series.astype(object).where(series.notna(), None).str.lower()


def _compare_series(op: str, series: pd.Series, literal: Literal) -> Mask:
    if literal.kind == "null":
        if op == "eq":
            return series.isna().to_numpy()
        if op == "ne":
            return series.notna().to_numpy()
        return np.zeros(len(series), dtype=bool)
    edm = _edm_type(series)
    if literal.kind not in _ACCEPTS[edm]:
        raise ODataError(
            "A binary operator with incompatible types was detected. Found operand types "
            f"'{edm}' and '{_LITERAL_EDM[literal.kind]}' for operator kind '{_OPERATOR_KIND[op]}'."
        )
    value: Any = literal.value
    left: pd.Series = series
    if edm == "Edm.String":
        left = _text(series)
        value = str(value).lower()
    elif edm == "Edm.DateTimeOffset" and getattr(series.dtype, "tz", None) is None:
        value = value.tz_convert("UTC").tz_localize(None)
    eq = fill_mask(left == value)
    if op == "eq":
        return eq
    if op == "ne":
        return ~eq  # OData: null ne 'x' is true
    ops: dict[str, Callable[[Any, Any], Any]] = {
        "gt": lambda a, b: a > b,
        "ge": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "le": lambda a, b: a <= b,
    }
    return fill_mask(ops[op](left, value))


_FLIP = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}


class FilterEvaluator:
    """Evaluates a parsed filter to a boolean mask over a frame.

    `column` maps a property name to its series and raises ODataError when there is none,
    so the same evaluator serves Dataverse tables and the flow API's runs.
    """

    def __init__(self, length: int, column: Callable[[str], pd.Series]) -> None:
        self.length = length
        self.column = column

    def mask(self, node: Node) -> Mask:
        """The rows for which `node` is true."""
        if isinstance(node, BoolOp):
            left, right = self.mask(node.left), self.mask(node.right)
            return left & right if node.op == "and" else left | right
        if isinstance(node, Not):
            return ~self.mask(node.operand)
        if isinstance(node, Compare):
            return self._compare(node)
        if isinstance(node, Call):
            return self._call(node)
        if isinstance(node, Column):
            series = self.column(node.name)
            if _edm_type(series) != "Edm.Boolean":
                raise ODataError(f"The property '{node.name}' is not a Boolean expression.")
            return fill_mask(series == True)  # noqa: E712 (element-wise)
        if isinstance(node, Literal) and node.kind == "bool":
            return np.full(self.length, bool(node.value))
        raise ODataError("The $filter expression is not a Boolean expression.")

    def _compare(self, node: Compare) -> Mask:
        left, right, op = node.left, node.right, node.op
        if isinstance(left, Literal) and isinstance(right, Column):
            left, right, op = right, left, _FLIP[op]
        if isinstance(left, Column) and isinstance(right, Literal):
            return _compare_series(op, self.column(left.name), right)
        if isinstance(left, Column) and isinstance(right, Column):
            a, b = self.column(left.name), self.column(right.name)
            if _edm_type(a) != _edm_type(b):
                raise ODataError(
                    "A binary operator with incompatible types was detected. Found operand "
                    f"types '{_edm_type(a)}' and '{_edm_type(b)}' for operator kind "
                    f"'{_OPERATOR_KIND[op]}'."
                )
            ops: dict[str, Callable[[Any, Any], Any]] = {
                "eq": lambda x, y: x == y, "ne": lambda x, y: x != y,
                "gt": lambda x, y: x > y, "ge": lambda x, y: x >= y,
                "lt": lambda x, y: x < y, "le": lambda x, y: x <= y,
            }  # fmt: skip
            return fill_mask(ops[op](a, b))
        raise ODataError("A comparison needs at least one property.")

    def _call(self, node: Call) -> Mask:
        target, needle = node.args
        if not isinstance(target, Column) or not isinstance(needle, Literal):
            raise ODataError(f"'{node.name}' takes a property and a string literal.")
        series = self.column(target.name)
        if _edm_type(series) != "Edm.String" or needle.kind != "string":
            raise ODataError(f"'{node.name}' applies to string properties and string literals.")
        text = _text(series).str
        value = str(needle.value).lower()
        if node.name == "startswith":
            return fill_mask(text.startswith(value))
        if node.name == "endswith":
            return fill_mask(text.endswith(value))
        return fill_mask(text.contains(value, regex=False))


# --------------------------------------------------------------------------------------
# $select, $expand, $orderby and the whole query.


@dataclass(frozen=True)
class Expand:
    """One `$expand` item: a navigation property with its own `$select` / `$expand`."""

    nav: str
    target: str  # entity set of the related row
    lookup: str  # column of the source row holding the target key
    select: tuple[str, ...]
    expand: tuple[Expand, ...] = ()


@dataclass(frozen=True)
class EntityQuery:
    """A validated Dataverse query on one entity set."""

    entity_set: str
    select: tuple[str, ...]  # the columns served, primary key included
    filter: Node | None = None
    orderby: tuple[tuple[str, bool], ...] = ()  # (column, descending)
    expand: tuple[Expand, ...] = ()
    top: int | None = None
    count: bool = False
    selected: bool = False  # whether the client sent $select (else every column is served)

    def sets(self) -> set[str]:
        """Every entity set the query reads (for privilege checks)."""
        found = {self.entity_set}
        stack = list(self.expand)
        while stack:
            item = stack.pop()
            found.add(item.target)
            stack.extend(item.expand)
        return found


def _split_top_level(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and quotes."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for i, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
            if depth < 0:
                raise ODataError(f"Unbalanced parentheses in '{text}'.")
        elif not quoted and depth == 0 and char == sep:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0 or quoted:
        raise ODataError(f"Unbalanced parentheses or quotes in '{text}'.")
    parts.append(text[start:])
    return parts


ColumnsOf = Callable[[str], Sequence[str]]


def _parse_select(entity_set: str, text: str | None, available: Sequence[str]) -> tuple[str, ...]:
    pk = PRIMARY_KEYS[entity_set]
    if text is None or text.strip() in ("", "*"):
        names = [c for c in available if c != pk]
    else:
        names = []
        for raw in text.split(","):
            name = raw.strip()
            if not name:
                raise ODataError(f"The $select '{text}' has an empty item.")
            if name not in available:
                raise _no_property(entity_set, name)
            if name not in names and name != pk:
                names.append(name)
    return (*names, pk)


def _parse_expand(entity_set: str, text: str, columns: ColumnsOf) -> tuple[Expand, ...]:
    items: list[Expand] = []
    for raw in _split_top_level(text, ","):
        item = raw.strip()
        match = re.fullmatch(r"(\w+)\s*(?:\((.*)\))?", item, re.DOTALL)
        if match is None:
            raise ODataError(f"The $expand item '{item}' is not valid.")
        nav_name, options = match.group(1), match.group(2)
        nav = NAVIGATIONS.get(entity_set, {}).get(nav_name)
        if nav is None:
            raise _no_property(entity_set, nav_name)
        select_text: str | None = None
        nested: tuple[Expand, ...] = ()
        for option in _split_top_level(options or "", ";"):
            option = option.strip()
            if not option:
                continue
            key, sep, value = option.partition("=")
            key = key.strip()
            if not sep:
                raise ODataError(f"The $expand option '{option}' is not valid.")
            if key == "$select":
                select_text = value
            elif key == "$expand":
                nested = _parse_expand(nav.target_entity_set, value, columns)
            else:
                raise ODataError(
                    f"The query option '{key}' is not supported inside $expand of the "
                    f"single-valued navigation property '{nav_name}'."
                )
        target = nav.target_entity_set
        select = _parse_select(target, select_text, columns(target))
        items.append(Expand(nav_name, target, nav.lookup_column, select, nested))
    return tuple(items)


def _parse_orderby(
    entity_set: str, text: str, available: Sequence[str]
) -> tuple[tuple[str, bool], ...]:
    keys: list[tuple[str, bool]] = []
    for raw in text.split(","):
        words = raw.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise ODataError(f"The $orderby '{text}' is not valid.")
        if words[0] not in available:
            raise _no_property(entity_set, words[0])
        keys.append((words[0], len(words) == 2 and words[1] == "desc"))
    return tuple(keys)


_SUPPORTED_OPTIONS = ("$select", "$filter", "$orderby", "$top", "$count", "$expand", "$skiptoken")


def parse_query(entity_set: str, params: Mapping[str, str], columns: ColumnsOf) -> EntityQuery:
    """Validate the query options of a GET on an entity set; raise ODataError (400)."""
    for key in params:
        if key.startswith("$") and key not in _SUPPORTED_OPTIONS:
            raise ODataError(f"The query parameter {key} is not supported.")
        if key.lower() == "fetchxml":
            raise ODataError("FetchXML queries are not supported by the simulator.")
    available = columns(entity_set)
    select = _parse_select(entity_set, params.get("$select"), available)
    node: Node | None = None
    if "$filter" in params:
        aliases = {k: v for k, v in params.items() if k.startswith("@")}
        node = parse_filter(params["$filter"], aliases)
        for name in sorted(columns_of(node)):
            if name not in available:
                raise _no_property(entity_set, name)
    orderby = (
        _parse_orderby(entity_set, params["$orderby"], available) if "$orderby" in params else ()
    )
    expand = _parse_expand(entity_set, params["$expand"], columns) if "$expand" in params else ()
    top: int | None = None
    if "$top" in params:
        if not re.fullmatch(r"\d+", params["$top"].strip()) or int(params["$top"]) < 1:
            raise ODataError(f"Invalid value '{params['$top']}' for $top query option found.")
        top = int(params["$top"])
    count_text = params.get("$count", "false").strip().lower()
    if count_text not in ("true", "false"):
        raise ODataError(f"'{params['$count']}' is not a valid count option.")
    selected = "$select" in params and params["$select"].strip() not in ("", "*")
    return EntityQuery(
        entity_set, select, node, orderby, expand, top, count_text == "true", selected
    )


# --------------------------------------------------------------------------------------
# Prefer header and $skiptoken.

_PREFERENCE = re.compile(r'\s*([\w.-]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,;]*))?\s*(?:,|$)')


@dataclass(frozen=True)
class Preferences:
    """The `Prefer` header preferences the simulator honours."""

    maxpagesize: int | None = None
    annotations: tuple[str, ...] = ()

    def wants(self, annotation: str) -> bool:
        """Whether `include-annotations` asks for `annotation` (`*` and `Ns.*` match)."""
        for pattern in self.annotations:
            if pattern == "*" or pattern == annotation:
                return True
            if pattern.endswith(".*") and annotation.startswith(pattern[:-1]):
                return True
        return False

    def applied(self) -> str:
        """The `Preference-Applied` header value ("" when nothing applies)."""
        parts = []
        if self.maxpagesize is not None:
            parts.append(f"odata.maxpagesize={self.maxpagesize}")
        if self.annotations:
            parts.append(f'odata.include-annotations="{",".join(self.annotations)}"')
        return ",".join(parts)


def parse_prefer(headers: Sequence[str]) -> Preferences:
    """Read `odata.maxpagesize` (capped at 5,000) and `odata.include-annotations`."""
    maxpagesize: int | None = None
    annotations: tuple[str, ...] = ()
    for header in headers:
        for match in _PREFERENCE.finditer(header):
            name, value = match.group(1), (match.group(2) or "").strip()
            if not name:
                continue
            if value.startswith('"') and value.endswith('"'):
                value = value[1:-1]
            if name.lower() == "odata.maxpagesize" and value.isdigit() and int(value) > 0:
                maxpagesize = min(int(value), MAX_PAGE_SIZE)
            elif name.lower() == "odata.include-annotations":
                annotations = tuple(a.strip() for a in value.split(",") if a.strip())
    return Preferences(maxpagesize, annotations)


def encode_skiptoken(page: int, offset: int, snapshot: datetime) -> str:
    """The `$skiptoken` value (unencoded) in the shape of Dataverse's paging cookie.

    Dataverse encodes `<cookie pagenumber="2" pagingcookie="..." istracking="False" />`
    (page-results.md). Here the cookie carries the offset into the cached result and the
    clock of the first page, so a clock advance during paging cannot duplicate rows.
    """
    payload = json.dumps({"o": offset, "n": snapshot.isoformat()}, separators=(",", ":"))
    cookie = base64.urlsafe_b64encode(payload.encode()).decode("ascii")
    return f'<cookie pagenumber="{page}" pagingcookie="{cookie}" istracking="False" />'


def decode_skiptoken(token: str) -> tuple[int, int, datetime]:
    """(page number, offset, snapshot clock) from a `$skiptoken`; ODataError when forged."""
    match = re.fullmatch(
        r'<cookie pagenumber="(\d+)" pagingcookie="([\w=-]+)" istracking="False" />', token
    )
    if match is None:
        raise ODataError("The $skiptoken value is not valid.")
    try:
        payload = json.loads(base64.urlsafe_b64decode(match.group(2).encode()))
        offset = int(payload["o"])
        snapshot = datetime.fromisoformat(payload["n"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ODataError("The $skiptoken value is not valid.") from None
    if offset < 0 or snapshot.tzinfo is None:
        raise ODataError("The $skiptoken value is not valid.")
    return int(match.group(1)), offset, snapshot


def next_link(url_without_query: str, raw_query: str, skiptoken: str) -> str:
    """The absolute `@odata.nextLink`: the original options plus a new `$skiptoken`."""
    kept = [
        p
        for p in raw_query.split("&")
        if p and not p.lower().startswith(("$skiptoken=", "%24skiptoken="))
    ]
    kept.append("$skiptoken=" + quote(skiptoken, safe="="))
    return f"{url_without_query}?{'&'.join(kept)}"


# --------------------------------------------------------------------------------------
# Values as JSON.


def format_timestamps(series: pd.Series, fraction_digits: int = 0) -> list[str | None]:
    """UTC timestamps as ISO 8601 with `Z`; `fraction_digits` 0 (Dataverse) or 7 (flow API)."""
    values = series
    if getattr(values.dtype, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    raw = values.to_numpy(dtype="datetime64[us]")
    nat = np.isnat(raw)
    if fraction_digits == 0:
        text = np.datetime_as_string(raw.astype("datetime64[s]"), unit="s")
        suffix = "Z"
    else:
        text = np.datetime_as_string(raw, unit="us")
        suffix = "0Z"  # .NET's 7-digit ticks: microseconds plus one digit
    out: list[str | None] = [t + suffix for t in text.tolist()]
    for i in np.flatnonzero(nat).tolist():
        out[i] = None
    return out


def objects(series: pd.Series) -> list[Any]:
    """Values as Python objects with None for every kind of null (NaN, NA, NaT)."""
    values: list[Any] = series.astype(object).tolist()
    for i in np.flatnonzero(series.isna().to_numpy()).tolist():
        values[i] = None
    return values


def json_values(series: pd.Series) -> list[Any]:
    """Column values as JSON-ready Python objects (None for nulls)."""
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return format_timestamps(series)
    if pd.api.types.is_float_dtype(dtype):
        floats = series.to_numpy(dtype=float, na_value=np.nan)
        return [None if v != v else v for v in floats.tolist()]
    if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        return objects(series)
    values = objects(series)
    return [v if v is None or type(v) is str else _plain(v) for v in values]


def _plain(value: Any) -> Any:
    """Make one object-column value JSON-ready (NaN, numpy scalars, timestamps)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, np.generic):
        return _plain(value.item())
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


# --------------------------------------------------------------------------------------
# The engine: cached row order per query, pages, expansion.


@dataclass
class _TableCache:
    frame: pd.DataFrame
    served: tuple[str, ...]
    sort_codes: dict[str, Positions] = field(default_factory=dict)
    key_positions: dict[str, int] | None = None


@dataclass(frozen=True)
class Page:
    """One page of a query result."""

    rows: list[dict[str, Any]]
    total: int  # rows matching the query (before paging)
    next_offset: int | None  # offset of the next page, None on the last one


class TableStore:
    """Serves queries over one environment's tables with cached row orders.

    The index cache is bounded by the total number of cached positions (least recently used
    first out), so a scan of many time windows does not grow memory without limit.
    """

    def __init__(
        self, tables: Mapping[str, pd.DataFrame], max_cached_positions: int = 16_000_000
    ) -> None:
        self.tables = tables
        self._tables: dict[str, _TableCache] = {}
        self._indexes: OrderedDict[tuple[Any, ...], Positions] = OrderedDict()
        self._cached_positions = 0
        self._max_cached_positions = max_cached_positions
        self.index_builds = 0  # how many times a row order was computed (tests read it)

    def table(self, entity_set: str) -> _TableCache:
        """The cache entry of a table, rebuilt if the frame was replaced."""
        frame = self.tables.get(entity_set)
        if frame is None:
            frame = pd.DataFrame({PRIMARY_KEYS[entity_set]: pd.Series([], dtype=object)})
        cache = self._tables.get(entity_set)
        if cache is None or cache.frame is not frame:
            # Only what Microsoft documents for the table (queries/contract.toml) and the
            # primary key is served: any other name in $select, $filter, $orderby or a nested
            # $expand $select gets Dataverse's 400 {"error": {"code": "0x80060888", "message":
            # "Could not find a property named '<name>' on type 'Microsoft.Dynamics.CRM.<table>'."}}
            # https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
            documented = default_contract().columns(entity_set) | {PRIMARY_KEYS[entity_set]}
            served = tuple(
                str(c)
                for c in frame.columns
                if str(c) in documented and not str(c).startswith("_sim_")
            )
            cache = _TableCache(frame, served)
            self._tables[entity_set] = cache
        return cache

    def columns(self, entity_set: str) -> tuple[str, ...]:
        """The served columns of an entity set (never the `_sim_` ones)."""
        return self.table(entity_set).served

    def _codes(self, cache: _TableCache, column: str) -> Positions:
        codes = cache.sort_codes.get(column)
        if codes is None:
            series = cache.frame[column]
            if pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(
                series.dtype
            ):
                series = _text(series)  # order text case-insensitively, like the collation
            raw, _ = pd.factorize(series, sort=True, use_na_sentinel=True)
            codes = np.asarray(raw, dtype=np.int64)  # nulls are -1: first ascending
            cache.sort_codes[column] = codes
        return codes

    def positions(self, query: EntityQuery, now: datetime) -> Positions:
        """Row positions matching the query, in order, before `$top` and paging."""
        cache = self.table(query.entity_set)
        key = (query.entity_set, id(cache.frame), repr(query.filter), query.orderby, now)
        found = self._indexes.get(key)
        if found is not None:
            self._indexes.move_to_end(key)
            return found
        frame = cache.frame
        mask = np.ones(len(frame), dtype=bool)
        visible_by = VISIBLE_BY.get(query.entity_set)
        if visible_by is not None and visible_by in frame.columns:
            column = frame[visible_by]
            limit: Any = pd.Timestamp(now)
            if getattr(column.dtype, "tz", None) is None:
                limit = limit.tz_convert("UTC").tz_localize(None)
            mask &= fill_mask(column <= limit)
        if query.filter is not None:

            def column_of(name: str) -> pd.Series:
                if name not in cache.served:
                    raise _no_property(query.entity_set, name)
                return frame[name]

            mask &= FilterEvaluator(len(frame), column_of).mask(query.filter)
        selected = np.flatnonzero(mask).astype(np.int64)
        # Order: the $orderby keys, then the primary key, as Dataverse pages by it.
        keys: list[Positions] = []
        for column_name, descending in (*query.orderby, (PRIMARY_KEYS[query.entity_set], False)):
            if column_name not in frame.columns:
                continue
            codes = self._codes(cache, column_name)[selected]
            keys.append(-codes if descending else codes)
        if keys and len(selected) > 1:
            order = np.lexsort(tuple(reversed(keys)))
            selected = selected[order]
        self.index_builds += 1
        self._indexes[key] = selected
        self._cached_positions += len(selected)
        while self._cached_positions > self._max_cached_positions and len(self._indexes) > 1:
            _, dropped = self._indexes.popitem(last=False)
            self._cached_positions -= len(dropped)
        return selected

    def page(
        self, query: EntityQuery, now: datetime, offset: int, size: int, prefs: Preferences
    ) -> Page:
        """Rows `[offset, offset + size)` of the query result, serialised."""
        positions = self.positions(query, now)
        if query.top is not None:
            positions = positions[: query.top]
        chunk = positions[offset : offset + size]
        rows = self.rows(query.entity_set, chunk, query.select, query.expand, prefs)
        end = offset + len(chunk)
        return Page(rows, len(positions), end if end < len(positions) else None)

    def rows(
        self,
        entity_set: str,
        positions: Positions,
        select: Sequence[str],
        expand: Sequence[Expand],
        prefs: Preferences,
    ) -> list[dict[str, Any]]:
        """Serialise rows: `@odata.etag`, selected columns with formatted values, expands."""
        cache = self.table(entity_set)
        frame = cache.frame
        if len(positions) == 0:
            return []
        keys: list[str] = ["@odata.etag"]
        if "versionnumber" in frame.columns:
            versions = frame["versionnumber"].to_numpy(dtype=object, na_value=0)[positions]
        else:
            versions = positions + 1_000_000
        columns: list[list[Any]] = [[f'W/"{int(v)}"' for v in versions.tolist()]]
        labelled: list[str] = []
        formatted = prefs.wants(FORMATTED_VALUE)
        choices = CHOICE_LABELS.get(entity_set, {})
        lookups = LOOKUP_NAMES.get(entity_set, {})
        for name in select:
            values = json_values(frame[name].iloc[positions])
            if formatted and (name in choices or name in lookups):
                annotation = f"{name}@{FORMATTED_VALUE}"
                keys.append(annotation)
                if name in choices:
                    labels = choices[name]
                    columns.append([None if v is None else labels.get(v, str(v)) for v in values])
                else:
                    columns.append(self._lookup_names(lookups[name], values))
                labelled.append(annotation)
            keys.append(name)
            columns.append(values)
        rows = [dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)]
        for annotation in labelled:
            for row in rows:
                if row[annotation] is None:
                    del row[annotation]
        for item in expand:
            self._expand(frame, positions, rows, item, prefs)
        return rows

    def _lookup_names(self, target: str, keys: list[Any]) -> list[Any]:
        """The primary name of each lookup's target row (a lookup's formatted value)."""
        cache = self.table(target)
        if cache.key_positions is None:
            ids = objects(cache.frame[PRIMARY_KEYS[target]])
            cache.key_positions = {str(k).lower(): i for i, k in enumerate(ids) if k is not None}
        names = objects(cache.frame[PRIMARY_NAMES[target]]) if len(cache.frame) else []
        found = [None if k is None else cache.key_positions.get(str(k).lower()) for k in keys]
        return [None if p is None else names[p] for p in found]

    def _expand(
        self,
        frame: pd.DataFrame,
        positions: Positions,
        rows: list[dict[str, Any]],
        item: Expand,
        prefs: Preferences,
    ) -> None:
        target = self.table(item.target)
        if target.key_positions is None:
            pk = PRIMARY_KEYS[item.target]
            keys = objects(target.frame[pk])
            target.key_positions = {str(k).lower(): i for i, k in enumerate(keys) if k is not None}
        if item.lookup in frame.columns:
            lookups = objects(frame[item.lookup].iloc[positions])
        else:
            lookups = [None] * len(rows)
        found = [None if k is None else target.key_positions.get(str(k).lower()) for k in lookups]
        wanted = sorted({p for p in found if p is not None})
        related = self.rows(
            item.target, np.asarray(wanted, dtype=np.int64), item.select, item.expand, prefs
        )
        by_position = dict(zip(wanted, related, strict=True))
        for row, position in zip(rows, found, strict=True):
            row[item.nav] = None if position is None else by_position[position]


def context_url(service_root: str, query: EntityQuery) -> str:
    """`@odata.context`: `<root>/$metadata#<set>(<select>,<nav>(<select>))`."""

    def shape(select: Sequence[str], expand: Sequence[Expand]) -> str:
        parts = list(select)
        parts.extend(f"{e.nav}({shape(e.select, e.expand)})" for e in expand)
        return ",".join(parts)

    if not query.selected and not query.expand:
        return f"{service_root}/$metadata#{query.entity_set}"
    return f"{service_root}/$metadata#{query.entity_set}({shape(query.select, query.expand)})"


def utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime (naive values are taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
