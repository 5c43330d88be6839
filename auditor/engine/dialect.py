"""The few functions DuckDB and Spark SQL spell differently, and SQL literals.

The reductions (`auditor.engine.reductions`) are written once, in the SQL both engines share
(CTEs, CASE, GROUP BY, window functions with ROWS frames, TRY_CAST). What each engine names
its own way is here:

- Exact, linearly interpolated percentiles (pandas' default `linear`, Hyndman and Fan type
  7): DuckDB `quantile_cont` (https://duckdb.org/docs/stable/sql/functions/aggregates.html)
  and Spark `percentile`, which "returns the exact percentile(s)"
  (https://spark.apache.org/docs/latest/api/sql/index.html#percentile). Never
  `percentile_approx` or `approx_quantile`: they return a value of the column within an
  error bound, and the findings would move from run to run.
- Microseconds since the epoch: DuckDB `epoch_us`, Spark `unix_micros`, of the value cast to
  TIMESTAMP: Spark's `unix_micros` refuses TIMESTAMP_NTZ, which naive UTC times (the
  store's, through Parquet) become in Spark.
- "holds a character that is not white space": a regular expression, since `trim` removes
  only spaces in both engines (Python's `str.strip`, used before, removed all white space).
- One row per item of a separated list: DuckDB `unnest(string_split(...))`
  (https://duckdb.org/docs/stable/sql/functions/text.html), Spark `explode(split(...))`
  (https://spark.apache.org/docs/latest/api/sql/index.html#explode), both in the select list.
- Null ordering is always written out: DuckDB sorts nulls last by default, Spark first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Dialect:
    """How one engine spells the functions the reductions need."""

    name: str
    percentile_function: str
    epoch_us_function: str
    regex_match: str  # a format with {text} and {pattern}
    split_rows_format: str  # a format with {text} and {separator}

    def percentile(self, expression: str, level: float) -> str:
        """The exact linear percentile of `expression` at `level` (0..1), nulls ignored."""
        return f"{self.percentile_function}({expression}, {float(level)!r})"

    def epoch_us(self, expression: str) -> str:
        """Microseconds since 1970-01-01 UTC of a timestamp expression (with a zone, or
        without one and then UTC: the session's zone is UTC on both engines)."""
        return f"{self.epoch_us_function}(CAST({expression} AS TIMESTAMP))"

    def has_text(self, expression: str) -> str:
        """True when the text holds something besides white space; false for null."""
        return self.matches(expression, _NOT_SPACE)

    def matches(self, expression: str, pattern: str) -> str:
        """True when the text matches the regular expression literal `pattern` somewhere
        (anchor it to match the whole); false for null."""
        return f"coalesce({self.regex_match.format(text=expression, pattern=pattern)}, FALSE)"

    def split_rows(self, expression: str, separator: str) -> str:
        """A select-list item giving one row per item of the `separator`-separated text (a
        plain character, not a pattern: Spark's `split` reads it as one)."""
        if separator not in (",", ";"):
            raise ValueError(f"unsupported separator {separator!r}")
        return self.split_rows_format.format(text=expression, separator=text(separator))


# A character class of ASCII white space written with the characters themselves: Spark SQL
# unescapes backslashes in string literals (so '\\s' would reach Java as 's'), DuckDB does not.
_NOT_SPACE = "'[^" + "".join(chr(c) for c in (9, 10, 11, 12, 13, 32)) + "]'"


DUCKDB = Dialect(
    "duckdb",
    "quantile_cont",
    "epoch_us",
    "regexp_matches({text}, {pattern})",
    "unnest(string_split({text}, {separator}))",
)
SPARK = Dialect(
    "spark",
    "percentile",
    "unix_micros",
    "({text} RLIKE {pattern})",
    "explode(split({text}, {separator}))",
)


def text(value: str) -> str:
    """A SQL string literal (quotes doubled; both engines read it the same way)."""
    if "\\" in value:
        raise ValueError("backslashes are not portable in SQL string literals")
    return "'" + value.replace("'", "''") + "'"


def texts(values: Iterable[str]) -> str:
    """A parenthesised list of string literals, for `IN`; never empty (`IN ()` is invalid)."""
    items = sorted({str(v) for v in values})
    if not items:
        raise ValueError("an IN list needs at least one value")
    return "(" + ", ".join(text(v) for v in items) + ")"


def timestamp(value: datetime) -> str:
    """A UTC timestamp literal without a zone (the store keeps naive UTC; Spark runs in UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return f"TIMESTAMP '{value.isoformat(sep=' ', timespec='microseconds')}'"
