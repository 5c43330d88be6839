"""Datetimes as the store holds them: `TIMESTAMP` columns hold UTC without a zone."""

from __future__ import annotations

from datetime import UTC, datetime


def naive(value: datetime) -> datetime:
    """UTC without tzinfo, as a DuckDB TIMESTAMP holds it; a naive value is taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def aware(value: datetime) -> datetime:
    """A TIMESTAMP read back from DuckDB, marked as the UTC it holds."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
