"""Comparing tables read by different readers: same columns, same rows, whatever the order."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa


def normalized(table: pa.Table) -> list[tuple]:
    """Rows as tuples in column-name order, timestamps as UTC, sorted (None first)."""

    def value(item):
        if isinstance(item, dt.datetime) and item.tzinfo is not None:
            return item.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return item

    names = sorted(table.column_names)
    rows = [tuple(value(row[name]) for name in names) for row in table.select(names).to_pylist()]
    return sorted(rows, key=lambda row: tuple((item is not None, str(item)) for item in row))


def same_rows(left: pa.Table, right: pa.Table) -> None:
    assert sorted(left.column_names) == sorted(right.column_names)
    assert normalized(left) == normalized(right)
