"""`$filter` evaluation: a parsed filter to one boolean mask over a pandas frame.

Apart from the parser: the same evaluator serves Dataverse tables and the flow API's runs,
with Dataverse's type checks and case-insensitive text comparisons.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditor.sim.odata.errors import ODataError
from auditor.sim.odata.filter_syntax import BoolOp, Call, Column, Compare, Literal, Node, Not

Mask = npt.NDArray[np.bool_]

_OPERATOR_KIND = {
    "eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual", "lt": "LessThan", "le": "LessThanOrEqual",
}  # fmt: skip


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


def lowered_text(series: pd.Series) -> pd.Series:
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
        left = lowered_text(series)
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
        text = lowered_text(series).str
        value = str(needle.value).lower()
        if node.name == "startswith":
            return fill_mask(text.startswith(value))
        if node.name == "endswith":
            return fill_mask(text.endswith(value))
        return fill_mask(text.contains(value, regex=False))
