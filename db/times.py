"""Datetimes as the database hands them back."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; everything is written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
